--[[
  Marks a run as cancel-requested (workers stop its running steps and skip the rest).

  KEYS[1] run hash

  Returns 1 when marked, 0 when it was already marked, -1 when the run does not exist,
  -2 when the run has already finished.
]]
local final = { succeeded = true, failed = true, cancelled = true }
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if final[redis.call('HGET', KEYS[1], 'status') or ''] then return -2 end
return redis.call('HSETNX', KEYS[1], 'cancel', '1')
