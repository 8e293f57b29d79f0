/*
 * libFuzzer target: the notifier's handling of what it reads from ng:stream (notifier/stream.c: on_reply and
 * apply_entry), without Redis. The stream's entries carry what clients published (user ids, messages, kinds) and the
 * stream ids: every field is read with checks, and feeds the realtime view and the live feed (realtime.c, watch.c).
 *
 * The input's first byte chooses the reader's state (bit 0: the window is already loaded, so replies are read as
 * XREAD's [[stream, [entry...]]] instead of XRANGE's [entry...]); the rest is Redis protocol (RESP) text, parsed by
 * hiredis's own reader into the replies the client would hand over, each passed to on_reply in turn. The reader has
 * no Redis connection, so it never sends the next command. stream.c is included to reach its static functions.
 */
#include "../../notifier/stream.c"
#include <hiredis/read.h>
#include "fuzz.h"

#define MAX_REPLIES 16
#define MAX_ELEMENTS 4096

/* hiredis 0.14 allocates an array reply for as many elements as the header declares (up to INT_MAX), before they
 * arrive: refuse large ones (the reader then fails as if out of memory), or the fuzzer would only find that. A real
 * Redis never declares more elements than it sends. */
static redisReplyObjectFunctions reply_functions;
static void *(*hiredis_create_array)(const redisReadTask *task, int elements);

static void *create_small_array(const redisReadTask *task, int elements)
{
    return elements <= MAX_ELEMENTS ? hiredis_create_array(task, elements) : NULL;
}

static redisReader *reader_create(void)
{
    redisReader *rr = redisReaderCreate();
    if (rr == NULL)
        abort();
    if (hiredis_create_array == NULL) {
        reply_functions = *rr->fn; /* hiredis's own functions, which build redisReply objects */
        hiredis_create_array = reply_functions.createArray;
        reply_functions.createArray = create_small_array;
    }
    rr->fn = &reply_functions;
    return rr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static h2o_loop_t *loop;
    if (loop == NULL) {
        log_init("notifier", LOG_LEVEL_ERROR + 1); /* quiet: error replies are logged */
        loop = h2o_evloop_create();
    }
    if (size < 1)
        return 0;

    /* small bounds, so that evictions happen; a window of a century, so that any ts is in it */
    int64_t window_ms = 100LL * 366 * 86400 * 1000;
    realtime_t *rt = realtime_create(window_ms, 4, 16);
    watch_t *w = watch_create(loop, 8, 4096);
    stream_reader_t *reader = stream_reader_create(loop, rt, w, window_ms, 2000);
    reader->snapshot_done = (data[0] & 1) != 0;

    redisReader *rr = reader_create();
    if (redisReaderFeed(rr, (const char *)data + 1, size - 1) != REDIS_OK)
        abort();
    void *reply;
    for (int i = 0; i < MAX_REPLIES && redisReaderGetReply(rr, &reply) == REDIS_OK && reply != NULL; ++i) {
        on_reply(reply, reader);
        freeReplyObject(reply);
        FUZZ_ASSERT(strlen(reader->last_id) < sizeof(reader->last_id));
        FUZZ_ASSERT(realtime_size(rt) <= 16);
    }
    redisReaderFree(rr);

    stream_reader_destroy(reader);
    watch_destroy(w);
    realtime_destroy(rt);
    return 0;
}
