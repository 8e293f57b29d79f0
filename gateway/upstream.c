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
#include "pipe_set.h"
#include "upstream.h"

#define MAX_REPLICA_STATS 64

struct st_upstream_t {
    char kind[32];
    nng_socket sock;
    pipe_set_t replicas; /* connected worker replicas */
};

enum { CALL_FREE, CALL_SEND, CALL_RECV, CALL_DONE };

struct st_upstream_call_t {
    upstream_client_t *client;
    nng_ctx ctx;
    nng_aio *aio;
    _Atomic int state;
    _Atomic bool cancelled;
    int rv;
    nng_msg *reply;
    nng_time deadline;
    upstream_cb cb; /* loop thread only; NULL once cancelled */
    void *data;
    h2o_multithread_message_t msg;
    upstream_call_t *next_free;
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

static void post(upstream_call_t *call)
{
    atomic_store(&call->state, CALL_DONE);
    h2o_multithread_send_message(&call->client->receiver, &call->msg);
}

/* nng thread */
static void on_aio(void *arg)
{
    upstream_call_t *call = arg;
    int rv = nng_aio_result(call->aio);

    switch (atomic_load(&call->state)) {
    case CALL_SEND:
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(call->aio)); /* a failed send leaves the message to us */
            call->rv = rv;
            post(call);
            return;
        }
        if (atomic_load(&call->cancelled)) {
            call->rv = NNG_ECANCELED;
            post(call);
            return;
        }
        {
            nng_time now = nng_clock();
            atomic_store(&call->state, CALL_RECV);
            nng_aio_set_timeout(call->aio, call->deadline > now ? (nng_duration)(call->deadline - now) : 1);
            nng_ctx_recv(call->ctx, call->aio);
            if (atomic_load(&call->cancelled))
                nng_aio_cancel(call->aio); /* upstream_call_cancel may have run before the receive started */
        }
        break;
    case CALL_RECV:
        call->rv = rv;
        call->reply = rv == 0 ? nng_aio_get_msg(call->aio) : NULL;
        post(call);
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

/* loop thread */
static void on_completions(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    upstream_client_t *client = H2O_STRUCT_FROM_MEMBER(upstream_client_t, receiver, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        upstream_call_t *call = H2O_STRUCT_FROM_MEMBER(upstream_call_t, msg.link, messages->next);
        h2o_linklist_unlink(&call->msg.link);

        upstream_result_t res = {.outcome = outcome_of(call->rv)};
        if (res.outcome == UPSTREAM_OK) {
            int rv;
            res._msg = call->reply;
            if ((rv = proto_reply_decode(&res.rep, nng_msg_body(res._msg), nng_msg_len(res._msg))) != 0) {
                log_warn("bad reply from worker", "kind=%s error=\"%s\" bytes=%zu", client->up->kind, proto_strerror(rv),
                         nng_msg_len(res._msg));
                upstream_result_dispose(&res);
                res.outcome = UPSTREAM_BAD_REPLY;
            } else {
                note_replica(client, res.rep.worker);
            }
        }
        call->reply = NULL;
        log_failure(client, res.outcome);
        counter_inc(
            &client->outcomes[res.outcome == UPSTREAM_OK && res.rep.status != PROTO_ST_OK ? UPSTREAM_WORKER_ERROR : res.outcome]);

        upstream_cb cb = call->cb;
        void *data = call->data;
        call->cb = NULL;
        atomic_store(&call->state, CALL_FREE);
        call->next_free = client->free_list;
        client->free_list = call;
        --client->inflight;

        if (cb != NULL)
            cb(&res, data);
        else
            upstream_result_dispose(&res);
    }
}

static int msg_append(void *data, const char *buf, size_t len)
{
    return nng_msg_append(data, buf, len) == 0 ? 0 : -1;
}

/* req as a new nng message. Its own function so that tests/lsan.supp can name these messages: nng 1.5.2 loses one
 * now and then when a replica disconnects while requests are being sent to it (see there). */
static nng_msg *request_msg_new(const proto_request_t *req)
{
    nng_msg *msg;
    if (nng_msg_alloc(&msg, 0) != 0 || proto_request_encode(req, msg_append, msg) != 0)
        abort();
    return msg;
}

upstream_call_t *upstream_call(upstream_client_t *client, const proto_request_t *req, uint32_t timeout_ms, bool resend,
                               upstream_cb cb, void *data, upstream_outcome_t *outcome)
{
    upstream_call_t *call;
    int rv;

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
        if ((rv = nng_ctx_open(&call->ctx, client->up->sock)) != 0 || (rv = nng_aio_alloc(&call->aio, on_aio, call)) != 0) {
            log_error("cannot open nng context", "error=\"%s\"", nng_strerror(rv));
            abort();
        }
        client->calls[client->ncalls++] = call;
    } else {
        *outcome = UPSTREAM_OVERLOADED;
        log_failure(client, *outcome);
        counter_inc(&client->outcomes[*outcome]);
        return NULL;
    }

    nng_msg *msg = request_msg_new(req);
    call->cb = cb;
    call->data = data;
    call->rv = 0;
    call->reply = NULL;
    atomic_store(&call->cancelled, false);
    call->deadline = nng_clock() + timeout_ms;
    atomic_store(&call->state, CALL_SEND);
    ++client->inflight;
    /* REQ resends on its own when the replica goes away, and after this long without a reply (longer than any call) */
    nng_ctx_set_ms(call->ctx, NNG_OPT_REQ_RESENDTIME, resend ? 60000 : NNG_DURATION_INFINITE);
    nng_aio_set_msg(call->aio, msg);
    nng_aio_set_timeout(call->aio, (nng_duration)timeout_ms);
    nng_ctx_send(call->ctx, call->aio);
    return call;
}

void upstream_call_cancel(upstream_call_t *call)
{
    call->cb = NULL;
    atomic_store(&call->cancelled, true);
    nng_aio_cancel(call->aio);
}

void upstream_result_dispose(upstream_result_t *result)
{
    proto_reply_dispose(&result->rep);
    if (result->_msg != NULL) {
        nng_msg_free(result->_msg);
        result->_msg = NULL;
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
    if ((client->calls = calloc(max_inflight, sizeof(*client->calls))) == NULL)
        abort();
    h2o_multithread_register_receiver(queue, &client->receiver, on_completions);
    return client;
}

unsigned upstream_client_inflight(const upstream_client_t *client)
{
    return client->inflight;
}

void upstream_client_destroy(upstream_client_t *client)
{
    for (unsigned i = 0; i < client->ncalls; ++i) {
        upstream_call_t *call = client->calls[i];
        call->cb = NULL;
        nng_aio_free(call->aio); /* cancels what is in flight and waits for the callback */
        nng_ctx_close(call->ctx);
    }
    /* completions posted meanwhile: deliver them (their callbacks are cleared) so the receiver ends empty */
    while (!h2o_linklist_is_empty(&client->receiver._messages))
        h2o_evloop_run(client->loop, 0);
    h2o_multithread_unregister_receiver(client->queue, &client->receiver);
    for (unsigned i = 0; i < client->ncalls; ++i) {
        if (client->calls[i]->reply != NULL)
            nng_msg_free(client->calls[i]->reply);
        free(client->calls[i]);
    }
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
