--[[
  A workflow's latest version number and its summary, read together so a registration in
  between cannot pair a number with another version's summary.

  KEYS[1] workflow hash        {p}:rec:wf:<name>

  Returns { latest or false, summary JSON or false (a version stored before summaries were) }.
]]
local latest = redis.call('HGET', KEYS[1], 'latest')
if not latest then return { false, false } end
return { latest, redis.call('HGET', KEYS[1], 's:' .. latest) }
