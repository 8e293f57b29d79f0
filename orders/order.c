#include <math.h>
#include <stdbool.h>
#include <string.h>
#include "order.h"
#include "valid.h"

int order_valid_product_id(const char *s, size_t len)
{
    return valid_user_id(s, len); /* the same alphabet and bounds */
}

/* True if v nests arrays and objects more than levels deep (a scalar: 0 levels, a flat object: 1). */
static bool nested_deeper_than(json_t *v, int levels)
{
    size_t i;
    const char *key;
    json_t *child;
    if (!json_is_object(v) && !json_is_array(v))
        return false;
    if (levels == 0)
        return true;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child)
        {
            if (nested_deeper_than(child, levels - 1))
                return true;
        }
    } else {
        json_array_foreach(v, i, child)
        {
            if (nested_deeper_than(child, levels - 1))
                return true;
        }
    }
    return false;
}

int order_parse(order_t *order, const char *body, size_t len, const char **reason)
{
    json_error_t jerr;
    memset(order, 0, sizeof(*order));
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        *reason = "Invalid JSON";
        goto Error;
    }
    order->_root = root;
    if (nested_deeper_than(root, ORDER_DEPTH_MAX)) {
        *reason = "JSON nested deeper than 32 levels";
        goto Error;
    }

    json_t *customer = json_object_get(root, "customer_id"), *items = json_object_get(root, "items"),
           *total = json_object_get(root, "total_amount");
    if (customer == NULL || items == NULL || total == NULL) {
        *reason = "Missing fields";
        goto Error;
    }
    if (!json_is_number(total)) {
        *reason = "total_amount must be a number";
        goto Error;
    }
    order->total_amount = json_number_value(total);
    if (!(order->total_amount > 0) || !isfinite(order->total_amount)) {
        *reason = "Amount must be > 0";
        goto Error;
    }
    if (!json_is_string(customer) || !valid_user_id(json_string_value(customer), json_string_length(customer))) {
        *reason = "customer_id must be 1-64 characters of A-Z a-z 0-9 _ . -";
        goto Error;
    }
    order->customer_id = json_string_value(customer);
    order->customer_len = json_string_length(customer);
    if (!json_is_array(items) || json_array_size(items) == 0 || json_array_size(items) > ORDER_ITEMS_MAX) {
        *reason = "items must be a list of 1-100 items";
        goto Error;
    }

    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        json_t *pid = json_object_get(item, "product_id"), *qty = json_object_get(item, "quantity");
        if (!json_is_object(item) || !json_is_string(pid) ||
            !order_valid_product_id(json_string_value(pid), json_string_length(pid)) || !json_is_integer(qty) ||
            json_integer_value(qty) < 1 || json_integer_value(qty) > ORDER_QUANTITY_MAX) {
            *reason = "each item needs a product_id (1-64 characters of A-Z a-z 0-9 _ . -) and a quantity from 1 to 1000000";
            goto Error;
        }
        const char *p = json_string_value(pid);
        size_t plen = json_string_length(pid);
        size_t j = 0;
        while (j < order->nlines && !(order->lines[j].len == plen && memcmp(order->lines[j].product_id, p, plen) == 0))
            ++j;
        if (j == order->nlines) {
            order->lines[j].product_id = p;
            order->lines[j].len = plen;
            ++order->nlines;
        }
        order->lines[j].quantity += json_integer_value(qty);
    }
    return 0;

Error:
    if (root != NULL)
        json_decref(root);
    memset(order, 0, sizeof(*order));
    return -1;
}

void order_dispose(order_t *order)
{
    if (order->_root != NULL)
        json_decref(order->_root);
    memset(order, 0, sizeof(*order));
}

int order_parse_stock(const char *body, size_t len, int64_t *quantity)
{
    json_error_t jerr;
    int rv = -1;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *q = json_object_get(root, "quantity"); /* NULL unless root is an object */
    if (json_is_integer(q) && json_integer_value(q) >= 0 && json_integer_value(q) <= ORDER_STOCK_MAX) {
        *quantity = json_integer_value(q);
        rv = 0;
    }
    if (root != NULL)
        json_decref(root);
    return rv;
}

static bool path_is(const char *path, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(path, s, len) == 0;
}

/* True if path is prefix followed by one non-empty segment, which *param then is. */
static bool path_param(const char *path, size_t len, const char *prefix, const char **param, size_t *param_len)
{
    size_t n = strlen(prefix);
    if (len <= n || memcmp(path, prefix, n) != 0 || memchr(path + n, '/', len - n) != NULL)
        return false;
    *param = path + n;
    *param_len = len - n;
    return true;
}

order_route_t order_route_match(const char *path, size_t len, const char **param, size_t *param_len)
{
    *param = NULL;
    *param_len = 0;
    if (path_is(path, len, "/v1/orders"))
        return ORDER_ROUTE_ORDERS;
    if (path_param(path, len, "/v1/orders/", param, param_len))
        return ORDER_ROUTE_ORDER;
    if (path_is(path, len, "/v1/inventory"))
        return ORDER_ROUTE_INVENTORY;
    if (path_param(path, len, "/v1/inventory/", param, param_len))
        return ORDER_ROUTE_PRODUCT;
    return ORDER_ROUTE_NOT_FOUND;
}
