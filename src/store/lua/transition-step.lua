--[[
  Moves steps to new statuses, each with its details and event, atomically: one step, or the
  several steps a worker finished in the same tick (one call instead of one each). A step already
  in a final status never changes again: a late worker (one that lost its lock) cannot overwrite
  what the run recorded. The first step that moves marks the run started; a step reaching a final
  status queues each dependent whose needs are now all final. Entries apply in order, so a later
  entry sees what an earlier one wrote.

  KEYS[1] metrics counters hash (src/store/stats.ts)
  KEYS[2n], KEYS[2n+1] run hash and run event stream of entry n (n = 1, 2, …)

  ARGV, for each entry: the number of its values (10), then its values (src/store/script-batch.ts):
  k=1  step id
  k=2  new status
  k=3  details JSON (stored as s:<id>), or '' to keep the current details
  k=4  event JSON, or '' for none
  k=5  event type
  k=6  now (ISO)
  k=7  run id
  k=8  dependents: ';'-separated entries 'dependent=need1,need2,…'
  k=9  the attempt the writer ran, or '' when the write ends no attempt (a skip, a cancel before
       start, a reconciled failure): a writer whose attempt is no longer the step's latest (it
       lost its lock and another worker started a new attempt) changes nothing
  k=10 metrics counters to add when applied: ';'-separated 'field=n', or ''

  Returns one integer per entry: 1 applied, 0 the step was already final or the attempt is
  stale (nothing written), -1 the run record does not exist.
]]
local final = { succeeded = true, failed = true, skipped = true, cancelled = true }
local counters = {}

local function move(run, stream, a)
  local stepId, status, at, runId = ARGV[a + 1], ARGV[a + 2], ARGV[a + 6], ARGV[a + 7]
  -- One read of the step's own fields; every run record has a status.
  local own = redis.call('HMGET', run, 'status', 'st:' .. stepId, 'a:' .. stepId)
  if not own[1] then return -1 end
  local current = own[2]
  if current and final[current] then return 0 end
  if ARGV[a + 9] ~= '' and (own[3] or '0') ~= ARGV[a + 9] then return 0 end

  if own[1] == 'queued' then
    redis.call('HSET', run, 'status', 'running', 'startedAt', at)
    redis.call('XADD', stream, '*', 'type', 'run.started', 'data',
      cjson.encode({ runId = runId, type = 'run.started', at = at }))
  end

  if ARGV[a + 3] ~= '' then
    redis.call('HSET', run, 'st:' .. stepId, status, 's:' .. stepId, ARGV[a + 3])
  else
    redis.call('HSET', run, 'st:' .. stepId, status)
  end
  if ARGV[a + 4] ~= '' then redis.call('XADD', stream, '*', 'type', ARGV[a + 5], 'data', ARGV[a + 4]) end

  if final[status] then
    for entry in string.gmatch(ARGV[a + 8], '[^;]+') do
      local dependent, needs = string.match(entry, '^([^=]+)=(.*)$')
      if redis.call('HGET', run, 'st:' .. dependent) == 'pending' then
        local ready = true
        for need in string.gmatch(needs, '[^,]+') do
          if not final[redis.call('HGET', run, 'st:' .. need) or ''] then ready = false break end
        end
        if ready then
          redis.call('HSET', run, 'st:' .. dependent, 'queued')
          redis.call('XADD', stream, '*', 'type', 'step.queued', 'data',
            cjson.encode({ runId = runId, type = 'step.queued', step = dependent, at = at }))
        end
      end
    end
  end
  for field, by in string.gmatch(ARGV[a + 10], '([^;=]+)=(%d+)') do
    counters[field] = (counters[field] or 0) + tonumber(by)
  end
  return 1
end

local results = {}
local a, n = 1, 1
while a <= #ARGV do
  results[n] = move(KEYS[2 * n], KEYS[2 * n + 1], a)
  a, n = a + 1 + tonumber(ARGV[a]), n + 1
end
-- One HINCRBY per counter for the whole call, however many entries added to it.
for field, by in pairs(counters) do redis.call('HINCRBY', KEYS[1], field, by) end
return results
