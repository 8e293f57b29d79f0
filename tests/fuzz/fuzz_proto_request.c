/*
 * libFuzzer target: what a worker runs on every frame the gateway sends: proto_batch_decode, then proto_request_decode
 * of the frame or of each element of the batch. Whatever the bytes, each must return one of its codes without a
 * sanitizer report; a batch's elements lie inside the frame and the batch survives a round trip through
 * proto_batch_encode; a request that decodes must survive a round trip through proto_request_encode with the same
 * fields (the ones its op carries).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "proto.h"

static bool str_eq(proto_str_t a, proto_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_request(const uint8_t *data, size_t size)
{
    proto_request_t req, again;
    int rv = proto_request_decode(&req, data, size);
    FUZZ_ASSERT(rv == 0 || rv == PROTO_EMALFORMED || rv == PROTO_EINVALID || rv == PROTO_EVERSION);
    if (rv != 0)
        return;

    fuzz_buf_t out = {0};
    FUZZ_ASSERT(proto_request_encode(&req, fuzz_buf_write, &out) == 0);
    FUZZ_ASSERT(proto_request_decode(&again, out.data, out.len) == 0);
    FUZZ_ASSERT(again.op == req.op && memcmp(again.rid, req.rid, PROTO_RID_LEN) == 0);
    switch (req.op) {
    case PROTO_OP_PUBLISH:
        FUZZ_ASSERT(str_eq(again.user_id, req.user_id) && str_eq(again.message, req.message) && str_eq(again.kind, req.kind));
        break;
    case PROTO_OP_PAGE:
    case PROTO_OP_RECENT:
        FUZZ_ASSERT(str_eq(again.user_id, req.user_id) && again.before == req.before && again.limit == req.limit);
        FUZZ_ASSERT(req.limit >= 1 && req.limit <= PROTO_LIMIT_MAX);
        break;
    case PROTO_OP_MARK_READ:
        FUZZ_ASSERT(str_eq(again.user_id, req.user_id) && again.id == req.id && req.id != 0);
        break;
    case PROTO_OP_MARK_ALL_READ:
        FUZZ_ASSERT(str_eq(again.user_id, req.user_id));
        break;
    default:
        break;
    }
    free(out.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_str_t parts[PROTO_BATCH_MAX], again[PROTO_BATCH_MAX];
    size_t n, m;
    int rv = proto_batch_decode(data, size, parts, &n);
    FUZZ_ASSERT(rv == 0 || rv == PROTO_ENOTBATCH || rv == PROTO_EMALFORMED || rv == PROTO_EINVALID || rv == PROTO_EVERSION);
    if (rv != 0) {
        FUZZ_ASSERT(n == 0);
        check_request(data, size);
        return 0;
    }
    FUZZ_ASSERT(n >= 1 && n <= PROTO_BATCH_MAX);
    for (size_t i = 0; i < n; ++i) {
        FUZZ_ASSERT((const uint8_t *)parts[i].ptr >= data && (const uint8_t *)parts[i].ptr + parts[i].len <= data + size);
        check_request((const uint8_t *)parts[i].ptr, parts[i].len);
    }
    fuzz_buf_t out = {0};
    FUZZ_ASSERT(proto_batch_encode(parts, n, fuzz_buf_write, &out) == 0);
    FUZZ_ASSERT(proto_batch_decode(out.data, out.len, again, &m) == 0 && m == n);
    for (size_t i = 0; i < n; ++i)
        FUZZ_ASSERT(str_eq(again[i], parts[i]));
    free(out.data);
    return 0;
}
