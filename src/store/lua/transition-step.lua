--[[
  Moves one step to a new status, stores its details and appends its event, atomically.
  A step already in a final status never changes again: a late worker (one that lost its lock)
  cannot overwrite what the run recorded. The first step that moves marks the run started; a
  step reaching a final status queues each dependent whose needs are now all final.

  KEYS[1] run hash
  KEYS[2] run event stream
  KEYS[3] metrics counters hash (src/store/stats.ts)

  ARGV[1] step id
  ARGV[2] new status
  ARGV[3] details JSON (stored as s:<id>), or '' to keep the current details
  ARGV[4] event JSON, or '' for none
  ARGV[5] event type
  ARGV[6] now (ISO)
  ARGV[7] run id
  ARGV[8] dependents: ';'-separated entries 'dependent=need1,need2,…'
  ARGV[9] the attempt the writer ran, or '' when the write ends no attempt (a skip, a cancel
          before start, a reconciled failure): a writer whose attempt is no longer the step's
          latest (it lost its lock and another worker started a new attempt) changes nothing
  ARGV[10] metrics counters to add when applied: ';'-separated 'field=n', or ''

  Returns 1 when applied, 0 when the step was already final or the attempt is stale (nothing
  written), -1 when the run record does not exist.
]]
local final = { succeeded = true, failed = true, skipped = true, cancelled = true }
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local stepId, status, at, runId = ARGV[1], ARGV[2], ARGV[6], ARGV[7]
local current = redis.call('HGET', KEYS[1], 'st:' .. stepId)
if current and final[current] then return 0 end
if ARGV[9] ~= '' and (redis.call('HGET', KEYS[1], 'a:' .. stepId) or '0') ~= ARGV[9] then return 0 end

if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'startedAt', at)
  redis.call('XADD', KEYS[2], '*', 'type', 'run.started', 'data',
    cjson.encode({ runId = runId, type = 'run.started', at = at }))
end

redis.call('HSET', KEYS[1], 'st:' .. stepId, status)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 's:' .. stepId, ARGV[3]) end
if ARGV[4] ~= '' then redis.call('XADD', KEYS[2], '*', 'type', ARGV[5], 'data', ARGV[4]) end

if final[status] then
  for entry in string.gmatch(ARGV[8], '[^;]+') do
    local dependent, needs = string.match(entry, '^([^=]+)=(.*)$')
    if redis.call('HGET', KEYS[1], 'st:' .. dependent) == 'pending' then
      local ready = true
      for need in string.gmatch(needs, '[^,]+') do
        if not final[redis.call('HGET', KEYS[1], 'st:' .. need) or ''] then ready = false break end
      end
      if ready then
        redis.call('HSET', KEYS[1], 'st:' .. dependent, 'queued')
        redis.call('XADD', KEYS[2], '*', 'type', 'step.queued', 'data',
          cjson.encode({ runId = runId, type = 'step.queued', step = dependent, at = at }))
      end
    end
  end
end
for field, by in string.gmatch(ARGV[10], '([^;=]+)=(%d+)') do redis.call('HINCRBY', KEYS[3], field, by) end
return 1
