-- create.lua: store a new job, unless its owner has as many queued or running jobs as it
-- may, one of its outputs is an output of a job that is queued or running, or (with
-- shared roots) the input of one: then store nothing.
--
-- KEYS[1]     the job's hash
-- KEYS[2]     the index of jobs by creation time, for GET /jobs
-- KEYS[3]     the owner's index of jobs by creation time (anonymous: unused)
-- KEYS[4]     the owner's queued and running jobs, by expiry (anonymous: unused)
-- KEYS[5...]  one key per output of the job, imgserve:output:<path>, in the job's order,
--             then one per input, imgserve:input:<path> (its readers, by expiry)
-- ARGV[1]     constants (prelude.lua)
-- ARGV[2]     created_at, Unix seconds
-- ARGV[3]     expires_at: created_at + ttl
-- ARGV[4]     expires_at in whole milliseconds, rounded up (PEXPIREAT)
-- ARGV[5]     now: jobs that expired before it leave the indexes
-- ARGV[6]     ttl, seconds
-- ARGV[7]     how many of KEYS[5...] are outputs
-- ARGV[8]     the owner's name, '' when anonymous
-- ARGV[9]     queued or running jobs an owner may have, 0 for no limit
-- ARGV[10]    1 when outputs must not be an active job's input (shared roots), else 0
-- ARGV[11...] the job hash's fields and values
--
-- Returns {} once stored; {'active'} when the owner has too many; {'output', the busy
-- output's place among the outputs (from 1), the id of the job that writes it}; or
-- {'input', the same, the id of the job that reads it}.

local index, owned, active_jobs = KEYS[2], KEYS[3], KEYS[4]
local created_at, expires_at, expire_at = ARGV[2], ARGV[3], ARGV[4]
local now, ttl, outputs = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local owner, max_active, guard_inputs = ARGV[8], tonumber(ARGV[9]), ARGV[10] == '1'
local last_output = 4 + outputs

if owner ~= '' and max_active > 0 then
  redis.call('ZREMRANGEBYSCORE', active_jobs, '-inf', '(' .. now)
  if redis.call('ZCARD', active_jobs) >= max_active then return {'active'} end
end
for n = 5, last_output do
  local other = redis.call('GET', KEYS[n])
  if other and other ~= id and active(redis.call('HGET', C.job_key .. other, 'state')) then
    return {'output', n - 4, other}
  end
end
if guard_inputs then
  for n = 5, last_output do
    local input = C.input_key .. string.sub(KEYS[n], #C.output_key + 1)
    local readers = redis.call('ZRANGEBYSCORE', input, now, '+inf', 'LIMIT', 0, 1)
    if readers[1] then return {'input', n - 4, readers[1]} end
  end
end

redis.call('HSET', key, unpack(ARGV, 11))
redis.call('PEXPIREAT', key, expire_at)
redis.call('ZADD', index, created_at, id)
redis.call('ZREMRANGEBYSCORE', index, '-inf', now - ttl)
for _, jobs in pairs(C.by_state) do redis.call('ZREMRANGEBYSCORE', jobs, '-inf', now) end
redis.call('ZADD', C.by_state[JOB.QUEUED], expires_at, id)
for n = 5, last_output do redis.call('SET', KEYS[n], id, 'PXAT', expire_at) end
for n = last_output + 1, #KEYS do
  redis.call('ZADD', KEYS[n], expires_at, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[n], '-inf', '(' .. now)
  redis.call('PEXPIREAT', KEYS[n], expire_at)
end
if owner ~= '' then
  redis.call('ZADD', owned, created_at, id)
  redis.call('ZREMRANGEBYSCORE', owned, '-inf', now - ttl)
  redis.call('PEXPIREAT', owned, expire_at)
  redis.call('ZADD', active_jobs, expires_at, id)
  redis.call('PEXPIREAT', active_jobs, expire_at)
end
return {}
