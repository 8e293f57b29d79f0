#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "notify_lua.h"
#include "redis_script.h"
#include "store.h"
#include "valid.h"

#define MARK_ALL_BATCH 1000 /* ids marked per script run, so that one call never blocks Redis for long */

/* KEYS: seq, idem, user set, unread set, stream. ARGV: user, message, kind, retention ms, idempotency ttl s.
 * Returns {id, ts, replayed}. */
static const char PUBLISH_LUA[] = NOTIFY_PUBLISH_LUA
    "local id, ts, replayed = publish(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n"
    "return {id, ts, replayed}\n";

/* What PAGE and SINCE return, from the records of a user set in order (the extra one past the limit removed):
 * {unread count, more, n, the n unread ids among the records, record, record, ...}, each record "id\tts\tkind\tmessage".
 * A member of the first layout (the bare id, its fields in the hash ng:n:<id>) is read from its hash into the same form;
 * new notifications are written in the second layout only (see store.h). */
#define PAGE_REPLY_LUA                                                                                                   \
    "local function page_reply(k_unread, recs, more)\n"                                                                 \
    "  local out = {redis.call('ZCARD', k_unread), more, 0}\n"                                                          \
    "  local n = 0\n"                                                                                                   \
    "  for i, rec in ipairs(recs) do\n"                                                                                 \
    "    if not string.find(rec, '\t', 1, true) then\n"                                                                 \
    "      local h = redis.call('HMGET', 'ng:n:' .. rec, 'ts', 'k', 'm')\n"                                             \
    "      if h[1] and h[2] and h[3] then recs[i] = rec .. '\t' .. h[1] .. '\t' .. h[2] .. '\t' .. h[3] else recs[i] = false end\n" \
    "    end\n"                                                                                                             \
    "  end\n"                                                                                                               \
    "  if #recs > 0 then\n"                                                                                                 \
    "    local a = tonumber(string.match(recs[1] or '0', '^%d+')) or 0\n"                                                \
    "    local b = tonumber(string.match(recs[#recs] or '0', '^%d+')) or 0\n"                                            \
    "    if a > b then a, b = b, a end\n"                                                                                   \
    "    local unread = redis.call('ZRANGEBYSCORE', k_unread, string.format('%d', a), string.format('%d', b))\n"          \
    "    if a == 0 then unread = redis.call('ZRANGEBYSCORE', k_unread, '-inf', string.format('%d', b)) end\n"             \
    "    n = #unread\n"                                                                                                     \
    "    for _, id in ipairs(unread) do out[#out + 1] = id end\n"                                                          \
    "  end\n"                                                                                                               \
    "  out[3] = n\n"                                                                                                        \
    "  for _, rec in ipairs(recs) do if rec then out[#out + 1] = rec end end\n"                                          \
    "  return out\n"                                                                                                        \
    "end\n"

/* KEYS: user set, unread set. ARGV: user (not used), before (0: from the newest), limit. Newest first. */
static const char PAGE_LUA[] = PAGE_REPLY_LUA
    "local max = '+inf'\n"
    "if ARGV[2] ~= '0' then max = '(' .. ARGV[2] end\n"
    "local limit = tonumber(ARGV[3])\n"
    "local recs = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'LIMIT', 0, limit + 1)\n"
    "local more = 0\n"
    "if #recs > limit then more = 1; recs[#recs] = nil end\n"
    "return page_reply(KEYS[2], recs, more)\n";

/* KEYS: user set, unread set. ARGV: user (not used), after, limit. Oldest first, ids above after. */
static const char SINCE_LUA[] = PAGE_REPLY_LUA
    "local limit = tonumber(ARGV[3])\n"
    "local recs = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf', 'LIMIT', 0, limit + 1)\n"
    "local more = 0\n"
    "if #recs > limit then more = 1; recs[#recs] = nil end\n"
    "return page_reply(KEYS[2], recs, more)\n";

/* KEYS: unread set, stream, user set. ARGV: user, id, retention ms. Returns 1, or 0 if the user has no such
 * notification. */
static const char MARK_READ_LUA[] =
    "if #redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[2], ARGV[2], 'LIMIT', 0, 1) == 0 then return 0 end\n"
    "if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  redis.call('XADD', KEYS[2], 'MINID', '~', string.format('%d', now - tonumber(ARGV[3])), '*',\n"
    "             't', 'r', 'id', ARGV[2], 'u', ARGV[1])\n"
    "end\n"
    "return 1\n";

/* KEYS: unread set, stream, seq. ARGV: user, upto (0: the newest id now), batch, retention ms.
 * Marks up to `batch` unread ids <= upto as read; returns {marked, upto}. */
static const char MARK_ALL_READ_LUA[] =
    "local upto = tonumber(ARGV[2])\n"
    "if upto == 0 then upto = tonumber(redis.call('GET', KEYS[3]) or '0') end\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', upto), 'LIMIT', 0, tonumber(ARGV[3]))\n"
    "if #ids > 0 then\n"
    "  redis.call('ZREM', KEYS[1], unpack(ids))\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  redis.call('XADD', KEYS[2], 'MINID', '~', string.format('%d', now - tonumber(ARGV[4])), '*',\n"
    "             't', 'ra', 'u', ARGV[1], 'upto', ids[#ids])\n"
    "end\n"
    "return {#ids, upto}\n";

enum { SCRIPT_PUBLISH, SCRIPT_PAGE, SCRIPT_SINCE, SCRIPT_MARK_READ, SCRIPT_MARK_ALL_READ, SCRIPT_COUNT };

struct st_history_store_t {
    redis_client_t *rc;
    int64_t retention_ms;
    redis_script_t scripts[SCRIPT_COUNT];
};

/* One operation in flight. */
typedef struct st_op_t {
    history_store_t *store;
    proto_op_t op;
    history_store_cb cb;
    void *data;
    uint64_t marked; /* MARK_ALL_READ: ids marked by the batches so far */
    uint64_t from;   /* PAGE: before, SINCE: after (0: from the newest) */
    uint32_t limit;  /* PAGE, SINCE */
    size_t user_len;
    char user[VALID_USER_ID_MAX + 1];
} op_t;

/* The arguments of one script call: keys then others, formatted into a local buffer. */
typedef struct st_args_t {
    const char *v[16];
    size_t len[16];
    int n;
    char buf[512];
    size_t used;
} args_t;

static void arg(args_t *a, const char *s, size_t len)
{
    a->v[a->n] = s;
    a->len[a->n++] = len;
}

static void argf(args_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argf(args_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(a->buf + a->used, sizeof(a->buf) - a->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(a->buf) - a->used)
        abort(); /* sized for the longest keys: a bug, not an input */
    arg(a, a->buf + a->used, (size_t)n);
    a->used += (size_t)n + 1;
}

history_store_t *history_store_create(redis_client_t *rc, int64_t stream_retention_ms)
{
    history_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        abort();
    store->rc = rc;
    store->retention_ms = stream_retention_ms;
    redis_script_init(&store->scripts[SCRIPT_PUBLISH], "publish", PUBLISH_LUA);
    redis_script_init(&store->scripts[SCRIPT_PAGE], "page", PAGE_LUA);
    redis_script_init(&store->scripts[SCRIPT_SINCE], "since", SINCE_LUA);
    redis_script_init(&store->scripts[SCRIPT_MARK_READ], "mark_read", MARK_READ_LUA);
    redis_script_init(&store->scripts[SCRIPT_MARK_ALL_READ], "mark_all_read", MARK_ALL_READ_LUA);
    return store;
}

void history_store_destroy(history_store_t *store)
{
    free(store);
}

static void finish(op_t *o, proto_reply_t *rep)
{
    o->cb(rep, o->data);
    free(o);
}

static void finish_error(op_t *o, proto_status_t status, const char *reason)
{
    proto_reply_t rep = {.status = status, .error = {reason, strlen(reason)}};
    finish(o, &rep);
}

static void on_script_reply(redisReply *reply, void *data);

static void run(op_t *o, int script, int nkeys, args_t *a)
{
    if (redis_script_run(o->store->rc, &o->store->scripts[script], nkeys, a->n, a->v, a->len, on_script_reply, o) != 0)
        finish_error(o, PROTO_ST_UNAVAILABLE, "redis unavailable");
}

/* ---- reply parsing ---------------------------------------------------------------------------------------------- */

static bool reply_u64(const redisReply *r, uint64_t *v)
{
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        *v = (uint64_t)r->integer;
        return true;
    }
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 21) {
        char buf[24], *end;
        memcpy(buf, r->str, r->len);
        buf[r->len] = '\0';
        *v = strtoull(buf, &end, 10);
        return *end == '\0';
    }
    return false;
}

static void on_publish(op_t *o, redisReply *r)
{
    uint64_t id, ts, replayed;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !reply_u64(r->element[0], &id) || !reply_u64(r->element[1], &ts) ||
        !reply_u64(r->element[2], &replayed)) {
        finish_error(o, PROTO_ST_INTERNAL, "unexpected reply to publish");
        return;
    }
    if (replayed)
        log_info("publish replayed: request already applied", "id=%" PRIu64, id);
    proto_reply_t rep = {.status = PROTO_ST_OK, .id = id, .ts = (int64_t)ts};
    finish(o, &rep);
}

/* A decimal number that ends at end, fitting in max. */
static bool parse_decimal(const char *p, const char *end, uint64_t max, uint64_t *v)
{
    *v = 0;
    if (p == end)
        return false;
    for (; p != end; ++p) {
        if (*p < '0' || *p > '9' || *v > (max - (uint64_t)(*p - '0')) / 10)
            return false;
        *v = *v * 10 + (uint64_t)(*p - '0');
    }
    return true;
}

/* One record "id\tts\tkind\tmessage" into it (user and read are left to the caller). */
static bool parse_record(const redisReply *r, proto_notification_t *it)
{
    if (r->type != REDIS_REPLY_STRING)
        return false;
    const char *p = r->str, *end = r->str + r->len, *field[3], *tab[3];
    for (int i = 0; i < 3; ++i) {
        if ((tab[i] = memchr(p, '\t', (size_t)(end - p))) == NULL)
            return false;
        field[i] = p;
        p = tab[i] + 1;
    }
    uint64_t id, ts;
    if (!parse_decimal(field[0], tab[0], UINT64_MAX, &id) || id == 0 || !parse_decimal(field[1], tab[1], INT64_MAX, &ts))
        return false;
    it->id = id;
    it->ts = (int64_t)ts;
    it->kind = (proto_str_t){field[2], (size_t)(tab[2] - field[2])};
    it->message = (proto_str_t){p, (size_t)(end - p)};
    return true;
}

/* Answers a page: recs[0..nrecs) the records in order, read unless their id is among unread_ids[0..nunread). */
static void answer_page(op_t *o, redisReply *const *recs, size_t nrecs, const uint64_t *unread_ids, size_t nunread,
                        uint64_t unread_count, bool more)
{
    proto_notification_t items[PROTO_LIMIT_MAX];
    if (nrecs > PROTO_LIMIT_MAX) {
        finish_error(o, PROTO_ST_INTERNAL, "unexpected reply to page");
        return;
    }
    for (size_t i = 0; i < nrecs; ++i) {
        proto_notification_t *it = items + i;
        if (!parse_record(recs[i], it)) {
            finish_error(o, PROTO_ST_INTERNAL, "unexpected notification record");
            return;
        }
        it->read = true;
        for (size_t j = 0; j < nunread; ++j)
            if (unread_ids[j] == it->id)
                it->read = false;
        it->user_id = (proto_str_t){o->user, o->user_len};
    }
    proto_reply_t rep = {.status = PROTO_ST_OK,
                         .list = true,
                         .items = items,
                         .nitems = nrecs,
                         .unread_count = unread_count,
                         .has_more = more};
    finish(o, &rep);
}

/* The Lua page (PAGE_REPLY_LUA), for a page that holds records of the first layout:
 * {unread count, more, n, n unread ids, record, ...} */
static void on_page_script(op_t *o, redisReply *r)
{
    uint64_t unread, more, nunread;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || !reply_u64(r->element[0], &unread) ||
        !reply_u64(r->element[1], &more) || !reply_u64(r->element[2], &nunread) || nunread > r->elements - 3 ||
        r->elements - 3 - nunread > PROTO_LIMIT_MAX) {
        finish_error(o, PROTO_ST_INTERNAL, "unexpected reply to page");
        return;
    }
    uint64_t unread_ids[PROTO_LIMIT_MAX];
    size_t nu = 0;
    for (size_t i = 0; i < nunread; ++i) {
        uint64_t id;
        if (!reply_u64(r->element[3 + i], &id)) {
            finish_error(o, PROTO_ST_INTERNAL, "unexpected reply to page");
            return;
        }
        if (nu < PROTO_LIMIT_MAX)
            unread_ids[nu++] = id;
    }
    answer_page(o, r->element + 3 + nunread, r->elements - 3 - nunread, unread_ids, nu, unread, more != 0);
}

static void run_page_script(op_t *o);

/* The page's transaction (read_page): {records (limit + 1 at most), unread count, unread ids from the same bound
 * (limit + 1 at most)}. The user set holds every id of the unread set, so the unread ids within the page's range are
 * among the first limit + 1 unread ids from the same bound: the rest of them lie beyond the page and are ignored. */
static void on_page_reply(redisReply *r, void *data)
{
    op_t *o = data;
    if (r == NULL) {
        finish_error(o, PROTO_ST_UNAVAILABLE, "redis unavailable");
        return;
    }
    uint64_t unread;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        !reply_u64(r->element[1], &unread) || r->element[2]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements > (size_t)o->limit + 1 || r->element[2]->elements > (size_t)o->limit + 1) {
        char q[256];
        log_error("unexpected reply to page", "user=%s error=%s", o->user,
                  log_quote(q, sizeof(q), r->type == REDIS_REPLY_ERROR ? r->str : "shape"));
        finish_error(o, PROTO_ST_INTERNAL, "unexpected reply to page");
        return;
    }
    redisReply *recs = r->element[0], *unread_set = r->element[2];
    bool more = recs->elements > o->limit;
    size_t nrecs = more ? o->limit : recs->elements;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < nrecs; ++i) {
        const redisReply *rec = recs->element[i];
        const char *tab = rec->type == REDIS_REPLY_STRING ? memchr(rec->str, '\t', rec->len) : NULL;
        uint64_t id;
        if (tab == NULL) {
            run_page_script(o); /* a record of the first layout: its fields are in a hash */
            return;
        }
        if (!parse_decimal(rec->str, tab, UINT64_MAX, &id)) {
            finish_error(o, PROTO_ST_INTERNAL, "unexpected notification record");
            return;
        }
        lo = id < lo ? id : lo;
        hi = id > hi ? id : hi;
    }
    uint64_t unread_ids[PROTO_LIMIT_MAX + 1];
    size_t nu = 0;
    for (size_t i = 0; i < unread_set->elements; ++i) {
        uint64_t id;
        if (!reply_u64(unread_set->element[i], &id)) {
            finish_error(o, PROTO_ST_INTERNAL, "unexpected reply to page");
            return;
        }
        if (id >= lo && id <= hi)
            unread_ids[nu++] = id;
    }
    answer_page(o, recs->element, nrecs, unread_ids, nu, unread, more);
}

/* PAGE (newest first, ids below o->from, or all when 0) and SINCE (oldest first, ids above o->from): plain commands
 * in one transaction, about a third of the Redis CPU of the Lua script that pages records of the first layout. */
static void read_page(op_t *o)
{
    char user_key[VALID_USER_ID_MAX + 8], unread_key[VALID_USER_ID_MAX + 16], bound[24], count[16];
    size_t user_len = (size_t)snprintf(user_key, sizeof(user_key), "ng:u:%s", o->user);
    size_t unread_len = (size_t)snprintf(unread_key, sizeof(unread_key), "ng:u:%s:unread", o->user);
    size_t count_len = (size_t)snprintf(count, sizeof(count), "%" PRIu32, o->limit + 1);
    bool page = o->op == PROTO_OP_PAGE;
    size_t bound_len;
    if (page && o->from == 0)
        bound_len = (size_t)snprintf(bound, sizeof(bound), "+inf");
    else
        bound_len = (size_t)snprintf(bound, sizeof(bound), "(%" PRIu64, o->from);
    const char *range = page ? "ZREVRANGEBYSCORE" : "ZRANGEBYSCORE", *end = page ? "-inf" : "+inf";
    size_t range_len = strlen(range);
    const char *recs[] = {range, user_key, bound, end, "LIMIT", "0", count};
    const size_t recs_len[] = {range_len, user_len, bound_len, 4, 5, 1, count_len};
    const char *card[] = {"ZCARD", unread_key};
    const size_t card_len[] = {5, unread_len};
    const char *ids[] = {range, unread_key, bound, end, "LIMIT", "0", count};
    const size_t ids_len[] = {range_len, unread_len, bound_len, 4, 5, 1, count_len};
    const int argc[] = {7, 2, 7};
    const char *const *argv[] = {recs, card, ids};
    const size_t *const argvlen[] = {recs_len, card_len, ids_len};
    if (redis_client_transaction(o->store->rc, on_page_reply, o, 0, 3, argc, argv, argvlen) != 0)
        finish_error(o, PROTO_ST_UNAVAILABLE, "redis unavailable");
}

static void mark_all(op_t *o, uint64_t upto);

static void on_script_reply(redisReply *r, void *data)
{
    op_t *o = data;

    if (r == NULL) {
        finish_error(o, PROTO_ST_UNAVAILABLE, "redis unavailable");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char q[256];
        log_error("redis script failed", "op=%s error=%s", proto_op_name(o->op), log_quote(q, sizeof(q), r->str));
        finish_error(o, strncmp(r->str, "LOADING", 7) == 0 ? PROTO_ST_UNAVAILABLE : PROTO_ST_INTERNAL, "redis error");
        return;
    }
    switch (o->op) {
    case PROTO_OP_PUBLISH:
        on_publish(o, r);
        break;
    case PROTO_OP_PAGE:
    case PROTO_OP_SINCE:
        on_page_script(o, r);
        break;
    case PROTO_OP_MARK_READ: {
        proto_reply_t rep = {.status = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? PROTO_ST_OK : PROTO_ST_NOT_FOUND};
        if (rep.status != PROTO_ST_OK)
            rep.error = (proto_str_t){"no such notification for this user", 34};
        finish(o, &rep);
    } break;
    case PROTO_OP_MARK_ALL_READ: {
        uint64_t n, upto;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !reply_u64(r->element[0], &n) || !reply_u64(r->element[1], &upto)) {
            finish_error(o, PROTO_ST_INTERNAL, "unexpected reply to mark_all_read");
            break;
        }
        o->marked += n;
        if (n == MARK_ALL_BATCH) {
            mark_all(o, upto);
        } else {
            proto_reply_t rep = {.status = PROTO_ST_OK, .count = o->marked};
            finish(o, &rep);
        }
    } break;
    default:
        finish_error(o, PROTO_ST_INTERNAL, "unexpected operation");
        break;
    }
}

/* ---- operations ------------------------------------------------------------------------------------------------- */

static void run_page_script(op_t *o)
{
    args_t a = {.n = 0};
    argf(&a, "ng:u:%s", o->user);
    argf(&a, "ng:u:%s:unread", o->user);
    arg(&a, o->user, o->user_len);
    argf(&a, "%" PRIu64, o->from);
    argf(&a, "%" PRIu32, o->limit);
    run(o, o->op == PROTO_OP_PAGE ? SCRIPT_PAGE : SCRIPT_SINCE, 2, &a);
}

static void mark_all(op_t *o, uint64_t upto)
{
    args_t a = {.n = 0};
    argf(&a, "ng:u:%s:unread", o->user);
    arg(&a, "ng:stream", 9);
    arg(&a, "ng:seq", 6);
    arg(&a, o->user, o->user_len);
    argf(&a, "%" PRIu64, upto);
    argf(&a, "%d", MARK_ALL_BATCH);
    argf(&a, "%" PRId64, o->store->retention_ms);
    run(o, SCRIPT_MARK_ALL_READ, 3, &a);
}

static void on_ping(redisReply *r, void *data)
{
    op_t *o = data;
    proto_reply_t rep = {.status = PROTO_ST_OK, .redis_ok = r != NULL && r->type != REDIS_REPLY_ERROR};
    finish(o, &rep);
}

void history_store_execute(history_store_t *store, const proto_request_t *req, history_store_cb cb, void *data)
{
    const proto_str_t u = req->user_id;
    op_t *o = calloc(1, sizeof(*o));
    args_t a = {.n = 0};
    if (o == NULL)
        abort();
    *o = (op_t){.store = store, .op = req->op, .cb = cb, .data = data, .user_len = u.len};
    if (u.len != 0)
        memcpy(o->user, u.ptr, u.len); /* validated by the decoder: at most VALID_USER_ID_MAX */

    switch (req->op) {
    case PROTO_OP_PUBLISH: {
        char rid[PROTO_RID_LEN * 2 + 1];
        for (int i = 0; i < PROTO_RID_LEN; ++i)
            sprintf(rid + 2 * i, "%02x", req->rid[i]);
        arg(&a, "ng:seq", 6);
        argf(&a, "ng:idem:%s", rid);
        argf(&a, "ng:u:%s", o->user);
        argf(&a, "ng:u:%s:unread", o->user);
        arg(&a, "ng:stream", 9);
        arg(&a, o->user, o->user_len);
        arg(&a, req->message.ptr, req->message.len);
        arg(&a, req->kind.ptr, req->kind.len);
        argf(&a, "%" PRId64, store->retention_ms);
        argf(&a, "%d", NOTIFY_ANSWER_TTL_S(req->keyed));
        run(o, SCRIPT_PUBLISH, 5, &a);
        return;
    }
    case PROTO_OP_PAGE:
    case PROTO_OP_SINCE:
        o->from = req->op == PROTO_OP_PAGE ? req->before : req->after;
        o->limit = req->limit;
        read_page(o);
        return;
    case PROTO_OP_MARK_READ:
        argf(&a, "ng:u:%s:unread", o->user);
        arg(&a, "ng:stream", 9);
        argf(&a, "ng:u:%s", o->user);
        arg(&a, o->user, o->user_len);
        argf(&a, "%" PRIu64, req->id);
        argf(&a, "%" PRId64, store->retention_ms);
        run(o, SCRIPT_MARK_READ, 3, &a);
        return;
    case PROTO_OP_MARK_ALL_READ:
        mark_all(o, 0);
        return;
    case PROTO_OP_HEALTH: {
        static const char *argv[] = {"PING"};
        static const size_t argvlen[] = {4};
        if (redis_client_command(store->rc, on_ping, o, 0, 1, argv, argvlen) != 0) {
            proto_reply_t rep = {.status = PROTO_ST_OK, .redis_ok = false};
            finish(o, &rep);
        }
        return;
    }
    default:
        finish_error(o, PROTO_ST_BAD_REQUEST, "operation not served by history-svc");
        return;
    }
}
