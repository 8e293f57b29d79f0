#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "gateway.h" /* h2o.h first: h2o's HTTP/2 headers need it */
#include <h2o/http2.h>
#include <h2o/http2_internal.h> /* its khash.h is gateway/compat/khash.h */
#include "clock.h"
#include "h2_idle.h"
#include "log.h"

#define SWEEP_MS 1000

typedef struct st_h2_idle_conn_t {
    uint64_t since_us; /* idle since: no request in flight and no new stream */
    uint32_t max_open; /* the highest stream id the client had opened at the last sweep */
} h2_idle_conn_t;

static void free_entry(const char *key, size_t len, void *value, void *data)
{
    (void)key, (void)len, (void)data;
    free(value);
}

/* A request is in flight from the moment its headers are complete until its response is sent; streams still
 * receiving their headers or body do not count (that is how a slow client holds a connection). */
static int busy(const h2o_http2_conn_t *conn)
{
    return conn->num_streams.pull.half_closed + conn->num_streams.pull.send_body + conn->num_streams.push.half_closed +
               conn->num_streams.push.send_body !=
           0;
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    h2_idle_t *hi = H2O_STRUCT_FROM_MEMBER(h2_idle_t, entry, entry);
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, h2idle, hi);
    h2o_context_t *ctx = &thread->ctx;
    uint64_t now = clock_mono_us(), limit_us = (uint64_t)thread->gw->cfg.http2_idle_timeout_ms * 1000;
    strmap_t *seen = strmap_create(); /* rebuilt each sweep: entries of closed connections go with the old map */
    h2o_linklist_t *node, *next;

    for (node = ctx->http2._conns.next; node != &ctx->http2._conns; node = next) {
        h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
        next = node->next; /* the expiry below may free conn */
        char key[24];
        int keylen = snprintf(key, sizeof(key), "%" PRIx64, conn->super.id);
        h2_idle_conn_t *st = strmap_remove(hi->conns, key, (size_t)keylen);
        if (st == NULL) {
            if ((st = malloc(sizeof(*st))) == NULL)
                abort();
            *st = (h2_idle_conn_t){.since_us = now, .max_open = conn->pull_stream_ids.max_open};
        }
        if (busy(conn) || conn->pull_stream_ids.max_open != st->max_open) {
            st->since_us = now;
            st->max_open = conn->pull_stream_ids.max_open;
        }
        /* h2o links _timeout_entry (to on_idle_timeout) exactly while the connection is open and has no request in
         * flight; firing it now is what h2o would do, had every read not restarted it */
        if (conn->state == H2O_HTTP2_CONN_STATE_OPEN && h2o_timeout_is_linked(&conn->_timeout_entry) &&
            now - st->since_us >= limit_us) {
            h2o_timeout_entry_t *idle = &conn->_timeout_entry;
            log_info("HTTP/2 connection closed: no request for the idle timeout while bytes kept arriving",
                     "thread=%u idle_ms=%" PRIu64 " buffered=%zu", thread->index, (now - st->since_us) / 1000,
                     conn->sock != NULL ? conn->sock->input->size : 0);
            free(st);
            ++hi->closed;
            h2o_timeout_unlink(idle); /* as h2o's timeout runner does before the callback */
            idle->cb(idle);
            continue;
        }
        strmap_set(seen, key, (size_t)keylen, st);
    }
    strmap_foreach(hi->conns, free_entry, NULL);
    strmap_destroy(hi->conns);
    hi->conns = seen;
    if (!thread->shutting_down)
        h2o_timeout_link(thread->loop, &hi->second, &hi->entry);
}

void h2_idle_init(gateway_thread_t *thread)
{
    h2_idle_t *hi = &thread->h2idle;
    hi->conns = strmap_create();
    hi->entry.cb = on_sweep;
    h2o_timeout_init(thread->loop, &hi->second, SWEEP_MS);
    h2o_timeout_link(thread->loop, &hi->second, &hi->entry);
}

void h2_idle_dispose(gateway_thread_t *thread)
{
    h2_idle_t *hi = &thread->h2idle;
    if (h2o_timeout_is_linked(&hi->entry))
        h2o_timeout_unlink(&hi->entry);
    h2o_timeout_dispose(thread->loop, &hi->second);
    strmap_foreach(hi->conns, free_entry, NULL);
    strmap_destroy(hi->conns);
    hi->conns = NULL;
}
