--[[
  Records a run's final status and its terminal event, once. When the run has a retention
  (`retentionSeconds` in its meta), every key of the run gets that TTL here and the run enters
  the expiry index, from which the retention pass trims the listing indexes and BullMQ jobs.

  KEYS[1] run hash            {p}:rec:run:<id>
  KEYS[2] run event stream    {p}:rec:run:<id>:events
  KEYS[3] expiry index (zset) {p}:rec:runs:expiry
  KEYS[4] active runs (zset)  {p}:rec:runs:active — the run leaves it
  KEYS[5] metrics counters    {p}:rec:stats (src/store/stats.ts)

  ARGV[1] final status (succeeded | failed | cancelled)
  ARGV[2] now (ISO)
  ARGV[3] terminal event JSON
  ARGV[4] now (ms)
  ARGV[5] records prefix      {p}:rec:
  ARGV[6] run id

  Fields read: `workflow`, `retention` and `idempotencyKey` (announce-run.lua), else the meta.
  Keys derived here (same hash tag, so the same Redis Cluster slot): the log of every attempt,
  `<run hash>:log:<step>#<n>` for n = 1..`a:<step>` and `<run hash>:log:<step>@<host>#<n>` for
  n = 1..`ia:<step>@<host>` (attempt numbers are counted without gaps by start-step.lua and
  transition-instance.lua), and the idempotency key `<prefix>idem:<workflow>:<key>`.

  Returns 1 when applied, 0 when the run was already final, -1 when it does not exist.
]]
-- @include attempt-logs.lua
local final = { succeeded = true, failed = true, cancelled = true }
local run = KEYS[1]
if redis.call('EXISTS', run) == 0 then return -1 end
redis.call('ZREM', KEYS[4], ARGV[6])
if final[redis.call('HGET', run, 'status') or ''] then return 0 end
redis.call('HSET', run, 'status', ARGV[1], 'finishedAt', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'type', 'run.' .. ARGV[1], 'data', ARGV[3])
redis.call('HINCRBY', KEYS[5], 'runs:' .. ARGV[1], 1)

-- The few facts needed here, kept beside the meta by announce-run.lua: decoding the meta (the
-- whole definition) would hold Redis for milliseconds per thousand steps. A run announced
-- before those fields existed has only its meta.
local fields = redis.call('HMGET', run, 'workflow', 'retention', 'idempotencyKey')
local workflow, retention, key = fields[1], fields[2], fields[3]
if not workflow then
  local meta = cjson.decode(redis.call('HGET', run, 'meta'))
  workflow, retention, key = meta['workflow']['name'], meta['retentionSeconds'], meta['idempotencyKey']
end
local ttl = tonumber(retention)
if not ttl or ttl <= 0 then return 1 end
redis.call('EXPIRE', run, ttl)
redis.call('EXPIRE', KEYS[2], ttl)
forEachAttemptLog(run, function(log) redis.call('EXPIRE', log, ttl) end)
if type(key) == 'string' and key ~= '' then
  -- The key lives 7 days of its own; never longer than the run it names (and only if it still
  -- names this run: after its 7 days the same key may name a newer one).
  local idem = ARGV[5] .. 'idem:' .. workflow .. ':' .. key
  local named = redis.call('GET', idem)
  if named and string.sub(named, 1, #ARGV[6] + 1) == ARGV[6] .. ' ' then
    local left = redis.call('TTL', idem)
    if left == -1 or left > ttl then redis.call('EXPIRE', idem, ttl) end
  end
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]) + ttl * 1000, ARGV[6] .. '/' .. workflow)
return 1
