--[[
  Takes one request from a client's token bucket, as GCRA does: the key holds the bucket's
  "theoretical arrival time" (TAT, in ms), so a bucket is one string whatever its size. A full
  bucket allows `limit` requests at once, and refills at `limit` per `window`.

  KEYS[1] the client's bucket

  ARGV[1] limit: requests per window (> 0)
  ARGV[2] window in ms (> 0)
  ARGV[3] now in ms, or '' for Redis's own clock (what several API processes must share)

  Returns { allowed, remaining, retryAfterMs }:
    allowed       1 when the request may go on (the bucket is charged), 0 when it is refused
                  (nothing is charged, so a client that keeps knocking is not locked out longer)
    remaining     requests still allowed now
    retryAfterMs  when refused, ms until one request is allowed again; 0 otherwise
]]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local nextTat = tat + interval
local allowAt = nextTat - window
if now < allowAt then
  return { 0, 0, math.ceil(allowAt - now) }
end
-- At least 1 ms: with a huge limit the interval is below a double's resolution at epoch
-- milliseconds, so nextTat can equal now (and PX 0 is an error).
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.max(1, math.ceil(nextTat - now)))
return { 1, math.floor((window - (nextTat - now)) / interval), 0 }
