/*
 * libFuzzer target: proto_reply_decode, what the gateway runs on every frame a worker sends back. Whatever the bytes,
 * it must return one of its codes without a sanitizer report or a leak (proto_reply_dispose after success and
 * failure alike); a reply it accepts must survive a round trip through proto_reply_encode.
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

static bool notification_eq(const proto_notification_t *a, const proto_notification_t *b)
{
    return a->id == b->id && a->ts == b->ts && str_eq(a->user_id, b->user_id) && str_eq(a->message, b->message) &&
           str_eq(a->kind, b->kind) && a->read == b->read;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proto_reply_t rep, again;
    int rv = proto_reply_decode(&rep, data, size);
    FUZZ_ASSERT(rv == 0 || rv == PROTO_EMALFORMED || rv == PROTO_EINVALID || rv == PROTO_EVERSION);
    if (rv != 0) {
        proto_reply_dispose(&rep);
        return 0;
    }
    FUZZ_ASSERT(rep.status <= PROTO_ST_BAD_VERSION && (rep.nitems == 0 || rep.items != NULL));
    FUZZ_ASSERT(rep.list || rep.nitems == 0);

    fuzz_buf_t out = {0};
    FUZZ_ASSERT(proto_reply_encode(&rep, fuzz_buf_write, &out) == 0);
    FUZZ_ASSERT(proto_reply_decode(&again, out.data, out.len) == 0);
    /* the encoder writes a field only where it means something: compare those */
    FUZZ_ASSERT(again.status == rep.status && str_eq(again.worker, rep.worker));
    FUZZ_ASSERT(rep.status == PROTO_ST_OK || str_eq(again.error, rep.error));
    FUZZ_ASSERT(again.id == rep.id && (rep.id == 0 || again.ts == rep.ts));
    FUZZ_ASSERT(again.list == rep.list && again.nitems == rep.nitems);
    if (rep.list)
        FUZZ_ASSERT(again.unread_count == rep.unread_count && again.has_more == rep.has_more);
    for (size_t i = 0; i < rep.nitems; ++i)
        FUZZ_ASSERT(notification_eq(again.items + i, rep.items + i));
    FUZZ_ASSERT(again.count == rep.count && again.redis_ok == rep.redis_ok);
    FUZZ_ASSERT(str_eq(again.cursor, rep.cursor) && again.gap == rep.gap);
    proto_reply_dispose(&again);
    proto_reply_dispose(&rep);
    free(out.data);
    return 0;
}
