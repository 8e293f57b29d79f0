#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "json_out.h"
#include "log.h"
#include "notify_lua.h"
#include "redis_script.h"
#include "store.h"
#include "valid.h"


/* KEYS: stock, order seq, idem, then publish's five (ng:seq, ng:idem:<rid>, ng:u:<customer>, unread, ng:stream).
 * ARGV: customer, body (JSON), YYYYMMDDHHMMSS, processed_at, retention ms, idem ttl s, n, then n product/quantity pairs.
 * Returns {replayed, "<status> <body>"}. Redis does not undo what a script wrote before an error: everything that can
 * fail (reading the body) comes before the first write. */
static const char PLACE_LUA[] =
    NOTIFY_PUBLISH_LUA "local prev = redis.call('GET', KEYS[3])\n"
                       "if prev then return {1, prev} end\n"
                       "local ok, record = pcall(cjson.decode, ARGV[2])\n"
                       "if not ok or type(record) ~= 'table' then\n"
                       "  return {0, '400 {\"status\":\"failed\",\"error\":\"Invalid JSON\"}'}\n"
                       "end\n"
                       "local n = tonumber(ARGV[7])\n"
                       "for i = 1, n do\n"
                       "  local have = tonumber(redis.call('HGET', KEYS[1], ARGV[6 + 2 * i]) or '0')\n"
                       "  if have < tonumber(ARGV[7 + 2 * i]) then\n"
                       "    local answer = '409 {\"status\":\"failed\",\"error\":\"insufficient stock\"}'\n"
                       "    redis.call('SET', KEYS[3], answer, 'EX', ARGV[6])\n"
                       "    return {0, answer}\n"
                       "  end\n"
                       "end\n"
                       "for i = 1, n do redis.call('HINCRBY', KEYS[1], ARGV[6 + 2 * i], -tonumber(ARGV[7 + 2 * i])) end\n"
                       "local order_id = 'ORD' .. ARGV[3] .. string.format('%06d', redis.call('INCR', KEYS[2]) % 1000000)\n"
                       "record.order_id = order_id\n"
                       "record.status = 'completed'\n"
                       "record.processed_at = ARGV[4]\n"
                       "local encoded = cjson.encode(record)\n"
                       "redis.call('SET', 'ord:o:' .. order_id, encoded)\n"
                       "publish(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], 'Order ' .. order_id .. ' completed', "
                       "'order', ARGV[5], ARGV[6])\n"
                       "local answer = '201 {\"status\":\"success\",\"order\":' .. encoded .. '}'\n"
                       "redis.call('SET', KEYS[3], answer, 'EX', ARGV[6])\n"
                       "return {0, answer}\n";

/* KEYS: stock. Loads the initial stock if there is none. */
static const char SEED_LUA[] = "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
                               "  redis.call('HSET', KEYS[1], 'item1', 100, 'item2', 50, 'item3', 200)\n"
                               "  return 1\n"
                               "end\n"
                               "return 0\n";

struct st_orders_store_t {
    redis_client_t *rc;
    int64_t retention_ms;
    redis_script_t place, seed;
};

typedef struct st_call_t {
    orders_store_cb cb;
    void *data;
    char product[VALID_USER_ID_MAX + 1]; /* set_stock */
    int64_t quantity;
} call_t;

orders_store_t *orders_store_create(redis_client_t *rc, int64_t stream_retention_ms)
{
    orders_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        abort();
    store->rc = rc;
    store->retention_ms = stream_retention_ms;
    redis_script_init(&store->place, "place_order", PLACE_LUA);
    redis_script_init(&store->seed, "seed_stock", SEED_LUA);
    return store;
}

void orders_store_destroy(orders_store_t *store)
{
    free(store);
}

static call_t *call_new(orders_store_cb cb, void *data)
{
    call_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->cb = cb;
    c->data = data;
    return c;
}

static void answer(call_t *c, int status, const char *body)
{
    c->cb(status, body, strlen(body), c->data);
    free(c);
}

static const char UNAVAILABLE[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"the order store (Redis) is unreachable\"}}";
/* A place whose script may have run: the connection dropped, or Redis did not answer within --redis-timeout-ms. */
static const char PLACE_UNKNOWN[] =
    "{\"error\":{\"code\":\"unavailable\",\"message\":\"the order store (Redis) did not answer: the "
    "order may or may not have been placed; retry with the same Idempotency-Key\"}}";

/* A NULL or error reply: 503 (logged). Returns true if it was one. */
static bool failed(call_t *c, redisReply *r, const char *what)
{
    if (r != NULL && r->type != REDIS_REPLY_ERROR)
        return false;
    if (r != NULL) {
        char q[256];
        log_error("redis command failed", "op=%s error=%s", what, log_quote(q, sizeof(q), r->str));
    }
    answer(c, 503, UNAVAILABLE);
    return true;
}

static void on_seeded(redisReply *r, void *data)
{
    if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        log_info("inventory was empty: loaded the initial stock", "item1=100 item2=50 item3=200");
}

void orders_store_seed_stock(orders_store_t *store)
{
    const char *args[] = {"ord:stock"};
    size_t lens[] = {9};
    redis_script_run(store->rc, &store->seed, 1, 1, args, lens, on_seeded, NULL);
}

static void on_placed(redisReply *r, void *data)
{
    call_t *c = data;
    if (r == NULL) {
        answer(c, 503, PLACE_UNKNOWN);
        return;
    }
    if (failed(c, r, "place_order"))
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING || r->element[1]->len < 5) {
        answer(c, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"unexpected reply from the order store\"}}");
        return;
    }
    const char *s = r->element[1]->str;
    if (r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1)
        log_info("order replayed: request already applied", "answer=%.3s", s);
    int status = atoi(s);
    c->cb(status >= 200 && status <= 599 ? status : 500, s + 4, r->element[1]->len - 4, c->data);
    free(c);
}

void orders_store_place(orders_store_t *store, const uint8_t rid[PROTO_RID_LEN], bool keyed, const order_t *order, const char *body,
                        size_t len, orders_store_cb cb, void *data)
{
    call_t *c = call_new(cb, data);
    char rid_hex[PROTO_RID_LEN * 2 + 1], k_idem[64], k_nidem[64], k_user[80], k_unread[96], stamp[32], processed[64], retention[24],
        ttl[16], n[8];
    char qty[ORDER_ITEMS_MAX][24];
    const char *args[16 + 2 * ORDER_ITEMS_MAX];
    size_t lens[16 + 2 * ORDER_ITEMS_MAX];
    int nargs = 0;

    for (int i = 0; i < PROTO_RID_LEN; ++i)
        sprintf(rid_hex + 2 * i, "%02x", rid[i]);
    snprintf(k_idem, sizeof(k_idem), "ord:idem:%s", rid_hex);
    snprintf(k_nidem, sizeof(k_nidem), "ng:idem:o%s", rid_hex);
    snprintf(k_user, sizeof(k_user), "ng:u:%.*s", (int)order->customer_len, order->customer_id);
    snprintf(k_unread, sizeof(k_unread), "ng:u:%.*s:unread", (int)order->customer_len, order->customer_id);
    int64_t now = clock_wall_ms();
    time_t sec = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
    clock_iso8601(processed, sizeof(processed), now);
    snprintf(retention, sizeof(retention), "%" PRId64, store->retention_ms);
    snprintf(ttl, sizeof(ttl), "%d", NOTIFY_ANSWER_TTL_S(keyed));
    snprintf(n, sizeof(n), "%zu", order->nlines);

#define ARG(s, l) (args[nargs] = (s), lens[nargs++] = (l))
#define ARGZ(s) ARG((s), strlen(s))
    ARGZ("ord:stock");
    ARGZ("ord:seq");
    ARGZ(k_idem);
    ARGZ("ng:seq");
    ARGZ(k_nidem);
    ARGZ(k_user);
    ARGZ(k_unread);
    ARGZ("ng:stream");
    ARG(order->customer_id, order->customer_len);
    ARG(body, len);
    ARGZ(stamp);
    ARGZ(processed);
    ARGZ(retention);
    ARGZ(ttl);
    ARGZ(n);
    for (size_t i = 0; i < order->nlines; ++i) {
        snprintf(qty[i], sizeof(qty[i]), "%" PRId64, order->lines[i].quantity);
        ARG(order->lines[i].product_id, order->lines[i].len);
        ARGZ(qty[i]);
    }
#undef ARG
#undef ARGZ
    if (redis_script_run(store->rc, &store->place, 8, nargs, args, lens, on_placed, c) != 0)
        answer(c, 503, UNAVAILABLE);
}

static void on_get(redisReply *r, void *data)
{
    call_t *c = data;
    if (failed(c, r, "get_order"))
        return;
    if (r->type != REDIS_REPLY_STRING) {
        answer(c, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such order\"}}");
        return;
    }
    c->cb(200, r->str, r->len, c->data);
    free(c);
}

void orders_store_get(orders_store_t *store, const char *order_id, size_t len, orders_store_cb cb, void *data)
{
    call_t *c = call_new(cb, data);
    char key[128];
    snprintf(key, sizeof(key), "ord:o:%.*s", (int)len, order_id);
    const char *argv[] = {"GET", key};
    if (redis_client_command(store->rc, on_get, c, 0, 2, argv, NULL) != 0)
        answer(c, 503, UNAVAILABLE);
}

static void on_inventory(redisReply *r, void *data)
{
    call_t *c = data;
    if (failed(c, r, "inventory"))
        return;
    json_out_t o = {NULL};
    json_out_lit(&o, "{\"inventory\":{");
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (i != 0)
            json_out_lit(&o, ",");
        json_out_str(&o, r->element[i]->str, r->element[i]->len);
        json_out_lit(&o, ":");
        json_out_raw(&o, r->element[i + 1]->str, r->element[i + 1]->len); /* an integer, as HINCRBY and HSET left it */
    }
    json_out_lit(&o, "}}");
    c->cb(200, o.buf, o.len, c->data);
    json_out_dispose(&o);
    free(c);
}

void orders_store_inventory(orders_store_t *store, orders_store_cb cb, void *data)
{
    call_t *c = call_new(cb, data);
    const char *argv[] = {"HGETALL", "ord:stock"};
    if (redis_client_command(store->rc, on_inventory, c, 0, 2, argv, NULL) != 0)
        answer(c, 503, UNAVAILABLE);
}

static void on_set(redisReply *r, void *data)
{
    call_t *c = data;
    if (failed(c, r, "set_stock"))
        return;
    json_out_t o = {NULL};
    json_out_lit(&o, "{\"product_id\":");
    json_out_str(&o, c->product, strlen(c->product));
    json_out_lit(&o, ",\"quantity\":");
    json_out_i64(&o, c->quantity);
    json_out_lit(&o, "}");
    c->cb(200, o.buf, o.len, c->data);
    json_out_dispose(&o);
    free(c);
}

void orders_store_set_stock(orders_store_t *store, const char *product, size_t len, int64_t quantity, orders_store_cb cb,
                            void *data)
{
    call_t *c = call_new(cb, data);
    char q[24];
    memcpy(c->product, product, len);
    c->quantity = quantity;
    snprintf(q, sizeof(q), "%" PRId64, quantity);
    const char *argv[] = {"HSET", "ord:stock", c->product, q};
    if (redis_client_command(store->rc, on_set, c, 0, 4, argv, NULL) != 0)
        answer(c, 503, UNAVAILABLE);
}
