#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include "clock.h"
#include "log.h"
#include "nng_close.h"
#include "nng_msg_write.h"
#include "pipe_set.h"
#include "upstream.h"

#define MAX_REPLICA_STATS 64

struct st_upstream_t {
    char kind[32];
    nng_socket sock;
    pipe_set_t replicas; /* connected worker replicas */
};

/* A batch: the calls one loop iteration makes to this kind with the same timeout and resend setting, sent as one
 * nng request on one context (a single call goes as a plain frame). */
enum { BATCH_FREE, BATCH_OPEN, BATCH_SEND, BATCH_RECV, BATCH_DONE };

#define OPEN_BATCHES_MAX 4            /* batches being filled at once: distinct (timeout, resend) pairs */
#define BATCH_BYTES_MAX (256 * 1024)  /* a batch this large is sent at once */

typedef struct st_upstream_batch_t upstream_batch_t;

struct st_upstream_call_t {
    upstream_client_t *client;
    upstream_batch_t *batch;
    upstream_cb cb; /* NULL once cancelled */
    void *data;
    upstream_call_t *next_free;
};

struct st_upstream_batch_t {
    upstream_client_t *client;
    nng_ctx ctx;
    nng_aio *aio;
    _Atomic int state;
    _Atomic bool cancelled; /* every call of the batch was cancelled after it was sent */
    int rv;
    nng_msg *reply;
    nng_time deadline;
    uint32_t timeout_ms;
    bool resend;
    int ctx_resend; /* what the context's NNG_OPT_REQ_RESENDTIME was last set for: resend (1), not (0), never (-1) */
    upstream_call_t *calls[PROTO_BATCH_MAX];
    unsigned ncalls, nlive;
    struct {
        char *bytes; /* the calls' encoded request frames, one after the other */
        size_t len, cap;
        size_t ends[PROTO_BATCH_MAX];
    } frames;
    h2o_multithread_message_t msg;
    upstream_batch_t *next_free;
};

/* A reply message shared by the results of a batch's calls: freed with the last of them. */
struct st_upstream_reply_t {
    nng_msg *msg;
    unsigned refs;
};

struct st_upstream_client_t {
    upstream_t *up;
    h2o_loop_t *loop;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    unsigned max_inflight, inflight;
    upstream_call_t **calls; /* every call made, to free them */
    unsigned ncalls;
    upstream_call_t *free_list;
    upstream_batch_t **batches; /* every batch made (at most one per call), to free them */
    unsigned nbatches;
    upstream_batch_t *free_batches;
    upstream_batch_t *open[OPEN_BATCHES_MAX]; /* being filled in this loop iteration, oldest first */
    unsigned nopen;
    h2o_timeout_t flush_timeout; /* 0 ms: sends the open batches once the loop's current events are handled */
    h2o_timeout_entry_t flush_entry;
    _Atomic uint64_t *outcomes;
    upstream_replica_stat_t replicas[MAX_REPLICA_STATS];
    _Atomic unsigned nreplicas;
    struct {
        uint64_t last_us;    /* when a failure of this kind was last logged */
        uint64_t suppressed; /* failures since, not logged */
    } failure_log[UPSTREAM_OUTCOME_COUNT];
};

static void counter_inc(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* ---- the shared socket ------------------------------------------------------------------------------------------ */

static void on_pipe(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    upstream_t *up = arg;
    unsigned n;
    if (pipe_set_update(&up->replicas, pipe, ev, &n)) {
        char addr[80];
        pipe_set_remote(pipe, addr, sizeof(addr));
        log_info(ev == NNG_PIPE_EV_ADD_POST ? "worker replica connected" : "worker replica disconnected",
                 "kind=%s remote=%s replicas=%u", up->kind, addr, n);
    }
}

upstream_t *upstream_create(const char *kind, const char *url)
{
    upstream_t *up = calloc(1, sizeof(*up));
    int rv;
    if (up == NULL)
        abort();
    snprintf(up->kind, sizeof(up->kind), "%s", kind);
    pipe_set_init(&up->replicas);
    if ((rv = nng_req0_open(&up->sock)) != 0) {
        log_error("nng_req0_open failed", "error=\"%s\"", nng_strerror(rv));
        abort();
    }
    nng_socket_set_size(up->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_FRAME);
    nng_pipe_notify(up->sock, NNG_PIPE_EV_ADD_POST, on_pipe, up);
    nng_pipe_notify(up->sock, NNG_PIPE_EV_REM_POST, on_pipe, up);
    if ((rv = nng_listen(up->sock, url, NULL, 0)) != 0) {
        log_error("cannot listen for workers", "kind=%s url=%s error=\"%s\"", kind, url, nng_strerror(rv));
        nng_close(up->sock);
        pipe_set_dispose(&up->replicas);
        free(up);
        return NULL;
    }
    log_info("listening for workers", "kind=%s url=%s", kind, url);
    return up;
}

int upstream_destroy(upstream_t *up)
{
    if (nng_close_within(up->sock, 2000) != 0) {
        log_warn("nng_close did not return in 2 s (a known nng 1.5.2 bug); leaving the socket as it is", "kind=%s", up->kind);
        return -1;
    }
    pipe_set_dispose(&up->replicas);
    free(up);
    return 0;
}

const char *upstream_kind(const upstream_t *up)
{
    return up->kind;
}

unsigned upstream_replicas(const upstream_t *up)
{
    return atomic_load(&((upstream_t *)up)->replicas.count);
}

/* ---- calls ------------------------------------------------------------------------------------------------------ */

static void post(upstream_batch_t *b)
{
    atomic_store(&b->state, BATCH_DONE);
    h2o_multithread_send_message(&b->client->receiver, &b->msg);
}

/* nng thread */
static void on_aio(void *arg)
{
    upstream_batch_t *b = arg;
    int rv = nng_aio_result(b->aio);

    switch (atomic_load(&b->state)) {
    case BATCH_SEND:
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(b->aio)); /* a failed send leaves the message to us */
            b->rv = rv;
            post(b);
            return;
        }
        if (atomic_load(&b->cancelled)) {
            b->rv = NNG_ECANCELED;
            post(b);
            return;
        }
        {
            nng_time now = nng_clock();
            atomic_store(&b->state, BATCH_RECV);
            nng_aio_set_timeout(b->aio, b->deadline > now ? (nng_duration)(b->deadline - now) : 1);
            nng_ctx_recv(b->ctx, b->aio);
            if (atomic_load(&b->cancelled))
                nng_aio_cancel(b->aio); /* every call may have been cancelled before the receive started */
        }
        break;
    case BATCH_RECV:
        b->rv = rv;
        b->reply = rv == 0 ? nng_aio_get_msg(b->aio) : NULL;
        post(b);
        break;
    default:
        break;
    }
}

static upstream_outcome_t outcome_of(int rv)
{
    switch (rv) {
    case 0:
        return UPSTREAM_OK;
    case NNG_ETIMEDOUT:
        return UPSTREAM_TIMEOUT;
    case NNG_ECANCELED:
        return UPSTREAM_CANCELLED;
    default:
        return UPSTREAM_FAILED;
    }
}

static void note_replica(upstream_client_t *client, proto_str_t by)
{
    unsigned n = atomic_load_explicit(&client->nreplicas, memory_order_relaxed);
    if (by.len == 0 || by.len >= sizeof(client->replicas[0].identity))
        return;
    for (size_t i = 0; i < by.len; ++i) {
        char c = by.ptr[i]; /* it becomes a metrics label: plain characters only */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr("_.:@-", c) != NULL)))
            return;
    }
    for (unsigned i = 0; i < n; ++i) {
        upstream_replica_stat_t *st = client->replicas + i;
        if (strncmp(st->identity, by.ptr, by.len) == 0 && st->identity[by.len] == '\0') {
            counter_inc(&st->replies);
            return;
        }
    }
    if (n == MAX_REPLICA_STATS)
        return;
    memcpy(client->replicas[n].identity, by.ptr, by.len);
    client->replicas[n].identity[by.len] = '\0';
    atomic_store_explicit(&client->replicas[n].replies, 1, memory_order_relaxed);
    atomic_store_explicit(&client->nreplicas, n + 1, memory_order_release);
}

/* Logs failed calls, at most one line a second per outcome, with how many were not logged in between. */
static void log_failure(upstream_client_t *client, upstream_outcome_t outcome)
{
    if (outcome == UPSTREAM_OK || outcome == UPSTREAM_CANCELLED)
        return;
    uint64_t now = clock_mono_us();
    if (now - client->failure_log[outcome].last_us < 1000000) {
        ++client->failure_log[outcome].suppressed;
        return;
    }
    log_warn("worker call failed", "kind=%s outcome=%s replicas=%u similar_since_last_line=%" PRIu64, client->up->kind,
             upstream_outcome_name(outcome), upstream_replicas(client->up), client->failure_log[outcome].suppressed);
    client->failure_log[outcome].last_us = now;
    client->failure_log[outcome].suppressed = 0;
}

/* Decodes one reply frame for a call into res (outcome UPSTREAM_OK or UPSTREAM_BAD_REPLY). */
static void decode_reply(upstream_client_t *client, upstream_result_t *res, const void *bytes, size_t len)
{
    int rv;
    if ((rv = proto_reply_decode(&res->rep, bytes, len)) != 0) {
        log_warn("bad reply from worker", "kind=%s error=\"%s\" bytes=%zu", client->up->kind, proto_strerror(rv), len);
        proto_reply_dispose(&res->rep);
        res->outcome = UPSTREAM_BAD_REPLY;
    } else {
        note_replica(client, res->rep.worker);
    }
}

/* Ends a call with res: counts it, frees the call and runs its callback (or drops res if it was cancelled). */
static void finish_call(upstream_call_t *call, upstream_result_t *res)
{
    upstream_client_t *client = call->client;
    upstream_outcome_t outcome = call->cb == NULL && res->outcome != UPSTREAM_OK ? UPSTREAM_CANCELLED : res->outcome;
    log_failure(client, outcome);
    counter_inc(&client->outcomes[outcome == UPSTREAM_OK && res->rep.status != PROTO_ST_OK ? UPSTREAM_WORKER_ERROR : outcome]);

    upstream_cb cb = call->cb;
    void *data = call->data;
    call->cb = NULL;
    call->batch = NULL;
    call->next_free = client->free_list;
    client->free_list = call;
    --client->inflight;

    if (cb != NULL)
        cb(res, data);
    else
        upstream_result_dispose(res);
}

/* Frees the batch for new calls, giving its calls to the caller (calls: room for PROTO_BATCH_MAX); returns how many.
 * Callbacks run after this may start calls that reuse the batch. */
static unsigned release_batch(upstream_batch_t *b, upstream_call_t **calls)
{
    upstream_client_t *client = b->client;
    unsigned ncalls = b->ncalls;
    memcpy(calls, b->calls, ncalls * sizeof(calls[0]));
    b->ncalls = b->nlive = 0;
    b->frames.len = 0;
    b->reply = NULL;
    atomic_store(&b->state, BATCH_FREE);
    b->next_free = client->free_batches;
    client->free_batches = b;
    return ncalls;
}

/* loop thread: finished batches */
static void on_completions(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    upstream_client_t *client = H2O_STRUCT_FROM_MEMBER(upstream_client_t, receiver, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        upstream_batch_t *b = H2O_STRUCT_FROM_MEMBER(upstream_batch_t, msg.link, messages->next);
        h2o_linklist_unlink(&b->msg.link);

        upstream_outcome_t outcome = outcome_of(b->rv);
        proto_str_t parts[PROTO_BATCH_MAX];
        size_t nparts = 0;
        struct st_upstream_reply_t *shared = NULL;
        if (outcome == UPSTREAM_OK) {
            const void *body = nng_msg_body(b->reply);
            size_t len = nng_msg_len(b->reply);
            if ((shared = malloc(sizeof(*shared))) == NULL)
                abort();
            shared->msg = b->reply;
            shared->refs = b->ncalls;
            if (b->ncalls == 1) {
                parts[0] = (proto_str_t){body, len};
                nparts = 1;
            } else {
                int rv = proto_batch_decode(body, len, parts, &nparts);
                if (rv == PROTO_ENOTBATCH) {
                    /* one plain reply for the whole batch (a worker that could not read it): it answers every call */
                    for (unsigned i = 0; i < b->ncalls; ++i)
                        parts[i] = (proto_str_t){body, len};
                    nparts = b->ncalls;
                } else if (rv != 0 || nparts != b->ncalls) {
                    log_warn("bad batch reply from worker", "kind=%s error=\"%s\" frames=%zu calls=%u", client->up->kind,
                             rv != 0 ? proto_strerror(rv) : "frame count", nparts, b->ncalls);
                    outcome = UPSTREAM_BAD_REPLY;
                }
            }
            if (outcome != UPSTREAM_OK) {
                nng_msg_free(shared->msg);
                free(shared);
                shared = NULL;
            }
        }

        upstream_call_t *calls[PROTO_BATCH_MAX];
        unsigned ncalls = release_batch(b, calls);
        for (unsigned i = 0; i < ncalls; ++i) {
            upstream_result_t res = {.outcome = outcome};
            if (shared != NULL) {
                res._reply = shared;
                decode_reply(client, &res, parts[i].ptr, parts[i].len);
                if (res.outcome != UPSTREAM_OK)
                    upstream_result_dispose(&res); /* the reply is not the caller's to keep: let go of it now */
            }
            finish_call(calls[i], &res);
        }
    }
}

static int frames_append(void *data, const char *buf, size_t len)
{
    upstream_batch_t *b = data;
    if (b->frames.len + len > b->frames.cap) {
        size_t cap = b->frames.cap == 0 ? 1024 : b->frames.cap;
        while (cap < b->frames.len + len)
            cap *= 2;
        if ((b->frames.bytes = realloc(b->frames.bytes, cap)) == NULL)
            abort();
        b->frames.cap = cap;
    }
    memcpy(b->frames.bytes + b->frames.len, buf, len);
    b->frames.len += len;
    return 0;
}

/* The batch's request as a new nng message. Its own function so that tests/lsan.supp can name these messages: nng
 * 1.5.2 loses one now and then when a replica disconnects while requests are being sent to it (see there). */
static nng_msg *request_msg_new(upstream_batch_t *b)
{
    nng_msg *msg;
    /* room for the frames and the batch's framing (a map header, "v", "batch", an array and a bin header a frame) */
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_reserve(msg, b->frames.len + 32 + 5 * (size_t)b->ncalls) != 0)
        abort();
    if (b->ncalls == 1) {
        if (nng_msg_append(msg, b->frames.bytes, b->frames.len) != 0)
            abort();
    } else {
        proto_str_t frames[PROTO_BATCH_MAX];
        for (unsigned i = 0; i < b->ncalls; ++i) {
            size_t start = i == 0 ? 0 : b->frames.ends[i - 1];
            frames[i] = (proto_str_t){b->frames.bytes + start, b->frames.ends[i] - start};
        }
        if (proto_batch_encode(frames, b->ncalls, nng_msg_write, msg) != 0)
            abort();
    }
    return msg;
}

/* Sends an open batch (or frees it if every call in it was cancelled meanwhile). */
static void send_batch(upstream_batch_t *b)
{
    if (b->nlive == 0) {
        upstream_call_t *calls[PROTO_BATCH_MAX];
        unsigned ncalls = release_batch(b, calls);
        for (unsigned i = 0; i < ncalls; ++i) {
            upstream_result_t res = {.outcome = UPSTREAM_CANCELLED};
            finish_call(calls[i], &res);
        }
        return;
    }
    nng_msg *msg = request_msg_new(b);
    atomic_store(&b->cancelled, false);
    b->deadline = nng_clock() + b->timeout_ms;
    atomic_store(&b->state, BATCH_SEND);
    /* REQ resends on its own when the replica goes away, and after this long without a reply (longer than any call);
     * set only when it changes (the option takes the socket's lock, which nng's threads contend for under load) */
    if (b->ctx_resend != (int)b->resend) {
        nng_ctx_set_ms(b->ctx, NNG_OPT_REQ_RESENDTIME, b->resend ? 60000 : NNG_DURATION_INFINITE);
        b->ctx_resend = (int)b->resend;
    }
    nng_aio_set_msg(b->aio, msg);
    nng_aio_set_timeout(b->aio, (nng_duration)b->timeout_ms);
    nng_ctx_send(b->ctx, b->aio);
}

static void close_open(upstream_client_t *client, unsigned i)
{
    upstream_batch_t *b = client->open[i];
    memmove(client->open + i, client->open + i + 1, (client->nopen - i - 1) * sizeof(client->open[0]));
    --client->nopen;
    send_batch(b);
}

/* loop thread: the current events are handled; what they asked of this kind goes out */
static void on_flush(h2o_timeout_entry_t *entry)
{
    upstream_client_t *client = H2O_STRUCT_FROM_MEMBER(upstream_client_t, flush_entry, entry);
    while (client->nopen != 0)
        close_open(client, 0);
}

/* The open batch a call with this timeout and resend setting joins: an existing one with room, or a new one. */
static upstream_batch_t *open_batch(upstream_client_t *client, uint32_t timeout_ms, bool resend)
{
    for (unsigned i = 0; i < client->nopen; ++i) {
        upstream_batch_t *b = client->open[i];
        if (b->timeout_ms == timeout_ms && b->resend == resend) {
            if (b->ncalls < PROTO_BATCH_MAX && b->frames.len < BATCH_BYTES_MAX)
                return b;
            close_open(client, i); /* full: it goes now, a new one takes its place */
            break;
        }
    }
    if (client->nopen == OPEN_BATCHES_MAX)
        close_open(client, 0);

    upstream_batch_t *b;
    int rv;
    if ((b = client->free_batches) != NULL) {
        client->free_batches = b->next_free;
    } else {
        if ((b = calloc(1, sizeof(*b))) == NULL)
            abort();
        b->client = client;
        b->ctx_resend = -1;
        if ((rv = nng_ctx_open(&b->ctx, client->up->sock)) != 0 || (rv = nng_aio_alloc(&b->aio, on_aio, b)) != 0) {
            log_error("cannot open nng context", "error=\"%s\"", nng_strerror(rv));
            abort();
        }
        client->batches[client->nbatches++] = b;
    }
    b->timeout_ms = timeout_ms;
    b->resend = resend;
    atomic_store(&b->state, BATCH_OPEN);
    client->open[client->nopen++] = b;
    if (!h2o_timeout_is_linked(&client->flush_entry))
        h2o_timeout_link(client->loop, &client->flush_timeout, &client->flush_entry);
    return b;
}

upstream_call_t *upstream_call(upstream_client_t *client, const proto_request_t *req, uint32_t timeout_ms, bool resend,
                               upstream_cb cb, void *data, upstream_outcome_t *outcome)
{
    upstream_call_t *call;

    if (upstream_replicas(client->up) == 0) {
        *outcome = UPSTREAM_NO_REPLICA;
        log_failure(client, *outcome);
        counter_inc(&client->outcomes[*outcome]);
        return NULL;
    }
    if ((call = client->free_list) != NULL) {
        client->free_list = call->next_free;
    } else if (client->ncalls < client->max_inflight) {
        if ((call = calloc(1, sizeof(*call))) == NULL)
            abort();
        call->client = client;
        client->calls[client->ncalls++] = call;
    } else {
        *outcome = UPSTREAM_OVERLOADED;
        log_failure(client, *outcome);
        counter_inc(&client->outcomes[*outcome]);
        return NULL;
    }

    upstream_batch_t *b = open_batch(client, timeout_ms, resend);
    if (proto_request_encode(req, frames_append, b) != 0)
        abort();
    b->frames.ends[b->ncalls] = b->frames.len;
    b->calls[b->ncalls++] = call;
    ++b->nlive;
    call->batch = b;
    call->cb = cb;
    call->data = data;
    ++client->inflight;
    return call;
}

void upstream_call_cancel(upstream_call_t *call)
{
    upstream_batch_t *b = call->batch;
    call->cb = NULL;
    if (--b->nlive == 0 && atomic_load(&b->state) != BATCH_OPEN) {
        atomic_store(&b->cancelled, true); /* nobody waits for the reply any more: let the context go */
        nng_aio_cancel(b->aio);
    }
}

void upstream_result_dispose(upstream_result_t *result)
{
    proto_reply_dispose(&result->rep);
    if (result->_reply != NULL) {
        if (--result->_reply->refs == 0) {
            nng_msg_free(result->_reply->msg);
            free(result->_reply);
        }
        result->_reply = NULL;
    }
}

const char *upstream_outcome_name(upstream_outcome_t outcome)
{
    static const char *names[] = {"ok", "error", "timeout", "no_replica", "overloaded", "bad_reply", "cancelled", "failed"};
    return (unsigned)outcome < UPSTREAM_OUTCOME_COUNT ? names[outcome] : "?";
}

/* ---- clients ---------------------------------------------------------------------------------------------------- */

upstream_client_t *upstream_client_create(upstream_t *up, h2o_loop_t *loop, h2o_multithread_queue_t *queue, unsigned max_inflight,
                                          _Atomic uint64_t *outcomes)
{
    upstream_client_t *client = calloc(1, sizeof(*client));
    if (client == NULL)
        abort();
    client->up = up;
    client->loop = loop;
    client->queue = queue;
    client->max_inflight = max_inflight;
    client->outcomes = outcomes;
    if ((client->calls = calloc(max_inflight, sizeof(*client->calls))) == NULL ||
        (client->batches = calloc(max_inflight, sizeof(*client->batches))) == NULL)
        abort();
    h2o_timeout_init(loop, &client->flush_timeout, 0);
    client->flush_entry.cb = on_flush;
    h2o_multithread_register_receiver(queue, &client->receiver, on_completions);
    return client;
}

unsigned upstream_client_inflight(const upstream_client_t *client)
{
    return client->inflight;
}

void upstream_client_destroy(upstream_client_t *client)
{
    /* batches not sent yet: their calls end here, without callbacks (their owners are going away) */
    if (h2o_timeout_is_linked(&client->flush_entry))
        h2o_timeout_unlink(&client->flush_entry);
    for (unsigned i = 0; i < client->nopen; ++i)
        for (unsigned j = 0; j < client->open[i]->ncalls; ++j)
            client->open[i]->calls[j]->cb = NULL;
    for (unsigned i = 0; i < client->ncalls; ++i)
        client->calls[i]->cb = NULL;
    for (unsigned i = 0; i < client->nbatches; ++i) {
        nng_aio_free(client->batches[i]->aio); /* cancels what is in flight and waits for the callback */
        nng_ctx_close(client->batches[i]->ctx);
    }
    /* completions posted meanwhile: deliver them (their callbacks are cleared) so the receiver ends empty */
    while (!h2o_linklist_is_empty(&client->receiver._messages))
        h2o_evloop_run(client->loop, 0);
    h2o_multithread_unregister_receiver(client->queue, &client->receiver);
    h2o_timeout_dispose(client->loop, &client->flush_timeout);
    for (unsigned i = 0; i < client->nbatches; ++i) {
        if (client->batches[i]->reply != NULL)
            nng_msg_free(client->batches[i]->reply);
        free(client->batches[i]->frames.bytes);
        free(client->batches[i]);
    }
    for (unsigned i = 0; i < client->ncalls; ++i)
        free(client->calls[i]);
    free(client->batches);
    free(client->calls);
    free(client);
}

void upstream_client_foreach_replica(const upstream_client_t *client,
                                     void (*cb)(const char *identity, uint64_t replies, void *data), void *data)
{
    unsigned n = atomic_load_explicit(&((upstream_client_t *)client)->nreplicas, memory_order_acquire);
    for (unsigned i = 0; i < n; ++i)
        cb(client->replicas[i].identity,
           atomic_load_explicit(&((upstream_client_t *)client)->replicas[i].replies, memory_order_relaxed), data);
}
