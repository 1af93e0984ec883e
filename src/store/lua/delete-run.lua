--[[
  Deletes a finished run's keys of our own and its index entries, at once: the record, its event
  stream, the log of every attempt, the idempotency key when it still names this run, and its
  entries in the runs index, its workflow's runs index and the expiry index. BullMQ's jobs are
  removed by the caller through BullMQ.

  KEYS[1] run hash            {p}:rec:run:<id>
  KEYS[2] run event stream    {p}:rec:run:<id>:events
  KEYS[3] runs index (zset)   {p}:rec:runs
  KEYS[4] expiry index (zset) {p}:rec:runs:expiry

  ARGV[1] run id
  ARGV[2] the run's workflow name as the expiry index knows it ('' when unknown): used when the
          record has already expired, to trim that workflow's index
  ARGV[3] records prefix      {p}:rec:

  Keys derived here (same hash tag, so the same Redis Cluster slot): the workflow's runs index
  `<prefix>runs:wf:<name>`, the logs as in finish-run.lua, the idempotency key.

  Returns 1 when deleted, -1 when there was no record (index entries are trimmed all the same),
  -2 when the run has not finished (nothing is changed).
]]
-- @include attempt-logs.lua
local final = { succeeded = true, failed = true, cancelled = true }
local run, runId, prefix = KEYS[1], ARGV[1], ARGV[3]
local exists = redis.call('HEXISTS', run, 'meta') == 1
local workflow = ARGV[2]
local code = -1
if exists then
  if not final[redis.call('HGET', run, 'status') or ''] then return -2 end
  -- The fields announce-run.lua keeps beside the meta, else (an older run) the meta itself.
  local fields = redis.call('HMGET', run, 'workflow', 'idempotencyKey')
  local key = fields[2]
  if fields[1] then
    workflow = fields[1]
  else
    local meta = cjson.decode(redis.call('HGET', run, 'meta'))
    workflow, key = meta['workflow']['name'], meta['idempotencyKey']
  end
  forEachAttemptLog(run, function(log) redis.call('DEL', log) end)
  if type(key) == 'string' and key ~= '' then
    local idem = prefix .. 'idem:' .. workflow .. ':' .. key
    local named = redis.call('GET', idem)
    if named and string.sub(named, 1, #runId + 1) == runId .. ' ' then redis.call('DEL', idem) end
  end
  redis.call('DEL', run)
  code = 1
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], runId)
if workflow ~= '' then
  redis.call('ZREM', prefix .. 'runs:wf:' .. workflow, runId)
  redis.call('ZREM', KEYS[4], runId .. '/' .. workflow)
end
return code
