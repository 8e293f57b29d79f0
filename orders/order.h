/*
 * An order, as the seed's OrderProcessor takes it: {"customer_id", "items":[{"product_id","quantity"}], "total_amount"},
 * and its validation, with the seed's reasons ("Missing fields", "Amount must be > 0"). Pure, any thread.
 */
#ifndef NOTIGATE_ORDER_H
#define NOTIGATE_ORDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define ORDER_ITEMS_MAX 100        /* items in one order */
#define ORDER_QUANTITY_MAX 1000000 /* of one item */
#define ORDER_DEPTH_MAX 32         /* nesting of the body's arrays and objects (the store's Lua JSON stops at 1000) */

typedef struct st_order_t {
    json_t *_root;           /* the parsed body; owns the strings below */
    const char *customer_id; /* a user id: the order's notification goes to this user */
    size_t customer_len;
    double total_amount;
    /* the items with each product once (quantities of a product named twice added up), for the stock check */
    struct {
        const char *product_id;
        size_t len;
        int64_t quantity;
    } lines[ORDER_ITEMS_MAX];
    size_t nlines;
} order_t;

/* Parses and validates body. Returns 0, or -1 with *reason set to the answer's "error" (the seed's wording where it
 * has one: "Missing fields", "Amount must be > 0"). A body nested deeper than ORDER_DEPTH_MAX is refused: the record
 * echoes the whole body, and Redis's Lua (cjson) must be able to read it. On success release with order_dispose. */
int order_parse(order_t *order, const char *body, size_t len, const char **reason);
void order_dispose(order_t *order);

/* A product id: 1-64 characters of [A-Za-z0-9_.-]. */
int order_valid_product_id(const char *s, size_t len);

#define ORDER_STOCK_MAX 1000000000 /* the stock of one product */

/* Parses the body of PUT /v1/inventory/{product_id}, {"quantity": an integer from 0 to ORDER_STOCK_MAX} (other fields
 * ignored). Returns 0 with *quantity set, or -1. */
int order_parse_stock(const char *body, size_t len, int64_t *quantity);

/* The routes of the orders worker, by path alone (the caller checks the method). */
typedef enum en_order_route_t {
    ORDER_ROUTE_NOT_FOUND = 0,
    ORDER_ROUTE_ORDERS,    /* /v1/orders */
    ORDER_ROUTE_ORDER,     /* /v1/orders/{order_id} */
    ORDER_ROUTE_INVENTORY, /* /v1/inventory */
    ORDER_ROUTE_PRODUCT,   /* /v1/inventory/{product_id} */
} order_route_t;

/* Matches a request path. For ORDER_ROUTE_ORDER and ORDER_ROUTE_PRODUCT, *param and *param_len are the last segment
 * (non-empty, no '/', pointing into path; not yet validated). */
order_route_t order_route_match(const char *path, size_t len, const char **param, size_t *param_len);

#endif
