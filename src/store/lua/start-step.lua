--[[
  Begins one attempt of a step (or of each of several steps a worker picked up in the same tick,
  in one call), in one round trip: reads what the step needs to decide, notices a
  previous attempt that never ended (its worker died or lost its lock), and, when allowed, marks
  the step running with a new attempt number.

  A step whose record says `running` when its job is processed again was interrupted: that
  attempt is over. It is counted, said in a `step.retrying` event, and the step goes back to
  `queued`; past the allowed number of interruptions the caller fails it instead (outcome 4).
  Attempt numbers come from the record (`a:<step>`), so retries, crash re-runs and hand-backs at
  shutdown all count, and a late worker's writes can be fenced by them (transition-step.lua).

  KEYS[1] metrics counters hash (src/store/stats.ts)
  KEYS[2n], KEYS[2n+1] run hash and run event stream of entry n (n = 1, 2, …)

  ARGV, for each entry: the number of its values, then its values (src/store/script-batch.ts),
  which are, counting from 1:
  ARGV[1] step id
  ARGV[2] run id
  ARGV[3] now (ISO)
  ARGV[4] mode: 'auto' (start when every need succeeded: the default `success()` condition),
          'read' (never start: the caller evaluates the condition), 'force' (start: the caller
          decided)
  ARGV[5] executor name (for the running details and event)
  ARGV[6] '1' when the step has continueOnError
  ARGV[7] interruptions allowed before the step fails
  ARGV[8] number of direct needs (the first ids below)
  ARGV[9] id of the worker starting it ('' when unknown): in the running details and event
  ARGV[10] '1' when the caller reads the details of the steps below (their outputs); '0' when it
          needs only their statuses, and the details of a failed one (continueOnError): a
          step's details can be large, and most steps never read their needs' outputs
  ARGV[11…] ids of the steps whose state is read (needs first)

  Returns one reply per entry, each { outcome, current status, cancel flag, attempt,
  interruptions, st1, s1, st2, s2, … } (s: the details JSON, or '' when not asked for) where
  outcome is -1 no run record, 0 the step is already final, 1 started here (attempt is the
  new attempt's number), 2 the caller must decide, 3 a direct need is not final yet (its status
  write has not landed, or its job ended without one: the caller looks again or reconciles it),
  4 interrupted more often than allowed (the caller records the failure).
]]
local final = { succeeded = true, failed = true, skipped = true, cancelled = true }
local started = {}

local function start(run, stream, a, count)
  local stepId, runId, at, mode = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  -- One read of the step's own fields; every run record has a status.
  local own = redis.call('HMGET', run, 'status', 'st:' .. stepId, 'cancel', 'a:' .. stepId, 'x:' .. stepId)
  if not own[1] then return { -1 } end
  local runStatus = own[1]
  local current = own[2] or ''
  local cancel = own[3] or ''
  local attempt = tonumber(own[4] or '0')
  local interruptions = tonumber(own[5] or '0')

  local reply = { 2, current, cancel, attempt, interruptions }
  local needs = tonumber(ARGV[a + 8])
  local ok = cancel ~= '1'
  local early = false
  local detailed = ARGV[a + 10] == '1'
  for i = 11, count do
    local id = ARGV[a + i]
    local st = redis.call('HGET', run, 'st:' .. id) or ''
    local s = ''
    if detailed or st == 'failed' then s = redis.call('HGET', run, 's:' .. id) or '' end
    reply[#reply + 1] = st
    reply[#reply + 1] = s
    if i - 10 <= needs and not final[st] then early = true end
    if i - 10 <= needs and st ~= 'succeeded' then
      if not (st == 'failed' and s ~= '' and cjson.decode(s)['continueOnError'] == true) then ok = false end
    end
  end

  if final[current] then
    reply[1] = 0
    return reply
  end

  if current == 'running' then
    interruptions = redis.call('HINCRBY', run, 'x:' .. stepId, 1)
    reply[5] = interruptions
    if interruptions > tonumber(ARGV[a + 7]) then
      reply[1] = 4
      return reply
    end
    redis.call('HSET', run, 'st:' .. stepId, 'queued')
    current = 'queued'
    reply[2] = current
    redis.call('XADD', stream, '*', 'type', 'step.retrying', 'data', cjson.encode({
      runId = runId, type = 'step.retrying', at = at, step = stepId, attempt = attempt,
      nextAttempt = attempt + 1, reason = 'interrupted',
      error = { code = 'worker_lost',
        message = 'the worker running attempt ' .. attempt .. ' stopped before the attempt ended' } }))
  end

  if early then
    reply[1] = 3
    return reply
  end
  if mode == 'read' or (mode == 'auto' and not ok) then return reply end

  attempt = redis.call('HINCRBY', run, 'a:' .. stepId, 1)
  reply[4] = attempt
  if runStatus == 'queued' then
    redis.call('HSET', run, 'status', 'running', 'startedAt', at)
    redis.call('XADD', stream, '*', 'type', 'run.started', 'data',
      cjson.encode({ runId = runId, type = 'run.started', at = at }))
  end
  local details = { executor = ARGV[a + 5], attempts = attempt, startedAt = at }
  if ARGV[a + 6] == '1' then details.continueOnError = true end
  local worker = ARGV[a + 9] ~= '' and ARGV[a + 9] or nil
  details.worker = worker
  redis.call('HSET', run, 'st:' .. stepId, 'running', 's:' .. stepId, cjson.encode(details))
  redis.call('XADD', stream, '*', 'type', 'step.started', 'data', cjson.encode({
    runId = runId, type = 'step.started', at = at, step = stepId, attempt = attempt, executor = ARGV[a + 5],
    worker = worker }))
  local counter = 'started:' .. ARGV[a + 5]
  started[counter] = (started[counter] or 0) + 1
  reply[1] = 1
  return reply
end

local replies = {}
local a, n = 1, 1
while a <= #ARGV do
  local count = tonumber(ARGV[a])
  replies[n] = start(KEYS[2 * n], KEYS[2 * n + 1], a, count)
  a, n = a + 1 + count, n + 1
end
-- One HINCRBY per counter for the whole call, however many steps it started.
for field, by in pairs(started) do redis.call('HINCRBY', KEYS[1], field, by) end
return replies
