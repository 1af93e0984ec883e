--[[
  Registers a workflow definition; an identical body to the latest version returns that version.
  Version numbers come from a counter of their own that DELETE leaves in place, so a number once
  given never names another definition (old runs record it). Each version's summary (`s:<n>`:
  name, version, createdAt, description, `on`, step count) is written with it, for the readers
  that need no more than that (the listing, trigger matching).

  KEYS[1] workflow hash        {p}:rec:wf:<name>
  KEYS[2] workflow names (set) {p}:rec:workflows
  KEYS[3] version counter      {p}:rec:wfseq:<name>

  ARGV[1] content hash of the definition
  ARGV[2] stored definition JSON (kept opaque: cjson would turn empty arrays into objects)
  ARGV[3] name
  ARGV[4] summary JSON without its version: an object whose first key follows `{` (kept opaque too)

  Returns { version, created (1|0) }.
]]
local latest = redis.call('HGET', KEYS[1], 'latest')
if latest and redis.call('HGET', KEYS[1], 'hash:' .. latest) == ARGV[1] then
  return { tonumber(latest), 0 }
end
-- Records written before the counter had its own key kept it in the hash's `seq` field.
local legacy = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if legacy > tonumber(redis.call('GET', KEYS[3]) or '0') then redis.call('SET', KEYS[3], legacy) end
local version = redis.call('INCR', KEYS[3])
-- The number is known only here: spliced in as the summary's first key.
local summary = '{"version":' .. version .. ',' .. string.sub(ARGV[4], 2)
redis.call('HSET', KEYS[1], 'v:' .. version, ARGV[2], 'hash:' .. version, ARGV[1], 's:' .. version, summary,
  'latest', version)
redis.call('SADD', KEYS[2], ARGV[3])
return { version, 1 }
