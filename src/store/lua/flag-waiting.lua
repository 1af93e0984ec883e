--[[
  Announces that a step waits for a worker nobody live provides: a `step.waiting` event, once per
  distinct reason (the field `w:<step>` keeps the last reason announced; '' clears it). A step
  that is running or final is left alone (a worker took it meanwhile). The run document's
  `waiting` comes from the per-queue `unserved` hash, so it is current, not this field.

  KEYS[1] run hash
  KEYS[2] run event stream

  ARGV[1] step id
  ARGV[2] the reason, or '' to clear the flag
  ARGV[3] now (ISO)
  ARGV[4] run id

  Returns 1 when the flag was set (and the event written) or cleared, 0 when nothing changed,
  -1 when the run does not exist.
]]
local run, stream, stepId, reason = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', run) == 0 then return -1 end
local field = 'w:' .. stepId
if reason == '' then return redis.call('HDEL', run, field) end
local status = redis.call('HGET', run, 'st:' .. stepId) or ''
if status ~= 'queued' and status ~= 'pending' then return 0 end
local runStatus = redis.call('HGET', run, 'status') or ''
if runStatus ~= 'queued' and runStatus ~= 'running' then return 0 end
if redis.call('HGET', run, field) == reason then return 0 end
redis.call('HSET', run, field, reason)
redis.call('XADD', stream, '*', 'type', 'step.waiting', 'data', cjson.encode({
  runId = ARGV[4], type = 'step.waiting', at = ARGV[3], step = stepId, reason = reason }))
return 1
