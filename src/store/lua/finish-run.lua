--[[
  Records a run's final status and its terminal event, once.

  KEYS[1] run hash
  KEYS[2] run event stream
  KEYS[3] metrics counters hash (src/store/stats.ts)

  ARGV[1] final status (succeeded | failed | cancelled)
  ARGV[2] now (ISO)
  ARGV[3] terminal event JSON

  Returns 1 when applied, 0 when the run was already final, -1 when it does not exist.
]]
local final = { succeeded = true, failed = true, cancelled = true }
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if final[redis.call('HGET', KEYS[1], 'status') or ''] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finishedAt', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'type', 'run.' .. ARGV[1], 'data', ARGV[3])
redis.call('HINCRBY', KEYS[3], 'runs:' .. ARGV[1], 1)
return 1
