/*
 * libFuzzer target: proto_request_decode, what a worker runs on every frame the gateway sends. Whatever the bytes, it
 * must return one of its codes without a sanitizer report; a request it accepts must survive a round trip through
 * proto_request_encode with the same fields (the ones its op carries).
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_request_t req, again;
    int rv = proto_request_decode(&req, data, size);
    FUZZ_ASSERT(rv == 0 || rv == PROTO_EMALFORMED || rv == PROTO_EINVALID || rv == PROTO_EVERSION);
    if (rv != 0)
        return 0;

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
    return 0;
}
