-- One page of a user's history, newest first: the Lua script history-svc runs (PAGE_LUA with PAGE_REPLY_LUA in
-- history-svc/store.c), so that the peers read the same data in one Redis round trip as notigate does.
-- KEYS: user set, unread set. ARGV: user (not used), before (0: from the newest), limit.
-- Returns {unread count, more, n, the n unread ids among the records, record, ...}, each record "id\tts\tkind\tmessage"
-- (history-svc/store.h: the layout; members of the first layout are read from their ng:n:<id> hash).
local function page_reply(k_unread, recs, more)
  local out = {redis.call('ZCARD', k_unread), more, 0}
  local n = 0
  for i, rec in ipairs(recs) do
    if not string.find(rec, '\t', 1, true) then
      local h = redis.call('HMGET', 'ng:n:' .. rec, 'ts', 'k', 'm')
      if h[1] and h[2] and h[3] then recs[i] = rec .. '\t' .. h[1] .. '\t' .. h[2] .. '\t' .. h[3] else recs[i] = false end
    end
  end
  if #recs > 0 then
    local a = tonumber(string.match(recs[1] or '0', '^%d+')) or 0
    local b = tonumber(string.match(recs[#recs] or '0', '^%d+')) or 0
    if a > b then a, b = b, a end
    local unread = redis.call('ZRANGEBYSCORE', k_unread, string.format('%d', a), string.format('%d', b))
    if a == 0 then unread = redis.call('ZRANGEBYSCORE', k_unread, '-inf', string.format('%d', b)) end
    n = #unread
    for _, id in ipairs(unread) do out[#out + 1] = id end
  end
  out[3] = n
  for _, rec in ipairs(recs) do if rec then out[#out + 1] = rec end end
  return out
end
local max = '+inf'
if ARGV[2] ~= '0' then max = '(' .. ARGV[2] end
local limit = tonumber(ARGV[3])
local recs = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'LIMIT', 0, limit + 1)
local more = 0
if #recs > limit then more = 1; recs[#recs] = nil end
return page_reply(KEYS[2], recs, more)
