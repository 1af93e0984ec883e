--[[
  Writes the summary of a version stored before summaries were (built from the version by the
  reader that found none), only while that version exists: after a DELETE it would recreate the
  workflow's hash holding nothing but the summary, an orphan no listing shows.

  KEYS[1] workflow hash        {p}:rec:wf:<name>

  ARGV[1] version number
  ARGV[2] summary JSON

  Returns 1 when written, 0 when the version is gone or already has a summary.
]]
if redis.call('HEXISTS', KEYS[1], 'v:' .. ARGV[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 's:' .. ARGV[1], ARGV[2])
