/*
 * The one Lua definition of "publish a notification" in Redis, shared by every script that publishes one
 * (history-svc's publish, the orders worker's order): a string literal to concatenate in front of a script.
 *
 *   publish(k_seq, k_idem, k_user, k_unread, k_stream, user, message, kind, retention_ms, idem_ttl_s) -> id, ts, replayed
 *
 * Keys: ng:seq, ng:idem:<request id>, ng:u:<user>, ng:u:<user>:unread, ng:stream (see history-svc/store.h for the
 * layout). A second call with the same k_idem within idem_ttl_s returns the first id and ts and changes nothing.
 */
#ifndef NOTIGATE_NOTIFY_LUA_H
#define NOTIGATE_NOTIFY_LUA_H

/* How long Redis keeps a request's answer under k_idem (idem_ttl_s): a day when the request id came from the client's
 * Idempotency-Key; 10 minutes when it is the gateway's own, which only the gateway's resends (seconds apart) repeat. */
#define NOTIFY_ANSWER_TTL_S(keyed) ((keyed) ? 86400 : 600)

#define NOTIFY_PUBLISH_LUA                                                                                                     \
    "local function publish(k_seq, k_idem, k_user, k_unread, k_stream, user, message, kind, retention_ms, idem_ttl_s)\n"      \
    "  local prev = redis.call('GET', k_idem)\n"                                                                               \
    "  if prev then\n"                                                                                                         \
    "    local sep = string.find(prev, ':', 1, true)\n"                                                                        \
    "    return tonumber(string.sub(prev, 1, sep - 1)), tonumber(string.sub(prev, sep + 1)), 1\n"                              \
    "  end\n"                                                                                                                  \
    "  local id = redis.call('INCR', k_seq)\n"                                                                                 \
    "  local t = redis.call('TIME')\n"                                                                                         \
    "  local ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                                                 \
    "  local sid, sts = string.format('%d', id), string.format('%d', ts)\n"                                                    \
    "  redis.call('ZADD', k_user, sid, sid .. '\\t' .. sts .. '\\t' .. kind .. '\\t' .. message)\n"                          \
    "  redis.call('ZADD', k_unread, sid, sid)\n"                                                                               \
    "  redis.call('XADD', k_stream, 'MINID', '~', string.format('%d', ts - tonumber(retention_ms)), '*',\n"                   \
    "             't', 'n', 'id', sid, 'u', user, 'm', message, 'k', kind, 'ts', sts)\n"                                       \
    "  redis.call('SET', k_idem, sid .. ':' .. sts, 'EX', idem_ttl_s)\n"                                                       \
    "  return id, ts, 0\n"                                                                                                     \
    "end\n"

#endif
