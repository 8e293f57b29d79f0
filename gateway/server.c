/*
 * Loop threads: one h2o evloop each, with its own listening socket(s) on the shared port (SO_REUSEPORT: the kernel
 * spreads connections evenly) and its own upstream clients. A graceful stop: stop accepting, tell HTTP/2 clients to go
 * away, finish the requests waiting on workers, then leave.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "clock.h"
#include "gateway.h"
#include "log.h"

#define FLUSH_US 200000 /* after the last request in flight, time given to write the last responses */

/* Opens a listening TCP socket on "host:port" (host may be empty or '*' for any). Returns the fd or -1 (logged). */
static int open_listener(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host)) {
        log_error("listen address must be host:port", "address=%s", hostport);
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    const char *node = host[0] == '\0' || strcmp(host, "*") == 0 ? NULL : host;
    if (node != NULL && node[0] == '[') { /* [::1]:8080 */
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']') {
            log_error("bad IPv6 listen address", "address=%s", hostport);
            return -1;
        }
        host[n - 1] = '\0';
        node = host + 1;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int rv = getaddrinfo(node, colon + 1, &hints, &res);
    if (rv != 0) {
        log_error("cannot resolve listen address", "address=%s error=\"%s\"", hostport, gai_strerror(rv));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        log_error("cannot listen", "address=%s error=\"%s\"", hostport, strerror(errno));
        if (fd != -1)
            close(fd);
        fd = -1;
    } else {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)); /* inherited by accepted sockets */
    }
    freeaddrinfo(res);
    return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_accept_ctx_t *accept_ctx = listener->data;
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, ctx, accept_ctx->ctx);
    if (err != NULL)
        return;
    for (int i = 0; i < 64; ++i) { /* a few at a time, so that one busy listener does not starve the loop */
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        if (guard_on_accept(&thread->gw->guard, sock)) /* counts it per address (or closes it: far over the limit) */
            h2o_accept(accept_ctx, sock);
    }
}

static h2o_socket_t *watch_listener(gateway_thread_t *thread, int fd, h2o_accept_ctx_t *accept_ctx)
{
    h2o_socket_t *sock = h2o_evloop_socket_create(thread->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = accept_ctx;
    h2o_socket_read_start(sock, on_accept);
    return sock;
}

static void close_listener(h2o_socket_t **sock)
{
    if (*sock != NULL) {
        h2o_socket_read_stop(*sock);
        h2o_socket_close(*sock);
        *sock = NULL;
    }
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gateway_thread_t *thread = H2O_STRUCT_FROM_MEMBER(gateway_thread_t, control, receiver);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    if (thread->shutting_down)
        return;
    thread->shutting_down = true;
    thread->shutdown_at_us = clock_mono_us();
    close_listener(&thread->listener);
    close_listener(&thread->tls_listener);
    h2o_context_request_shutdown(&thread->ctx); /* GOAWAY to HTTP/2 clients; HTTP/1 connections close after a response */
    sessions_close_all(thread, SESSION_CLOSE_GOING_AWAY, "the gateway is stopping: reconnect"); /* they resume elsewhere */
    if (thread->index == 0 && thread->gw->feed != NULL) {
        feed_stop(thread->gw->feed);
        thread->gw->feed = NULL;
    }
}

/* Loop thread. Everything of the loop is created here, on its own thread: h2o takes socket buffers from a thread-local
 * allocator (h2o_socket_buffer_prototype is __thread in h2o 2.2), and a socket keeps the allocator of the thread that
 * created it. Created on the main thread, the contexts' queue sockets made every loop share the main thread's unlocked
 * allocator, and concurrent worker replies on two loops corrupted it (use-after-free, crashes). */
static void thread_setup(gateway_thread_t *thread)
{
    gateway_t *gw = thread->gw;
    unsigned i = thread->index;

    thread->loop = h2o_evloop_create();
    h2o_context_init(&thread->ctx, thread->loop, &gw->h2o_config);
    h2o_multithread_register_receiver(thread->ctx.queue, &thread->control, on_control);
    thread->notifier = upstream_client_create(gw->notifier, thread->loop, thread->ctx.queue, (unsigned)gw->cfg.max_inflight,
                                              thread->metrics.worker_outcomes[METRICS_NOTIFIER]);
    thread->history = upstream_client_create(gw->history, thread->loop, thread->ctx.queue, (unsigned)gw->cfg.max_inflight,
                                             thread->metrics.worker_outcomes[METRICS_HISTORY]);
    gw->metrics_source.clients[METRICS_NOTIFIER][i] = thread->notifier;
    gw->metrics_source.clients[METRICS_HISTORY][i] = thread->history;
    for (size_t k = 0; k < gw->routes.nkinds; ++k) {
        thread->routed[k] = upstream_client_create(gw->routed[k], thread->loop, thread->ctx.queue, (unsigned)gw->cfg.max_inflight,
                                                   thread->metrics.worker_outcomes[METRICS_FIRST_ROUTED + k]);
        gw->metrics_source.clients[METRICS_FIRST_ROUTED + k][i] = thread->routed[k];
    }
    sessions_init(thread);
    chat_local_init(thread);
    h2_idle_init(thread);
    thread->auth_cache = auth_cache_create(AUTH_CACHE_SLOTS);
    if (thread->listen_fd != -1) {
        thread->accept_ctx = (h2o_accept_ctx_t){.ctx = &thread->ctx, .hosts = gw->h2o_config.hosts};
        thread->listener = watch_listener(thread, thread->listen_fd, &thread->accept_ctx);
    }
    if (thread->tls_listen_fd != -1) {
        thread->tls_accept_ctx = (h2o_accept_ctx_t){.ctx = &thread->ctx, .hosts = gw->h2o_config.hosts, .ssl_ctx = gw->ssl_ctx};
        thread->tls_listener = watch_listener(thread, thread->tls_listen_fd, &thread->tls_accept_ctx);
    }
}

/* Frees the thread's h2o socket buffers kept for reuse. h2o 2.2 keeps up to 16 freed buffers per thread in the
 * thread-local h2o_socket_buffer_prototype and has no call to release them (h2o 2.3 added h2o_mem_clear_recycle):
 * once the thread is gone nothing points to them any more. Loop thread, after its last socket is closed. */
static void release_socket_buffers(void)
{
    h2o_mem_recycle_t *recycle = &h2o_socket_buffer_prototype.allocator;
    while (recycle->cnt != 0)
        free(h2o_mem_alloc_recycle(recycle, 0)); /* with cnt != 0 it hands back a kept buffer (malloc'ed) */
}

/* Frees the thread's h2o context and loop, on the loop's own thread (see thread_setup), once the upstream clients and
 * the receivers on the context's queue are gone. A connection still open (an idle HTTP/1 keep-alive, an HTTP/2 client
 * that has not closed after GOAWAY, a TLS handshake) holds entries in the context's timeouts, and h2o 2.2 can neither
 * close it for us nor dispose a context with it (h2o_timeout_dispose asserts): then both are left as they are for the
 * exit, and false tells the main thread to leave the configuration they use alone too. */
static bool thread_dispose(gateway_thread_t *thread)
{
    h2o_context_t *ctx = &thread->ctx;
    /* h2o_context_request_shutdown armed a GOAWAY resend one second later; no HTTP/2 connection is left for it */
    if (h2o_linklist_is_empty(&ctx->http2._conns) && h2o_timeout_is_linked(&ctx->http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&ctx->http2._graceful_shutdown_timeout);
    h2o_timeout_t *timeouts[] = {&ctx->zero_timeout,
                                 &ctx->one_sec_timeout,
                                 &ctx->hundred_ms_timeout,
                                 &ctx->handshake_timeout,
                                 &ctx->http1.req_timeout,
                                 &ctx->http2.idle_timeout,
                                 &ctx->http2.graceful_shutdown_timeout,
                                 &ctx->proxy.io_timeout};
    bool idle = h2o_linklist_is_empty(&ctx->http1._conns) && h2o_linklist_is_empty(&ctx->http2._conns);
    for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); ++i)
        idle = idle && h2o_linklist_is_empty(&timeouts[i]->_entries);
    if (!idle) {
        log_info("connections still open at exit: leaving the thread's h2o context to the exit", "thread=%u", thread->index);
        return false;
    }

    h2o_multithread_queue_t *queue = ctx->queue;
    h2o_context_dispose(ctx);
#if H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR < 3
    free(queue); /* h2o 2.2's h2o_multithread_destroy_queue (run by h2o_context_dispose) closes it but does not free it */
#endif
    h2o_evloop_destroy(thread->loop); /* frees the sockets closed above: the listeners, the queue's pipe */
    thread->loop = NULL;
    release_socket_buffers();
    return true;
}

static void *thread_main(void *arg)
{
    gateway_thread_t *thread = arg;
    gateway_t *gw = thread->gw;
    uint64_t limit_us = (uint64_t)gw->cfg.shutdown_timeout_ms * 1000;

    thread_setup(thread);
    pthread_barrier_wait(&gw->started); /* /metrics reads every thread's clients: all exist before any request */
    if (thread->index == 0)
        gw->feed = feed_start(thread); /* every thread's feed receiver exists now */

    while (!thread->shutting_down)
        h2o_evloop_run(thread->loop, INT32_MAX);

    for (;;) {
        uint64_t elapsed = clock_mono_us() - thread->shutdown_at_us;
        unsigned inflight = upstream_client_inflight(thread->notifier) + upstream_client_inflight(thread->history);
        for (size_t k = 0; k < gw->routes.nkinds; ++k)
            inflight += upstream_client_inflight(thread->routed[k]);
        if (thread->pending == 0 && inflight == 0 && elapsed >= FLUSH_US)
            break;
        if (elapsed > limit_us) {
            log_warn("shutdown timeout: leaving requests unanswered", "thread=%u pending=%u", thread->index, thread->pending);
            break;
        }
        h2o_evloop_run(thread->loop, 10);
    }

    /* Freed on this thread too (freeing runs the loop to collect the last completions). Once every thread is past the
     * first wait none serves requests; then /metrics stops reading the clients, and each thread frees its own. */
    pthread_barrier_wait(&gw->stopped);
    if (thread->index == 0)
        gw->metrics_source.nthreads = 0;
    pthread_barrier_wait(&gw->stopped);
    sessions_dispose(thread); /* before the clients: it cancels the sessions' worker calls */
    chat_local_dispose(thread);
    h2_idle_dispose(thread);
    auth_cache_destroy(thread->auth_cache);
    upstream_client_destroy(thread->notifier);
    upstream_client_destroy(thread->history);
    for (size_t k = 0; k < gw->routes.nkinds; ++k)
        upstream_client_destroy(thread->routed[k]);
    h2o_multithread_unregister_receiver(thread->ctx.queue, &thread->control);
    json_out_dispose(&thread->out);
    json_out_dispose(&thread->ws_out);
    json_out_dispose(&thread->ws_one);
    return thread_dispose(thread) ? thread : NULL; /* what gateway_stop learns from pthread_join */
}

int gateway_start(gateway_t *gw)
{
    gw->threads = calloc(gw->nthreads, sizeof(*gw->threads));
    if (gw->threads == NULL)
        abort();
    gw->metrics_source.threads = calloc(gw->nthreads, sizeof(metrics_t *));
    gw->metrics_source.nkinds = METRICS_FIRST_ROUTED + gw->routes.nkinds;
    for (size_t k = 0; k < gw->metrics_source.nkinds; ++k)
        if ((gw->metrics_source.clients[k] = calloc(gw->nthreads, sizeof(upstream_client_t *))) == NULL)
            abort();
    gw->metrics_source.nthreads = gw->nthreads;
    gw->metrics_source.upstreams[METRICS_NOTIFIER] = gw->notifier;
    gw->metrics_source.upstreams[METRICS_HISTORY] = gw->history;
    for (size_t k = 0; k < gw->routes.nkinds; ++k)
        gw->metrics_source.upstreams[METRICS_FIRST_ROUTED + k] = gw->routed[k];
    gw->metrics_source.started_at_ms = gw->started_at_ms;
    gw->metrics_source.guard = &gw->guard;

    /* the listening sockets are opened here, so that an address in use fails the start */
    for (unsigned i = 0; i < gw->nthreads; ++i) {
        gateway_thread_t *thread = gw->threads + i;
        thread->gw = gw;
        thread->index = i;
        thread->listen_fd = thread->tls_listen_fd = -1;
        gw->metrics_source.threads[i] = &thread->metrics;
        if (gw->cfg.listen[0] != '\0' && (thread->listen_fd = open_listener(gw->cfg.listen)) == -1)
            return -1;
        if (gw->cfg.tls_listen[0] != '\0' && (thread->tls_listen_fd = open_listener(gw->cfg.tls_listen)) == -1)
            return -1;
    }
    gw->chat = chat_create(gw, (size_t)gw->cfg.presence_full_max);
    pthread_barrier_init(&gw->started, NULL, gw->nthreads + 1);
    pthread_barrier_init(&gw->stopped, NULL, gw->nthreads);
    for (unsigned i = 0; i < gw->nthreads; ++i)
        h2o_multithread_create_thread(&gw->threads[i].tid, NULL, thread_main, gw->threads + i);
    pthread_barrier_wait(&gw->started);
    return 0;
}

int gateway_stop(gateway_t *gw)
{
    bool disposed = true;
    for (unsigned i = 0; i < gw->nthreads; ++i)
        h2o_multithread_send_message(&gw->threads[i].control, &gw->threads[i].shutdown_msg);
    for (unsigned i = 0; i < gw->nthreads; ++i) {
        void *rv;
        pthread_join(gw->threads[i].tid, &rv); /* each thread freed its own loop's objects */
        disposed = disposed && rv != NULL;
    }
    pthread_barrier_destroy(&gw->started);
    pthread_barrier_destroy(&gw->stopped);
    free(gw->metrics_source.threads);
    for (size_t k = 0; k < gw->metrics_source.nkinds; ++k)
        free(gw->metrics_source.clients[k]);
    gw->metrics_source = (metrics_source_t){0};
    chat_destroy(gw->chat);
    gw->chat = NULL;
    if (!disposed)
        return -1; /* the contexts left open point into the threads */
    free(gw->threads);
    gw->threads = NULL;
    return 0;
}
