-- prelude.lua: the helpers every script of the Redis job store shares. The store puts
-- it before each script when it loads them (worker/store/redis_store.py), so every
-- script takes these two:
--
-- KEYS[1]  the job's hash, imgserve:job:<id>
-- ARGV[1]  the store's constants, as JSON:
--            channel   the pub/sub channel every change is announced on
--            quiet     seconds between two progress messages of a job (a finish: always)
--            job       job state names by their worker.jobs.JobState member name
--            image     image state names by their worker.jobs.ImageState member name
--            start     a start's decisions by their worker.jobs.Start member name
--            job_key   the prefix of a job's hash key, before its id
--            by_state  by job state name: the sorted set of the jobs in that state
--            running   the hash of every running image: "<job id>:<n>" -> "<started>", or
--                      "<started> <node> <pid> <until>" with its holder
--            workers   the hash of the workers' heartbeats: node -> {"at": .., "pids": [..]}
--
-- The job hash (see redis_store.py): spec, state, total, next_index, version, changed_at,
-- started_at, finished_at, published_at, expires_at, outputs (the keys of its outputs,
-- as JSON), inputs (the keys of its inputs' sets of readers, as JSON), active_key (its
-- owner's set of queued and running jobs; absent when anonymous), done, failed,
-- cancelled, running; for image n: i<n>:s its state (absent: queued), i<n>:a attempts,
-- i<n>:e error, i<n>:t when it last started, and while it runs its holder
-- (worker.liveness.Holder): i<n>:w node, i<n>:p pid, i<n>:u until; for a claim made
-- with key k: c<k> the images it took, "<first> <count>".

local key = KEYS[1]
local C = cjson.decode(ARGV[1])
local JOB, IMAGE, START = C.job, C.image, C.start
local id = string.sub(key, #C.job_key + 1)

local function field(name) return redis.call('HGET', key, name) end
local function num(name) return tonumber(field(name) or '0') end
local function image_state(i) return field('i' .. i .. ':s') or IMAGE.QUEUED end
local function active(state) return state == JOB.QUEUED or state == JOB.RUNNING end
local function finished() return (field('finished_at') or '') ~= '' end

-- Count a change: long-polls wake on the version, the reaper reads changed_at.
local function bump(now)
  local v = redis.call('HINCRBY', key, 'version', 1)
  redis.call('HSET', key, 'changed_at', now)
  -- A finish is always published; progress at most every C.quiet seconds (waits look
  -- for it), timed by Redis's clock: the workers' clocks may disagree.
  local time = redis.call('TIME')
  local clock = tonumber(time[1]) + tonumber(time[2]) / 1000000
  local published = tonumber(field('published_at') or '0')
  if finished() or clock - published >= C.quiet then
    redis.call('HSET', key, 'published_at', clock)
    local flag = '0'
    if finished() then flag = '1' end
    redis.call('PUBLISH', C.channel, key .. ' ' .. v .. ' ' .. flag)
  end
end

-- Let go of the job's outputs and inputs, and leave its owner's active jobs: another job
-- may write them once this one cannot.
local function release_outputs()
  local outputs = field('outputs')
  if outputs then
    for _, output in ipairs(cjson.decode(outputs)) do
      if redis.call('GET', output) == id then redis.call('DEL', output) end
    end
  end
  local inputs = field('inputs')
  if inputs then
    for _, input in ipairs(cjson.decode(inputs)) do redis.call('ZREM', input, id) end
  end
  local active_key = field('active_key')
  if active_key then redis.call('ZREM', active_key, id) end
end

-- Move the job to a state: in its hash, and in the per-state sets stats() counts.
local function set_state(new)
  local old = field('state')
  if old == new then return end
  redis.call('HSET', key, 'state', new)
  redis.call('ZREM', C.by_state[old], id)
  local expires_at = field('expires_at')
  if expires_at then redis.call('ZADD', C.by_state[new], expires_at, id) end
  if not active(new) then release_outputs() end
end

-- Give the job its final state once nothing is left to run (Job._settle).
local function settle(now)
  if field('state') == JOB.CANCELLED then
    if num('running') == 0 and not finished() then
      redis.call('HSET', key, 'finished_at', now)
    end
    return
  end
  local total, failed = num('total'), num('failed')
  if num('done') + failed + num('cancelled') >= total then
    local final = JOB.SUCCEEDED
    if failed == total then final = JOB.FAILED elseif failed > 0 then final = JOB.PARTIALLY_FAILED end
    set_state(final)
    redis.call('HSET', key, 'finished_at', now)
  end
end

-- Image i stops running: forget its holder, here and in the hash of running images.
local function drop_holder(i)
  redis.call('HDEL', key, 'i' .. i .. ':w', 'i' .. i .. ':p', 'i' .. i .. ':u')
  redis.call('HDEL', C.running, id .. ':' .. i)
end

-- Whether the holder of running image i is gone (worker.liveness.Liveness.gone): unheard
-- of for stale_after (when silence counts), started longer ago than the hard time limit
-- and stale_after, or missing from a heartbeat newer than its start.
local function lost(i, now, stale_after, time_limit, silence)
  local node = field('i' .. i .. ':w')
  local started = tonumber(field('i' .. i .. ':t') or '0')
  local beat = nil
  if node then
    local raw = redis.call('HGET', C.workers, node)
    if raw then beat = cjson.decode(raw) end
  end
  local heard = math.max(started, 0)
  if beat and beat.at > heard then heard = beat.at end
  if silence and heard < now - stale_after then return true end
  if started < now - time_limit - stale_after then return true end
  if not beat or not (beat.at > started) then return false end
  local pid = tonumber(field('i' .. i .. ':p'))
  for _, alive in ipairs(beat.pids) do
    if alive == pid then return false end
  end
  return true
end

-- Put an image in a final state, count it, settle the job, count the change
-- (Job._settle_image).
local function settle_image(i, state, err, now)
  redis.call('HSET', key, 'i' .. i .. ':s', state)
  drop_holder(i)
  if err then redis.call('HSET', key, 'i' .. i .. ':e', err) end
  local counter = 'cancelled'
  if state == IMAGE.SUCCEEDED then counter = 'done' elseif state == IMAGE.FAILED then counter = 'failed' end
  redis.call('HINCRBY', key, counter, 1)
  settle(now)
  bump(now)
end

