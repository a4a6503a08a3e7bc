-- redeliver.lua: queue again the running images whose holder is gone
-- (worker.jobs.Job.redeliver_lost); a cancelled job's are cancelled instead.
--
-- KEYS[1]  the job's hash
-- ARGV[1]  constants (prelude.lua)
-- ARGV[2]  now, Unix seconds
-- ARGV[3]  stale_after: seconds unheard of after which a holder is gone
-- ARGV[4]  the hard time limit: no attempt of an image lasts longer
-- ARGV[5]  '1' when silence counts (see worker.liveness.Liveness.silence), else '0'
--
-- Returns {first, stop, first, stop, ...}: the images of each task to publish, from a
-- lost image to its holder's until.

local now, stale_after, time_limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local silence = ARGV[5] == '1'
if redis.call('EXISTS', key) == 0 then return {} end
local total = num('total')
local tasks = {}
for i = 0, total - 1 do
  if image_state(i) == IMAGE.RUNNING and lost(i, tonumber(now), stale_after, time_limit, silence) then
    redis.call('HINCRBY', key, 'running', -1)
    local stop = math.min(math.max(i + 1, tonumber(field('i' .. i .. ':u') or '0')), total)
    if field('state') == JOB.CANCELLED then
      settle_image(i, IMAGE.CANCELLED, false, now)
    else
      redis.call('HSET', key, 'i' .. i .. ':s', IMAGE.QUEUED)
      drop_holder(i)
      bump(now)
      table.insert(tasks, i)
      table.insert(tasks, stop)
    end
  end
end
return tasks
