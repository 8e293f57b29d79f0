/*
 * The notification history in Redis: append, page through, mark read. Each operation is atomic and one round trip:
 * a page is three plain commands in one MULTI/EXEC (a Lua script cost Redis three times the CPU), the writes are Lua
 * scripts. The results come back as proto replies, ready to send.
 *
 * Keys (user ids are [A-Za-z0-9_.-], so they are safe inside key names):
 *   ng:seq                 counter behind notification ids (INCR: unique across replicas, in publish order)
 *   ng:u:<user>            sorted set of the user's notifications, score = id, member = the record
 *                          "id\tts\tkind\tmessage" (id and ts decimal, ts in ms since the epoch; kind has no tab):
 *                          a page is one ZREVRANGEBYSCORE, newest first
 *   ng:u:<user>:unread     sorted set of the user's unread ids (score = member = id): read = not in it
 *   ng:n:<id>              the first layout (before 0.2): the user set's member was the bare id and the fields were in
 *                          this hash {u, m, k, ts, r}. Such members are still read (a page holding one is read again by the
 *                          Lua script PAGE_REPLY_LUA, which fetches the hashes), never written.
 *   ng:stream              stream of events for the notifiers: t=n (new), t=r (read), t=ra (read all up to an id),
 *                          trimmed to the last `stream_retention_ms` (XADD MINID)
 *   ng:idem:<rid>          "id:ts" of an applied publish, for 24 h: a resent request returns the first answer
 *
 * All functions run on the loop thread that owns the redis client.
 */
#ifndef NOTIGATE_HISTORY_STORE_H
#define NOTIGATE_HISTORY_STORE_H

#include <stdint.h>
#include "proto.h"
#include "redis_client.h"

typedef struct st_history_store_t history_store_t;

/* Receives the outcome of one operation as a reply to send (status, and the fields of the op). rep and the strings
 * it points to are valid during the call only. */
typedef void (*history_store_cb)(proto_reply_t *rep, void *data);

/* The store uses rc for every command; stream_retention_ms bounds how long events stay in ng:stream. */
history_store_t *history_store_create(redis_client_t *rc, int64_t stream_retention_ms);
void history_store_destroy(history_store_t *store);

/* Runs the operation of req (PUBLISH, PAGE, SINCE, MARK_READ, MARK_ALL_READ or HEALTH); cb runs exactly once, possibly
 * before this returns. req's strings need to live only until this returns. */
void history_store_execute(history_store_t *store, const proto_request_t *req, history_store_cb cb, void *data);

#endif
