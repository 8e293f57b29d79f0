/*
 * orders: the seed's OrderProcessor as a worker kind behind the gateway's route table. It serves, as FORWARD requests
 * from the gateway: POST /v1/orders, GET /v1/orders/{order_id}, GET /v1/inventory, PUT /v1/inventory/{product_id}.
 * Inventory and orders live in Redis, so any number of replicas serve the same stock; each dials in to the gateway.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "log.h"
#include "order.h"
#include "redis_client.h"
#include "rpc_server.h"
#include "store.h"
#include "worker.h"

typedef struct st_orders_t {
    h2o_loop_t *loop;
    orders_store_t *store;
    int64_t test_delay_ms; /* test-only: wait between applying an order and answering it */
    h2o_timeout_t delay;
} orders_t;

/* An answer held back by --test-delay-after-apply-ms. */
typedef struct st_delayed_t {
    rpc_call_t *call;
    int status;
    h2o_timeout_entry_t entry;
    size_t len;
    char body[];
} delayed_t;

static orders_t app;

static void reply(rpc_call_t *call, int status, const char *body, size_t len)
{
    proto_reply_t rep = {
        .status = PROTO_ST_OK, .http_status = (uint32_t)status, .content_type = {"application/json", 16}, .body = {body, len}};
    rpc_call_reply(call, &rep);
}

static void reply_cstr(rpc_call_t *call, int status, const char *body)
{
    reply(call, status, body, strlen(body));
}

static void on_delay(h2o_timeout_entry_t *entry)
{
    delayed_t *d = H2O_STRUCT_FROM_MEMBER(delayed_t, entry, entry);
    reply(d->call, d->status, d->body, d->len);
    free(d);
}

static void on_answer(int status, const char *body, size_t len, void *data)
{
    rpc_call_t *call = data;
    reply(call, status, body, len);
}

static void on_placed(int status, const char *body, size_t len, void *data)
{
    rpc_call_t *call = data;
    if (app.test_delay_ms == 0 || status == 503) {
        reply(call, status, body, len);
        return;
    }
    delayed_t *d = calloc(1, sizeof(*d) + len);
    if (d == NULL)
        abort();
    d->call = call;
    d->status = status;
    d->len = len;
    memcpy(d->body, body, len);
    d->entry.cb = on_delay;
    log_info("test delay: order applied, answer held back", "ms=%d", (int)app.test_delay_ms);
    h2o_timeout_link(app.loop, &app.delay, &d->entry);
}

static bool method_is(proto_str_t m, const char *s)
{
    return m.len == strlen(s) && memcmp(m.ptr, s, m.len) == 0;
}

static void method_not_allowed(rpc_call_t *call, const char *allow)
{
    char body[160];
    snprintf(body, sizeof(body), "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use %s\"}}", allow);
    reply_cstr(call, 405, body);
}

static void place_order(rpc_call_t *call, const proto_request_t *req)
{
    order_t order;
    const char *reason;
    if (order_parse(&order, req->body.ptr, req->body.len, &reason) != 0) {
        json_t *answer = json_pack("{s:s, s:s}", "status", "failed", "error", reason);
        char *text = json_dumps(answer, JSON_COMPACT);
        reply_cstr(call, 400, text);
        free(text);
        json_decref(answer);
        return;
    }
    orders_store_place(app.store, req->rid, req->idempotency_key.len != 0, &order, req->body.ptr, req->body.len, on_placed, call);
    order_dispose(&order);
}

static void set_stock(rpc_call_t *call, const proto_request_t *req, const char *product, size_t product_len)
{
    int64_t quantity;
    if (order_parse_stock(req->body.ptr, req->body.len, &quantity) != 0)
        reply_cstr(call, 400,
                   "{\"error\":{\"code\":\"invalid_quantity\",\"message\":\"body must be {\\\"quantity\\\": an integer "
                   "from 0 to 1000000000}\"}}");
    else
        orders_store_set_stock(app.store, product, product_len, quantity, on_answer, call);
}

static void on_request(rpc_call_t *call, const proto_request_t *req, void *data)
{
    if (req->op == PROTO_OP_HEALTH) {
        proto_reply_t rep = {.status = PROTO_ST_OK, .redis_ok = data != NULL && redis_client_is_connected(data)};
        rpc_call_reply(call, &rep);
        return;
    }
    if (req->op != PROTO_OP_FORWARD) {
        rpc_call_reply_error(call, PROTO_ST_BAD_REQUEST, "operation not served by the orders worker");
        return;
    }
    const char *param;
    size_t param_len;
    switch (order_route_match(req->path.ptr, req->path.len, &param, &param_len)) {
    case ORDER_ROUTE_ORDERS:
        if (method_is(req->method, "POST"))
            place_order(call, req);
        else
            method_not_allowed(call, "POST");
        break;
    case ORDER_ROUTE_ORDER:
        if (!method_is(req->method, "GET"))
            method_not_allowed(call, "GET");
        else if (!order_valid_product_id(param, param_len)) /* order ids use the same alphabet */
            reply_cstr(call, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such order\"}}");
        else
            orders_store_get(app.store, param, param_len, on_answer, call);
        break;
    case ORDER_ROUTE_INVENTORY:
        if (method_is(req->method, "GET"))
            orders_store_inventory(app.store, on_answer, call);
        else
            method_not_allowed(call, "GET");
        break;
    case ORDER_ROUTE_PRODUCT:
        if (!method_is(req->method, "PUT"))
            method_not_allowed(call, "PUT");
        else if (!order_valid_product_id(param, param_len))
            reply_cstr(call, 400,
                       "{\"error\":{\"code\":\"invalid_product_id\",\"message\":\"product_id must be 1-64 characters of "
                       "A-Z a-z 0-9 _ . -\"}}");
        else
            set_stock(call, req, param, param_len);
        break;
    case ORDER_ROUTE_NOT_FOUND:
        reply_cstr(call, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route in the orders worker\"}}");
        break;
    }
}

static bool redis_healthy(void *data)
{
    return redis_client_is_connected(data);
}

static void on_redis_connect(redis_client_t *rc, void *data)
{
    orders_store_seed_stock(data);
}

int main(int argc, char **argv)
{
    const char *gateway = "tcp://127.0.0.1:7103", *redis_url = "redis://127.0.0.1:6379", *health_file = "";
    int64_t redis_timeout_ms = 1000, concurrency = 256, retention_s = 3600, drain_ms = 5000, test_delay_ms = 0;
    config_option_t options[] = {
        {"gateway", "GATEWAY_URL", CONFIG_STRING, &gateway, 0, 0, "gateway orders listener(s) to dial, comma-separated nng URLs"},
        {"redis-url", NULL, CONFIG_STRING, &redis_url, 0, 0,
         "Redis holding stock and orders: redis://[:password@]host[:port][/db]"},
        {"redis-timeout-ms", NULL, CONFIG_INT, &redis_timeout_ms, 10, 60000, "deadline of one Redis command"},
        {"concurrency", NULL, CONFIG_INT, &concurrency, 1, 65536, "requests served at once (nng contexts)"},
        {"stream-retention", NULL, CONFIG_INT, &retention_s, 60, 86400 * 30,
         "seconds of events kept in the notifiers' stream (as history-svc's)"},
        {"drain-ms", NULL, CONFIG_INT, &drain_ms, 0, 600000, "on SIGTERM, how long to finish requests in flight"},
        {"health-file", NULL, CONFIG_STRING, &health_file, 0, 0,
         "file rewritten every second while healthy (for container health checks)"},
        {"test-delay-after-apply-ms", NULL, CONFIG_INT, &test_delay_ms, 0, 600000,
         "TESTS ONLY: hold each order's answer this long after it was applied"},
        {NULL}};
    int exit_code = config_init_process("orders", "Places orders against the shared stock in Redis, for the gateway over nng.",
                                        options, argc, argv);
    if (exit_code >= 0)
        return exit_code;
    worker_block_signals();

    app.loop = h2o_evloop_create();
    app.test_delay_ms = test_delay_ms;
    h2o_timeout_init(app.loop, &app.delay, test_delay_ms > 0 ? (uint64_t)test_delay_ms : 1);
    redis_client_t *rc = redis_client_create(app.loop, redis_url, "orders", (uint32_t)redis_timeout_ms, on_redis_connect, NULL);
    if (rc == NULL)
        return 2;
    app.store = orders_store_create(rc, retention_s * 1000);
    /* the connect hook needs the store, made after the client: set it now, before the loop first runs */
    redis_client_set_connect_cb(rc, on_redis_connect, app.store);
    worker_wait_ready(app.loop, redis_healthy, rc, (uint32_t)redis_timeout_ms);
    if (test_delay_ms > 0)
        log_warn("TEST MODE: order answers are held back after the order is applied", "ms=%d", (int)test_delay_ms);

    char identity[128];
    rpc_identity(identity, sizeof(identity), "orders");
    rpc_server_t *server = rpc_server_create(app.loop, gateway, (unsigned)concurrency, identity, on_request, rc);
    if (server == NULL)
        return 2;
    log_info("orders started", "identity=%s gateway=%s redis=%s", identity, gateway, redis_url);

    worker_run(app.loop, server, (uint32_t)drain_ms, health_file, redis_healthy, rc);

    if (rpc_server_destroy(server) != 0) {
        /* requests in flight were answered; only the socket's teardown is stuck */
        log_info("orders stopped", "nng_close=stuck");
        return 0;
    }
    redis_client_destroy(rc);
    orders_store_destroy(app.store);
    h2o_timeout_dispose(app.loop, &app.delay);
    h2o_evloop_destroy(app.loop);
    log_info("orders stopped", NULL);
    return 0;
}
