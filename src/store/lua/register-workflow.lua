--[[
  Registers a workflow definition; an identical body to the latest version returns that version.

  KEYS[1] workflow hash {p}:rec:wf:<name>
  KEYS[2] workflow names (set)

  ARGV[1] content hash of the definition
  ARGV[2] stored definition JSON (kept opaque: cjson would turn empty arrays into objects)
  ARGV[3] name

  Returns { version, created (1|0) }.
]]
local latest = redis.call('HGET', KEYS[1], 'latest')
if latest and redis.call('HGET', KEYS[1], 'hash:' .. latest) == ARGV[1] then
  return { tonumber(latest), 0 }
end
local version = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'v:' .. version, ARGV[2], 'hash:' .. version, ARGV[1], 'latest', version)
redis.call('SADD', KEYS[2], ARGV[3])
return { version, 1 }
