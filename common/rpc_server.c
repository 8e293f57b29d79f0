#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <h2o/multithread.h>
#include <h2o/version.h>
#include "log.h"
#include "nng_close.h"
#include "nng_msg_write.h"
#include "pipe_set.h"
#include "rpc_server.h"

enum { CALL_IDLE, CALL_RECV, CALL_HANDLING, CALL_SEND };

typedef struct st_rpc_batch_t rpc_batch_t;

/* One request: either a whole frame received on its own nng context, or one element of a batch frame (batch != NULL:
 * then only server, batch and index are used, and the reply goes into the batch). */
struct st_rpc_call_t {
    rpc_server_t *server;
    rpc_batch_t *batch;
    unsigned index;
    nng_ctx ctx;
    nng_aio *aio;
    nng_msg *request; /* held while the worker handles it */
    _Atomic int state;
    h2o_multithread_message_t msg; /* posts a completed receive (or a stop) to the loop */
};

/* A batch frame being served: its elements are handled as calls of their own; the batch reply is sent on the frame's
 * context once every element is answered. */
struct st_rpc_batch_t {
    rpc_call_t *frame; /* the call that received the batch frame */
    unsigned n, pending;
    struct st_rpc_batch_reply_t {
        char *bytes;
        size_t len, cap;
    } * replies;
    rpc_call_t elements[];
};

struct st_rpc_server_t {
    h2o_loop_t *loop;
    nng_socket sock;
    char identity[128];
    rpc_request_cb cb;
    void *data;
    void (*on_drain)(void *data);
    void *on_drain_data;
    unsigned ncalls;
    rpc_call_t *calls;
    _Atomic bool draining;
    bool closing;          /* loop thread: rpc_server_destroy is under way */
    _Atomic unsigned busy; /* calls in CALL_HANDLING or CALL_SEND */
    pipe_set_t gateways;   /* connected gateways */
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
};

static void arm_recv(rpc_call_t *call)
{
    atomic_store(&call->state, CALL_RECV);
    nng_ctx_recv(call->ctx, call->aio);
    if (atomic_load(&call->server->draining))
        nng_aio_cancel(call->aio); /* rpc_server_drain may have looked at this call before it was armed */
}

/* nng thread */
static void on_aio(void *arg)
{
    rpc_call_t *call = arg;
    rpc_server_t *server = call->server;
    int rv = nng_aio_result(call->aio);

    switch (atomic_load(&call->state)) {
    case CALL_RECV:
        if (rv == 0) {
            call->request = nng_aio_get_msg(call->aio);
            atomic_fetch_add(&server->busy, 1);
            atomic_store(&call->state, CALL_HANDLING);
        } else {
            atomic_store(&call->state, CALL_IDLE);
            if (rv != NNG_ECLOSED && rv != NNG_ECANCELED && !atomic_load(&server->draining)) {
                arm_recv(call); /* a transient error: keep serving */
                return;
            }
        }
        h2o_multithread_send_message(&server->receiver, &call->msg);
        break;
    case CALL_SEND:
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(call->aio)); /* nng leaves the message to us when a send fails */
            log_warn("reply not sent", "error=\"%s\"", nng_strerror(rv));
        }
        atomic_fetch_sub(&server->busy, 1);
        if (rv == NNG_ECLOSED || atomic_load(&server->draining)) {
            atomic_store(&call->state, CALL_IDLE);
            return;
        }
        arm_recv(call);
        break;
    default:
        break;
    }
}

static void send_reply_msg(rpc_call_t *call, nng_msg *reply)
{
    nng_msg_free(call->request);
    call->request = NULL;
    atomic_store(&call->state, CALL_SEND);
    nng_aio_set_msg(call->aio, reply);
    nng_ctx_send(call->ctx, call->aio);
}

static nng_msg *new_msg(void)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0)
        abort();
    return m;
}

static int reply_append(void *data, const char *buf, size_t len)
{
    struct st_rpc_batch_reply_t *r = data;
    if (r->len + len > r->cap) {
        size_t cap = r->cap == 0 ? 2048 : r->cap; /* a 20-notification page fits: one allocation, no copies */
        while (cap < r->len + len)
            cap *= 2;
        if ((r->bytes = realloc(r->bytes, cap)) == NULL)
            abort();
        r->cap = cap;
    }
    memcpy(r->bytes + r->len, buf, len);
    r->len += len;
    return 0;
}

/* Where an element's reply is encoded: its slot in the batch. */
static struct st_rpc_batch_reply_t *batch_slot(rpc_call_t *call)
{
    return call->batch->replies + call->index;
}

/* An element of b was answered: once all are, the batch reply goes out on the frame's context. */
static void batch_element_done(rpc_batch_t *b)
{
    if (--b->pending != 0)
        return;
    proto_str_t frames[PROTO_BATCH_MAX];
    for (unsigned i = 0; i < b->n; ++i)
        frames[i] = (proto_str_t){b->replies[i].bytes, b->replies[i].len};
    nng_msg *m = new_msg();
    if (proto_batch_encode(frames, b->n, nng_msg_write, m) != 0)
        abort();
    rpc_call_t *frame = b->frame;
    for (unsigned i = 0; i < b->n; ++i)
        free(b->replies[i].bytes);
    free(b->replies);
    free(b);
    send_reply_msg(frame, m);
}

void rpc_call_reply(rpc_call_t *call, proto_reply_t *rep)
{
    rep->worker = (proto_str_t){call->server->identity, strlen(call->server->identity)};
    if (call->batch != NULL) {
        if (proto_reply_encode(rep, reply_append, batch_slot(call)) != 0)
            abort();
        batch_element_done(call->batch);
        return;
    }
    nng_msg *m = new_msg();
    if (proto_reply_encode(rep, nng_msg_write, m) != 0)
        abort(); /* only an allocation failure can make encoding fail */
    send_reply_msg(call, m);
}

void rpc_call_reply_error(rpc_call_t *call, proto_status_t status, const char *reason)
{
    if (call->batch != NULL) {
        if (proto_reply_encode_error(status, reason, call->server->identity, reply_append, batch_slot(call)) != 0)
            abort();
        batch_element_done(call->batch);
        return;
    }
    nng_msg *m = new_msg();
    if (proto_reply_encode_error(status, reason, call->server->identity, nng_msg_write, m) != 0)
        abort();
    send_reply_msg(call, m);
}

/* Serves one request frame of a call: decoded and handed to the worker, or answered with an error. */
static void serve(rpc_server_t *server, rpc_call_t *call, const void *bytes, size_t len)
{
    proto_request_t req;
    int rv = proto_request_decode(&req, bytes, len);
    if (rv == 0) {
        server->cb(call, &req, server->data);
    } else {
        log_warn("bad request from gateway", "error=\"%s\" bytes=%zu", proto_strerror(rv), len);
        rpc_call_reply_error(call, rv == PROTO_EVERSION ? PROTO_ST_BAD_VERSION : PROTO_ST_BAD_REQUEST, proto_strerror(rv));
    }
}

/* A batch frame: every element is served as a call of its own (they may be answered in any order). */
static void serve_batch(rpc_server_t *server, rpc_call_t *frame, const proto_str_t *parts, size_t n)
{
    rpc_batch_t *b = calloc(1, sizeof(*b) + n * sizeof(b->elements[0]));
    if (b == NULL || (b->replies = calloc(n, sizeof(b->replies[0]))) == NULL)
        abort();
    b->frame = frame;
    b->n = b->pending = (unsigned)n;
    for (size_t i = 0; i < n; ++i) {
        b->elements[i].server = server;
        b->elements[i].batch = b;
        b->elements[i].index = (unsigned)i;
    }
    /* an element answered at once must not complete the batch while later ones are still to be served */
    ++b->pending;
    for (size_t i = 0; i < n; ++i)
        serve(server, b->elements + i, parts[i].ptr, parts[i].len);
    batch_element_done(b);
}

/* loop thread: requests that nng received */
static void on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    rpc_server_t *server = H2O_STRUCT_FROM_MEMBER(rpc_server_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        rpc_call_t *call = H2O_STRUCT_FROM_MEMBER(rpc_call_t, msg.link, messages->next);
        h2o_linklist_unlink(&call->msg.link);
        if (server->closing || atomic_load(&call->state) != CALL_HANDLING)
            continue; /* a stopped call, or the server is going away: nothing to do */

        proto_str_t parts[PROTO_BATCH_MAX];
        size_t n;
        const void *body = nng_msg_body(call->request);
        size_t len = nng_msg_len(call->request);
        int rv = proto_batch_decode(body, len, parts, &n);
        if (rv == 0) {
            serve_batch(server, call, parts, n);
        } else if (rv == PROTO_ENOTBATCH) {
            serve(server, call, body, len);
        } else {
            log_warn("bad batch from gateway", "error=\"%s\" bytes=%zu", proto_strerror(rv), len);
            rpc_call_reply_error(call, rv == PROTO_EVERSION ? PROTO_ST_BAD_VERSION : PROTO_ST_BAD_REQUEST, proto_strerror(rv));
        }
    }
}

/* nng thread: a gateway connection came or went */
static void on_pipe(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    rpc_server_t *server = arg;
    unsigned n;
    if (pipe_set_update(&server->gateways, pipe, ev, &n)) {
        char addr[80];
        pipe_set_remote(pipe, addr, sizeof(addr));
        log_info(ev == NNG_PIPE_EV_ADD_POST ? "connected to gateway" : "disconnected from gateway", "remote=%s gateways=%u", addr,
                 n);
    }
}

unsigned rpc_server_gateways(rpc_server_t *server)
{
    return atomic_load(&server->gateways.count);
}

void rpc_identity(char *buf, size_t bufsz, const char *kind)
{
    char host[64] = "unknown";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, bufsz, "%s@%s:%d", kind, host, (int)getpid());
}

rpc_server_t *rpc_server_create(h2o_loop_t *loop, const char *dial_urls, unsigned concurrency, const char *identity,
                                rpc_request_cb cb, void *data)
{
    rpc_server_t *server = calloc(1, sizeof(*server));
    int rv;
    if (server == NULL)
        abort();
    server->loop = loop;
    snprintf(server->identity, sizeof(server->identity), "%s", identity);
    server->cb = cb;
    server->data = data;
    pipe_set_init(&server->gateways);

    if ((rv = nng_rep0_open(&server->sock)) != 0) {
        log_error("nng_rep0_open failed", "error=\"%s\"", nng_strerror(rv));
        abort();
    }
    nng_socket_set_size(server->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_FRAME);
    nng_socket_set_ms(server->sock, NNG_OPT_RECONNMINT, 100);
    nng_socket_set_ms(server->sock, NNG_OPT_RECONNMAXT, 2000);
    nng_pipe_notify(server->sock, NNG_PIPE_EV_ADD_POST, on_pipe, server);
    nng_pipe_notify(server->sock, NNG_PIPE_EV_REM_POST, on_pipe, server);

    char urls[1024];
    snprintf(urls, sizeof(urls), "%s", dial_urls);
    char *save = NULL;
    for (char *url = strtok_r(urls, ",", &save); url != NULL; url = strtok_r(NULL, ",", &save)) {
        while (*url == ' ')
            ++url;
        /* NNG_FLAG_NONBLOCK: keep retrying in the background while the gateway is not up yet */
        if ((rv = nng_dial(server->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
            log_error("cannot dial gateway", "url=%s error=\"%s\"", url, nng_strerror(rv));
            nng_close(server->sock);
            pipe_set_dispose(&server->gateways);
            free(server);
            return NULL;
        }
        log_info("dialing gateway", "url=%s", url);
    }

    server->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(server->queue, &server->receiver, on_messages);

    server->ncalls = concurrency;
    server->calls = calloc(concurrency, sizeof(*server->calls));
    if (server->calls == NULL)
        abort();
    for (unsigned i = 0; i < concurrency; ++i) {
        rpc_call_t *call = server->calls + i;
        call->server = server;
        if ((rv = nng_ctx_open(&call->ctx, server->sock)) != 0 || (rv = nng_aio_alloc(&call->aio, on_aio, call)) != 0) {
            log_error("cannot open nng context", "error=\"%s\"", nng_strerror(rv));
            abort();
        }
    }
    for (unsigned i = 0; i < concurrency; ++i)
        arm_recv(server->calls + i);
    return server;
}

void rpc_server_on_drain(rpc_server_t *server, void (*cb)(void *data), void *data)
{
    server->on_drain = cb;
    server->on_drain_data = data;
}

void rpc_server_drain(rpc_server_t *server)
{
    atomic_store(&server->draining, true);
    if (server->on_drain != NULL)
        server->on_drain(server->on_drain_data);
    for (unsigned i = 0; i < server->ncalls; ++i)
        if (atomic_load(&server->calls[i].state) == CALL_RECV)
            nng_aio_cancel(server->calls[i].aio);
}

unsigned rpc_server_busy(rpc_server_t *server)
{
    return atomic_load(&server->busy);
}

int rpc_server_destroy(rpc_server_t *server)
{
    server->closing = true;
    atomic_store(&server->draining, true);
    if (nng_close_within(server->sock, 2000) != 0) {
        log_warn("nng_close did not return in 2 s (a known nng 1.5.2 bug); leaving the socket as it is", NULL);
        return -1;
    }
    for (unsigned i = 0; i < server->ncalls; ++i)
        nng_aio_free(server->calls[i].aio); /* waits for its callback */
    /* deliver what those callbacks posted, so that the receiver is empty when it is unregistered */
    while (!h2o_linklist_is_empty(&server->receiver._messages))
        h2o_evloop_run(server->loop, 0);
    for (unsigned i = 0; i < server->ncalls; ++i)
        if (server->calls[i].request != NULL)
            nng_msg_free(server->calls[i].request);
    h2o_multithread_unregister_receiver(server->queue, &server->receiver);
    h2o_multithread_destroy_queue(server->queue);
#if H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR < 3
    free(server->queue); /* h2o 2.2's h2o_multithread_destroy_queue closes the queue but does not free it (2.3 does) */
#endif
    pipe_set_dispose(&server->gateways);
    free(server->calls);
    free(server);
    return 0;
}
