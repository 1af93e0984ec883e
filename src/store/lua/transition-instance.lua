--[[
  Moves one host instance of a fan-out step to a new status, with its details and event. An
  instance in a final status never changes again.

  KEYS[1] run hash
  KEYS[2] run event stream

  ARGV[1] field name of the instance ('i:<step>@<host>')
  ARGV[2] new status
  ARGV[3] instance JSON (status included)
  ARGV[4] event JSON, or '' for none
  ARGV[5] event type

  Returns 1 when applied, 0 when the instance was already final, -1 when the run does not exist.
]]
local final = { succeeded = true, failed = true, skipped = true, cancelled = true }
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and final[cjson.decode(current)['status']] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('XADD', KEYS[2], '*', 'type', ARGV[5], 'data', ARGV[4]) end
return 1
