/*
 * Feeds the realtime view from ng:stream, the event stream history-svc appends to in the same Lua script that
 * persists a notification or marks it read.
 *
 * On the first connection it reads the last window of events (XRANGE), then follows the stream (XREAD BLOCK) from
 * the last id it applied; after a lost connection it resumes from that id, so no event is missed or applied twice
 * while the stream still holds it. Every notifier replica reads the same stream, so every replica holds the same
 * view. Loop thread only.
 */
#ifndef NOTIGATE_NOTIFIER_STREAM_H
#define NOTIGATE_NOTIFIER_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include "realtime.h"
#include "redis_client.h"
#include "watch.h"

typedef struct st_stream_reader_t stream_reader_t;

/* Feeds rt (the realtime view) and w (the live feed for gateways). block_ms: how long one XREAD waits for new events. */
stream_reader_t *stream_reader_create(h2o_loop_t *loop, realtime_t *rt, watch_t *w, int64_t window_ms, uint32_t block_ms);
void stream_reader_destroy(stream_reader_t *reader);

/* Pass as the redis client's connect callback (data: the reader): starts or resumes reading. */
void stream_reader_on_connect(redis_client_t *rc, void *data);

/* True once the window has been loaded and the reader is following the stream over a live connection. */
bool stream_reader_is_live(stream_reader_t *reader);

/* True once the window has been loaded, even if the connection was lost since (the view is then as stale as the
 * outage is long, and catches up on reconnection). Before that the view is empty, not "nothing unread". */
bool stream_reader_is_loaded(stream_reader_t *reader);

/* Events applied since start. */
uint64_t stream_reader_applied(stream_reader_t *reader);

#endif
