-- reap.lua: fail the images whose worker is gone (worker.jobs.Job.reap): those running
-- since before older_than, and the queued ones too when the job has not moved since;
-- a cancelled job's running images too (it is not finished until they are).
--
-- KEYS[1]  the job's hash
-- ARGV[1]  constants (prelude.lua)
-- ARGV[2]  older_than, Unix seconds
-- ARGV[3]  now, Unix seconds
-- ARGV[4]  the error of a running image that lost its worker
-- ARGV[5]  the error of a queued image of a job nobody moved
--
-- Returns how many images it failed.

local older_than, now, lost, idle_error = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', key) == 0 or finished() then return 0 end
local idle = num('changed_at') < older_than
local n = 0
for i = 0, num('total') - 1 do
  local state = image_state(i)
  if state == IMAGE.RUNNING and num('i' .. i .. ':t') < older_than then
    redis.call('HINCRBY', key, 'running', -1)
    settle_image(i, IMAGE.FAILED, lost, now); n = n + 1
  elseif state == IMAGE.QUEUED and idle then
    settle_image(i, IMAGE.FAILED, idle_error, now); n = n + 1
  end
end
return n
