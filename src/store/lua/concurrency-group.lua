--[[
  A concurrency group's state: the run that holds it (at most one runs at a time) and the newest
  run waiting for it (GitHub keeps only the newest pending run). A run that loses its place as
  the pending one is finished here, `cancelled` with a reason, in the same call, so no process
  crash can leave it queued forever. Run records are found from ARGV[4] (the run-key prefix), as
  BullMQ's own scripts build job keys; every key shares the `{prefix}` hash tag.

  KEYS[1] group hash {p}:rec:group:<group>   fields: holder, since (ms), pending

  ARGV[1] operation: acquire | release | withdraw
  ARGV[2] run id
  ARGV[3] now (ms)
  ARGV[4] run key prefix {p}:rec:run:
  ARGV[5] now (ISO)
  ARGV[6] acquire: '1' to cancel the holder (cancelInProgress), else '0'
  ARGV[7] acquire: the group's name, for reasons; withdraw: the reason

  Returns
    acquire:  { 'start', superseded }                              the run holds the group now
              { 'wait', superseded, cancelled, holder, since }     the run is the pending one
              (superseded: the pending run it replaced, cancelled here; cancelled: the holder
              marked for cancellation; '' when none)
    release:  { 1, next }     the run held the group; next is the run that holds it now ('' = free)
              { 0, holder }   the run did not hold it (a repeated release); holder is who does
    withdraw: 1 when the run was the pending one (it is now cancelled), else 0
]]
local group, op, runId, nowMs = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local runPrefix, nowIso = ARGV[4], ARGV[5]
local final = { succeeded = true, failed = true, cancelled = true }

local function isFinal(id)
  return final[redis.call('HGET', runPrefix .. id, 'status') or ''] == true
end

-- Ends a run that never started: its record, its steps and its terminal event.
local function cancelPending(id, reason)
  local key = runPrefix .. id
  if redis.call('EXISTS', key) == 0 or isFinal(id) then return end
  redis.call('HSET', key, 'status', 'cancelled', 'finishedAt', nowIso, 'cancel', '1', 'cancelReason', reason)
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local f, v = fields[i], fields[i + 1]
    if string.sub(f, 1, 3) == 'st:' and (v == 'queued' or v == 'pending') then
      redis.call('HSET', key, f, 'cancelled')
    end
  end
  redis.call('XADD', key .. ':events', '*', 'type', 'run.cancelled', 'data',
    cjson.encode({ runId = id, type = 'run.cancelled', at = nowIso, reason = reason }))
end

if op == 'acquire' then
  local name = ARGV[7]
  local holder = redis.call('HGET', group, 'holder')
  local pending = redis.call('HGET', group, 'pending')
  local since = redis.call('HGET', group, 'since') or '0'
  -- The same run again (a replayed launch) changes nothing.
  if holder == runId then return { 'start', '' } end
  local superseded = ''
  local function supersede()
    if pending and pending ~= runId then
      cancelPending(pending, 'superseded by run ' .. runId .. ' in concurrency group "' .. name .. '"')
      superseded = pending
    end
  end
  -- Free, or held by a run that has ended (its finaliser died before releasing; its retry
  -- will find the group handed on).
  if not holder or isFinal(holder) then
    supersede()
    redis.call('HSET', group, 'holder', runId, 'since', nowMs)
    redis.call('HDEL', group, 'pending')
    return { 'start', superseded }
  end
  if pending == runId then return { 'wait', '', '', holder, since } end
  supersede()
  redis.call('HSET', group, 'pending', runId)
  local cancelled = ''
  local key = runPrefix .. holder
  if ARGV[6] == '1' and redis.call('EXISTS', key) == 1 then
    redis.call('HSETNX', key, 'cancel', '1')
    redis.call('HSETNX', key, 'cancelReason',
      'cancelled by run ' .. runId .. ' in concurrency group "' .. name .. '" (cancelInProgress)')
    cancelled = holder
  end
  return { 'wait', superseded, cancelled, holder, since }
end

if op == 'release' then
  local holder = redis.call('HGET', group, 'holder')
  if holder ~= runId then return { 0, holder or '' } end
  local pending = redis.call('HGET', group, 'pending')
  if pending then
    redis.call('HSET', group, 'holder', pending, 'since', nowMs)
    redis.call('HDEL', group, 'pending')
    return { 1, pending }
  end
  redis.call('DEL', group)
  return { 1, '' }
end

if op == 'withdraw' then
  if redis.call('HGET', group, 'pending') ~= runId then return 0 end
  redis.call('HDEL', group, 'pending')
  cancelPending(runId, ARGV[7])
  return 1
end

return redis.error_reply('unknown operation ' .. op)
