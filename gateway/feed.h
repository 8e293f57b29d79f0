/*
 * The gateway's live notification feed. One loop thread (the first) long-polls the notifiers with WATCH (one request
 * in flight, held by a notifier until something is published) and hands each batch to every loop thread, whose
 * sessions push the notifications to their users. Because every notifier follows the same Redis stream, the cursor
 * is good on any replica; when the notifiers say notifications were lost to this gateway (or the feed starts), every
 * thread resyncs its sessions from history-svc, so a session never misses a notification.
 */
#ifndef NOTIGATE_FEED_H
#define NOTIGATE_FEED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include <h2o/multithread.h>
#include "json_out.h"
#include "refcount.h"

typedef struct st_gateway_thread_t gateway_thread_t;
typedef struct st_feed_t feed_t;

typedef struct st_feed_item_t {
    uint64_t id;
    const char *user;
    size_t user_len;
    const char *native, *sio; /* the notification as a frame of each protocol */
    size_t native_len, sio_len;
} feed_item_t;

/* One batch, shared read-only by every thread; freed when the last one releases it. */
typedef struct st_feed_batch_t {
    refcount_t refs;
    bool resync; /* sessions must read history: the feed lost notifications (or just started) */
    size_t n;
    feed_item_t items[];
} feed_batch_t;

/* What the feed posts to each thread's sessions.feed_receiver. */
typedef struct st_feed_delivery_t {
    h2o_multithread_message_t msg;
    feed_batch_t *batch;
} feed_delivery_t;

void feed_batch_retain(feed_batch_t *batch);
void feed_batch_release(feed_batch_t *batch);

/* Starts the feed on thread's loop (thread 0, once every thread is set up). */
feed_t *feed_start(gateway_thread_t *thread);

/* Stops it (its call is cancelled). Same thread. */
void feed_stop(feed_t *feed);

/* Builds the frames of one notification object (JSON) for both protocols into a batch item's strings: exposed for the
 * resume path, which sends history the same way. Writes into out (NUL-free JSON). */
void feed_write_frame(json_out_t *out, bool socketio, const char *notification_json, size_t len);

#endif
