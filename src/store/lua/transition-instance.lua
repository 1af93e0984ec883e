--[[
  Moves one host instance of a fan-out step to a new status, with its details and event. An
  instance in a final status never changes again. Moving to `running` begins a new attempt, as
  start-step.lua does for a step: the attempt number comes from the record (`ia:<step>@<host>`),
  and an instance found `running` was interrupted (its worker died), which is counted and said in
  a `step.retrying` event, or refused past the allowed number.

  KEYS[1] run hash
  KEYS[2] run event stream

  ARGV[1] instance key ('<step>@<host>'; fields i:, ia:, ix: are derived from it)
  ARGV[2] new status
  ARGV[3] instance JSON (status included; for `running`, its `attempts` is set here)
  ARGV[4] event JSON, or '' for none
  ARGV[5] event type
  ARGV[6] the attempt the writer ran, or '' (see transition-step.lua's fence)
  ARGV[7] interruptions allowed (for `running`)
  ARGV[8] run id, step id, host and now, separated by '|' (for the step.retrying event)

  Returns the new attempt number when moving to `running`, 1 when another status was applied,
  0 when the instance was already final or the attempt is stale, -1 when the run does not
  exist, -2 when the instance was interrupted more often than allowed (nothing written).
]]
local final = { succeeded = true, failed = true, skipped = true, cancelled = true }
local run, stream, key, status = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', run) == 0 then return -1 end
local current = redis.call('HGET', run, 'i:' .. key)
local currentStatus = current and cjson.decode(current)['status'] or ''
if final[currentStatus] then return 0 end
local attempt = redis.call('HGET', run, 'ia:' .. key) or '0'
if ARGV[6] ~= '' and attempt ~= ARGV[6] then return 0 end

if status == 'running' then
  if currentStatus == 'running' then
    local interruptions = redis.call('HINCRBY', run, 'ix:' .. key, 1)
    if interruptions > tonumber(ARGV[7]) then return -2 end
    local runId, stepId, host, at = string.match(ARGV[8], '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
    redis.call('XADD', stream, '*', 'type', 'step.retrying', 'data', cjson.encode({
      runId = runId, type = 'step.retrying', at = at, step = stepId, host = host,
      attempt = tonumber(attempt), nextAttempt = tonumber(attempt) + 1, reason = 'interrupted',
      error = { code = 'worker_lost',
        message = 'the worker running attempt ' .. attempt .. ' stopped before the attempt ended' } }))
  end
  local next = redis.call('HINCRBY', run, 'ia:' .. key, 1)
  local instance = cjson.decode(ARGV[3])
  instance.attempts = next
  redis.call('HSET', run, 'i:' .. key, cjson.encode(instance))
  if ARGV[4] ~= '' then
    local event = cjson.decode(ARGV[4])
    event.attempt = next
    redis.call('XADD', stream, '*', 'type', ARGV[5], 'data', cjson.encode(event))
  end
  return next
end

redis.call('HSET', run, 'i:' .. key, ARGV[3])
if ARGV[4] ~= '' then redis.call('XADD', stream, '*', 'type', ARGV[5], 'data', ARGV[4]) end
return 1
