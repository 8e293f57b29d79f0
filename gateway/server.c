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
    if (err != NULL)
        return;
    for (int i = 0; i < 64; ++i) { /* a few at a time, so that one busy listener does not starve the loop */
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
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
    if (thread->listen_fd != -1) {
        thread->accept_ctx = (h2o_accept_ctx_t){.ctx = &thread->ctx, .hosts = gw->h2o_config.hosts};
        thread->listener = watch_listener(thread, thread->listen_fd, &thread->accept_ctx);
    }
    if (thread->tls_listen_fd != -1) {
        thread->tls_accept_ctx = (h2o_accept_ctx_t){.ctx = &thread->ctx, .hosts = gw->h2o_config.hosts, .ssl_ctx = gw->ssl_ctx};
        thread->tls_listener = watch_listener(thread, thread->tls_listen_fd, &thread->tls_accept_ctx);
    }
}

static void *thread_main(void *arg)
{
    gateway_thread_t *thread = arg;
    gateway_t *gw = thread->gw;
    uint64_t limit_us = (uint64_t)gw->cfg.shutdown_timeout_ms * 1000;

    thread_setup(thread);
    pthread_barrier_wait(&gw->started); /* /metrics reads every thread's clients: all exist before any request */

    while (!thread->shutting_down)
        h2o_evloop_run(thread->loop, INT32_MAX);

    for (;;) {
        uint64_t elapsed = clock_mono_us() - thread->shutdown_at_us;
        if (thread->pending == 0 && upstream_client_inflight(thread->notifier) == 0 &&
            upstream_client_inflight(thread->history) == 0 && elapsed >= FLUSH_US)
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
    upstream_client_destroy(thread->notifier);
    upstream_client_destroy(thread->history);
    h2o_multithread_unregister_receiver(thread->ctx.queue, &thread->control);
    json_out_dispose(&thread->out);
    return NULL;
}

int gateway_start(gateway_t *gw)
{
    gw->threads = calloc(gw->nthreads, sizeof(*gw->threads));
    if (gw->threads == NULL)
        abort();
    gw->metrics_source.threads = calloc(gw->nthreads, sizeof(metrics_t *));
    gw->metrics_source.clients[METRICS_NOTIFIER] = calloc(gw->nthreads, sizeof(upstream_client_t *));
    gw->metrics_source.clients[METRICS_HISTORY] = calloc(gw->nthreads, sizeof(upstream_client_t *));
    gw->metrics_source.nthreads = gw->nthreads;
    gw->metrics_source.upstreams[METRICS_NOTIFIER] = gw->notifier;
    gw->metrics_source.upstreams[METRICS_HISTORY] = gw->history;
    gw->metrics_source.started_at_ms = gw->started_at_ms;

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
    pthread_barrier_init(&gw->started, NULL, gw->nthreads + 1);
    pthread_barrier_init(&gw->stopped, NULL, gw->nthreads);
    for (unsigned i = 0; i < gw->nthreads; ++i)
        h2o_multithread_create_thread(&gw->threads[i].tid, NULL, thread_main, gw->threads + i);
    pthread_barrier_wait(&gw->started);
    return 0;
}

void gateway_stop(gateway_t *gw)
{
    for (unsigned i = 0; i < gw->nthreads; ++i)
        h2o_multithread_send_message(&gw->threads[i].control, &gw->threads[i].shutdown_msg);
    for (unsigned i = 0; i < gw->nthreads; ++i)
        pthread_join(gw->threads[i].tid, NULL); /* each thread freed its own loop's objects */
    pthread_barrier_destroy(&gw->started);
    pthread_barrier_destroy(&gw->stopped);
}
