--[[
  Extends or releases a lock taken with `SET key token NX PX ttl`, only while it is still ours.

  KEYS[1] lock key

  ARGV[1] token
  ARGV[2] 'extend' | 'release'
  ARGV[3] new TTL in ms (extend)

  Returns 1 when done, 0 when the lock is not ours (expired, or taken by another process).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'release' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
