-- One page of a user's history, newest first: the Lua script history-svc runs (PAGE_LUA in history-svc/store.c), so
-- that the peers read the same data in one Redis round trip as notigate does.
-- KEYS: user set, unread set. ARGV: user (not used), before (0: from the newest), limit.
-- Returns {unread count, more, id, message, kind, ts, read, id, ...}.
local max = '+inf'
if ARGV[2] ~= '0' then max = '(' .. ARGV[2] end
local limit = tonumber(ARGV[3])
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'LIMIT', 0, limit + 1)
local more = 0
if #ids > limit then more = 1; ids[#ids] = nil end
local out = {redis.call('ZCARD', KEYS[2]), more}
for _, id in ipairs(ids) do
  local h = redis.call('HMGET', 'ng:n:' .. id, 'm', 'k', 'ts', 'r')
  if h[1] and h[2] and h[3] and h[4] then
    out[#out + 1] = id; out[#out + 1] = h[1]; out[#out + 1] = h[2]; out[#out + 1] = h[3]; out[#out + 1] = h[4]
  end
end
return out
