-- step.lua: move a job along in one change, in this order: finish an image, start an
-- image, claim the job's next task, read its spec (worker.store.protocol.Move).
--
-- KEYS[1]  the job's hash
-- KEYS[2]  the counters hash: images by outcome, operation times
-- ARGV[1]  constants (prelude.lua)
-- ARGV[2]  now, Unix seconds
-- ARGV[3]  the move, as JSON; a member is absent when not asked for:
--            finish        the running image to settle
--            error         its error (absent: it succeeded)
--            counters      [[counter, increment], ...] the finish adds to KEYS[2]
--            start         the image to start
--            holder        who starts it: {node, pid, until} (absent: nobody says)
--            stale_after   seconds unheard of after which a running image's holder is gone
--            time_limit    the hard time limit: no attempt of an image lasts longer
--            max_attempts  attempts after which the start gives up instead
--            gave_up       the error of an image that gave up
--            claim         how many images to take for the job's next task
--            window        how many tasks share the job's tail
--            claim_key     the claim's key: a claim made again with it answers what it took
--            spec          true: return the job as it was created
--
-- Returns {the start's decision or '', first image claimed, images claimed, the spec
-- or '', the started image's attempts (0 unless it ran or gave up)}.

local now, move = ARGV[2], cjson.decode(ARGV[3])
if redis.call('EXISTS', key) == 0 then
  if move.start then return {START.SKIP, 0, 0, '', 0} end
  return {'', 0, 0, '', 0}
end

local function finish_image(i)
  if image_state(i) ~= IMAGE.RUNNING then return end
  redis.call('HINCRBY', key, 'running', -1)
  if move.error then
    settle_image(i, IMAGE.FAILED, move.error, now)
  else
    settle_image(i, IMAGE.SUCCEEDED, false, now)
  end
  for _, pair in ipairs(move.counters) do
    redis.call('HINCRBYFLOAT', KEYS[2], pair[1], pair[2])
  end
end

local attempt = 0
local function start_image(i)
  local state = image_state(i)
  if state ~= IMAGE.QUEUED and state ~= IMAGE.RUNNING then return START.SKIP end
  if state == IMAGE.RUNNING then  -- a duplicate delivery, unless its holder is gone
    local holder = move.holder
    if holder and field('i' .. i .. ':w') == holder.node
        and tonumber(field('i' .. i .. ':p')) == holder.pid
        and tonumber(field('i' .. i .. ':u')) == holder['until'] then
      attempt = num('i' .. i .. ':a')
      return START.RUN  -- a repeat of the holder's own start: it runs on
    end
    if not lost(i, tonumber(now), move.stale_after, move.time_limit, true) then
      return START.SKIP
    end
    redis.call('HINCRBY', key, 'running', -1)
    drop_holder(i)
  end
  if field('state') == JOB.CANCELLED then
    settle_image(i, IMAGE.CANCELLED, false, now); return START.SKIP
  end
  attempt = redis.call('HINCRBY', key, 'i' .. i .. ':a', 1)
  if attempt > move.max_attempts then
    settle_image(i, IMAGE.FAILED, move.gave_up, now); return START.GAVE_UP
  end
  redis.call('HSET', key, 'i' .. i .. ':s', IMAGE.RUNNING, 'i' .. i .. ':t', now)
  local holder, running = move.holder, now
  if holder then
    redis.call('HSET', key, 'i' .. i .. ':w', holder.node, 'i' .. i .. ':p', holder.pid,
      'i' .. i .. ':u', holder['until'])
    running = table.concat({now, holder.node, holder.pid, holder['until']}, ' ')
  end
  redis.call('HSET', C.running, id .. ':' .. i, running)
  redis.call('HINCRBY', key, 'running', 1)
  if field('state') == JOB.QUEUED then
    set_state(JOB.RUNNING)
    redis.call('HSET', key, 'started_at', now)
  end
  bump(now)
  return START.RUN
end

local function claim_next()
  local key_field = move.claim_key and ('c' .. move.claim_key)
  if key_field then
    local earlier = redis.call('HGET', key, key_field)
    if earlier then
      local first, taken = string.match(earlier, '(%d+) (%d+)')
      return tonumber(first), tonumber(taken)
    end
  end
  if not active(field('state')) then return 0, 0 end
  local n, total = num('next_index'), num('total')
  if n >= total then return 0, 0 end
  local taken = math.max(1, math.min(move.claim, math.ceil((total - n) / move.window)))
  redis.call('HSET', key, 'next_index', n + taken)
  if key_field then redis.call('HSET', key, key_field, n .. ' ' .. taken) end
  return n, taken
end

if move.finish then finish_image(move.finish) end
local started, first, taken, spec = '', 0, 0, ''
if move.start then started = start_image(move.start) end
if move.claim then first, taken = claim_next() end
if move.spec then spec = field('spec') end
return {started, first, taken, spec, attempt}
