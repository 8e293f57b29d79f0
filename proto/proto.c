#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include "proto.h"
#include "valid.h"

#define MAX_DEPTH 4 /* reply: map -> items array -> item array; one level spare */

/* ---- frame check ------------------------------------------------------------------------------------------------ */

static uint64_t read_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
        v = (v << 8) | p[i];
    return v;
}

int proto_frame_check(const void *buf, size_t len, unsigned max_depth)
{
    const unsigned char *p = buf;
    size_t off = 0;
    uint64_t pending[16];
    int depth = 0;

    if (max_depth >= sizeof(pending) / sizeof(pending[0]))
        max_depth = sizeof(pending) / sizeof(pending[0]) - 1;
    pending[0] = 1;

    for (;;) {
        while (depth >= 0 && pending[depth] == 0)
            --depth;
        if (depth < 0)
            break;
        if (off >= len)
            return PROTO_EMALFORMED; /* truncated */
        --pending[depth];

        unsigned c = p[off++];
        uint64_t skip = 0, children = 0; /* bytes of payload to skip; values contained */
        size_t lenbytes = 0;
        int kind = 0; /* 0 scalar with fixed skip, 1 length-prefixed payload, 2 array, 3 map */

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool */
        } else if (c >= 0x80 && c <= 0x8f) {
            kind = 3, children = c & 0x0f;
        } else if (c >= 0x90 && c <= 0x9f) {
            kind = 2, children = c & 0x0f;
        } else if (c >= 0xa0 && c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            switch (c) {
            case 0xc4:
            case 0xd9:
                kind = 1, lenbytes = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                kind = 1, lenbytes = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                kind = 1, lenbytes = 4;
                break; /* bin32, str32 */
            case 0xc7:
                kind = 1, lenbytes = 1, skip = 1;
                break; /* ext8: len, type */
            case 0xc8:
                kind = 1, lenbytes = 2, skip = 1;
                break; /* ext16 */
            case 0xc9:
                kind = 1, lenbytes = 4, skip = 1;
                break; /* ext32 */
            case 0xca:
                skip = 4;
                break; /* float32 */
            case 0xcb:
                skip = 8;
                break; /* float64 */
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break; /* fixext1: type + 1 */
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                kind = 2, lenbytes = 2;
                break;
            case 0xdd:
                kind = 2, lenbytes = 4;
                break;
            case 0xde:
                kind = 3, lenbytes = 2;
                break;
            case 0xdf:
                kind = 3, lenbytes = 4;
                break;
            default:
                return PROTO_EMALFORMED; /* 0xc1 is never used */
            }
        }

        if (lenbytes != 0) {
            if (len - off < lenbytes)
                return PROTO_EMALFORMED;
            uint64_t n = read_be(p + off, lenbytes);
            off += lenbytes;
            if (kind == 1)
                skip += n;
            else
                children = n;
        }
        if (skip > len - off)
            return PROTO_EMALFORMED;
        off += skip;

        if (kind == 3)
            children *= 2;
        if (children != 0) {
            /* every value takes at least one byte: a count beyond the bytes left is a lie */
            if (children > len - off)
                return PROTO_EMALFORMED;
            if ((unsigned)depth + 1 > max_depth)
                return PROTO_EMALFORMED;
            pending[++depth] = children;
        }
    }
    return off == len ? 0 : PROTO_EMALFORMED;
}

/* ---- encoding --------------------------------------------------------------------------------------------------- */

static int pack_key(msgpack_packer *pk, const char *key)
{
    size_t n = strlen(key);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, key, n);
}

static int pack_str(msgpack_packer *pk, proto_str_t s)
{
    return msgpack_pack_str(pk, s.len) || (s.len > 0 && msgpack_pack_str_body(pk, s.ptr, s.len));
}

static int pack_kv_str(msgpack_packer *pk, const char *key, proto_str_t s)
{
    return pack_key(pk, key) || pack_str(pk, s);
}

static int pack_kv_bin(msgpack_packer *pk, const char *key, proto_str_t s)
{
    return pack_key(pk, key) || msgpack_pack_bin(pk, s.len) || (s.len > 0 && msgpack_pack_bin_body(pk, s.ptr, s.len));
}

static int pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    return pack_key(pk, key) || msgpack_pack_uint64(pk, v);
}

int proto_request_encode(const proto_request_t *req, proto_write_cb write, void *data)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, data, (msgpack_packer_write)write);

    bool user = req->op != PROTO_OP_HEALTH && req->op != PROTO_OP_WATCH, publish = req->op == PROTO_OP_PUBLISH,
         page = req->op == PROTO_OP_PAGE || req->op == PROTO_OP_RECENT, one = req->op == PROTO_OP_MARK_READ,
         since = req->op == PROTO_OP_SINCE, watch = req->op == PROTO_OP_WATCH, forward = req->op == PROTO_OP_FORWARD;
    if (forward)
        user = false;
    size_t n = 3 + user + 3 * publish + 2 * page + one + 2 * since + 2 * watch + 5 * forward;

    if (msgpack_pack_map(&pk, n) || pack_kv_u64(&pk, "v", PROTO_VERSION) || pack_kv_u64(&pk, "op", req->op) ||
        pack_key(&pk, "rid") || msgpack_pack_bin(&pk, PROTO_RID_LEN) || msgpack_pack_bin_body(&pk, req->rid, PROTO_RID_LEN))
        return -1;
    if (user && pack_kv_str(&pk, "user", req->user_id))
        return -1;
    if (publish && (pack_kv_str(&pk, "msg", req->message) || pack_kv_str(&pk, "kind", req->kind) || pack_key(&pk, "keyed") ||
                    (req->keyed ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk))))
        return -1;
    if (page && (pack_kv_u64(&pk, "before", req->before) || pack_kv_u64(&pk, "limit", req->limit)))
        return -1;
    if (one && pack_kv_u64(&pk, "id", req->id))
        return -1;
    if (since && (pack_kv_u64(&pk, "after", req->after) || pack_kv_u64(&pk, "limit", req->limit)))
        return -1;
    if (watch && (pack_kv_str(&pk, "cursor", req->cursor) || pack_kv_u64(&pk, "wait", req->wait_ms)))
        return -1;
    if (forward && (pack_kv_str(&pk, "method", req->method) || pack_kv_str(&pk, "path", req->path) ||
                    pack_kv_str(&pk, "query", req->query) || pack_kv_bin(&pk, "body", req->body) ||
                    pack_kv_str(&pk, "idem", req->idempotency_key)))
        return -1;
    return 0;
}

int proto_batch_encode(const proto_str_t *frames, size_t n, proto_write_cb write, void *data)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, data, (msgpack_packer_write)write);
    if (n < 1 || n > PROTO_BATCH_MAX)
        return -1;
    if (msgpack_pack_map(&pk, 2) || pack_kv_u64(&pk, "v", PROTO_VERSION) || pack_key(&pk, "batch") || msgpack_pack_array(&pk, n))
        return -1;
    for (size_t i = 0; i < n; ++i)
        if (msgpack_pack_bin(&pk, frames[i].len) || (frames[i].len > 0 && msgpack_pack_bin_body(&pk, frames[i].ptr, frames[i].len)))
            return -1;
    return 0;
}

static int pack_notification(msgpack_packer *pk, const proto_notification_t *n)
{
    return msgpack_pack_array(pk, 6) || msgpack_pack_uint64(pk, n->id) || msgpack_pack_int64(pk, n->ts) ||
           pack_str(pk, n->user_id) || pack_str(pk, n->message) || pack_str(pk, n->kind) ||
           (n->read ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
}

int proto_reply_encode(const proto_reply_t *rep, proto_write_cb write, void *data)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, data, (msgpack_packer_write)write);

    bool err = rep->status != PROTO_ST_OK, items = rep->list;
    size_t n = 2 + err + (rep->worker.len != 0) + (items ? 3 : 0);
    n += rep->id != 0 ? 2 : 0;
    n += rep->count != 0 ? 1 : 0;
    n += rep->redis_ok ? 1 : 0;
    n += rep->cursor.len != 0 ? 1 : 0;
    n += rep->gap ? 1 : 0;
    n += rep->http_status != 0 ? 3 : 0;

    if (msgpack_pack_map(&pk, n) || pack_kv_u64(&pk, "v", PROTO_VERSION) || pack_kv_u64(&pk, "st", rep->status))
        return -1;
    if (err && pack_kv_str(&pk, "err", rep->error))
        return -1;
    if (rep->worker.len != 0 && pack_kv_str(&pk, "by", rep->worker))
        return -1;
    if (rep->id != 0 && (pack_kv_u64(&pk, "id", rep->id) || pack_key(&pk, "ts") || msgpack_pack_int64(&pk, rep->ts)))
        return -1;
    if (items) {
        if (pack_key(&pk, "items") || msgpack_pack_array(&pk, rep->nitems))
            return -1;
        for (size_t i = 0; i < rep->nitems; ++i)
            if (pack_notification(&pk, rep->items + i))
                return -1;
        if (pack_kv_u64(&pk, "unread", rep->unread_count) || pack_key(&pk, "more") ||
            (rep->has_more ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)))
            return -1;
    }
    if (rep->count != 0 && pack_kv_u64(&pk, "count", rep->count))
        return -1;
    if (rep->redis_ok && (pack_key(&pk, "redis") || msgpack_pack_true(&pk)))
        return -1;
    if (rep->cursor.len != 0 && pack_kv_str(&pk, "cursor", rep->cursor))
        return -1;
    if (rep->gap && (pack_key(&pk, "gap") || msgpack_pack_true(&pk)))
        return -1;
    if (rep->http_status != 0 && (pack_kv_u64(&pk, "status", rep->http_status) || pack_kv_str(&pk, "ctype", rep->content_type) ||
                                  pack_kv_bin(&pk, "body", rep->body)))
        return -1;
    return 0;
}

int proto_reply_encode_error(proto_status_t status, const char *error, const char *worker, proto_write_cb write, void *data)
{
    proto_reply_t rep = {.status = status};
    rep.error = (proto_str_t){error, strlen(error)};
    if (worker != NULL)
        rep.worker = (proto_str_t){worker, strlen(worker)};
    return proto_reply_encode(&rep, write, data);
}

/* ---- decoding --------------------------------------------------------------------------------------------------- */

static bool key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static bool get_u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

static bool get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    return false;
}

static bool get_str(const msgpack_object *o, proto_str_t *s)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return false;
    *s = (proto_str_t){o->via.str.ptr, o->via.str.size};
    return true;
}

/* A str or a bin, as bytes. */
static bool get_bytes(const msgpack_object *o, proto_str_t *s)
{
    if (o->type == MSGPACK_OBJECT_BIN) {
        *s = (proto_str_t){o->via.bin.ptr, o->via.bin.size};
        return true;
    }
    return get_str(o, s);
}

static bool get_bool(const msgpack_object *o, bool *b)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *b = o->via.boolean;
    return true;
}

/* Unpacks buf into up after checking the frame; the top value must be a map. */
static int unpack_map(msgpack_unpacked *up, const void *buf, size_t len, const msgpack_object_map **map)
{
    int rv;
    size_t off = 0;
    if ((rv = proto_frame_check(buf, len, MAX_DEPTH)) != 0)
        return rv;
    if (msgpack_unpack_next(up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        return PROTO_EMALFORMED;
    if (up->data.type != MSGPACK_OBJECT_MAP)
        return PROTO_EINVALID;
    *map = &up->data.via.map;
    return 0;
}

int proto_request_decode(proto_request_t *req, const void *buf, size_t len)
{
    msgpack_unpacked up;
    const msgpack_object_map *map;
    uint64_t version = 0, op = 0, limit = 0, wait = 0;
    bool have_rid = false, have_user = false, have_msg = false, have_kind = false, have_id = false, have_limit = false,
         have_after = false, have_cursor = false, have_method = false, have_path = false, have_keyed = false;
    int rv;

    memset(req, 0, sizeof(*req));
    msgpack_unpacked_init(&up);
    if ((rv = unpack_map(&up, buf, len, &map)) != 0)
        goto Exit;

    rv = PROTO_EINVALID;
    for (uint32_t i = 0; i < map->size; ++i) {
        const msgpack_object *k = &map->ptr[i].key, *v = &map->ptr[i].val;
        bool ok = true;
        if (key_is(k, "v")) {
            ok = get_u64(v, &version);
        } else if (key_is(k, "op")) {
            ok = get_u64(v, &op);
        } else if (key_is(k, "rid")) {
            ok = have_rid = v->type == MSGPACK_OBJECT_BIN && v->via.bin.size == PROTO_RID_LEN;
            if (ok)
                memcpy(req->rid, v->via.bin.ptr, PROTO_RID_LEN);
        } else if (key_is(k, "user")) {
            ok = have_user = get_str(v, &req->user_id);
        } else if (key_is(k, "msg")) {
            ok = have_msg = get_str(v, &req->message);
        } else if (key_is(k, "kind")) {
            ok = have_kind = get_str(v, &req->kind);
        } else if (key_is(k, "before")) {
            ok = get_u64(v, &req->before);
        } else if (key_is(k, "limit")) {
            ok = have_limit = get_u64(v, &limit);
        } else if (key_is(k, "id")) {
            ok = have_id = get_u64(v, &req->id);
        } else if (key_is(k, "after")) {
            ok = have_after = get_u64(v, &req->after);
        } else if (key_is(k, "cursor")) {
            ok = have_cursor = get_str(v, &req->cursor) && req->cursor.len <= PROTO_CURSOR_MAX;
        } else if (key_is(k, "wait")) {
            ok = get_u64(v, &wait) && wait <= PROTO_WATCH_WAIT_MAX;
        } else if (key_is(k, "method")) {
            ok = have_method = get_str(v, &req->method) && req->method.len >= 1 && req->method.len <= 16;
        } else if (key_is(k, "path")) {
            ok = have_path = get_str(v, &req->path) && req->path.len >= 1 && req->path.len <= 2048 && req->path.ptr[0] == '/';
        } else if (key_is(k, "query")) {
            ok = get_str(v, &req->query) && req->query.len <= 4096;
        } else if (key_is(k, "body")) {
            ok = get_bytes(v, &req->body) && req->body.len <= PROTO_FORWARD_BODY_MAX;
        } else if (key_is(k, "idem")) {
            ok = get_str(v, &req->idempotency_key) && req->idempotency_key.len <= 255;
        } else if (key_is(k, "keyed")) {
            ok = have_keyed = get_bool(v, &req->keyed);
        }
        if (!ok)
            goto Exit;
    }
    if (!have_keyed)
        req->keyed = true; /* a gateway from before the field: keep every answer for the day, as it did */

    if (version != PROTO_VERSION) {
        rv = PROTO_EVERSION;
        goto Exit;
    }
    if (!have_rid || op < PROTO_OP_PUBLISH || op > PROTO_OP_FORWARD)
        goto Exit;
    req->op = (proto_op_t)op;
    if (req->op != PROTO_OP_HEALTH && req->op != PROTO_OP_WATCH && req->op != PROTO_OP_FORWARD && !(have_user && valid_user_id(req->user_id.ptr, req->user_id.len)))
        goto Exit;
    switch (req->op) {
    case PROTO_OP_PUBLISH:
        if (!have_msg || !valid_message(req->message.ptr, req->message.len) || !have_kind ||
            !valid_kind(req->kind.ptr, req->kind.len))
            goto Exit;
        break;
    case PROTO_OP_PAGE:
    case PROTO_OP_RECENT:
        if (!have_limit || limit < 1 || limit > PROTO_LIMIT_MAX)
            goto Exit;
        req->limit = (uint32_t)limit;
        break;
    case PROTO_OP_MARK_READ:
        if (!have_id || req->id == 0)
            goto Exit;
        break;
    case PROTO_OP_SINCE:
        if (!have_after || !have_limit || limit < 1 || limit > PROTO_LIMIT_MAX)
            goto Exit;
        req->limit = (uint32_t)limit;
        break;
    case PROTO_OP_WATCH:
        if (!have_cursor)
            goto Exit;
        req->wait_ms = (uint32_t)wait;
        break;
    case PROTO_OP_FORWARD:
        if (!have_method || !have_path)
            goto Exit;
        break;
    default:
        break;
    }
    rv = 0;

Exit:
    msgpack_unpacked_destroy(&up);
    return rv;
}

static bool decode_notification(const msgpack_object *o, proto_notification_t *n)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 6)
        return false;
    const msgpack_object *f = o->via.array.ptr;
    return get_u64(f + 0, &n->id) && get_i64(f + 1, &n->ts) && get_str(f + 2, &n->user_id) && get_str(f + 3, &n->message) &&
           get_str(f + 4, &n->kind) && get_bool(f + 5, &n->read);
}

int proto_reply_decode(proto_reply_t *rep, const void *buf, size_t len)
{
    msgpack_unpacked up;
    const msgpack_object_map *map;
    uint64_t version = 0, status = 0;
    bool have_status = false;
    int rv;

    memset(rep, 0, sizeof(*rep));
    msgpack_unpacked_init(&up);
    if ((rv = unpack_map(&up, buf, len, &map)) != 0)
        goto Exit;

    rv = PROTO_EINVALID;
    for (uint32_t i = 0; i < map->size; ++i) {
        const msgpack_object *k = &map->ptr[i].key, *v = &map->ptr[i].val;
        bool ok = true;
        if (key_is(k, "v")) {
            ok = get_u64(v, &version);
        } else if (key_is(k, "st")) {
            ok = have_status = get_u64(v, &status);
        } else if (key_is(k, "err")) {
            ok = get_str(v, &rep->error);
        } else if (key_is(k, "by")) {
            ok = get_str(v, &rep->worker);
        } else if (key_is(k, "id")) {
            ok = get_u64(v, &rep->id);
        } else if (key_is(k, "ts")) {
            ok = get_i64(v, &rep->ts);
        } else if (key_is(k, "unread")) {
            ok = get_u64(v, &rep->unread_count);
        } else if (key_is(k, "more")) {
            ok = get_bool(v, &rep->has_more);
        } else if (key_is(k, "count")) {
            ok = get_u64(v, &rep->count);
        } else if (key_is(k, "redis")) {
            ok = get_bool(v, &rep->redis_ok);
        } else if (key_is(k, "cursor")) {
            ok = get_str(v, &rep->cursor) && rep->cursor.len <= PROTO_CURSOR_MAX;
        } else if (key_is(k, "gap")) {
            ok = get_bool(v, &rep->gap);
        } else if (key_is(k, "status")) {
            uint64_t st = 0;
            ok = get_u64(v, &st) && st >= 100 && st <= 599;
            rep->http_status = (uint32_t)st;
        } else if (key_is(k, "ctype")) {
            ok = get_str(v, &rep->content_type) && rep->content_type.len <= 128;
        } else if (key_is(k, "body")) {
            ok = get_bytes(v, &rep->body) && rep->body.len <= PROTO_FORWARD_BODY_MAX;
        } else if (key_is(k, "items")) {
            if ((ok = v->type == MSGPACK_OBJECT_ARRAY && !rep->list)) {
                rep->list = true;
                size_t n = v->via.array.size;
                if (n > 0) {
                    rep->items = calloc(n, sizeof(*rep->items));
                    if (rep->items == NULL)
                        abort();
                }
                for (size_t j = 0; ok && j < n; ++j)
                    ok = decode_notification(v->via.array.ptr + j, rep->items + j);
                rep->nitems = n;
            }
        }
        if (!ok)
            goto Exit;
    }
    if (version != PROTO_VERSION) {
        rv = PROTO_EVERSION;
        goto Exit;
    }
    if (!have_status || status > PROTO_ST_BAD_VERSION)
        goto Exit;
    rep->status = (proto_status_t)status;
    rv = 0;

Exit:
    msgpack_unpacked_destroy(&up);
    return rv;
}

int proto_batch_decode(const void *buf, size_t len, proto_str_t *parts, size_t *n)
{
    msgpack_unpacked up;
    const msgpack_object_map *map;
    const msgpack_object *batch = NULL;
    uint64_t version = 0;
    int rv;

    *n = 0;
    msgpack_unpacked_init(&up);
    if ((rv = unpack_map(&up, buf, len, &map)) != 0)
        goto Exit;
    rv = PROTO_EINVALID;
    for (uint32_t i = 0; i < map->size; ++i) {
        const msgpack_object *k = &map->ptr[i].key, *v = &map->ptr[i].val;
        if (key_is(k, "v")) {
            if (!get_u64(v, &version))
                goto Exit;
        } else if (key_is(k, "batch")) {
            batch = v;
        }
    }
    if (batch == NULL) {
        rv = PROTO_ENOTBATCH;
        goto Exit;
    }
    if (version != PROTO_VERSION) {
        rv = PROTO_EVERSION;
        goto Exit;
    }
    if (batch->type != MSGPACK_OBJECT_ARRAY || batch->via.array.size < 1 || batch->via.array.size > PROTO_BATCH_MAX)
        goto Exit;
    for (uint32_t i = 0; i < batch->via.array.size; ++i) {
        const msgpack_object *o = batch->via.array.ptr + i;
        if (o->type != MSGPACK_OBJECT_BIN)
            goto Exit;
        parts[i] = (proto_str_t){o->via.bin.ptr, o->via.bin.size};
    }
    *n = batch->via.array.size;
    rv = 0;

Exit:
    msgpack_unpacked_destroy(&up);
    return rv;
}

void proto_reply_dispose(proto_reply_t *rep)
{
    free(rep->items);
    rep->items = NULL;
    rep->nitems = 0;
}

const char *proto_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case PROTO_EMALFORMED:
        return "malformed frame";
    case PROTO_EINVALID:
        return "invalid message";
    case PROTO_EVERSION:
        return "unsupported protocol version";
    case PROTO_ENOTBATCH:
        return "not a batch";
    default:
        return "unknown error";
    }
}

const char *proto_op_name(proto_op_t op)
{
    static const char *names[] = {"?", "publish", "page", "recent", "mark_read", "mark_all_read", "health", "watch", "since", "forward"};
    return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *proto_status_name(proto_status_t st)
{
    static const char *names[] = {"ok", "not_found", "bad_request", "unavailable", "internal", "bad_version"};
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}
