#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "feed.h"
#include "gateway.h"
#include "log.h"

#define WATCH_WAIT_MS 20000 /* how long a notifier may hold our WATCH */
#define WATCH_SLACK_MS 5000 /* on top of it, before we give up on the reply */
#define RETRY_MS 250        /* after a failed WATCH */

struct st_feed_t {
    gateway_thread_t *thread;
    upstream_call_t *call;
    char cursor[PROTO_CURSOR_MAX + 1]; /* empty until the first answer */
    bool synced;                       /* the cursor was obtained and sessions resynced since */
    h2o_timeout_t retry;
    h2o_timeout_entry_t retry_entry;
    json_out_t buf, one;
    uint64_t failures;
};

void feed_batch_retain(feed_batch_t *batch)
{
    refcount_retain(&batch->refs);
}

void feed_batch_release(feed_batch_t *batch)
{
    if (refcount_release(&batch->refs))
        free(batch);
}

void feed_write_frame(json_out_t *out, bool socketio, const char *notification_json, size_t len)
{
    if (socketio) {
        json_out_lit(out, "42[\"notification\",");
        json_out_raw(out, notification_json, len);
        json_out_lit(out, "]");
    } else {
        json_out_lit(out, "{\"type\":\"notification\",\"data\":");
        json_out_raw(out, notification_json, len);
        json_out_lit(out, "}");
    }
}

/* Builds a batch from a WATCH reply: the items, then one block with each item's frames and user id. */
static feed_batch_t *build_batch(feed_t *feed, const proto_reply_t *rep, bool resync)
{
    json_out_t *b = &feed->buf, *one = &feed->one;
    size_t n = rep != NULL ? rep->nitems : 0;
    size_t(*marks)[3] = n != 0 ? malloc(n * sizeof(*marks)) : NULL;
    if (n != 0 && marks == NULL)
        abort();

    json_out_reset(b);
    for (size_t i = 0; i < n; ++i) {
        const proto_notification_t *it = rep->items + i;
        json_out_reset(one);
        json_out_notification(one, it);
        marks[i][0] = b->len;
        feed_write_frame(b, false, one->buf, one->len);
        marks[i][1] = b->len;
        feed_write_frame(b, true, one->buf, one->len);
        marks[i][2] = b->len;
        json_out_raw(b, it->user_id.ptr, it->user_id.len);
    }

    feed_batch_t *batch = malloc(sizeof(*batch) + n * sizeof(feed_item_t) + b->len);
    if (batch == NULL)
        abort();
    char *text = (char *)(batch->items + n);
    if (b->len != 0)
        memcpy(text, b->buf, b->len);
    refcount_init(&batch->refs, 1);
    batch->resync = resync;
    batch->n = n;
    for (size_t i = 0; i < n; ++i)
        batch->items[i] = (feed_item_t){.id = rep->items[i].id,
                                        .native = text + marks[i][0],
                                        .native_len = marks[i][1] - marks[i][0],
                                        .sio = text + marks[i][1],
                                        .sio_len = marks[i][2] - marks[i][1],
                                        .user = text + marks[i][2],
                                        .user_len = rep->items[i].user_id.len};
    free(marks);
    return batch;
}

/* Posts batch to every loop thread (the caller's reference is handed over). */
static void broadcast(feed_t *feed, feed_batch_t *batch)
{
    gateway_t *gw = feed->thread->gw;
    for (unsigned i = 1; i < gw->nthreads; ++i)
        feed_batch_retain(batch);
    for (unsigned i = 0; i < gw->nthreads; ++i) {
        feed_delivery_t *d = malloc(sizeof(*d));
        if (d == NULL)
            abort();
        *d = (feed_delivery_t){.batch = batch};
        h2o_multithread_send_message(&gw->threads[i].sessions.feed_receiver, &d->msg);
    }
}

static void watch(feed_t *feed);

static void on_retry(h2o_timeout_entry_t *entry)
{
    watch(H2O_STRUCT_FROM_MEMBER(feed_t, retry_entry, entry));
}

static void on_watch(upstream_result_t *res, void *data)
{
    feed_t *feed = data;
    feed->call = NULL;
    const proto_reply_t *rep = res->outcome == UPSTREAM_OK && res->rep.status == PROTO_ST_OK ? &res->rep : NULL;
    if (rep == NULL || rep->cursor.len == 0) {
        if (feed->failures++ % 40 == 0)
            log_warn("live feed: no answer from the notifiers, retrying", "outcome=%s", upstream_outcome_name(res->outcome));
        upstream_result_dispose(res);
        h2o_timeout_link(feed->thread->loop, &feed->retry, &feed->retry_entry);
        return;
    }
    bool first = !feed->synced;
    if (first || rep->gap)
        log_info(first ? "live feed started" : "live feed lost notifications; sessions resync from history", "cursor=%.*s",
                 (int)rep->cursor.len, rep->cursor.ptr);
    feed->failures = 0;
    memcpy(feed->cursor, rep->cursor.ptr, rep->cursor.len);
    feed->cursor[rep->cursor.len] = '\0';
    feed->synced = true;
    if (rep->nitems != 0 || rep->gap || first)
        broadcast(feed, build_batch(feed, rep, rep->gap || first));
    upstream_result_dispose(res);
    watch(feed);
}

static void watch(feed_t *feed)
{
    proto_request_t req = {.op = PROTO_OP_WATCH, .cursor = {feed->cursor, strlen(feed->cursor)}, .wait_ms = WATCH_WAIT_MS};
    upstream_outcome_t outcome;
    gateway_new_rid(feed->thread->gw, req.rid);
    feed->call = upstream_call(feed->thread->notifier, &req, WATCH_WAIT_MS + WATCH_SLACK_MS, true, on_watch, feed, &outcome);
    if (feed->call == NULL)
        h2o_timeout_link(feed->thread->loop, &feed->retry, &feed->retry_entry);
}

feed_t *feed_start(gateway_thread_t *thread)
{
    feed_t *feed = calloc(1, sizeof(*feed));
    if (feed == NULL)
        abort();
    feed->thread = thread;
    h2o_timeout_init(thread->loop, &feed->retry, RETRY_MS);
    feed->retry_entry.cb = on_retry;
    watch(feed);
    return feed;
}

void feed_stop(feed_t *feed)
{
    if (feed->call != NULL)
        upstream_call_cancel(feed->call);
    if (h2o_timeout_is_linked(&feed->retry_entry))
        h2o_timeout_unlink(&feed->retry_entry);
    h2o_timeout_dispose(feed->thread->loop, &feed->retry);
    json_out_dispose(&feed->buf);
    json_out_dispose(&feed->one);
    free(feed);
}
