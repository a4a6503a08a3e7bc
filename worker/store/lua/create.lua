-- create.lua: store a new job, unless one of its outputs is an output of a job that is
-- queued or running (then store nothing).
--
-- KEYS[1]     the job's hash
-- KEYS[2]     the index of jobs by creation time, for GET /jobs
-- KEYS[3...]  one key per output of the job, imgserve:output:<path>, in the job's order
-- ARGV[1]     constants (prelude.lua)
-- ARGV[2]     created_at, Unix seconds
-- ARGV[3]     expires_at: created_at + ttl
-- ARGV[4]     expires_at in whole milliseconds, rounded up (PEXPIREAT)
-- ARGV[5]     now: jobs that expired before it leave the indexes
-- ARGV[6]     ttl, seconds
-- ARGV[7...]  the job hash's fields and values
--
-- Returns {} once stored, or {the busy output's place among KEYS[3...] (from 1), the id
-- of the job that writes it}.

local index, created_at, expires_at, expire_at = KEYS[2], ARGV[2], ARGV[3], ARGV[4]
local now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])

for n = 3, #KEYS do
  local other = redis.call('GET', KEYS[n])
  if other and other ~= id and active(redis.call('HGET', C.job_key .. other, 'state')) then
    return {n - 2, other}
  end
end

redis.call('HSET', key, unpack(ARGV, 7))
redis.call('PEXPIREAT', key, expire_at)
redis.call('ZADD', index, created_at, id)
redis.call('ZREMRANGEBYSCORE', index, '-inf', now - ttl)
for _, jobs in pairs(C.by_state) do redis.call('ZREMRANGEBYSCORE', jobs, '-inf', now) end
redis.call('ZADD', C.by_state[JOB.QUEUED], expires_at, id)
for n = 3, #KEYS do redis.call('SET', KEYS[n], id, 'PXAT', expire_at) end
return {}
