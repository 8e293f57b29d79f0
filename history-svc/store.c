#include <inttypes.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "notify_lua.h"
#include "store.h"
#include "valid.h"

#define IDEMPOTENCY_TTL_S 86400
#define MARK_ALL_BATCH 1000 /* ids marked per script run, so that one call never blocks Redis for long */

/* KEYS: seq, idem, user set, unread set, stream. ARGV: user, message, kind, retention ms, idempotency ttl s.
 * Returns {id, ts, replayed}. */
static const char PUBLISH_LUA[] = NOTIFY_PUBLISH_LUA
    "local id, ts, replayed = publish(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n"
    "return {id, ts, replayed}\n";

/* KEYS: user set, unread set. ARGV: user (not used), before (0: from the newest), limit.
 * Returns {unread count, more, id, message, kind, ts, read, id, ...}, newest first. */
static const char PAGE_LUA[] =
    "local max = '+inf'\n"
    "if ARGV[2] ~= '0' then max = '(' .. ARGV[2] end\n"
    "local limit = tonumber(ARGV[3])\n"
    "local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'LIMIT', 0, limit + 1)\n"
    "local more = 0\n"
    "if #ids > limit then more = 1; ids[#ids] = nil end\n"
    "local out = {redis.call('ZCARD', KEYS[2]), more}\n"
    "for _, id in ipairs(ids) do\n"
    "  local h = redis.call('HMGET', 'ng:n:' .. id, 'm', 'k', 'ts', 'r')\n"
    "  if h[1] and h[2] and h[3] and h[4] then\n"
    "    out[#out + 1] = id; out[#out + 1] = h[1]; out[#out + 1] = h[2]; out[#out + 1] = h[3]; out[#out + 1] = h[4]\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: user set, unread set. ARGV: user (not used), after, limit.
 * Returns {unread count, more, id, message, kind, ts, read, id, ...}, oldest first, ids above after. */
static const char SINCE_LUA[] =
    "local limit = tonumber(ARGV[3])\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf', 'LIMIT', 0, limit + 1)\n"
    "local more = 0\n"
    "if #ids > limit then more = 1; ids[#ids] = nil end\n"
    "local out = {redis.call('ZCARD', KEYS[2]), more}\n"
    "for _, id in ipairs(ids) do\n"
    "  local h = redis.call('HMGET', 'ng:n:' .. id, 'm', 'k', 'ts', 'r')\n"
    "  if h[1] and h[2] and h[3] and h[4] then\n"
    "    out[#out + 1] = id; out[#out + 1] = h[1]; out[#out + 1] = h[2]; out[#out + 1] = h[3]; out[#out + 1] = h[4]\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: unread set, stream. ARGV: user, id, retention ms. Returns 1, or 0 if the user has no such notification. */
static const char MARK_READ_LUA[] =
    "local key = 'ng:n:' .. ARGV[2]\n"
    "if redis.call('HGET', key, 'u') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', key, 'r', '1')\n"
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
    "  for _, id in ipairs(ids) do redis.call('HSET', 'ng:n:' .. id, 'r', '1') end\n"
    "  redis.call('ZREM', KEYS[1], unpack(ids))\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  redis.call('XADD', KEYS[2], 'MINID', '~', string.format('%d', now - tonumber(ARGV[4])), '*',\n"
    "             't', 'ra', 'u', ARGV[1], 'upto', ids[#ids])\n"
    "end\n"
    "return {#ids, upto}\n";

typedef struct st_script_t {
    const char *name;
    const char *body;
    char sha[41];
} script_t;

enum { SCRIPT_PUBLISH, SCRIPT_PAGE, SCRIPT_SINCE, SCRIPT_MARK_READ, SCRIPT_MARK_ALL_READ, SCRIPT_COUNT };

struct st_history_store_t {
    redis_client_t *rc;
    int64_t retention_ms;
    script_t scripts[SCRIPT_COUNT];
};

#define MAX_ARGS 16

/* One script run in flight: its arguments are copied into arena so that a NOSCRIPT retry can resend them. */
typedef struct st_eval_t {
    history_store_t *store;
    const script_t *script;
    proto_op_t op;
    history_store_cb cb;
    void *data;
    bool retried;
    int argc;
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
    uint64_t marked; /* MARK_ALL_READ: ids marked by earlier batches */
    size_t arena_used, arena_size;
    char arena[];
} eval_t;

static void sha1_hex(const char *s, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s, strlen(s), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; ++i)
        sprintf(out + 2 * i, "%02x", md[i]);
}

history_store_t *history_store_create(redis_client_t *rc, int64_t stream_retention_ms)
{
    history_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        abort();
    store->rc = rc;
    store->retention_ms = stream_retention_ms;
    store->scripts[SCRIPT_PUBLISH] = (script_t){"publish", PUBLISH_LUA};
    store->scripts[SCRIPT_PAGE] = (script_t){"page", PAGE_LUA};
    store->scripts[SCRIPT_SINCE] = (script_t){"since", SINCE_LUA};
    store->scripts[SCRIPT_MARK_READ] = (script_t){"mark_read", MARK_READ_LUA};
    store->scripts[SCRIPT_MARK_ALL_READ] = (script_t){"mark_all_read", MARK_ALL_READ_LUA};
    for (int i = 0; i < SCRIPT_COUNT; ++i)
        sha1_hex(store->scripts[i].body, store->scripts[i].sha);
    return store;
}

void history_store_destroy(history_store_t *store)
{
    free(store);
}

/* ---- building a script call ------------------------------------------------------------------------------------- */

static eval_t *eval_new(history_store_t *store, int script, proto_op_t op, history_store_cb cb, void *data, size_t arena)
{
    eval_t *e = malloc(sizeof(*e) + arena);
    if (e == NULL)
        abort();
    *e = (eval_t){.store = store, .script = &store->scripts[script], .op = op, .cb = cb, .data = data, .arena_size = arena};
    return e;
}

static void eval_arg(eval_t *e, const char *s, size_t len)
{
    if (e->argc >= MAX_ARGS || e->arena_size - e->arena_used < len)
        abort(); /* sized by the caller: a bug, not an input */
    memcpy(e->arena + e->arena_used, s, len);
    e->argv[e->argc] = e->arena + e->arena_used;
    e->argvlen[e->argc++] = len;
    e->arena_used += len;
}

static void eval_argf(eval_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void eval_argf(eval_t *e, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    eval_arg(e, buf, (size_t)n);
}

/* Starts the argument list: EVALSHA <sha> <nkeys>. Keys and arguments follow. */
static void eval_begin(eval_t *e, int nkeys)
{
    e->argc = 0;
    e->arena_used = 0;
    eval_arg(e, "EVALSHA", 7);
    eval_arg(e, e->script->sha, 40);
    eval_argf(e, "%d", nkeys);
}

static void finish(eval_t *e, proto_reply_t *rep)
{
    e->cb(rep, e->data);
    free(e);
}

static void finish_error(eval_t *e, proto_status_t status, const char *reason)
{
    proto_reply_t rep = {.status = status, .error = {reason, strlen(reason)}};
    finish(e, &rep);
}

static void on_eval_reply(redisReply *reply, void *data);

static void eval_send(eval_t *e)
{
    if (redis_client_command(e->store->rc, on_eval_reply, e, 0, e->argc, e->argv, e->argvlen) != 0)
        finish_error(e, PROTO_ST_UNAVAILABLE, "redis unavailable");
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

static void on_publish(eval_t *e, redisReply *r)
{
    uint64_t id, ts, replayed;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || !reply_u64(r->element[0], &id) || !reply_u64(r->element[1], &ts) ||
        !reply_u64(r->element[2], &replayed)) {
        finish_error(e, PROTO_ST_INTERNAL, "unexpected reply to publish");
        return;
    }
    if (replayed)
        log_info("publish replayed: request already applied", "id=%" PRIu64, id);
    proto_reply_t rep = {.status = PROTO_ST_OK, .id = id, .ts = (int64_t)ts};
    finish(e, &rep);
}

static void on_page(eval_t *e, redisReply *r, proto_str_t user)
{
    uint64_t unread, more;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || (r->elements - 2) % 5 != 0 || !reply_u64(r->element[0], &unread) ||
        !reply_u64(r->element[1], &more)) {
        finish_error(e, PROTO_ST_INTERNAL, "unexpected reply to page");
        return;
    }
    size_t n = (r->elements - 2) / 5;
    proto_notification_t items[PROTO_LIMIT_MAX];
    if (n > PROTO_LIMIT_MAX)
        n = PROTO_LIMIT_MAX;
    for (size_t i = 0; i < n; ++i) {
        redisReply **f = r->element + 2 + i * 5;
        uint64_t ts, read;
        proto_notification_t *it = items + i;
        if (!reply_u64(f[0], &it->id) || f[1]->type != REDIS_REPLY_STRING || f[2]->type != REDIS_REPLY_STRING ||
            !reply_u64(f[3], &ts) || !reply_u64(f[4], &read)) {
            finish_error(e, PROTO_ST_INTERNAL, "unexpected notification record");
            return;
        }
        it->ts = (int64_t)ts;
        it->read = read != 0;
        it->user_id = user;
        it->message = (proto_str_t){f[1]->str, f[1]->len};
        it->kind = (proto_str_t){f[2]->str, f[2]->len};
    }
    proto_reply_t rep = {
        .status = PROTO_ST_OK, .list = true, .items = items, .nitems = n, .unread_count = unread, .has_more = more != 0};
    finish(e, &rep);
}

static void issue_mark_all(eval_t *e, proto_str_t user, uint64_t upto);

static void on_eval_reply(redisReply *r, void *data)
{
    eval_t *e = data;

    if (r == NULL) {
        finish_error(e, PROTO_ST_UNAVAILABLE, "redis unavailable");
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (!e->retried && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            /* Redis lost its script cache (restart, SCRIPT FLUSH): send the body once; it is cached again */
            e->retried = true;
            e->argv[0] = "EVAL";
            e->argvlen[0] = 4;
            e->argv[1] = e->script->body;
            e->argvlen[1] = strlen(e->script->body);
            eval_send(e);
            return;
        }
        char q[256];
        log_error("redis script failed", "script=%s error=%s", e->script->name, log_quote(q, sizeof(q), r->str));
        finish_error(e, strncmp(r->str, "LOADING", 7) == 0 ? PROTO_ST_UNAVAILABLE : PROTO_ST_INTERNAL, "redis error");
        return;
    }
    e->retried = false;

    /* the user id is the first ARGV of every script: 3 + nkeys */
    switch (e->op) {
    case PROTO_OP_PUBLISH:
        on_publish(e, r);
        break;
    case PROTO_OP_PAGE:
    case PROTO_OP_SINCE:
        on_page(e, r, (proto_str_t){e->argv[5], e->argvlen[5]});
        break;
    case PROTO_OP_MARK_READ: {
        proto_reply_t rep = {.status = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? PROTO_ST_OK : PROTO_ST_NOT_FOUND};
        if (rep.status != PROTO_ST_OK)
            rep.error = (proto_str_t){"no such notification for this user", 34};
        finish(e, &rep);
    } break;
    case PROTO_OP_MARK_ALL_READ: {
        uint64_t n, upto;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !reply_u64(r->element[0], &n) || !reply_u64(r->element[1], &upto)) {
            finish_error(e, PROTO_ST_INTERNAL, "unexpected reply to mark_all_read");
            break;
        }
        e->marked += n;
        if (n == MARK_ALL_BATCH) {
            issue_mark_all(e, (proto_str_t){e->argv[6], e->argvlen[6]}, upto);
        } else {
            proto_reply_t rep = {.status = PROTO_ST_OK, .count = e->marked};
            finish(e, &rep);
        }
    } break;
    default:
        finish_error(e, PROTO_ST_INTERNAL, "unexpected operation");
        break;
    }
}

/* ---- operations ------------------------------------------------------------------------------------------------- */

static void issue_mark_all(eval_t *e, proto_str_t user, uint64_t upto)
{
    char userbuf[VALID_USER_ID_MAX + 1];
    memcpy(userbuf, user.ptr, user.len); /* user points into the arena that eval_begin reuses */
    eval_begin(e, 3);
    eval_argf(e, "ng:u:%.*s:unread", (int)user.len, userbuf);
    eval_arg(e, "ng:stream", 9);
    eval_arg(e, "ng:seq", 6);
    eval_arg(e, userbuf, user.len);
    eval_argf(e, "%" PRIu64, upto);
    eval_argf(e, "%d", MARK_ALL_BATCH);
    eval_argf(e, "%" PRId64, e->store->retention_ms);
    eval_send(e);
}

static void on_ping(redisReply *r, void *data)
{
    eval_t *e = data;
    proto_reply_t rep = {.status = PROTO_ST_OK, .redis_ok = r != NULL && r->type != REDIS_REPLY_ERROR};
    finish(e, &rep);
}

void history_store_execute(history_store_t *store, const proto_request_t *req, history_store_cb cb, void *data)
{
    const proto_str_t u = req->user_id;
    eval_t *e;

    switch (req->op) {
    case PROTO_OP_PUBLISH: {
        char rid[PROTO_RID_LEN * 2 + 1];
        for (int i = 0; i < PROTO_RID_LEN; ++i)
            sprintf(rid + 2 * i, "%02x", req->rid[i]);
        e = eval_new(store, SCRIPT_PUBLISH, req->op, cb, data, 600 + 2 * u.len + req->message.len + req->kind.len);
        eval_begin(e, 5);
        eval_arg(e, "ng:seq", 6);
        eval_argf(e, "ng:idem:%s", rid);
        eval_argf(e, "ng:u:%.*s", (int)u.len, u.ptr);
        eval_argf(e, "ng:u:%.*s:unread", (int)u.len, u.ptr);
        eval_arg(e, "ng:stream", 9);
        eval_arg(e, u.ptr, u.len);
        eval_arg(e, req->message.ptr, req->message.len);
        eval_arg(e, req->kind.ptr, req->kind.len);
        eval_argf(e, "%" PRId64, store->retention_ms);
        eval_argf(e, "%d", IDEMPOTENCY_TTL_S);
        break;
    }
    case PROTO_OP_PAGE:
        e = eval_new(store, SCRIPT_PAGE, req->op, cb, data, 400 + 3 * u.len);
        eval_begin(e, 2);
        eval_argf(e, "ng:u:%.*s", (int)u.len, u.ptr);
        eval_argf(e, "ng:u:%.*s:unread", (int)u.len, u.ptr);
        eval_arg(e, u.ptr, u.len); /* not used by the script: it puts the user at argv[5], where on_page finds it */
        eval_argf(e, "%" PRIu64, req->before);
        eval_argf(e, "%" PRIu32, req->limit);
        break;
    case PROTO_OP_SINCE:
        e = eval_new(store, SCRIPT_SINCE, req->op, cb, data, 400 + 3 * u.len);
        eval_begin(e, 2);
        eval_argf(e, "ng:u:%.*s", (int)u.len, u.ptr);
        eval_argf(e, "ng:u:%.*s:unread", (int)u.len, u.ptr);
        eval_arg(e, u.ptr, u.len); /* not used by the script: it puts the user at argv[5], where on_page finds it */
        eval_argf(e, "%" PRIu64, req->after);
        eval_argf(e, "%" PRIu32, req->limit);
        break;
    case PROTO_OP_MARK_READ:
        e = eval_new(store, SCRIPT_MARK_READ, req->op, cb, data, 400 + 2 * u.len);
        eval_begin(e, 2);
        eval_argf(e, "ng:u:%.*s:unread", (int)u.len, u.ptr);
        eval_arg(e, "ng:stream", 9);
        eval_arg(e, u.ptr, u.len);
        eval_argf(e, "%" PRIu64, req->id);
        eval_argf(e, "%" PRId64, store->retention_ms);
        break;
    case PROTO_OP_MARK_ALL_READ:
        e = eval_new(store, SCRIPT_MARK_ALL_READ, req->op, cb, data, 400 + 2 * u.len);
        issue_mark_all(e, u, 0);
        return;
    case PROTO_OP_HEALTH: {
        static const char *argv[] = {"PING"};
        static const size_t argvlen[] = {4};
        e = eval_new(store, SCRIPT_PAGE, req->op, cb, data, 0);
        if (redis_client_command(store->rc, on_ping, e, 0, 1, argv, argvlen) != 0) {
            proto_reply_t rep = {.status = PROTO_ST_OK, .redis_ok = false};
            finish(e, &rep);
        }
        return;
    }
    default: {
        proto_reply_t rep = {.status = PROTO_ST_BAD_REQUEST, .error = {"operation not served by history-svc", 35}};
        cb(&rep, data);
        return;
    }
    }
    eval_send(e);
}
