--[[
  Creates a run's record once: meta, status, every step's initial state, the run.queued and
  step.queued events, and the listing indexes. Safe to call again (the API calls it right after
  adding the flow; a worker calls it if it finds the record missing).

  KEYS[1] run hash            {p}:rec:run:<id>
  KEYS[2] run event stream    {p}:rec:run:<id>:events
  KEYS[3] runs index (zset)   {p}:rec:runs
  KEYS[4] workflow runs index {p}:rec:runs:wf:<name>
  KEYS[5] active runs (zset)  {p}:rec:runs:active (finish-run.lua removes the run)
  KEYS[6] metrics counters    {p}:rec:stats (src/store/stats.ts)

  ARGV[1] meta JSON
  ARGV[2] createdAt (ms)
  ARGV[3] createdAt (ISO)
  ARGV[4] run id
  ARGV[5] comma-separated ids of steps without needs (queued)
  ARGV[6] comma-separated ids of the other steps (pending)
  ARGV[7] workflow name, ARGV[8] retention in seconds or '', ARGV[9] idempotency key or '': kept
          beside the meta as `workflow`, `retention` and `idempotencyKey`, so that finishing or
          deleting the run need not decode the meta (the whole definition)

  Returns 1 when created, 0 when it already existed.
]]
if redis.call('HSETNX', KEYS[1], 'meta', ARGV[1]) == 0 then return 0 end
local runId, at = ARGV[4], ARGV[3]
redis.call('HSET', KEYS[1], 'status', 'queued', 'createdAt', at, 'workflow', ARGV[7])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'retention', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'idempotencyKey', ARGV[9]) end
redis.call('XADD', KEYS[2], '*', 'type', 'run.queued', 'data',
  cjson.encode({ runId = runId, type = 'run.queued', at = at }))
for id in string.gmatch(ARGV[5], '[^,]+') do
  redis.call('HSET', KEYS[1], 'st:' .. id, 'queued')
  redis.call('XADD', KEYS[2], '*', 'type', 'step.queued', 'data',
    cjson.encode({ runId = runId, type = 'step.queued', step = id, at = at }))
end
for id in string.gmatch(ARGV[6], '[^,]+') do
  redis.call('HSET', KEYS[1], 'st:' .. id, 'pending')
end
redis.call('ZADD', KEYS[3], ARGV[2], runId)
redis.call('ZADD', KEYS[4], ARGV[2], runId)
redis.call('ZADD', KEYS[5], ARGV[2], runId)
redis.call('HINCRBY', KEYS[6], 'runs:created', 1)
return 1
