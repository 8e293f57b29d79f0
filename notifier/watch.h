/*
 * The live feed for gateways: the notifications published lately, in stream order, in a bounded ring, and the WATCH
 * requests of gateways waiting for the next ones (long polling over nng).
 *
 * A cursor is a Redis stream id ("ms-seq") of ng:stream: every notifier replica follows the same stream, so a cursor
 * from one replica is good on another. A cursor older than what the ring still holds means notifications were lost
 * to that gateway: the reply says so (gap) and the gateway resyncs its sessions from history-svc.
 * Loop thread only.
 */
#ifndef NOTIGATE_NOTIFIER_WATCH_H
#define NOTIGATE_NOTIFIER_WATCH_H

#include <stddef.h>
#include "proto.h"
#include "rpc_server.h"

typedef struct st_watch_t watch_t;

/* max_events, max_bytes: bounds of the ring (the oldest notifications are dropped first). */
watch_t *watch_create(h2o_loop_t *loop, size_t max_events, size_t max_bytes);
void watch_destroy(watch_t *w);

/* Where the stream is known from: a cursor below it has missed notifications. Called once the reader knows where
 * it starts (the beginning of its window). */
void watch_set_origin(watch_t *w, const char *stream_id);

/* Adds a notification seen at stream_id (stream order, ids ascending). */
void watch_append(watch_t *w, const char *stream_id, const proto_notification_t *n);

/* Notes that the stream reached stream_id (any event), so that an idle cursor can move on. */
void watch_advance(watch_t *w, const char *stream_id);

/* Answers the parked WATCH requests that have something new. Call after a batch of watch_append. */
void watch_flush(watch_t *w);

/* Serves a WATCH request: answers now if there is something after its cursor (or the cursor is empty), else holds it
 * for up to its wait. */
void watch_serve(watch_t *w, rpc_call_t *call, const proto_request_t *req);

/* Answers every held request now (with nothing new), e.g. when the notifier stops. */
void watch_release_all(watch_t *w);

/* Parses a stream id "ms-seq"; returns 0 or -1. */
int watch_parse_id(const char *s, size_t len, uint64_t *ms, uint64_t *seq);

#endif
