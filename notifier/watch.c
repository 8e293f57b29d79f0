#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <h2o/linklist.h>
#include <h2o/memory.h>
#include "clock.h"
#include "log.h"
#include "watch.h"

#define REPLY_BYTES_MAX (1024 * 1024) /* a reply stops growing past this (the next WATCH gets the rest) */
#define SWEEP_MS 100

typedef struct st_watch_event_t {
    uint64_t ms, seq;
    char sid[PROTO_CURSOR_MAX + 1];
    uint64_t id;
    int64_t ts;
    size_t user_len, message_len, kind_len;
    char text[]; /* user, message, kind */
} watch_event_t;

typedef struct st_watch_parked_t {
    rpc_call_t *call;
    uint64_t ms, seq;
    char sid[PROTO_CURSOR_MAX + 1];
    uint64_t deadline_us;
    h2o_linklist_t link;
} watch_parked_t;

struct st_watch_t {
    h2o_loop_t *loop;
    watch_event_t **ring;
    size_t cap, head, count, bytes, max_bytes;
    uint64_t lost_ms, lost_seq; /* cursors at or above this have lost nothing */
    char latest[PROTO_CURSOR_MAX + 1];
    uint64_t latest_ms, latest_seq;
    h2o_linklist_t parked;
    h2o_timeout_t sweep;
    h2o_timeout_entry_t sweep_entry;
};

int watch_parse_id(const char *s, size_t len, uint64_t *ms, uint64_t *seq)
{
    uint64_t v[2] = {0, 0};
    int part = 0;
    if (len == 0 || len > PROTO_CURSOR_MAX)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] == '-' && part == 0 && i != 0) {
            part = 1;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (v[part] > (UINT64_MAX - 9) / 10)
                return -1;
            v[part] = v[part] * 10 + (uint64_t)(s[i] - '0');
        } else {
            return -1;
        }
    }
    if (part == 1 && s[len - 1] == '-')
        return -1;
    *ms = v[0];
    *seq = v[1];
    return 0;
}

static int cmp(uint64_t ams, uint64_t aseq, uint64_t bms, uint64_t bseq)
{
    return ams < bms ? -1 : ams > bms ? 1 : aseq < bseq ? -1 : aseq > bseq ? 1 : 0;
}

static void on_sweep(h2o_timeout_entry_t *entry);

watch_t *watch_create(h2o_loop_t *loop, size_t max_events, size_t max_bytes)
{
    watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->ring = calloc(max_events, sizeof(*w->ring))) == NULL)
        abort();
    w->loop = loop;
    w->cap = max_events;
    w->max_bytes = max_bytes;
    snprintf(w->latest, sizeof(w->latest), "0-0");
    h2o_linklist_init_anchor(&w->parked);
    h2o_timeout_init(loop, &w->sweep, SWEEP_MS);
    w->sweep_entry.cb = on_sweep;
    h2o_timeout_link(loop, &w->sweep, &w->sweep_entry);
    return w;
}

void watch_destroy(watch_t *w)
{
    watch_release_all(w);
    h2o_timeout_unlink(&w->sweep_entry);
    h2o_timeout_dispose(w->loop, &w->sweep);
    for (size_t i = 0; i < w->count; ++i)
        free(w->ring[(w->head + i) % w->cap]);
    free(w->ring);
    free(w);
}

static void drop_oldest(watch_t *w)
{
    watch_event_t *e = w->ring[w->head];
    w->lost_ms = e->ms;
    w->lost_seq = e->seq;
    w->bytes -= sizeof(*e) + e->user_len + e->message_len + e->kind_len;
    free(e);
    w->ring[w->head] = NULL;
    w->head = (w->head + 1) % w->cap;
    --w->count;
}

void watch_set_origin(watch_t *w, const char *stream_id)
{
    uint64_t ms, seq;
    if (watch_parse_id(stream_id, strlen(stream_id), &ms, &seq) != 0)
        return;
    w->lost_ms = ms;
    w->lost_seq = seq;
    if (cmp(ms, seq, w->latest_ms, w->latest_seq) > 0)
        watch_advance(w, stream_id);
}

void watch_advance(watch_t *w, const char *stream_id)
{
    uint64_t ms, seq;
    size_t len = strlen(stream_id);
    if (watch_parse_id(stream_id, len, &ms, &seq) != 0 || cmp(ms, seq, w->latest_ms, w->latest_seq) <= 0)
        return;
    memcpy(w->latest, stream_id, len + 1);
    w->latest_ms = ms;
    w->latest_seq = seq;
}

void watch_append(watch_t *w, const char *stream_id, const proto_notification_t *n)
{
    uint64_t ms, seq;
    size_t sidlen = strlen(stream_id);
    if (w->cap == 0 || watch_parse_id(stream_id, sidlen, &ms, &seq) != 0)
        return;
    if (w->count != 0) {
        watch_event_t *last = w->ring[(w->head + w->count - 1) % w->cap];
        if (cmp(ms, seq, last->ms, last->seq) <= 0)
            return; /* not after the newest: a replay */
    }
    size_t size = sizeof(watch_event_t) + n->user_id.len + n->message.len + n->kind.len;
    watch_event_t *e = malloc(size);
    if (e == NULL)
        abort();
    e->ms = ms;
    e->seq = seq;
    memcpy(e->sid, stream_id, sidlen + 1);
    e->id = n->id;
    e->ts = n->ts;
    e->user_len = n->user_id.len;
    e->message_len = n->message.len;
    e->kind_len = n->kind.len;
    memcpy(e->text, n->user_id.ptr, n->user_id.len);
    memcpy(e->text + e->user_len, n->message.ptr, n->message.len);
    memcpy(e->text + e->user_len + e->message_len, n->kind.ptr, n->kind.len);

    while (w->count != 0 && (w->count == w->cap || w->bytes + size > w->max_bytes))
        drop_oldest(w);
    w->ring[(w->head + w->count) % w->cap] = e;
    ++w->count;
    w->bytes += size;
    watch_advance(w, stream_id);
}

/* Index (from the oldest) of the first event after the cursor. */
static size_t first_after(watch_t *w, uint64_t ms, uint64_t seq)
{
    size_t lo = 0, hi = w->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        watch_event_t *e = w->ring[(w->head + mid) % w->cap];
        if (cmp(e->ms, e->seq, ms, seq) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Answers call with the events after (ms, seq); cursor_sid is the caller's cursor, returned when nothing is new. */
static void answer(watch_t *w, rpc_call_t *call, uint64_t ms, uint64_t seq, const char *cursor_sid)
{
    static proto_notification_t items[PROTO_WATCH_MAX];
    proto_reply_t rep = {.status = PROTO_ST_OK, .list = true, .items = items};
    size_t start = first_after(w, ms, seq), bytes = 0;
    const char *cursor = cursor_sid;

    rep.gap = cmp(ms, seq, w->lost_ms, w->lost_seq) < 0;
    for (size_t i = start; i < w->count && rep.nitems < PROTO_WATCH_MAX && bytes < REPLY_BYTES_MAX; ++i) {
        watch_event_t *e = w->ring[(w->head + i) % w->cap];
        items[rep.nitems++] = (proto_notification_t){.id = e->id,
                                                     .ts = e->ts,
                                                     .user_id = {e->text, e->user_len},
                                                     .message = {e->text + e->user_len, e->message_len},
                                                     .kind = {e->text + e->user_len + e->message_len, e->kind_len}};
        bytes += 32 + e->user_len + e->message_len + e->kind_len;
        cursor = e->sid;
    }
    if (rep.nitems == 0 && start == w->count && cmp(ms, seq, w->latest_ms, w->latest_seq) < 0)
        cursor = w->latest; /* only other events since: move the cursor on */
    rep.cursor = (proto_str_t){cursor, strlen(cursor)};
    rpc_call_reply(call, &rep);
}

void watch_serve(watch_t *w, rpc_call_t *call, const proto_request_t *req)
{
    uint64_t ms, seq;
    if (req->cursor.len == 0) {
        proto_reply_t rep = {.status = PROTO_ST_OK, .list = true, .cursor = {w->latest, strlen(w->latest)}};
        rpc_call_reply(call, &rep);
        return;
    }
    if (watch_parse_id(req->cursor.ptr, req->cursor.len, &ms, &seq) != 0) {
        rpc_call_reply_error(call, PROTO_ST_BAD_REQUEST, "cursor is not a stream id");
        return;
    }
    if (first_after(w, ms, seq) < w->count || cmp(ms, seq, w->lost_ms, w->lost_seq) < 0 || req->wait_ms == 0) {
        char sid[PROTO_CURSOR_MAX + 1];
        memcpy(sid, req->cursor.ptr, req->cursor.len);
        sid[req->cursor.len] = '\0';
        answer(w, call, ms, seq, sid);
        return;
    }
    watch_parked_t *p = calloc(1, sizeof(*p)); /* zeroed: the link must start unlinked */
    if (p == NULL)
        abort();
    p->call = call;
    p->ms = ms;
    p->seq = seq;
    memcpy(p->sid, req->cursor.ptr, req->cursor.len);
    p->sid[req->cursor.len] = '\0';
    p->deadline_us = clock_mono_us() + (uint64_t)req->wait_ms * 1000;
    h2o_linklist_insert(&w->parked, &p->link);
}

static void unpark(watch_t *w, watch_parked_t *p)
{
    h2o_linklist_unlink(&p->link);
    answer(w, p->call, p->ms, p->seq, p->sid);
    free(p);
}

void watch_flush(watch_t *w)
{
    if (w->count == 0)
        return;
    watch_event_t *newest = w->ring[(w->head + w->count - 1) % w->cap];
    for (h2o_linklist_t *l = w->parked.next, *next; l != &w->parked; l = next) {
        next = l->next;
        watch_parked_t *p = H2O_STRUCT_FROM_MEMBER(watch_parked_t, link, l);
        if (cmp(newest->ms, newest->seq, p->ms, p->seq) > 0)
            unpark(w, p);
    }
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    watch_t *w = H2O_STRUCT_FROM_MEMBER(watch_t, sweep_entry, entry);
    uint64_t now = clock_mono_us();
    for (h2o_linklist_t *l = w->parked.next, *next; l != &w->parked; l = next) {
        next = l->next;
        watch_parked_t *p = H2O_STRUCT_FROM_MEMBER(watch_parked_t, link, l);
        if (now >= p->deadline_us)
            unpark(w, p);
    }
    h2o_timeout_link(w->loop, &w->sweep, &w->sweep_entry);
}

void watch_release_all(watch_t *w)
{
    while (!h2o_linklist_is_empty(&w->parked))
        unpark(w, H2O_STRUCT_FROM_MEMBER(watch_parked_t, link, w->parked.next));
}
