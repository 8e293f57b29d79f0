#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "log.h"
#include "stream.h"

#define STREAM_KEY "ng:stream"
#define BATCH "1000"

struct st_stream_reader_t {
    h2o_loop_t *loop;
    h2o_timeout_t retry;
    h2o_timeout_entry_t retry_entry;
    realtime_t *rt;
    watch_t *watch;
    redis_client_t *rc;
    int64_t window_ms;
    uint32_t block_ms;
    char last_id[80]; /* last stream id applied; empty before the first */
    bool snapshot_done;
    bool reading; /* a command is in flight */
    uint64_t applied;
};

static void read_next(stream_reader_t *reader);

static void on_retry(h2o_timeout_entry_t *entry)
{
    read_next(H2O_STRUCT_FROM_MEMBER(stream_reader_t, retry_entry, entry));
}

stream_reader_t *stream_reader_create(h2o_loop_t *loop, realtime_t *rt, watch_t *w, int64_t window_ms, uint32_t block_ms)
{
    stream_reader_t *reader = calloc(1, sizeof(*reader));
    if (reader == NULL)
        abort();
    reader->loop = loop;
    h2o_timeout_init(loop, &reader->retry, 1000);
    reader->retry_entry.cb = on_retry;
    reader->rt = rt;
    reader->watch = w;
    reader->window_ms = window_ms;
    reader->block_ms = block_ms;
    return reader;
}

void stream_reader_destroy(stream_reader_t *reader)
{
    if (h2o_timeout_is_linked(&reader->retry_entry))
        h2o_timeout_unlink(&reader->retry_entry);
    h2o_timeout_dispose(reader->loop, &reader->retry);
    free(reader);
}

bool stream_reader_is_live(stream_reader_t *reader)
{
    return reader->snapshot_done && reader->rc != NULL && redis_client_is_connected(reader->rc);
}

bool stream_reader_is_loaded(stream_reader_t *reader)
{
    return reader->snapshot_done;
}

uint64_t stream_reader_applied(stream_reader_t *reader)
{
    return reader->applied;
}

static bool field_u64(const redisReply *r, uint64_t *v)
{
    char buf[24], *end;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf))
        return false;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    *v = strtoull(buf, &end, 10);
    return *end == '\0';
}

static bool is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}

/* Applies one entry [id, [field, value, ...]]; returns false if it is not an entry at all. */
static bool apply_entry(stream_reader_t *reader, const redisReply *entry, int64_t now_ms)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY || entry->element[0]->len >= sizeof(reader->last_id))
        return false;
    const redisReply *fields = entry->element[1];
    const redisReply *type = NULL, *user = NULL, *message = NULL, *kind = NULL;
    uint64_t id = 0, ts = 0, upto = 0;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (is(k, "t"))
            type = v;
        else if (is(k, "u") && v->type == REDIS_REPLY_STRING)
            user = v;
        else if (is(k, "m") && v->type == REDIS_REPLY_STRING)
            message = v;
        else if (is(k, "k") && v->type == REDIS_REPLY_STRING)
            kind = v;
        else if (is(k, "id"))
            field_u64(v, &id);
        else if (is(k, "ts"))
            field_u64(v, &ts);
        else if (is(k, "upto"))
            field_u64(v, &upto);
    }

    memcpy(reader->last_id, entry->element[0]->str, entry->element[0]->len);
    reader->last_id[entry->element[0]->len] = '\0';
    ++reader->applied;

    watch_advance(reader->watch, reader->last_id);
    if (type == NULL || user == NULL)
        return true; /* an event kind this version does not know: skip it */
    proto_str_t u = {user->str, user->len};
    if (is(type, "n") && message != NULL && kind != NULL && id != 0) {
        proto_notification_t n = {
            .id = id, .ts = (int64_t)ts, .user_id = u, .message = {message->str, message->len}, .kind = {kind->str, kind->len}};
        realtime_add(reader->rt, &n, now_ms);
        watch_append(reader->watch, reader->last_id, &n);
    } else if (is(type, "r") && id != 0) {
        realtime_mark_read(reader->rt, u, id);
    } else if (is(type, "ra")) {
        realtime_mark_all_read(reader->rt, u, upto);
    }
    return true;
}

static void on_reply(redisReply *r, void *data)
{
    stream_reader_t *reader = data;
    reader->reading = false;
    if (r == NULL)
        return; /* connection lost or timed out: stream_reader_on_connect resumes from last_id */
    if (r->type == REDIS_REPLY_ERROR) {
        char q[256];
        log_error("reading the event stream failed; retrying in 1 s", "error=%s", log_quote(q, sizeof(q), r->str));
        if (!h2o_timeout_is_linked(&reader->retry_entry))
            h2o_timeout_link(reader->loop, &reader->retry, &reader->retry_entry);
        return;
    }

    int64_t now = clock_wall_ms();
    if (!reader->snapshot_done) {
        /* XRANGE: [entry, ...] */
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < n; ++i)
            apply_entry(reader, r->element[i], now);
        if (n < (size_t)atoi(BATCH)) {
            reader->snapshot_done = true;
            log_info("realtime window loaded", "entries=%zu users=%zu events=%" PRIu64, realtime_size(reader->rt),
                     realtime_users(reader->rt), reader->applied);
        }
    } else if (r->type == REDIS_REPLY_ARRAY) {
        /* XREAD: [[stream, [entry, ...]]]; nil when the block ran out */
        for (size_t s = 0; s < r->elements; ++s) {
            const redisReply *st = r->element[s];
            if (st->type == REDIS_REPLY_ARRAY && st->elements == 2 && st->element[1]->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < st->element[1]->elements; ++i)
                    apply_entry(reader, st->element[1]->element[i], now);
        }
    }
    watch_flush(reader->watch);
    read_next(reader);
}

static void read_next(stream_reader_t *reader)
{
    char start[96], block[16];
    const char *argv[8];
    int argc;

    if (reader->reading || reader->rc == NULL)
        return;
    if (reader->last_id[0] == '\0') {
        /* nothing applied yet: everything since the start of the window */
        snprintf(start, sizeof(start), "%" PRId64 "-0", clock_wall_ms() - reader->window_ms);
        if (!reader->snapshot_done)
            watch_set_origin(reader->watch, start); /* the feed knows nothing before the window */
        if (reader->snapshot_done)
            memcpy(reader->last_id, start, strlen(start) + 1); /* the window was empty: follow from its start */
    } else {
        snprintf(start, sizeof(start), "(%s", reader->last_id);
    }

    if (!reader->snapshot_done) {
        argc = 6;
        argv[0] = "XRANGE", argv[1] = STREAM_KEY, argv[2] = start, argv[3] = "+", argv[4] = "COUNT", argv[5] = BATCH;
        if (redis_client_command(reader->rc, on_reply, reader, 0, argc, argv, NULL) == 0)
            reader->reading = true;
        return;
    }
    snprintf(block, sizeof(block), "%u", reader->block_ms);
    argc = 8;
    argv[0] = "XREAD", argv[1] = "COUNT", argv[2] = BATCH, argv[3] = "BLOCK", argv[4] = block, argv[5] = "STREAMS",
    argv[6] = STREAM_KEY, argv[7] = reader->last_id;
    /* the block is not a stall: allow it on top of the usual deadline */
    if (redis_client_command(reader->rc, on_reply, reader, reader->block_ms + 1000, argc, argv, NULL) == 0)
        reader->reading = true;
}

void stream_reader_on_connect(redis_client_t *rc, void *data)
{
    stream_reader_t *reader = data;
    reader->rc = rc;
    reader->reading = false; /* whatever was in flight died with the old connection */
    read_next(reader);
}
