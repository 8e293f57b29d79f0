/*
 * libFuzzer target: what the orders worker reads from a forwarded request before Redis sees anything. The input is a
 * path, a newline, then a body (no newline: all body): order_route_match on the path, and on the body both order_parse
 * (POST /v1/orders) and order_parse_stock (PUT /v1/inventory/{id}). Whatever the bytes: a route whose parameter is one
 * segment of the path; an order whose customer and products are valid ids, whose amount is a positive finite number,
 * whose lines name each product once with quantities that add up to the items' (as jansson reads the body again); a
 * stock within bounds, equal to the body's "quantity".
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fuzz.h"
#include "order.h"
#include "valid.h"

static void check_route(const char *path, size_t len)
{
    const char *param;
    size_t plen;
    order_route_t r = order_route_match(path, len, &param, &plen);
    switch (r) {
    case ORDER_ROUTE_ORDER:
    case ORDER_ROUTE_PRODUCT: {
        const char *prefix = r == ORDER_ROUTE_ORDER ? "/v1/orders/" : "/v1/inventory/";
        size_t n = strlen(prefix);
        FUZZ_ASSERT(plen >= 1 && param == path + n && n + plen == len && memcmp(path, prefix, n) == 0);
        FUZZ_ASSERT(memchr(param, '/', plen) == NULL);
        break;
    }
    case ORDER_ROUTE_ORDERS:
        FUZZ_ASSERT(len == 10 && memcmp(path, "/v1/orders", 10) == 0 && param == NULL);
        break;
    case ORDER_ROUTE_INVENTORY:
        FUZZ_ASSERT(len == 13 && memcmp(path, "/v1/inventory", 13) == 0 && param == NULL);
        break;
    case ORDER_ROUTE_NOT_FOUND:
        FUZZ_ASSERT(param == NULL && plen == 0);
        break;
    default:
        FUZZ_ASSERT(!"a route order_route_match does not define");
    }
}

static void check_order(const char *body, size_t len)
{
    order_t order;
    const char *reason = NULL;
    if (order_parse(&order, body, len, &reason) != 0) {
        FUZZ_ASSERT(reason != NULL && reason[0] != '\0');
        FUZZ_ASSERT(order._root == NULL && order.nlines == 0 && order.customer_id == NULL);
        return;
    }
    FUZZ_ASSERT(valid_user_id(order.customer_id, order.customer_len));
    FUZZ_ASSERT(order.total_amount > 0 && isfinite(order.total_amount));
    FUZZ_ASSERT(order.nlines >= 1 && order.nlines <= ORDER_ITEMS_MAX);
    int64_t lines_total = 0;
    for (size_t i = 0; i < order.nlines; ++i) {
        FUZZ_ASSERT(order_valid_product_id(order.lines[i].product_id, order.lines[i].len));
        FUZZ_ASSERT(order.lines[i].quantity >= 1 && order.lines[i].quantity <= (int64_t)ORDER_ITEMS_MAX * ORDER_QUANTITY_MAX);
        for (size_t j = 0; j < i; ++j)
            FUZZ_ASSERT(!(order.lines[j].len == order.lines[i].len &&
                          memcmp(order.lines[j].product_id, order.lines[i].product_id, order.lines[i].len) == 0));
        lines_total += order.lines[i].quantity;
    }
    /* the lines hold every item: read the body again and add its quantities up */
    json_t *items = json_object_get(order._root, "items"), *item;
    size_t i;
    int64_t items_total = 0;
    FUZZ_ASSERT(json_array_size(items) >= order.nlines);
    json_array_foreach(items, i, item) items_total += json_integer_value(json_object_get(item, "quantity"));
    FUZZ_ASSERT(items_total == lines_total);
    order_dispose(&order);
    FUZZ_ASSERT(order._root == NULL);
}

static void check_stock(const char *body, size_t len)
{
    int64_t q = -1;
    if (order_parse_stock(body, len, &q) != 0) {
        FUZZ_ASSERT(q == -1); /* left alone */
        return;
    }
    FUZZ_ASSERT(q >= 0 && q <= ORDER_STOCK_MAX);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_ASSERT(json_integer_value(json_object_get(root, "quantity")) == q);
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *nl = memchr(in, '\n', size);
    size_t path_len = nl != NULL ? (size_t)(nl - in) : 0;
    const char *body = nl != NULL ? nl + 1 : in;
    size_t body_len = size - (size_t)(body - in);
    check_route(in, path_len);
    check_order(body, body_len);
    check_stock(body, body_len);
    return 0;
}
