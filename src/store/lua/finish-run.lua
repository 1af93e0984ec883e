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

  Keys derived here (same hash tag, so the same Redis Cluster slot): the log of every attempt,
  `<run hash>:log:<step>#<n>` for n = 1..`a:<step>` and `<run hash>:log:<step>@<host>#<n>` for
  n = 1..`ia:<step>@<host>` (attempt numbers are counted without gaps by start-step.lua and
  transition-instance.lua), and the idempotency key `<prefix>idem:<workflow>:<key>`.

  Returns 1 when applied, 0 when the run was already final, -1 when it does not exist.
]]
local final = { succeeded = true, failed = true, cancelled = true }
local run = KEYS[1]
if redis.call('EXISTS', run) == 0 then return -1 end
redis.call('ZREM', KEYS[4], ARGV[6])
if final[redis.call('HGET', run, 'status') or ''] then return 0 end
redis.call('HSET', run, 'status', ARGV[1], 'finishedAt', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'type', 'run.' .. ARGV[1], 'data', ARGV[3])
redis.call('HINCRBY', KEYS[5], 'runs:' .. ARGV[1], 1)

local meta = cjson.decode(redis.call('HGET', run, 'meta'))
local ttl = tonumber(meta['retentionSeconds'])
if not ttl or ttl <= 0 then return 1 end
redis.call('EXPIRE', run, ttl)
redis.call('EXPIRE', KEYS[2], ttl)
local fields = redis.call('HGETALL', run)
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  local step = nil
  if string.sub(field, 1, 2) == 'a:' then step = string.sub(field, 3)
  elseif string.sub(field, 1, 3) == 'ia:' then step = string.sub(field, 4) end
  if step then
    for n = 1, tonumber(value) or 0 do redis.call('EXPIRE', run .. ':log:' .. step .. '#' .. n, ttl) end
  end
end
local workflow = meta['workflow']['name']
local key = meta['idempotencyKey']
if type(key) == 'string' then
  -- The key lives 7 days of its own; never longer than the run it names (and only if it still
  -- names this run: after its 7 days the same key may name a newer one).
  local idem = ARGV[5] .. 'idem:' .. workflow .. ':' .. key
  local named = redis.call('GET', idem)
  if named and string.sub(named, 1, #meta['id'] + 1) == meta['id'] .. ' ' then
    local left = redis.call('TTL', idem)
    if left == -1 or left > ttl then redis.call('EXPIRE', idem, ttl) end
  end
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]) + ttl * 1000, meta['id'] .. '/' .. workflow)
return 1
