--[[
  Reads what a step needs to start, in one round trip, and when the step's condition is the
  default `success()` decides it here and marks the step running: GitHub's default needs no
  expression evaluation, and the common case saves a round trip on the critical path.

  KEYS[1] run hash
  KEYS[2] run event stream

  ARGV[1] step id
  ARGV[2] run id
  ARGV[3] now (ISO)
  ARGV[4] '1' to include the run meta
  ARGV[5] '1' when the condition is the default success() (this script may start the step)
  ARGV[6] details JSON for the running state
  ARGV[7] step.started event JSON
  ARGV[8] number of direct needs (the first ids below)
  ARGV[9…] ids of the steps whose state is read (needs first)

  Returns { outcome, current status, cancel flag, meta, st1, s1, st2, s2, … } where outcome is
  -1 no run record, 0 the step is already final, 1 started here, 2 the caller must decide,
  3 a direct need is not final yet: its status write has not landed (a reloaded script can
  overtake it), so the caller reads again shortly rather than deciding on a stale status.
]]
local final = { succeeded = true, failed = true, skipped = true, cancelled = true }
if redis.call('EXISTS', KEYS[1]) == 0 then return { -1 } end
local stepId, runId, at = ARGV[1], ARGV[2], ARGV[3]
local current = redis.call('HGET', KEYS[1], 'st:' .. stepId) or ''
local cancel = redis.call('HGET', KEYS[1], 'cancel') or ''
local meta = ''
if ARGV[4] == '1' then meta = redis.call('HGET', KEYS[1], 'meta') or '' end

local reply = { 2, current, cancel, meta }
local needs = tonumber(ARGV[8])
local ok = cancel ~= '1'
local early = false
for i = 9, #ARGV do
  local id = ARGV[i]
  local st = redis.call('HGET', KEYS[1], 'st:' .. id) or ''
  local s = redis.call('HGET', KEYS[1], 's:' .. id) or ''
  reply[#reply + 1] = st
  reply[#reply + 1] = s
  if i - 8 <= needs and not final[st] then early = true end
  if i - 8 <= needs and st ~= 'succeeded' then
    if not (st == 'failed' and s ~= '' and cjson.decode(s)['continueOnError'] == true) then ok = false end
  end
end

if final[current] then
  reply[1] = 0
  return reply
end
if early then
  reply[1] = 3
  return reply
end
if ARGV[5] ~= '1' or not ok then return reply end

if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', at)
  redis.call('XADD', KEYS[2], '*', 'type', 'run.started', 'data',
    cjson.encode({ runId = runId, type = 'run.started', at = at }))
end
redis.call('HSET', KEYS[1], 'st:' .. stepId, 'running', 's:' .. stepId, ARGV[6])
redis.call('XADD', KEYS[2], '*', 'type', 'step.started', 'data', ARGV[7])
reply[1] = 1
return reply
