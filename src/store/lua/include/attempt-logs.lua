--[[
  Included by finish-run.lua and delete-run.lua (scripts.ts inlines it where a script says
  `-- @include attempt-logs.lua`): calls `fn(key)` with the log key of every attempt of every
  step (`<run>:log:<step>#<n>`) and host instance (`<run>:log:<step>@<host>#<n>`) of the run hash
  `run`, n = 1.. its attempt counter (`a:<step>`, `ia:<step>@<host>`, counted without gaps by
  start-step.lua and transition-instance.lua). HSCAN matches the counters in Redis's own loop
  instead of copying the whole hash (the meta included) into Lua.
]]
local function forEachAttemptLog(run, fn)
  for _, counter in ipairs({ 'a:', 'ia:' }) do
    local cursor = '0'
    repeat
      local page = redis.call('HSCAN', run, cursor, 'MATCH', counter .. '*', 'COUNT', 1000)
      cursor = page[1]
      local found = page[2]
      for i = 1, #found, 2 do
        local step = string.sub(found[i], #counter + 1)
        for n = 1, tonumber(found[i + 1]) or 0 do fn(run .. ':log:' .. step .. '#' .. n) end
      end
    until cursor == '0'
  end
end
