-- cancel.lua: cancel a job's images that have not started; running ones finish.
--
-- KEYS[1]  the job's hash
-- ARGV[1]  constants (prelude.lua)
-- ARGV[2]  now, Unix seconds
--
-- Returns 1 when the job exists, else 0.

local now = ARGV[2]
if redis.call('EXISTS', key) == 0 then return 0 end
if not active(field('state')) then return 1 end
local n = 0
for i = 0, num('total') - 1 do
  if image_state(i) == IMAGE.QUEUED then
    redis.call('HSET', key, 'i' .. i .. ':s', IMAGE.CANCELLED); n = n + 1
  end
end
redis.call('HINCRBY', key, 'cancelled', n)
set_state(JOB.CANCELLED)
settle(now); bump(now)
return 1
