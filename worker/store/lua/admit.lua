-- admit.lua: take a submission token from an owner's bucket (protocol.token_bucket).
--
-- KEYS[1]  the owner's bucket, a hash: tokens, at
-- ARGV[1]  now, Unix seconds
-- ARGV[2]  tokens gained a second
-- ARGV[3]  the bucket's size (the burst)
--
-- Returns 0 once a token was taken, else the seconds to wait for one (as a string).
-- Not behind the prelude: it touches no job.

local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or burst)
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(at, now)))
-- A bucket left alone this long is full again: forgetting it changes nothing.
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * burst / rate) + 1000)
if wait == 0 then return 0 end
return tostring(wait)
