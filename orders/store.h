/*
 * Orders and inventory in Redis. Placing an order is one Lua script: it checks the stock of every item, decrements
 * it, records the order and publishes the customer's notification (the same Lua as POST /v1/notifications, see
 * common/notify_lua.h), all or nothing, so stock never goes below zero under concurrent orders and an order is never
 * without its notification. The answer is kept under the request id for 24 h: a request resent by nng, or retried by
 * the client with the same Idempotency-Key, gets the first answer and changes nothing.
 *
 * Keys: ord:stock (hash product -> quantity), ord:seq (order counter), ord:o:<order id> (the order record, JSON),
 * ord:idem:<request id> ("<status> <body>" of the first answer). Loop thread of the redis client.
 */
#ifndef NOTIGATE_ORDERS_STORE_H
#define NOTIGATE_ORDERS_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include "order.h"
#include "proto.h"
#include "redis_client.h"

typedef struct st_orders_store_t orders_store_t;

/* The HTTP answer of an operation: status and JSON body (valid during the call). status 503: Redis is unreachable. */
typedef void (*orders_store_cb)(int status, const char *body, size_t len, void *data);

orders_store_t *orders_store_create(redis_client_t *rc, int64_t stream_retention_ms);
void orders_store_destroy(orders_store_t *store);

/* Loads the seed's initial stock (item1 100, item2 50, item3 200) if there is no stock at all. Call on connect. */
void orders_store_seed_stock(orders_store_t *store);

/* Places order (body is the client's JSON, echoed in the record) under request id rid. keyed: rid comes from the
 * client's Idempotency-Key, so the answer is kept for a day; else only for the gateway's resends (10 minutes). */
void orders_store_place(orders_store_t *store, const uint8_t rid[PROTO_RID_LEN], bool keyed, const order_t *order, const char *body,
                        size_t len, orders_store_cb cb, void *data);

/* GET /v1/orders/{id}: 200 with the record, or 404. */
void orders_store_get(orders_store_t *store, const char *order_id, size_t len, orders_store_cb cb, void *data);

/* GET /v1/inventory: 200 {"inventory":{product: quantity}}. */
void orders_store_inventory(orders_store_t *store, orders_store_cb cb, void *data);

/* PUT /v1/inventory/{product}: sets the stock; 200 {"product_id","quantity"}. */
void orders_store_set_stock(orders_store_t *store, const char *product, size_t len, int64_t quantity, orders_store_cb cb,
                            void *data);

#endif
