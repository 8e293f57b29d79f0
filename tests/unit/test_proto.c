/*
 * Unit tests of proto/: the msgpack frames between the gateway and the workers. Round trips of every request op and
 * reply shape, and a decoder that refuses everything else (truncated, trailing bytes, lying sizes, deep nesting,
 * wrong types, missing or invalid fields, other versions), checked by hand-built frames and a deterministic fuzz loop.
 */
#include <check.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "proto.h"
#include "valid.h"
#include "unit_check.h"

/* ---- allocation tracking ----------------------------------------------------------------------------------------
 * The largest single allocation since the last reset, to show that a tiny frame declaring a huge size is refused
 * before msgpack-c reserves memory for it. Forwards to glibc's allocator; left out under AddressSanitizer, which
 * brings its own. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_TRACK_ALLOC 0
#else
#define TEST_TRACK_ALLOC 1
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
static size_t test_largest_alloc;

static void note_alloc(size_t size)
{
    if (size > test_largest_alloc)
        test_largest_alloc = size;
}

void *malloc(size_t size)
{
    note_alloc(size);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    size_t total;
    note_alloc(__builtin_mul_overflow(n, size, &total) ? SIZE_MAX : total);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    note_alloc(size);
    return __libc_realloc(p, size);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

/* ---- helpers ---------------------------------------------------------------------------------------------------- */

#define S(lit) ((proto_str_t){(lit), sizeof(lit) - 1})

static const uint8_t RID[PROTO_RID_LEN] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff};

static const proto_op_t ALL_OPS[] = {PROTO_OP_PUBLISH,   PROTO_OP_PAGE,          PROTO_OP_RECENT,
                                     PROTO_OP_MARK_READ, PROTO_OP_MARK_ALL_READ, PROTO_OP_HEALTH};
#define NOPS (sizeof(ALL_OPS) / sizeof(ALL_OPS[0]))

static bool str_is(proto_str_t s, const char *lit)
{
    return s.len == strlen(lit) && (s.len == 0 || memcmp(s.ptr, lit, s.len) == 0);
}

static bool str_eq(proto_str_t a, proto_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* A request of op with every field set, as the gateway would send it. */
static proto_request_t sample_request(proto_op_t op)
{
    proto_request_t req = {.op = op,
                           .user_id = S("alice"),
                           .message = S("hello, w\xc3\xb6rld"),
                           .kind = S("info"),
                           .before = 42,
                           .id = 7,
                           .limit = 20};
    memcpy(req.rid, RID, PROTO_RID_LEN);
    return req;
}

static void encode_request(msgpack_sbuffer *sb, const proto_request_t *req)
{
    msgpack_sbuffer_init(sb);
    ck_assert_int_eq(proto_request_encode(req, msgpack_sbuffer_write, sb), 0);
}

static void encode_reply(msgpack_sbuffer *sb, const proto_reply_t *rep)
{
    msgpack_sbuffer_init(sb);
    ck_assert_int_eq(proto_reply_encode(rep, msgpack_sbuffer_write, sb), 0);
}

static int decode_request(proto_request_t *req, const msgpack_sbuffer *sb)
{
    return proto_request_decode(req, sb->data, sb->size);
}

/* Decodes a reply and frees what it allocated; for frames only the return code matters. */
static int reply_decode_rv(const void *buf, size_t len)
{
    proto_reply_t rep;
    int rv = proto_reply_decode(&rep, buf, len);
    proto_reply_dispose(&rep);
    return rv;
}

static proto_notification_t sample_items[] = {
    {.id = 1003, .ts = 1700000000300, .user_id = S("alice"), .message = S("third \xe2\x82\xac"), .kind = S("alert"), .read = false},
    {.id = 1002, .ts = -5, .user_id = S("alice"), .message = S("second"), .kind = S("info"), .read = true},
    {.id = UINT64_MAX, .ts = INT64_MIN, .user_id = S("b.o-b_9"), .message = S("x"), .kind = S("k"), .read = false},
};

static proto_reply_t sample_list_reply(void)
{
    proto_reply_t rep = {.status = PROTO_ST_OK,
                         .worker = S("history-1"),
                         .list = true,
                         .items = sample_items,
                         .nitems = sizeof(sample_items) / sizeof(sample_items[0]),
                         .unread_count = 5,
                         .has_more = true};
    return rep;
}

/* msgpack objects for building frames by hand */
static msgpack_object o_u64(uint64_t v)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    o.via.u64 = v;
    return o;
}

static msgpack_object o_neg(int64_t v)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
    o.via.i64 = v;
    return o;
}

static msgpack_object o_strn(const char *s, size_t len)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)len;
    return o;
}

static msgpack_object o_str(const char *s)
{
    return o_strn(s, strlen(s));
}

static msgpack_object o_bin(const void *p, size_t len)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_BIN};
    o.via.bin.ptr = p;
    o.via.bin.size = (uint32_t)len;
    return o;
}

static msgpack_object o_bool(bool b)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_BOOLEAN};
    o.via.boolean = b;
    return o;
}

static msgpack_object o_nil(void)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_NIL};
    return o;
}

static msgpack_object o_f64(double d)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64};
    o.via.f64 = d;
    return o;
}

static msgpack_object o_array(msgpack_object *items, size_t n)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_ARRAY};
    o.via.array.ptr = items;
    o.via.array.size = (uint32_t)n;
    return o;
}

static msgpack_object o_map(msgpack_object_kv *kv, size_t n)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_MAP};
    o.via.map.ptr = kv;
    o.via.map.size = (uint32_t)n;
    return o;
}

static bool key_eq(const msgpack_object *k, const char *name)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) && memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

/* Re-encodes the map frame src into out (initialised here) with key's value replaced by *val (added if absent), or with
 * key removed if val is NULL. */
static void frame_edit(msgpack_sbuffer *out, const msgpack_sbuffer *src, const char *key, const msgpack_object *val)
{
    msgpack_unpacked up;
    msgpack_packer pk;
    size_t off = 0, n;
    bool found = false;

    msgpack_unpacked_init(&up);
    ck_assert_int_eq(msgpack_unpack_next(&up, src->data, src->size, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(up.data.type, MSGPACK_OBJECT_MAP);
    const msgpack_object_map *m = &up.data.via.map;
    for (uint32_t i = 0; i < m->size; ++i)
        found |= key_eq(&m->ptr[i].key, key);
    n = m->size - (found && val == NULL) + (!found && val != NULL);

    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (uint32_t i = 0; i < m->size; ++i) {
        if (!key_eq(&m->ptr[i].key, key)) {
            msgpack_pack_object(&pk, m->ptr[i].key);
            msgpack_pack_object(&pk, m->ptr[i].val);
        } else if (val != NULL) {
            msgpack_pack_object(&pk, m->ptr[i].key);
            msgpack_pack_object(&pk, *val);
        }
    }
    if (!found && val != NULL) {
        msgpack_pack_object(&pk, o_str(key));
        msgpack_pack_object(&pk, *val);
    }
    msgpack_unpacked_destroy(&up);
}

/* The request of op with key set to val (or removed if val is NULL), decoded. */
static int decode_request_edited(proto_op_t op, const char *key, const msgpack_object *val, proto_request_t *req)
{
    msgpack_sbuffer base, edited;
    proto_request_t sample = sample_request(op);
    encode_request(&base, &sample);
    frame_edit(&edited, &base, key, val);
    int rv = decode_request(req, &edited);
    msgpack_sbuffer_destroy(&base);
    msgpack_sbuffer_destroy(&edited);
    return rv;
}

static int decode_reply_edited(const proto_reply_t *sample, const char *key, const msgpack_object *val)
{
    msgpack_sbuffer base, edited;
    encode_reply(&base, sample);
    frame_edit(&edited, &base, key, val);
    int rv = reply_decode_rv(edited.data, edited.size);
    msgpack_sbuffer_destroy(&base);
    msgpack_sbuffer_destroy(&edited);
    return rv;
}

static void assert_request_roundtrip(const proto_request_t *in, proto_request_t *out)
{
    msgpack_sbuffer sb;
    encode_request(&sb, in);
    ck_assert_int_eq(decode_request(out, &sb), 0);
    ck_assert_int_eq(out->op, in->op);
    ck_assert_mem_eq(out->rid, in->rid, PROTO_RID_LEN);
    /* strings point into the frame: check them before it goes */
    bool user = in->op != PROTO_OP_HEALTH && in->op != PROTO_OP_WATCH, publish = in->op == PROTO_OP_PUBLISH;
    ck_assert(str_eq(out->user_id, user ? in->user_id : (proto_str_t){NULL, 0}));
    ck_assert(str_eq(out->message, publish ? in->message : (proto_str_t){NULL, 0}));
    ck_assert(str_eq(out->kind, publish ? in->kind : (proto_str_t){NULL, 0}));
    if (out->user_id.len != 0)
        ck_assert(out->user_id.ptr >= sb.data && out->user_id.ptr + out->user_id.len <= sb.data + sb.size);
    msgpack_sbuffer_destroy(&sb);
    out->user_id = out->message = out->kind = (proto_str_t){NULL, 0};
}

/* ---- request round trips ---------------------------------------------------------------------------------------- */

START_TEST(test_request_roundtrip_publish)
{
    proto_request_t in = sample_request(PROTO_OP_PUBLISH), out;
    assert_request_roundtrip(&in, &out);
    ck_assert_uint_eq(out.before, 0);
    ck_assert_uint_eq(out.limit, 0);
    ck_assert_uint_eq(out.id, 0);
}
END_TEST

/* "keyed" (the rid comes from the client's Idempotency-Key) crosses both ways; a frame without it (a gateway from
 * before the field) reads as keyed, so that its answers stay kept for the day. */
START_TEST(test_request_publish_keyed)
{
    proto_request_t in = sample_request(PROTO_OP_PUBLISH), out;
    for (int keyed = 0; keyed < 2; ++keyed) {
        in.keyed = keyed;
        assert_request_roundtrip(&in, &out);
        ck_assert_int_eq(out.keyed, keyed);
    }
    ck_assert_int_eq(decode_request_edited(PROTO_OP_PUBLISH, "keyed", NULL, &out), 0);
    ck_assert(out.keyed);
    msgpack_object not_bool = o_str("yes");
    ck_assert_int_eq(decode_request_edited(PROTO_OP_PUBLISH, "keyed", &not_bool, &out), PROTO_EINVALID);
}
END_TEST

START_TEST(test_request_roundtrip_publish_limits)
{
    /* the longest user id, kind and message, the message made of 4-byte UTF-8 sequences */
    static char user[VALID_USER_ID_MAX], kind[VALID_KIND_MAX], msg[VALID_MESSAGE_MAX];
    memset(user, 'u', sizeof(user));
    memset(kind, 'k', sizeof(kind));
    for (size_t i = 0; i < sizeof(msg); i += 4)
        memcpy(msg + i, "\xf0\x9f\x98\x80", 4);
    proto_request_t in = sample_request(PROTO_OP_PUBLISH), out;
    in.user_id = (proto_str_t){user, sizeof(user)};
    in.kind = (proto_str_t){kind, sizeof(kind)};
    in.message = (proto_str_t){msg, sizeof(msg)};
    assert_request_roundtrip(&in, &out);
}
END_TEST

START_TEST(test_request_roundtrip_page_recent)
{
    proto_op_t ops[] = {PROTO_OP_PAGE, PROTO_OP_RECENT};
    for (size_t i = 0; i < 2; ++i) {
        proto_request_t in = sample_request(ops[i]), out;
        assert_request_roundtrip(&in, &out);
        ck_assert_uint_eq(out.before, 42);
        ck_assert_uint_eq(out.limit, 20);
        ck_assert_uint_eq(out.id, 0);

        in.before = 0, in.limit = 1;
        assert_request_roundtrip(&in, &out);
        ck_assert_uint_eq(out.before, 0);
        ck_assert_uint_eq(out.limit, 1);

        in.before = UINT64_MAX, in.limit = PROTO_LIMIT_MAX;
        assert_request_roundtrip(&in, &out);
        ck_assert_uint_eq(out.before, UINT64_MAX);
        ck_assert_uint_eq(out.limit, PROTO_LIMIT_MAX);
    }
}
END_TEST

START_TEST(test_request_roundtrip_mark_read)
{
    proto_request_t in = sample_request(PROTO_OP_MARK_READ), out;
    assert_request_roundtrip(&in, &out);
    ck_assert_uint_eq(out.id, 7);
    ck_assert_uint_eq(out.before, 0);
    ck_assert_uint_eq(out.limit, 0);

    in.id = UINT64_MAX;
    assert_request_roundtrip(&in, &out);
    ck_assert_uint_eq(out.id, UINT64_MAX);
}
END_TEST

START_TEST(test_request_roundtrip_mark_all_read)
{
    proto_request_t in = sample_request(PROTO_OP_MARK_ALL_READ), out;
    assert_request_roundtrip(&in, &out);
    ck_assert_uint_eq(out.id, 0);
    ck_assert_uint_eq(out.before, 0);
    ck_assert_uint_eq(out.limit, 0);
}
END_TEST

START_TEST(test_request_roundtrip_health)
{
    proto_request_t in = sample_request(PROTO_OP_HEALTH), out;
    assert_request_roundtrip(&in, &out);
    ck_assert_uint_eq(out.id, 0);
    ck_assert_uint_eq(out.limit, 0);

    /* a health check needs no user: an empty one is not even sent */
    in.user_id = (proto_str_t){NULL, 0};
    assert_request_roundtrip(&in, &out);
}
END_TEST

START_TEST(test_request_unknown_keys_ignored)
{
    proto_request_t req;
    msgpack_object extra = o_str("from a newer gateway");
    ck_assert_int_eq(decode_request_edited(PROTO_OP_PAGE, "zz", &extra, &req), 0);
    ck_assert_int_eq(req.op, PROTO_OP_PAGE);
    ck_assert_uint_eq(req.limit, 20);
}
END_TEST

/* ---- reply round trips ------------------------------------------------------------------------------------------ */

START_TEST(test_reply_roundtrip_items)
{
    proto_reply_t in = sample_list_reply(), out;
    msgpack_sbuffer sb;
    encode_reply(&sb, &in);
    ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
    ck_assert_int_eq(out.status, PROTO_ST_OK);
    ck_assert(str_is(out.worker, "history-1"));
    ck_assert_uint_eq(out.error.len, 0);
    ck_assert(out.list);
    ck_assert_uint_eq(out.nitems, 3);
    for (size_t i = 0; i < 3; ++i) {
        ck_assert_uint_eq(out.items[i].id, in.items[i].id);
        ck_assert_int_eq(out.items[i].ts, in.items[i].ts);
        ck_assert(str_eq(out.items[i].user_id, in.items[i].user_id));
        ck_assert(str_eq(out.items[i].message, in.items[i].message));
        ck_assert(str_eq(out.items[i].kind, in.items[i].kind));
        ck_assert_int_eq(out.items[i].read, in.items[i].read);
    }
    ck_assert_uint_eq(out.unread_count, 5);
    ck_assert(out.has_more);
    ck_assert_uint_eq(out.id, 0);
    ck_assert_uint_eq(out.count, 0);
    ck_assert(!out.redis_ok);
    proto_reply_dispose(&out);
    ck_assert_ptr_null(out.items);
    ck_assert_uint_eq(out.nitems, 0);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_reply_roundtrip_empty_list)
{
    proto_reply_t in = {.status = PROTO_ST_OK, .list = true}, out;
    msgpack_sbuffer sb;
    encode_reply(&sb, &in);
    ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
    ck_assert(out.list);
    ck_assert_uint_eq(out.nitems, 0);
    ck_assert_uint_eq(out.unread_count, 0);
    ck_assert(!out.has_more);
    ck_assert_uint_eq(out.worker.len, 0);
    proto_reply_dispose(&out);
    msgpack_sbuffer_destroy(&sb);

    /* not a list at all: no items, list false */
    proto_reply_t plain = {.status = PROTO_ST_OK};
    encode_reply(&sb, &plain);
    ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
    ck_assert(!out.list);
    ck_assert_ptr_null(out.items);
    proto_reply_dispose(&out);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_reply_roundtrip_errors)
{
    static const proto_status_t statuses[] = {PROTO_ST_NOT_FOUND, PROTO_ST_BAD_REQUEST, PROTO_ST_UNAVAILABLE, PROTO_ST_INTERNAL,
                                              PROTO_ST_BAD_VERSION};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); ++i) {
        msgpack_sbuffer sb;
        proto_reply_t out;
        msgpack_sbuffer_init(&sb);
        ck_assert_int_eq(
            proto_reply_encode_error(statuses[i], "no such \"thing\"", i % 2 ? NULL : "history-2", msgpack_sbuffer_write, &sb), 0);
        ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
        ck_assert_int_eq(out.status, statuses[i]);
        ck_assert(str_is(out.error, "no such \"thing\""));
        ck_assert(str_is(out.worker, i % 2 ? "" : "history-2"));
        ck_assert(!out.list);
        proto_reply_dispose(&out);
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

START_TEST(test_reply_roundtrip_publish)
{
    static const int64_t stamps[] = {1700000000123, 0, -1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); ++i) {
        proto_reply_t in = {.status = PROTO_ST_OK, .worker = S("h"), .id = 12345 + i, .ts = stamps[i]}, out;
        msgpack_sbuffer sb;
        encode_reply(&sb, &in);
        ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
        ck_assert_uint_eq(out.id, 12345 + i);
        ck_assert_int_eq(out.ts, stamps[i]);
        ck_assert(!out.list);
        proto_reply_dispose(&out);
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

START_TEST(test_request_roundtrip_since)
{
    proto_request_t in = sample_request(PROTO_OP_SINCE), out;
    in.after = 99;
    assert_request_roundtrip(&in, &out);
    ck_assert_uint_eq(out.after, 99);
    ck_assert_uint_eq(out.limit, 20);
    ck_assert_uint_eq(out.before, 0); /* not sent for SINCE */

    in.after = 0; /* from the first notification on */
    assert_request_roundtrip(&in, &out);
    ck_assert_uint_eq(out.after, 0);

    in.limit = 0; /* limit must be 1-100 */
    msgpack_sbuffer sb;
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), PROTO_EINVALID);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_request_roundtrip_watch)
{
    proto_request_t in = sample_request(PROTO_OP_WATCH), out;
    msgpack_sbuffer sb;
    in.cursor = S("1795620301409-3");
    in.wait_ms = 20000;
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), 0);
    ck_assert_int_eq(out.op, PROTO_OP_WATCH);
    ck_assert(str_eq(out.cursor, in.cursor));
    ck_assert_uint_eq(out.wait_ms, 20000);
    ck_assert_uint_eq(out.user_id.len, 0); /* a watch is for every user */
    msgpack_sbuffer_destroy(&sb);

    in.cursor = S(""); /* "from now": allowed */
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), 0);
    ck_assert_uint_eq(out.cursor.len, 0);
    msgpack_sbuffer_destroy(&sb);

    in.wait_ms = PROTO_WATCH_WAIT_MAX + 1; /* held too long */
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), PROTO_EINVALID);
    msgpack_sbuffer_destroy(&sb);

    in.wait_ms = 0;
    in.cursor = S("0123456789012345678901234567890123456789012345678"); /* 49 bytes: longer than any stream id */
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), PROTO_EINVALID);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- batches ------------------------------------------------------------------------------------------------- */

START_TEST(test_batch_roundtrip)
{
    proto_op_t ops[3] = {PROTO_OP_PAGE, PROTO_OP_PUBLISH, PROTO_OP_RECENT};
    msgpack_sbuffer subs[3], sb;
    proto_str_t frames[3], parts[PROTO_BATCH_MAX];
    size_t n = 99;
    for (int i = 0; i < 3; ++i) {
        proto_request_t req = sample_request(ops[i]);
        encode_request(&subs[i], &req);
        frames[i] = (proto_str_t){subs[i].data, subs[i].size};
    }
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_batch_encode(frames, 3, (proto_write_cb)msgpack_sbuffer_write, &sb), 0);
    ck_assert_int_eq(proto_batch_decode(sb.data, sb.size, parts, &n), 0);
    ck_assert_uint_eq(n, 3);
    for (int i = 0; i < 3; ++i) {
        proto_request_t out;
        ck_assert(str_eq(parts[i], frames[i]));
        /* the parts point into the frame: nothing copied */
        ck_assert(parts[i].ptr >= sb.data && parts[i].ptr + parts[i].len <= sb.data + sb.size);
        ck_assert_int_eq(proto_request_decode(&out, parts[i].ptr, parts[i].len), 0);
        ck_assert_int_eq(out.op, ops[i]);
        msgpack_sbuffer_destroy(&subs[i]);
    }
    /* a single message is not a batch */
    proto_request_t req = sample_request(PROTO_OP_PAGE);
    msgpack_sbuffer one;
    encode_request(&one, &req);
    ck_assert_int_eq(proto_batch_decode(one.data, one.size, parts, &n), PROTO_ENOTBATCH);
    ck_assert_uint_eq(n, 0);
    msgpack_sbuffer_destroy(&one);
    /* truncated anywhere: malformed */
    for (size_t cut = 0; cut < sb.size; ++cut)
        ck_assert_int_eq(proto_batch_decode(sb.data, cut, parts, &n), PROTO_EMALFORMED);
    msgpack_sbuffer_destroy(&sb);
    /* encoding refuses an empty or oversized batch */
    msgpack_sbuffer_init(&sb);
    ck_assert_int_eq(proto_batch_encode(frames, 0, (proto_write_cb)msgpack_sbuffer_write, &sb), -1);
    ck_assert_int_eq(proto_batch_encode(frames, PROTO_BATCH_MAX + 1, (proto_write_cb)msgpack_sbuffer_write, &sb), -1);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* {"v":version, "batch":items} */
static int batch_decode_of(uint64_t version, msgpack_object items, size_t *n)
{
    msgpack_object_kv kv[2] = {{o_str("v"), o_u64(version)}, {o_str("batch"), items}};
    msgpack_object top = o_map(kv, 2);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    proto_str_t parts[PROTO_BATCH_MAX];
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ck_assert_int_eq(msgpack_pack_object(&pk, top), 0);
    int rv = proto_batch_decode(sb.data, sb.size, parts, n);
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

START_TEST(test_batch_rejects_bad_shapes)
{
    static msgpack_object items[PROTO_BATCH_MAX + 1];
    size_t n;
    for (size_t i = 0; i <= PROTO_BATCH_MAX; ++i)
        items[i] = o_bin("x", 1);
    ck_assert_int_eq(batch_decode_of(PROTO_VERSION, o_array(items, PROTO_BATCH_MAX), &n), 0);
    ck_assert_uint_eq(n, PROTO_BATCH_MAX);
    ck_assert_int_eq(batch_decode_of(PROTO_VERSION, o_array(items, PROTO_BATCH_MAX + 1), &n), PROTO_EINVALID);
    ck_assert_int_eq(batch_decode_of(PROTO_VERSION, o_array(items, 0), &n), PROTO_EINVALID);
    ck_assert_int_eq(batch_decode_of(PROTO_VERSION + 1, o_array(items, 2), &n), PROTO_EVERSION);
    ck_assert_int_eq(batch_decode_of(PROTO_VERSION, o_str("frames"), &n), PROTO_EINVALID);
    msgpack_object mixed[2] = {o_bin("x", 1), o_str("not a bin")};
    ck_assert_int_eq(batch_decode_of(PROTO_VERSION, o_array(mixed, 2), &n), PROTO_EINVALID);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_roundtrip_forward)
{
    static const char body[] = "{\"customer_id\":\"c1\",\"items\":[]}\0binary"; /* a body may hold any bytes */
    proto_request_t in = sample_request(PROTO_OP_FORWARD), out;
    in.method = S("POST");
    in.path = S("/v1/orders");
    in.query = S("dry_run=1");
    in.body = (proto_str_t){body, sizeof(body) - 1};
    in.idempotency_key = S("order-42");
    msgpack_sbuffer sb;
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), 0);
    ck_assert_int_eq(out.op, PROTO_OP_FORWARD);
    ck_assert(str_eq(out.method, in.method) && str_eq(out.path, in.path) && str_eq(out.query, in.query));
    ck_assert(str_eq(out.body, in.body) && str_eq(out.idempotency_key, in.idempotency_key));
    ck_assert_uint_eq(out.user_id.len, 0);
    msgpack_sbuffer_destroy(&sb);

    in.path = S("v1/orders"); /* a path starts with a slash */
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), PROTO_EINVALID);
    msgpack_sbuffer_destroy(&sb);
    in.path = S("/x");
    in.method = S("");
    encode_request(&sb, &in);
    ck_assert_int_eq(decode_request(&out, &sb), PROTO_EINVALID);
    msgpack_sbuffer_destroy(&sb);

    proto_reply_t rin = {.status = PROTO_ST_OK,
                         .http_status = 409,
                         .content_type = S("application/json"),
                         .body = S("{\"status\":\"failed\",\"error\":\"insufficient stock\"}")},
                  rout;
    encode_reply(&sb, &rin);
    ck_assert_int_eq(proto_reply_decode(&rout, sb.data, sb.size), 0);
    ck_assert_uint_eq(rout.http_status, 409);
    ck_assert(str_eq(rout.content_type, rin.content_type) && str_eq(rout.body, rin.body));
    proto_reply_dispose(&rout);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_reply_roundtrip_cursor_and_gap)
{
    proto_notification_t items[] = {{.id = 5, .ts = 1, .user_id = S("u"), .message = S("m"), .kind = S("k")}};
    proto_reply_t in = {.status = PROTO_ST_OK, .list = true, .items = items, .nitems = 1, .cursor = S("17-0"), .gap = true}, out;
    msgpack_sbuffer sb;
    encode_reply(&sb, &in);
    ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
    ck_assert(str_eq(out.cursor, in.cursor));
    ck_assert(out.gap);
    ck_assert_uint_eq(out.nitems, 1);
    ck_assert_uint_eq(out.items[0].id, 5);
    proto_reply_dispose(&out);
    msgpack_sbuffer_destroy(&sb);

    in.gap = false, in.cursor = S("");
    encode_reply(&sb, &in);
    ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
    ck_assert(!out.gap);
    ck_assert_uint_eq(out.cursor.len, 0);
    proto_reply_dispose(&out);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_reply_roundtrip_count_and_redis)
{
    proto_reply_t in = {.status = PROTO_ST_OK, .count = 17}, out;
    msgpack_sbuffer sb;
    encode_reply(&sb, &in);
    ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
    ck_assert_uint_eq(out.count, 17);
    ck_assert(!out.redis_ok);
    proto_reply_dispose(&out);
    msgpack_sbuffer_destroy(&sb);

    in = (proto_reply_t){.status = PROTO_ST_OK, .redis_ok = true, .count = UINT64_MAX};
    encode_reply(&sb, &in);
    ck_assert_int_eq(proto_reply_decode(&out, sb.data, sb.size), 0);
    ck_assert(out.redis_ok);
    ck_assert_uint_eq(out.count, UINT64_MAX);
    proto_reply_dispose(&out);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static int failing_write(void *data, const char *buf, size_t len)
{
    size_t *budget = data;
    if (len > *budget)
        return -1;
    *budget -= len;
    return 0;
}

START_TEST(test_encode_write_failure)
{
    /* a sink that fails after a few bytes, at every point of the frame */
    for (size_t budget0 = 0; budget0 < 16; ++budget0) {
        for (size_t i = 0; i < NOPS; ++i) {
            proto_request_t req = sample_request(ALL_OPS[i]);
            size_t budget = budget0;
            ck_assert_int_eq(proto_request_encode(&req, failing_write, &budget), -1);
        }
        proto_reply_t rep = sample_list_reply();
        size_t budget = budget0;
        ck_assert_int_eq(proto_reply_encode(&rep, failing_write, &budget), -1);
        budget = budget0;
        ck_assert_int_eq(proto_reply_encode_error(PROTO_ST_INTERNAL, "boom", "w", failing_write, &budget), -1);
    }
}
END_TEST

/* ---- malformed frames ------------------------------------------------------------------------------------------- */

/* Valid frames of every shape, for truncation, trailing bytes and mutation. is_request[i] says which decoder. */
typedef struct st_frames_t {
    msgpack_sbuffer sb[NOPS + 4];
    bool is_request[NOPS + 4];
    size_t n;
} frames_t;

static void frames_init(frames_t *f)
{
    f->n = 0;
    for (size_t i = 0; i < NOPS; ++i) {
        proto_request_t req = sample_request(ALL_OPS[i]);
        encode_request(&f->sb[f->n], &req);
        f->is_request[f->n++] = true;
    }
    proto_reply_t list = sample_list_reply(), pub = {.status = PROTO_ST_OK, .id = 9, .ts = 99, .worker = S("w")},
                  misc = {.status = PROTO_ST_OK, .count = 3, .redis_ok = true};
    encode_reply(&f->sb[f->n], &list);
    f->is_request[f->n++] = false;
    encode_reply(&f->sb[f->n], &pub);
    f->is_request[f->n++] = false;
    encode_reply(&f->sb[f->n], &misc);
    f->is_request[f->n++] = false;
    msgpack_sbuffer_init(&f->sb[f->n]);
    ck_assert_int_eq(proto_reply_encode_error(PROTO_ST_UNAVAILABLE, "redis down", "n1", msgpack_sbuffer_write, &f->sb[f->n]), 0);
    f->is_request[f->n++] = false;
}

static void frames_dispose(frames_t *f)
{
    for (size_t i = 0; i < f->n; ++i)
        msgpack_sbuffer_destroy(&f->sb[i]);
}

static int decode_as(bool request, const void *buf, size_t len)
{
    proto_request_t req;
    return request ? proto_request_decode(&req, buf, len) : reply_decode_rv(buf, len);
}

START_TEST(test_decode_valid_frames)
{
    /* the fixtures of the malformed-frame tests are themselves accepted */
    frames_t f;
    frames_init(&f);
    for (size_t i = 0; i < f.n; ++i) {
        ck_assert_int_eq(decode_as(f.is_request[i], f.sb[i].data, f.sb[i].size), 0);
        ck_assert_int_eq(proto_frame_check(f.sb[i].data, f.sb[i].size, 4), 0);
    }
    frames_dispose(&f);
}
END_TEST

START_TEST(test_decode_truncated)
{
    frames_t f;
    frames_init(&f);
    for (size_t i = 0; i < f.n; ++i) {
        for (size_t len = 0; len < f.sb[i].size; ++len) {
            /* a copy of exactly len bytes, so that reading past it is caught by ASan */
            char *copy = malloc(len + 1);
            memcpy(copy, f.sb[i].data, len);
            ck_assert_msg(decode_as(f.is_request[i], copy, len) == PROTO_EMALFORMED, "frame %zu cut to %zu of %zu bytes", i, len,
                          f.sb[i].size);
            ck_assert_int_eq(proto_frame_check(copy, len, 4), PROTO_EMALFORMED);
            free(copy);
        }
    }
    frames_dispose(&f);
}
END_TEST

START_TEST(test_decode_trailing_bytes)
{
    static const unsigned char tails[] = {0x00, 0xc0, 0x80, 0xc1};
    frames_t f;
    frames_init(&f);
    for (size_t i = 0; i < f.n; ++i) {
        size_t len = f.sb[i].size;
        char *buf = malloc(2 * len);
        memcpy(buf, f.sb[i].data, len);
        for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); ++t) {
            buf[len] = (char)tails[t];
            ck_assert_int_eq(decode_as(f.is_request[i], buf, len + 1), PROTO_EMALFORMED);
        }
        memcpy(buf + len, f.sb[i].data, len); /* two frames back to back */
        ck_assert_int_eq(decode_as(f.is_request[i], buf, 2 * len), PROTO_EMALFORMED);
        free(buf);
    }
    frames_dispose(&f);
}
END_TEST

START_TEST(test_decode_huge_declared_sizes)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
#define B(lit) {lit, sizeof(lit) - 1}
        B("\xdd\xff\xff\xff\xff"),             /* array32 of 4 G elements */
        B("\xdd\x05\xf5\xe1\x00"),             /* array32 of 100 M */
        B("\xdd\x05\xf5\xe1\x00\xc0\xc0\xc0"), /* the same with a few elements present */
        B("\xdc\xff\xff\xc0"),                 /* array16 */
        B("\xdf\xff\xff\xff\xff"),             /* map32 */
        B("\xdf\x05\xf5\xe1\x00\xa1v\x01"),    /* map32 of 100 M pairs, one present */
        B("\xde\xff\xff"),                     /* map16 */
        B("\xdb\xff\xff\xff\xff"),             /* str32 */
        B("\xdb\x7f\xff\xff\xff"
          "abc"),                               /* str32 of 2 GB, three bytes present */
        B("\xda\xff\xff"),                      /* str16 */
        B("\xd9\xff"),                          /* str8 */
        B("\xc6\xff\xff\xff\xff"),              /* bin32 */
        B("\xc5\xff\xff"),                      /* bin16 */
        B("\xc9\xff\xff\xff\xff\x01"),          /* ext32 */
        B("\x81\xa5items\xdd\xff\xff\xff\xff"), /* {"items": array32 of 4 G} */
        B("\x82\xa1v\x01\xa4user\xdb\x40\x00\x00\x00"
          "a"),                                     /* {"v":1, "user": str32 of 1 GB} */
        B("\x81\xa5items\x91\xdd\x10\x00\x00\x00"), /* {"items": [array32 of 256 M]} */
#undef B
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        ck_assert_msg(proto_frame_check(cases[i].bytes, cases[i].len, 4) == PROTO_EMALFORMED, "case %zu", i);
#if TEST_TRACK_ALLOC
        test_largest_alloc = 0;
#endif
        proto_request_t req;
        int rv = proto_request_decode(&req, cases[i].bytes, cases[i].len);
#if TEST_TRACK_ALLOC
        size_t largest = test_largest_alloc;
        ck_assert_msg(largest < 64 * 1024, "case %zu: request decode allocated %zu bytes at once", i, largest);
#endif
        ck_assert_msg(rv == PROTO_EMALFORMED, "case %zu: request decode returned %d", i, rv);

#if TEST_TRACK_ALLOC
        test_largest_alloc = 0;
#endif
        rv = reply_decode_rv(cases[i].bytes, cases[i].len);
#if TEST_TRACK_ALLOC
        largest = test_largest_alloc;
        ck_assert_msg(largest < 64 * 1024, "case %zu: reply decode allocated %zu bytes at once", i, largest);
#endif
        ck_assert_msg(rv == PROTO_EMALFORMED, "case %zu: reply decode returned %d", i, rv);
    }
}
END_TEST

/* Packs depth nested one-element arrays around the integer 1. */
static void pack_nested_arrays(msgpack_packer *pk, size_t depth)
{
    for (size_t i = 0; i < depth; ++i)
        msgpack_pack_array(pk, 1);
    msgpack_pack_uint64(pk, 1);
}

/* The page request with an unknown key "x" whose value is depth nested arrays. */
static int decode_with_nested(size_t depth, bool maps)
{
    msgpack_sbuffer base, sb;
    msgpack_packer pk;
    proto_request_t req = sample_request(PROTO_OP_PAGE);
    encode_request(&base, &req);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* the sample's map header is one byte (fixmap): copy its pairs after a header with one more */
    ck_assert_int_eq((unsigned char)base.data[0] & 0xf0, 0x80);
    msgpack_pack_map(&pk, ((unsigned char)base.data[0] & 0x0f) + 1);
    msgpack_sbuffer_write(&sb, base.data + 1, base.size - 1);
    msgpack_pack_str_with_body(&pk, "x", 1);
    if (maps) {
        for (size_t i = 0; i < depth; ++i) {
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str_with_body(&pk, "k", 1);
        }
        msgpack_pack_uint64(&pk, 1);
    } else {
        pack_nested_arrays(&pk, depth);
    }
    int rv = proto_request_decode(&req, sb.data, sb.size);
    msgpack_sbuffer_destroy(&base);
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

START_TEST(test_decode_nesting)
{
    /* top map, then three levels under an unknown key: as deep as a reply's items go, accepted and ignored */
    ck_assert_int_eq(decode_with_nested(1, false), 0);
    ck_assert_int_eq(decode_with_nested(3, false), 0);
    ck_assert_int_eq(decode_with_nested(3, true), 0);
    /* one more is refused, and so is anything far deeper (msgpack-c's own limit is 32) */
    ck_assert_int_eq(decode_with_nested(4, false), PROTO_EMALFORMED);
    ck_assert_int_eq(decode_with_nested(4, true), PROTO_EMALFORMED);
    ck_assert_int_eq(decode_with_nested(40, false), PROTO_EMALFORMED);
    ck_assert_int_eq(decode_with_nested(1000, true), PROTO_EMALFORMED);

    /* the depth bound of proto_frame_check itself */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_nested_arrays(&pk, 3);
    ck_assert_int_eq(proto_frame_check(sb.data, sb.size, 3), 0);
    ck_assert_int_eq(proto_frame_check(sb.data, sb.size, 2), PROTO_EMALFORMED);
    ck_assert_int_eq(proto_frame_check(sb.data, sb.size, 0), PROTO_EMALFORMED);
    ck_assert_int_eq(proto_frame_check("\x01", 1, 0), 0);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(test_decode_c1_and_empty)
{
    proto_request_t req;
    ck_assert_int_eq(proto_request_decode(&req, "\xc1", 1), PROTO_EMALFORMED);
    ck_assert_int_eq(reply_decode_rv("\xc1", 1), PROTO_EMALFORMED);
    ck_assert_int_eq(proto_request_decode(&req, "\x81\xa1v\xc1", 4), PROTO_EMALFORMED);
    ck_assert_int_eq(reply_decode_rv("\x81\xa1v\xc1", 4), PROTO_EMALFORMED);
    ck_assert_int_eq(proto_request_decode(&req, "\x81\xc1\x01", 3), PROTO_EMALFORMED);
    ck_assert_int_eq(proto_request_decode(&req, "", 0), PROTO_EMALFORMED);
    ck_assert_int_eq(reply_decode_rv("", 0), PROTO_EMALFORMED);
}
END_TEST

START_TEST(test_decode_not_a_map)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {{"\x92\x01\x02", 3},        {"\x01", 1}, {"\xa1v", 2}, {"\xc0", 1}, {"\xc3", 1}, {"\x90", 1},
                 {"\xcb\0\0\0\0\0\0\0\0", 9}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        proto_request_t req;
        ck_assert_msg(proto_request_decode(&req, cases[i].bytes, cases[i].len) == PROTO_EINVALID, "case %zu", i);
        ck_assert_msg(reply_decode_rv(cases[i].bytes, cases[i].len) == PROTO_EINVALID, "case %zu", i);
    }
    /* an empty map is a map: it lacks "v" */
    proto_request_t req;
    ck_assert_int_eq(proto_request_decode(&req, "\x80", 1), PROTO_EVERSION);
    ck_assert_int_eq(reply_decode_rv("\x80", 1), PROTO_EVERSION);
}
END_TEST

START_TEST(test_decode_version)
{
    proto_request_t req;
    msgpack_object v2 = o_u64(2), v0 = o_u64(0), vbig = o_u64(UINT64_MAX);
    for (size_t i = 0; i < NOPS; ++i) {
        ck_assert_int_eq(decode_request_edited(ALL_OPS[i], "v", &v2, &req), PROTO_EVERSION);
        ck_assert_int_eq(decode_request_edited(ALL_OPS[i], "v", &v0, &req), PROTO_EVERSION);
        ck_assert_int_eq(decode_request_edited(ALL_OPS[i], "v", &vbig, &req), PROTO_EVERSION);
        ck_assert_int_eq(decode_request_edited(ALL_OPS[i], "v", NULL, &req), PROTO_EVERSION);
    }
    /* a version-2 frame need not look like version 1 otherwise */
    ck_assert_int_eq(proto_request_decode(&req, "\x81\xa1v\x02", 4), PROTO_EVERSION);

    proto_reply_t rep = sample_list_reply();
    ck_assert_int_eq(decode_reply_edited(&rep, "v", &v2), PROTO_EVERSION);
    ck_assert_int_eq(decode_reply_edited(&rep, "v", NULL), PROTO_EVERSION);
    ck_assert_int_eq(reply_decode_rv("\x81\xa1v\x02", 4), PROTO_EVERSION);
}
END_TEST

static const char *const FIELDS[] = {"v", "op", "rid", "user", "msg", "kind", "before", "limit", "id"};

/* Whether the decoder needs key for op (without it: EINVALID, or EVERSION for "v"). */
static bool required(proto_op_t op, const char *key)
{
    if (strcmp(key, "v") == 0 || strcmp(key, "op") == 0 || strcmp(key, "rid") == 0)
        return true;
    if (strcmp(key, "user") == 0)
        return op != PROTO_OP_HEALTH;
    if (strcmp(key, "msg") == 0 || strcmp(key, "kind") == 0)
        return op == PROTO_OP_PUBLISH;
    if (strcmp(key, "limit") == 0)
        return op == PROTO_OP_PAGE || op == PROTO_OP_RECENT;
    if (strcmp(key, "id") == 0)
        return op == PROTO_OP_MARK_READ;
    return false;
}

START_TEST(test_decode_missing_fields)
{
    for (size_t i = 0; i < NOPS; ++i) {
        for (size_t k = 0; k < sizeof(FIELDS) / sizeof(FIELDS[0]); ++k) {
            proto_request_t req;
            int rv = decode_request_edited(ALL_OPS[i], FIELDS[k], NULL, &req);
            int want = !required(ALL_OPS[i], FIELDS[k]) ? 0 : strcmp(FIELDS[k], "v") == 0 ? PROTO_EVERSION : PROTO_EINVALID;
            ck_assert_msg(rv == want, "%s without %s: got %d, want %d", proto_op_name(ALL_OPS[i]), FIELDS[k], rv, want);
        }
    }
}
END_TEST

START_TEST(test_decode_wrong_types)
{
    static const uint8_t rid15[15] = {0}, rid17[17] = {0};
    struct {
        proto_op_t op;
        const char *key;
        msgpack_object val;
    } cases[] = {
        {PROTO_OP_PUBLISH, "v", o_str("1")},
        {PROTO_OP_PUBLISH, "v", o_neg(-1)},
        {PROTO_OP_PUBLISH, "v", o_f64(1.0)},
        {PROTO_OP_PUBLISH, "op", o_str("publish")},
        {PROTO_OP_PUBLISH, "op", o_u64(0)},
        {PROTO_OP_PUBLISH, "op", o_u64(7)},
        {PROTO_OP_PUBLISH, "op", o_u64(UINT64_MAX)},
        {PROTO_OP_PUBLISH, "op", o_neg(-1)},
        {PROTO_OP_HEALTH, "rid", o_strn("0123456789abcdef", 16)},
        {PROTO_OP_HEALTH, "rid", o_bin(rid15, 15)},
        {PROTO_OP_HEALTH, "rid", o_bin(rid17, 17)},
        {PROTO_OP_HEALTH, "rid", o_nil()},
        {PROTO_OP_PUBLISH, "user", o_u64(5)},
        {PROTO_OP_PUBLISH, "user", o_bin("alice", 5)},
        {PROTO_OP_PUBLISH, "user", o_nil()},
        {PROTO_OP_PUBLISH, "msg", o_bin("hello", 5)},
        {PROTO_OP_PUBLISH, "msg", o_nil()},
        {PROTO_OP_PUBLISH, "msg", o_bool(true)},
        {PROTO_OP_PUBLISH, "kind", o_u64(1)},
        {PROTO_OP_PUBLISH, "kind", o_array(NULL, 0)},
        {PROTO_OP_PAGE, "before", o_str("5")},
        {PROTO_OP_PAGE, "before", o_neg(-1)},
        {PROTO_OP_PAGE, "before", o_nil()},
        {PROTO_OP_RECENT, "limit", o_f64(20.0)},
        {PROTO_OP_RECENT, "limit", o_neg(-1)},
        {PROTO_OP_RECENT, "limit", o_str("20")},
        {PROTO_OP_MARK_READ, "id", o_bool(true)},
        {PROTO_OP_MARK_READ, "id", o_neg(-7)},
        {PROTO_OP_MARK_READ, "id", o_map(NULL, 0)},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        proto_request_t req;
        int rv = decode_request_edited(cases[i].op, cases[i].key, &cases[i].val, &req);
        ck_assert_msg(rv == PROTO_EINVALID, "case %zu (%s): got %d", i, cases[i].key, rv);
    }
}
END_TEST

START_TEST(test_decode_invalid_values)
{
    static char long_user[VALID_USER_ID_MAX + 1], long_kind[VALID_KIND_MAX + 1], long_msg[VALID_MESSAGE_MAX + 1];
    memset(long_user, 'a', sizeof(long_user));
    memset(long_kind, 'k', sizeof(long_kind));
    memset(long_msg, 'm', sizeof(long_msg));
    struct {
        proto_op_t op;
        const char *key;
        msgpack_object val;
        int want;
    } cases[] = {
        /* user ids, on every op that carries one */
        {PROTO_OP_PUBLISH, "user", o_str(""), PROTO_EINVALID},
        {PROTO_OP_PAGE, "user", o_str("a b"), PROTO_EINVALID},
        {PROTO_OP_RECENT, "user", o_str("al/ice"), PROTO_EINVALID},
        {PROTO_OP_MARK_READ, "user", o_str("\xc3\xbc"), PROTO_EINVALID},
        {PROTO_OP_MARK_ALL_READ, "user", o_strn(long_user, sizeof(long_user)), PROTO_EINVALID},
        {PROTO_OP_PAGE, "user", o_strn("a\0b", 3), PROTO_EINVALID},
        {PROTO_OP_PAGE, "user", o_strn(long_user, VALID_USER_ID_MAX), 0},
        {PROTO_OP_HEALTH, "user", o_str("not checked for health"), 0},
        /* messages */
        {PROTO_OP_PUBLISH, "msg", o_str(""), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "msg", o_str("\xff"), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "msg", o_str("caf\xc3"), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "msg", o_str("\xc0\xaf"), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "msg", o_str("\xed\xa0\x80"), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "msg", o_strn("a\0b", 3), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "msg", o_strn(long_msg, sizeof(long_msg)), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "msg", o_strn(long_msg, VALID_MESSAGE_MAX), 0},
        {PROTO_OP_PUBLISH, "msg", o_str("x"), 0},
        /* kinds */
        {PROTO_OP_PUBLISH, "kind", o_str(""), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "kind", o_str("a b"), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "kind", o_strn(long_kind, sizeof(long_kind)), PROTO_EINVALID},
        {PROTO_OP_PUBLISH, "kind", o_strn(long_kind, VALID_KIND_MAX), 0},
        /* limits */
        {PROTO_OP_PAGE, "limit", o_u64(0), PROTO_EINVALID},
        {PROTO_OP_PAGE, "limit", o_u64(PROTO_LIMIT_MAX + 1), PROTO_EINVALID},
        {PROTO_OP_RECENT, "limit", o_u64(0), PROTO_EINVALID},
        {PROTO_OP_RECENT, "limit", o_u64(PROTO_LIMIT_MAX + 1), PROTO_EINVALID},
        {PROTO_OP_RECENT, "limit", o_u64((uint64_t)UINT32_MAX + 21), PROTO_EINVALID}, /* 20 once truncated to 32 bits */
        {PROTO_OP_PAGE, "limit", o_u64(1), 0},
        {PROTO_OP_PAGE, "limit", o_u64(PROTO_LIMIT_MAX), 0},
        /* mark_read needs a notification id */
        {PROTO_OP_MARK_READ, "id", o_u64(0), PROTO_EINVALID},
        {PROTO_OP_MARK_READ, "id", o_u64(1), 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        proto_request_t req;
        int rv = decode_request_edited(cases[i].op, cases[i].key, &cases[i].val, &req);
        ck_assert_msg(rv == cases[i].want, "case %zu (%s %s): got %d, want %d", i, proto_op_name(cases[i].op), cases[i].key, rv,
                      cases[i].want);
    }
}
END_TEST

START_TEST(test_reply_decode_wrong_types)
{
    proto_reply_t sample = sample_list_reply();
    struct {
        const char *key;
        msgpack_object val;
    } cases[] = {
        {"st", o_str("ok")},    {"st", o_u64(PROTO_ST_BAD_VERSION + 1)},
        {"st", o_neg(-1)},      {"err", o_u64(1)},
        {"by", o_bin("w", 1)},  {"id", o_neg(-1)},
        {"ts", o_f64(1.5)},     {"ts", o_u64(UINT64_MAX)},
        {"ts", o_str("0")},     {"unread", o_bool(true)},
        {"unread", o_neg(-3)},  {"more", o_u64(1)},
        {"more", o_nil()},      {"count", o_str("3")},
        {"redis", o_u64(1)},    {"items", o_map(NULL, 0)},
        {"items", o_str("[]")}, {"items", o_nil()},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        ck_assert_msg(decode_reply_edited(&sample, cases[i].key, &cases[i].val) == PROTO_EINVALID, "case %zu (%s)", i,
                      cases[i].key);

    /* without a status */
    ck_assert_int_eq(decode_reply_edited(&sample, "st", NULL), PROTO_EINVALID);
    /* unknown keys are ignored */
    msgpack_object extra = o_array(NULL, 0);
    ck_assert_int_eq(decode_reply_edited(&sample, "future", &extra), 0);
}
END_TEST

START_TEST(test_reply_decode_bad_items)
{
    proto_reply_t sample = sample_list_reply();
    msgpack_object good[6] = {o_u64(6), o_u64(1), o_str("a"), o_str("b"), o_str("c"), o_bool(true)};
    /* each item field in turn given a wrong type (6, 7: too few or too many fields) */
    for (int field = 0; field < 8; ++field) {
        msgpack_object bad[7] = {o_u64(5), o_u64(1700000000000), o_str("alice"), o_str("m"), o_str("info"), o_bool(false), o_nil()};
        size_t n = field == 6 ? 5 : field == 7 ? 7 : 6;
        switch (field) {
        case 0:
            bad[0] = o_neg(-5);
            break;
        case 1:
            bad[1] = o_str("now");
            break;
        case 2:
            bad[2] = o_bin("alice", 5);
            break;
        case 3:
            bad[3] = o_u64(3);
            break;
        case 4:
            bad[4] = o_nil();
            break;
        case 5:
            bad[5] = o_u64(0);
            break;
        default:
            break;
        }
        /* the bad item after a good one, so that a partly filled items array must be freed */
        msgpack_object items[2] = {o_array(good, 6), o_array(bad, n)};
        msgpack_object list = o_array(items, 2);
        ck_assert_msg(decode_reply_edited(&sample, "items", &list) == PROTO_EINVALID, "field %d", field);
        /* the same item made valid is accepted, so the failure above is the field's */
        if (field < 6) {
            msgpack_object fixed[6] = {o_u64(5), o_u64(1700000000000), o_str("alice"), o_str("m"), o_str("info"), o_bool(false)};
            items[1] = o_array(fixed, 6);
            ck_assert_int_eq(decode_reply_edited(&sample, "items", &list), 0);
        }
    }

    /* an item that is not an array, and items twice */
    msgpack_object notarray[1] = {o_map(NULL, 0)}, list = o_array(notarray, 1);
    ck_assert_int_eq(decode_reply_edited(&sample, "items", &list), PROTO_EINVALID);

    msgpack_sbuffer base, sb;
    msgpack_packer pk;
    encode_reply(&base, &sample);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ck_assert_int_eq((unsigned char)base.data[0] & 0xf0, 0x80);
    msgpack_pack_map(&pk, ((unsigned char)base.data[0] & 0x0f) + 1);
    msgpack_sbuffer_write(&sb, base.data + 1, base.size - 1);
    msgpack_pack_str_with_body(&pk, "items", 5);
    msgpack_pack_array(&pk, 0);
    ck_assert_int_eq(reply_decode_rv(sb.data, sb.size), PROTO_EINVALID);
    msgpack_sbuffer_destroy(&base);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ---- fuzz ------------------------------------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    return unit_rng(&rng_state);
}

static bool in_frame(proto_str_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.len <= len && s.ptr - buf <= (ptrdiff_t)(len - s.len));
}

/* Decodes buf both ways and checks what any input must satisfy. */
static void check_any_input(const char *buf, size_t len)
{
    proto_request_t req;
    int rv = proto_request_decode(&req, buf, len);
    REQUIRE(rv == 0 || rv == PROTO_EMALFORMED || rv == PROTO_EINVALID || rv == PROTO_EVERSION, "request decode: %d", rv);
    if (rv == 0) {
        REQUIRE(req.op >= PROTO_OP_PUBLISH && req.op <= PROTO_OP_HEALTH, "op %d", req.op);
        REQUIRE(in_frame(req.user_id, buf, len) && in_frame(req.message, buf, len) && in_frame(req.kind, buf, len),
                "a string outside the frame");
        REQUIRE(req.op == PROTO_OP_HEALTH || valid_user_id(req.user_id.ptr, req.user_id.len), "invalid user id accepted");
        REQUIRE(req.op != PROTO_OP_PUBLISH ||
                    (valid_message(req.message.ptr, req.message.len) && valid_kind(req.kind.ptr, req.kind.len)),
                "invalid message or kind accepted");
        REQUIRE((req.op != PROTO_OP_PAGE && req.op != PROTO_OP_RECENT) || (req.limit >= 1 && req.limit <= PROTO_LIMIT_MAX),
                "limit %u accepted", req.limit);
        REQUIRE(req.op != PROTO_OP_MARK_READ || req.id != 0, "mark_read of id 0 accepted");
    }

    proto_reply_t rep;
    rv = proto_reply_decode(&rep, buf, len);
    REQUIRE(rv == 0 || rv == PROTO_EMALFORMED || rv == PROTO_EINVALID || rv == PROTO_EVERSION, "reply decode: %d", rv);
    if (rv == 0) {
        REQUIRE(rep.status <= PROTO_ST_BAD_VERSION, "status %d", rep.status);
        REQUIRE(rep.nitems == 0 || rep.list, "items without list");
        for (size_t i = 0; i < rep.nitems; ++i)
            REQUIRE(in_frame(rep.items[i].user_id, buf, len) && in_frame(rep.items[i].message, buf, len) &&
                        in_frame(rep.items[i].kind, buf, len),
                    "an item string outside the frame");
    }
    proto_reply_dispose(&rep);

    /* what the frame check passes, msgpack-c reads as exactly one value */
    if (proto_frame_check(buf, len, 15) == 0) {
        msgpack_unpacked up;
        size_t off = 0;
        msgpack_unpacked_init(&up);
        REQUIRE(msgpack_unpack_next(&up, buf, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len,
                "the frame check passed what msgpack-c refuses");
        msgpack_unpacked_destroy(&up);
    }
}

START_TEST(test_fuzz_random_bytes)
{
    /* bytes biased towards the interesting type markers, so that some inputs get past the first byte */
    static const unsigned char markers[] = {0x80, 0x81, 0x83, 0x86, 0x90, 0x91, 0x96, 0xa1, 0xa2, 0xa4, 0xc0, 0xc1, 0xc2, 0xc3,
                                            0xc4, 0xc6, 0xcc, 0xcf, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xd3, 0x01, 0x7f, 0xff};
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 4000; ++iter) {
        size_t len = rng() % 48;
        char *buf = malloc(len + 1);
        for (size_t i = 0; i < len; ++i)
            buf[i] = (char)(rng() % 2 ? markers[rng() % sizeof(markers)] : (unsigned char)rng());
        check_any_input(buf, len);
        free(buf);
    }
}
END_TEST

START_TEST(test_fuzz_mutations)
{
    static const unsigned char interesting[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
                                                0xc4, 0xc6, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    frames_t f;
    frames_init(&f);
    rng_state = 0x0123456789abcdefULL;
    size_t accepted = 0;
    for (int iter = 0; iter < 6000; ++iter) {
        const msgpack_sbuffer *src = &f.sb[rng() % f.n];
        size_t len = src->size, cap = len + 8;
        char *buf = malloc(cap);
        memcpy(buf, src->data, len);
        for (int m = 0, nm = 1 + (int)(rng() % 4); m < nm; ++m) {
            size_t pos = len != 0 ? rng() % len : 0;
            switch (rng() % 5) {
            case 0: /* random byte */
                if (len != 0)
                    buf[pos] = (char)rng();
                break;
            case 1: /* interesting byte */
                if (len != 0)
                    buf[pos] = (char)interesting[rng() % sizeof(interesting)];
                break;
            case 2: /* insert */
                if (len < cap) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = (char)interesting[rng() % sizeof(interesting)];
                    ++len;
                }
                break;
            case 3: /* delete */
                if (len != 0) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    --len;
                }
                break;
            default: /* truncate */
                len = pos;
                break;
            }
        }
        /* an exact-size copy, so that ASan sees any read beyond the frame */
        char *exact = malloc(len + 1);
        memcpy(exact, buf, len);
        check_any_input(exact, len);
        proto_request_t req;
        accepted += proto_request_decode(&req, exact, len) == 0;
        free(exact);
        free(buf);
    }
    /* some mutations (e.g. in a string's bytes) leave a valid request: the loop reached the decoder's checks */
    ck_assert_uint_gt(accepted, 0);
    frames_dispose(&f);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(proto_strerror(0), "ok");
    ck_assert_str_eq(proto_strerror(PROTO_EMALFORMED), "malformed frame");
    ck_assert_str_eq(proto_strerror(PROTO_EINVALID), "invalid message");
    ck_assert_str_eq(proto_strerror(PROTO_EVERSION), "unsupported protocol version");
    ck_assert_str_eq(proto_strerror(-99), "unknown error");
    ck_assert_str_eq(proto_op_name(PROTO_OP_PUBLISH), "publish");
    ck_assert_str_eq(proto_op_name(PROTO_OP_HEALTH), "health");
    ck_assert_str_eq(proto_op_name(PROTO_OP_WATCH), "watch");
    ck_assert_str_eq(proto_op_name(PROTO_OP_SINCE), "since");
    ck_assert_str_eq(proto_op_name(PROTO_OP_FORWARD), "forward");
    ck_assert_str_eq(proto_op_name((proto_op_t)10), "?");
    ck_assert_str_eq(proto_status_name(PROTO_ST_OK), "ok");
    ck_assert_str_eq(proto_status_name(PROTO_ST_BAD_VERSION), "bad_version");
    ck_assert_str_eq(proto_status_name((proto_status_t)6), "?");
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_request_roundtrip_publish);
    tcase_add_test(tc, test_request_publish_keyed);
    tcase_add_test(tc, test_request_roundtrip_publish_limits);
    tcase_add_test(tc, test_request_roundtrip_page_recent);
    tcase_add_test(tc, test_request_roundtrip_mark_read);
    tcase_add_test(tc, test_request_roundtrip_mark_all_read);
    tcase_add_test(tc, test_request_roundtrip_health);
    tcase_add_test(tc, test_request_roundtrip_since);
    tcase_add_test(tc, test_request_roundtrip_watch);
    tcase_add_test(tc, test_reply_roundtrip_cursor_and_gap);
    tcase_add_test(tc, test_roundtrip_forward);
    tcase_add_test(tc, test_batch_roundtrip);
    tcase_add_test(tc, test_batch_rejects_bad_shapes);
    tcase_add_test(tc, test_request_unknown_keys_ignored);
    tcase_add_test(tc, test_reply_roundtrip_items);
    tcase_add_test(tc, test_reply_roundtrip_empty_list);
    tcase_add_test(tc, test_reply_roundtrip_errors);
    tcase_add_test(tc, test_reply_roundtrip_publish);
    tcase_add_test(tc, test_reply_roundtrip_count_and_redis);
    tcase_add_test(tc, test_encode_write_failure);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_test(tc, test_decode_valid_frames);
    tcase_add_test(tc, test_decode_truncated);
    tcase_add_test(tc, test_decode_trailing_bytes);
    tcase_add_test(tc, test_decode_huge_declared_sizes);
    tcase_add_test(tc, test_decode_nesting);
    tcase_add_test(tc, test_decode_c1_and_empty);
    tcase_add_test(tc, test_decode_not_a_map);
    tcase_add_test(tc, test_decode_version);
    tcase_add_test(tc, test_decode_missing_fields);
    tcase_add_test(tc, test_decode_wrong_types);
    tcase_add_test(tc, test_decode_invalid_values);
    tcase_add_test(tc, test_reply_decode_wrong_types);
    tcase_add_test(tc, test_reply_decode_bad_items);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 50); /* slower under the sanitizers */
    tcase_add_test(tc, test_fuzz_random_bytes);
    tcase_add_test(tc, test_fuzz_mutations);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
