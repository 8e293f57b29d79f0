/*
 * Unit tests of orders/order.c: the seed's validation (its reasons: "Missing fields", "Amount must be > 0"), the
 * reasons this port adds for types and bounds, and the parsed order (the lines the stock check uses, a product named
 * twice added up); the inventory body ({"quantity"}) and the worker's routes. The order record itself (order_id,
 * status, processed_at) is made by the store's Lua script in Redis: tests/integration/test_orders.c checks it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "order.h"

#define R_INVALID_JSON "Invalid JSON"
#define R_MISSING "Missing fields"
#define R_AMOUNT "Amount must be > 0"
#define R_AMOUNT_TYPE "total_amount must be a number"
#define R_CUSTOMER "customer_id must be 1-64 characters of A-Z a-z 0-9 _ . -"
#define R_ITEMS "items must be a list of 1-100 items"
#define R_DEPTH "JSON nested deeper than 32 levels"
#define R_ITEM "each item needs a product_id (1-64 characters of A-Z a-z 0-9 _ . -) and a quantity from 1 to 1000000"

/* Parses body; asserts it fails with reason, and that the order is left empty. */
static void assert_rejected(const char *body, const char *reason)
{
    order_t order;
    const char *got = NULL;
    memset(&order, 0xa5, sizeof(order)); /* order_parse must not rely on the caller zeroing it */
    int rv = order_parse(&order, body, strlen(body), &got);
    ck_assert_msg(rv == -1, "accepted: %s", body);
    ck_assert_msg(got != NULL && strcmp(got, reason) == 0, "%s\n  expected reason \"%s\"\n  got \"%s\"", body, reason,
                  got != NULL ? got : "(none)");
    ck_assert_msg(order._root == NULL && order.nlines == 0 && order.customer_id == NULL, "a rejected order is not left empty: %s",
                  body);
    order_dispose(&order); /* harmless on an empty order */
}

/* Parses body, asserts success and returns the order (order_dispose it). */
static order_t parse_ok(const char *body)
{
    order_t order;
    const char *reason = NULL;
    int rv = order_parse(&order, body, strlen(body), &reason);
    ck_assert_msg(rv == 0, "rejected (%s): %s", reason != NULL ? reason : "?", body);
    return order;
}

static void assert_line(const order_t *o, size_t i, const char *product, int64_t quantity)
{
    ck_assert_msg(i < o->nlines, "no line %zu (%zu lines)", i, o->nlines);
    ck_assert_msg(o->lines[i].len == strlen(product) && memcmp(o->lines[i].product_id, product, o->lines[i].len) == 0,
                  "line %zu is %.*s, expected %s", i, (int)o->lines[i].len, o->lines[i].product_id, product);
    ck_assert_msg(o->lines[i].quantity == quantity, "line %zu (%s): quantity %lld, expected %lld", i, product,
                  (long long)o->lines[i].quantity, (long long)quantity);
}

/* ---- the seed's order ------------------------------------------------------------------------------------------ */

START_TEST(seed_example)
{
    static const char body[] =
        "{\"customer_id\":\"cust-42\",\"items\":[{\"product_id\":\"item1\",\"quantity\":2},{\"product_id\":\"item3\","
        "\"quantity\":1}],\"total_amount\":99.99}";
    order_t o = parse_ok(body);
    ck_assert_int_eq(o.customer_len, 7);
    ck_assert(memcmp(o.customer_id, "cust-42", 7) == 0);
    ck_assert(o.total_amount == 99.99);
    ck_assert_int_eq(o.nlines, 2);
    assert_line(&o, 0, "item1", 2);
    assert_line(&o, 1, "item3", 1);
    ck_assert_ptr_nonnull(o._root);
    order_dispose(&o);
    ck_assert_ptr_null(o._root);
    ck_assert_int_eq(o.nlines, 0);
}
END_TEST

/* The client's other fields are kept in the body (the record echoes them) and do not disturb validation. */
START_TEST(extra_fields_ignored)
{
    order_t o = parse_ok("{\"note\":\"gift\",\"customer_id\":\"c\",\"total_amount\":1,\"items\":[{\"quantity\":1,\"product_id\":"
                         "\"p\",\"colour\":\"red\"}],\"shipping\":{\"express\":true}}");
    ck_assert_int_eq(o.nlines, 1);
    assert_line(&o, 0, "p", 1);
    ck_assert(o.total_amount == 1.0);
    order_dispose(&o);
}
END_TEST

/* ---- the seed's reasons ---------------------------------------------------------------------------------------- */

START_TEST(missing_fields)
{
    assert_rejected("{}", R_MISSING);
    assert_rejected("{\"items\":[{\"product_id\":\"item1\",\"quantity\":1}],\"total_amount\":5}", R_MISSING);
    assert_rejected("{\"customer_id\":\"c\",\"total_amount\":5}", R_MISSING);
    assert_rejected("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"item1\",\"quantity\":1}]}", R_MISSING);
    /* as in the seed, missing fields are reported before the amount, whatever else is wrong */
    assert_rejected("{\"customer_id\":\"c\",\"total_amount\":-1}", R_MISSING);
    assert_rejected("{\"customer_id\":\"bad id!\",\"items\":5}", R_MISSING);
    /* a field that is present with null is present (the seed tests presence); its type is what is wrong */
    assert_rejected("{\"customer_id\":null,\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5}", R_CUSTOMER);
    /* names are case-sensitive */
    assert_rejected("{\"Customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5}", R_MISSING);
}
END_TEST

START_TEST(amount_must_be_positive)
{
    assert_rejected("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":0}", R_AMOUNT);
    assert_rejected("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":0.0}", R_AMOUNT);
    assert_rejected("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":-0.0}", R_AMOUNT);
    assert_rejected("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":-5}", R_AMOUNT);
    assert_rejected("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":-1e-300}", R_AMOUNT);
    /* the amount is checked before the customer and the items, as the seed does */
    assert_rejected("{\"customer_id\":\"bad id\",\"items\":[],\"total_amount\":0}", R_AMOUNT);

    /* the smallest positive amounts pass, integers and reals alike, up to the largest double */
    order_t o = parse_ok("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":1e-300}");
    ck_assert(o.total_amount > 0);
    order_dispose(&o);
    o = parse_ok("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":1}");
    ck_assert(o.total_amount == 1.0);
    order_dispose(&o);
    o = parse_ok(
        "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":1.7976931348623157e308}");
    ck_assert(o.total_amount > 1e308);
    order_dispose(&o);
}
END_TEST

START_TEST(amount_type)
{
    static const char *bad[] = {"\"5\"", "true", "false", "null", "[5]", "{\"v\":5}", NULL};
    char body[256];
    for (const char **v = bad; *v != NULL; ++v) {
        snprintf(body, sizeof(body),
                 "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":%s}", *v);
        assert_rejected(body, R_AMOUNT_TYPE);
    }
    /* beyond a double: jansson refuses the number, so the body is not JSON this parser takes */
    assert_rejected("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":1e400}",
                    R_INVALID_JSON);
}
END_TEST

START_TEST(invalid_json)
{
    static const char *bad[] = {"", " ", "{", "null", "[]", "[{\"customer_id\":\"c\"}]", "\"order\"", "42",
                                "{\"customer_id\":\"c\",}", "{'customer_id':'c'}", "{\"customer_id\":\"c\"} {}",
                                /* duplicate keys: which one counts would be a guess */
                                "{\"customer_id\":\"a\",\"customer_id\":\"b\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],"
                                "\"total_amount\":5}",
                                /* \u0000 in a string, and invalid UTF-8 */
                                "{\"customer_id\":\"a\\u0000b\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],"
                                "\"total_amount\":5}",
                                "{\"customer_id\":\"c\",\"note\":\"\xff\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],"
                                "\"total_amount\":5}",
                                NULL};
    for (const char **b = bad; *b != NULL; ++b)
        assert_rejected(*b, R_INVALID_JSON);

    /* only len bytes are read: the same good order followed by garbage outside len parses */
    static const char good[] =
        "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5}GARBAGE";
    order_t o;
    const char *reason;
    ck_assert_int_eq(order_parse(&o, good, strlen(good) - 7, &reason), 0);
    order_dispose(&o);
    ck_assert_int_eq(order_parse(&o, good, strlen(good), &reason), -1);
    ck_assert_str_eq(reason, R_INVALID_JSON);
}
END_TEST

/* The record echoes the whole body and Redis's Lua JSON reads it, up to 1000 levels: orders nest 32 at most. */
START_TEST(nesting_depth)
{
    char body[4096];
    /* an extra field nested depth - 1 levels below the root object */
    for (int depth = 1; depth <= 40; ++depth) {
        char *p = body + sprintf(body, "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],"
                                       "\"total_amount\":5,\"extra\":");
        for (int i = 1; i < depth; ++i)
            *p++ = '[';
        p += sprintf(p, "1");
        for (int i = 1; i < depth; ++i)
            *p++ = ']';
        strcpy(p, "}");
        if (depth <= ORDER_DEPTH_MAX) {
            order_t o = parse_ok(body);
            order_dispose(&o);
        } else {
            assert_rejected(body, R_DEPTH);
        }
    }
    /* objects count like arrays, and so does the depth inside items: root, list, item and 30 objects are 33 levels */
    char *p = body + sprintf(body, "{\"customer_id\":\"c\",\"total_amount\":5,\"items\":[{\"product_id\":\"i\",\"quantity\":1,"
                                   "\"x\":");
    for (int i = 0; i < ORDER_DEPTH_MAX - 2; ++i)
        p += sprintf(p, "{\"a\":");
    p += sprintf(p, "1");
    for (int i = 0; i < ORDER_DEPTH_MAX - 2; ++i)
        *p++ = '}';
    strcpy(p, "}]}");
    assert_rejected(body, R_DEPTH);
    /* far deeper than Redis's Lua takes (1000), within what jansson parses (2048) */
    static char deep[8192];
    p = deep + sprintf(deep, "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5,\"x\":");
    for (int i = 0; i < 1500; ++i)
        *p++ = '[';
    for (int i = 0; i < 1500; ++i)
        *p++ = ']';
    strcpy(p, "}");
    assert_rejected(deep, R_DEPTH);
    ck_assert_int_eq(ORDER_DEPTH_MAX, 32);
}
END_TEST

/* ---- types and bounds ------------------------------------------------------------------------------------------ */

START_TEST(customer_id)
{
    char id[80], body[512];
    static const char *bad[] = {"\"\"", "\"has space\"", "\"a/b\"", "\"caf\xc3\xa9\"", "42", "true", "[\"c\"]", "{}", NULL};
    for (const char **v = bad; *v != NULL; ++v) {
        snprintf(body, sizeof(body), "{\"customer_id\":%s,\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5}",
                 *v);
        assert_rejected(body, R_CUSTOMER);
    }
    /* 64 characters pass, 65 do not */
    memset(id, 'x', 64);
    id[64] = '\0';
    snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5}",
             id);
    order_t o = parse_ok(body);
    ck_assert_int_eq(o.customer_len, 64);
    order_dispose(&o);
    id[64] = 'x', id[65] = '\0';
    snprintf(body, sizeof(body), "{\"customer_id\":\"%s\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5}",
             id);
    assert_rejected(body, R_CUSTOMER);
    o = parse_ok("{\"customer_id\":\"A.b_c-9\",\"items\":[{\"product_id\":\"i\",\"quantity\":1}],\"total_amount\":5}");
    ck_assert_int_eq(o.customer_len, 7);
    order_dispose(&o);
}
END_TEST

/* Builds {"customer_id":"c","items":[n times item],"total_amount":5} into a malloc'd string. */
static char *order_with_items(size_t n, const char *item)
{
    size_t cap = 128 + n * (strlen(item) + 1);
    char *body = malloc(cap), *p = body;
    ck_assert_ptr_nonnull(body);
    p += sprintf(p, "{\"customer_id\":\"c\",\"items\":[");
    for (size_t i = 0; i < n; ++i)
        p += sprintf(p, "%s%s", i != 0 ? "," : "", item);
    sprintf(p, "],\"total_amount\":5}");
    return body;
}

START_TEST(items_list)
{
    static const char *bad[] = {"[]", "{}", "\"item1\"", "5", "null", "{\"product_id\":\"i\",\"quantity\":1}", NULL};
    char body[256];
    for (const char **v = bad; *v != NULL; ++v) {
        snprintf(body, sizeof(body), "{\"customer_id\":\"c\",\"items\":%s,\"total_amount\":5}", *v);
        assert_rejected(body, R_ITEMS);
    }
    /* 100 items pass (each its own product), 101 do not */
    char item[64];
    size_t cap = 128 + 101 * 64;
    char *big = malloc(cap), *p = big;
    ck_assert_ptr_nonnull(big);
    p += sprintf(p, "{\"customer_id\":\"c\",\"items\":[");
    for (int i = 0; i < ORDER_ITEMS_MAX; ++i) {
        snprintf(item, sizeof(item), "{\"product_id\":\"p%d\",\"quantity\":%d}", i, i + 1);
        p += sprintf(p, "%s%s", i != 0 ? "," : "", item);
    }
    strcpy(p, "],\"total_amount\":5}");
    order_t o = parse_ok(big);
    ck_assert_int_eq(o.nlines, ORDER_ITEMS_MAX);
    assert_line(&o, 0, "p0", 1);
    assert_line(&o, 99, "p99", 100);
    order_dispose(&o);
    sprintf(p, ",{\"product_id\":\"p100\",\"quantity\":1}],\"total_amount\":5}");
    assert_rejected(big, R_ITEMS);
    free(big);
    ck_assert_int_eq(ORDER_ITEMS_MAX, 100);
}
END_TEST

START_TEST(bad_items)
{
    static const char *bad[] = {"5",
                                "\"item1\"",
                                "null",
                                "[\"item1\", 1]",
                                "{}",
                                "{\"product_id\":\"item1\"}",
                                "{\"quantity\":1}",
                                "{\"product_id\":null,\"quantity\":1}",
                                "{\"product_id\":7,\"quantity\":1}",
                                "{\"product_id\":\"\",\"quantity\":1}",
                                "{\"product_id\":\"item 1\",\"quantity\":1}",
                                "{\"product_id\":\"item/1\",\"quantity\":1}",
                                "{\"product_id\":\"item1\",\"quantity\":0}",
                                "{\"product_id\":\"item1\",\"quantity\":-1}",
                                "{\"product_id\":\"item1\",\"quantity\":1000001}",
                                "{\"product_id\":\"item1\",\"quantity\":9223372036854775807}",
                                "{\"product_id\":\"item1\",\"quantity\":-9223372036854775807}",
                                "{\"product_id\":\"item1\",\"quantity\":1.5}",
                                "{\"product_id\":\"item1\",\"quantity\":2.0}",
                                "{\"product_id\":\"item1\",\"quantity\":\"2\"}",
                                "{\"product_id\":\"item1\",\"quantity\":true}",
                                "{\"product_id\":\"item1\",\"quantity\":null}",
                                NULL};
    char body[512];
    for (const char **v = bad; *v != NULL; ++v) {
        snprintf(body, sizeof(body), "{\"customer_id\":\"c\",\"items\":[%s],\"total_amount\":5}", *v);
        assert_rejected(body, R_ITEM);
        /* a bad item after good ones fails the whole order too */
        snprintf(body, sizeof(body),
                 "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"ok\",\"quantity\":1},%s],\"total_amount\":5}", *v);
        assert_rejected(body, R_ITEM);
    }
    /* product ids: 64 characters pass, 65 do not */
    char pid[80];
    memset(pid, 'p', 65);
    pid[64] = '\0';
    snprintf(body, sizeof(body), "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"%s\",\"quantity\":1}],\"total_amount\":5}",
             pid);
    order_t o = parse_ok(body);
    assert_line(&o, 0, pid, 1);
    order_dispose(&o);
    pid[64] = 'p', pid[65] = '\0';
    snprintf(body, sizeof(body), "{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"%s\",\"quantity\":1}],\"total_amount\":5}",
             pid);
    assert_rejected(body, R_ITEM);
}
END_TEST

START_TEST(quantity_bounds)
{
    order_t o =
        parse_ok("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"a\",\"quantity\":1},{\"product_id\":\"b\",\"quantity\":"
                 "1000000}],\"total_amount\":5}");
    assert_line(&o, 0, "a", 1);
    assert_line(&o, 1, "b", ORDER_QUANTITY_MAX);
    order_dispose(&o);
    ck_assert_int_eq(ORDER_QUANTITY_MAX, 1000000);
}
END_TEST

START_TEST(product_id_alphabet)
{
    ck_assert(order_valid_product_id("item1", 5));
    ck_assert(order_valid_product_id("A-b.c_9", 7));
    ck_assert(!order_valid_product_id("", 0));
    ck_assert(!order_valid_product_id("a b", 3));
    ck_assert(!order_valid_product_id("a%20b", 5));
    ck_assert(!order_valid_product_id("a/b", 3));
    ck_assert(!order_valid_product_id("a\0b", 3));
    char buf[66];
    memset(buf, 'z', sizeof(buf));
    ck_assert(order_valid_product_id(buf, 64));
    ck_assert(!order_valid_product_id(buf, 65));
}
END_TEST

/* ---- the lines of the stock check ------------------------------------------------------------------------------ */

START_TEST(duplicates_added_up)
{
    order_t o = parse_ok("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"item1\",\"quantity\":2},{\"product_id\":\"item2\","
                         "\"quantity\":1},{\"product_id\":\"item1\",\"quantity\":3},{\"product_id\":\"item3\",\"quantity\":4},"
                         "{\"product_id\":\"item2\",\"quantity\":10}],\"total_amount\":5}");
    /* one line per product, in the order each was first named, with the quantities added up */
    ck_assert_int_eq(o.nlines, 3);
    assert_line(&o, 0, "item1", 5);
    assert_line(&o, 1, "item2", 11);
    assert_line(&o, 2, "item3", 4);
    order_dispose(&o);

    /* product ids are compared whole and case-sensitively: a prefix or another case is another product */
    o = parse_ok("{\"customer_id\":\"c\",\"items\":[{\"product_id\":\"item\",\"quantity\":1},{\"product_id\":\"item1\","
                 "\"quantity\":1},{\"product_id\":\"ITEM\",\"quantity\":1},{\"product_id\":\"item\",\"quantity\":1}],"
                 "\"total_amount\":5}");
    ck_assert_int_eq(o.nlines, 3);
    assert_line(&o, 0, "item", 2);
    assert_line(&o, 1, "item1", 1);
    assert_line(&o, 2, "ITEM", 1);
    order_dispose(&o);
}
END_TEST

/* The largest order: 100 items of one product at the largest quantity add up to 10^8, far inside int64. */
START_TEST(duplicates_at_the_bounds)
{
    char *body = order_with_items(ORDER_ITEMS_MAX, "{\"product_id\":\"item1\",\"quantity\":1000000}");
    order_t o = parse_ok(body);
    ck_assert_int_eq(o.nlines, 1);
    assert_line(&o, 0, "item1", (int64_t)ORDER_ITEMS_MAX * ORDER_QUANTITY_MAX);
    order_dispose(&o);
    free(body);

    /* 101 of them is too many items, even though they are one product */
    body = order_with_items(ORDER_ITEMS_MAX + 1, "{\"product_id\":\"item1\",\"quantity\":1}");
    assert_rejected(body, R_ITEMS);
    free(body);
}
END_TEST

/* order_parse into the same order_t many times, disposing in between: nothing is kept from one parse to the next (the
 * sanitizer build checks for leaks). */
START_TEST(reuse)
{
    order_t o;
    const char *reason;
    for (int i = 0; i < 100; ++i) {
        char body[200];
        snprintf(body, sizeof(body),
                 "{\"customer_id\":\"c%d\",\"items\":[{\"product_id\":\"p%d\",\"quantity\":%d}],\"total_amount\":%d}", i, i % 3,
                 i + 1, i % 2); /* every other one has amount 0 */
        int rv = order_parse(&o, body, strlen(body), &reason);
        if (i % 2 == 0) {
            ck_assert_int_eq(rv, -1);
            ck_assert_str_eq(reason, R_AMOUNT);
        } else {
            ck_assert_int_eq(rv, 0);
            ck_assert_int_eq(o.nlines, 1);
            ck_assert_int_eq(o.lines[0].quantity, i + 1);
            order_dispose(&o);
        }
    }
}
END_TEST

/* ---- PUT /v1/inventory/{product_id}: {"quantity"} -------------------------------------------------------------- */

static int stock(const char *body, int64_t *q)
{
    *q = -7;
    return order_parse_stock(body, strlen(body), q);
}

START_TEST(stock_body)
{
    int64_t q;
    ck_assert_int_eq(stock("{\"quantity\":10}", &q), 0);
    ck_assert_int_eq(q, 10);
    ck_assert_int_eq(stock("{\"quantity\":0}", &q), 0);
    ck_assert_int_eq(q, 0);
    ck_assert_int_eq(stock("{\"note\":\"x\",\"quantity\":1000000000}", &q), 0); /* the bound; other fields ignored */
    ck_assert_int_eq(q, ORDER_STOCK_MAX);
    static const char *const bad[] = {
        "{\"quantity\":1000000001}",
        "{\"quantity\":-1}",
        "{\"quantity\":1.5}",
        "{\"quantity\":\"5\"}",
        "{\"quantity\":null}",
        "{}",
        "[10]",
        "10",
        "{\"quantity\":1,\"quantity\":2}", /* duplicate keys */
        "{\"quantity\":1} x",              /* trailing bytes */
        "{\"quantity\":99999999999999999999}",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        ck_assert_msg(stock(bad[i], &q) == -1, "accepted: %s", bad[i]);
        ck_assert_msg(q == -7, "quantity written on failure: %s", bad[i]);
    }
}
END_TEST

/* ---- the worker's routes ------------------------------------------------------------------------------------- */

static order_route_t route(const char *path, const char *want_param)
{
    const char *param = (const char *)1;
    size_t len = 99;
    order_route_t r = order_route_match(path, strlen(path), &param, &len);
    if (want_param == NULL) {
        ck_assert_msg(param == NULL && len == 0, "%s: a parameter", path);
    } else {
        ck_assert_msg(param != NULL && len == strlen(want_param) && memcmp(param, want_param, len) == 0,
                      "%s: parameter %.*s, expected %s", path, (int)len, param != NULL ? param : "", want_param);
    }
    return r;
}

START_TEST(routes)
{
    ck_assert_int_eq(route("/v1/orders", NULL), ORDER_ROUTE_ORDERS);
    ck_assert_int_eq(route("/v1/orders/ord-1", "ord-1"), ORDER_ROUTE_ORDER);
    ck_assert_int_eq(route("/v1/inventory", NULL), ORDER_ROUTE_INVENTORY);
    ck_assert_int_eq(route("/v1/inventory/item1", "item1"), ORDER_ROUTE_PRODUCT);
    /* the parameter is one non-empty segment; anything else is not found */
    ck_assert_int_eq(route("/v1/orders/", NULL), ORDER_ROUTE_NOT_FOUND);
    ck_assert_int_eq(route("/v1/orders/a/b", NULL), ORDER_ROUTE_NOT_FOUND);
    ck_assert_int_eq(route("/v1/inventory/", NULL), ORDER_ROUTE_NOT_FOUND);
    ck_assert_int_eq(route("/v1/orders2", NULL), ORDER_ROUTE_NOT_FOUND);
    ck_assert_int_eq(route("/v1/order", NULL), ORDER_ROUTE_NOT_FOUND);
    ck_assert_int_eq(route("", NULL), ORDER_ROUTE_NOT_FOUND);
    /* validation of the parameter is the caller's (order_valid_product_id) */
    ck_assert_int_eq(route("/v1/inventory/a b", "a b"), ORDER_ROUTE_PRODUCT);
}
END_TEST

static Suite *order_suite(void)
{
    Suite *s = suite_create("order");
    TCase *tc = tcase_create("order");
    tcase_add_test(tc, seed_example);
    tcase_add_test(tc, extra_fields_ignored);
    tcase_add_test(tc, missing_fields);
    tcase_add_test(tc, amount_must_be_positive);
    tcase_add_test(tc, amount_type);
    tcase_add_test(tc, invalid_json);
    tcase_add_test(tc, nesting_depth);
    tcase_add_test(tc, customer_id);
    tcase_add_test(tc, items_list);
    tcase_add_test(tc, bad_items);
    tcase_add_test(tc, quantity_bounds);
    tcase_add_test(tc, product_id_alphabet);
    tcase_add_test(tc, duplicates_added_up);
    tcase_add_test(tc, duplicates_at_the_bounds);
    tcase_add_test(tc, reuse);
    tcase_add_test(tc, stock_body);
    tcase_add_test(tc, routes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(order_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
