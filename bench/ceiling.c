/*
 * ceiling: the benchmark's upper bound. The gateway's HTTP front (h2o evloop threads, one SO_REUSEPORT listening socket
 * per thread, the same h2o settings and response headers) answering every request with one constant body read from a
 * file at start, so that a benchmark of it measures h2o, the kernel and the load tool, and nothing of notigate's own.
 *
 *   ceiling --listen 127.0.0.1:PORT --threads N --body-file FILE
 *
 * Mirrors gateway/main.c and gateway/server.c (as of this writing); keep the two in step when the gateway's h2o setup
 * changes. Stops on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <h2o.h>

#define CEILING_PUBLISH_BODY_MAX (64 * 1024) /* the gateway's API limit, whose 4x is its h2o entity limit */

typedef struct st_ceiling_thread_t {
    pthread_t tid;
    int listen_fd;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
} ceiling_thread_t;

static h2o_globalconf_t ceiling_config;
static h2o_iovec_t ceiling_body;

/* Opens a listening TCP socket on "host:port" as the gateway does (SO_REUSEPORT, TCP_NODELAY inherited by accepted
 * sockets). Returns the fd or -1 after printing why. */
static int ceiling_open_listener(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    int fd = -1, on = 1, rv;

    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host)) {
        fprintf(stderr, "ceiling: --listen must be host:port\n");
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    if ((rv = getaddrinfo(host[0] != '\0' ? host : NULL, colon + 1, &hints, &res)) != 0) {
        fprintf(stderr, "ceiling: cannot resolve %s: %s\n", hostport, gai_strerror(rv));
        return -1;
    }
    if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        fprintf(stderr, "ceiling: cannot listen on %s: %s\n", hostport, strerror(errno));
        if (fd != -1)
            close(fd);
        fd = -1;
        goto Exit;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
Exit:
    freeaddrinfo(res);
    return fd;
}

/* The one handler: the gateway's response headers (respond() in gateway/routes.c) and the constant body. */
static int ceiling_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    req->res.content_length = ceiling_body.len;
    h2o_send_inline(req, ceiling_body.base, ceiling_body.len); /* copies, as the gateway's answers do */
    return 0;
}

static void ceiling_on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_accept_ctx_t *accept_ctx = listener->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 64; ++i) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(accept_ctx, sock);
    }
}

/* Loop thread: everything of the loop is created on it (h2o's socket buffers are per thread), then it runs forever. */
static void *ceiling_thread_main(void *arg)
{
    ceiling_thread_t *thread = arg;
    thread->loop = h2o_evloop_create();
    h2o_context_init(&thread->ctx, thread->loop, &ceiling_config);
    thread->accept_ctx = (h2o_accept_ctx_t){.ctx = &thread->ctx, .hosts = ceiling_config.hosts};
    h2o_socket_t *listener = h2o_evloop_socket_create(thread->loop, thread->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = &thread->accept_ctx;
    h2o_socket_read_start(listener, ceiling_on_accept);
    for (;;)
        h2o_evloop_run(thread->loop, INT32_MAX);
    return NULL;
}

/* Reads the whole file into ceiling_body. Returns 0 or -1 after printing why. */
static int ceiling_read_body(const char *path)
{
    FILE *fp = fopen(path, "rb");
    long len;
    int ret = -1;
    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "ceiling: cannot read %s: %s\n", path, strerror(errno));
        goto Exit;
    }
    ceiling_body = h2o_iovec_init(h2o_mem_alloc((size_t)len + 1), (size_t)len);
    if (fread(ceiling_body.base, 1, (size_t)len, fp) != (size_t)len) {
        fprintf(stderr, "ceiling: short read on %s\n", path);
        goto Exit;
    }
    ret = 0;
Exit:
    if (fp != NULL)
        fclose(fp);
    return ret;
}

static void ceiling_usage(void)
{
    fprintf(stderr, "usage: ceiling --listen HOST:PORT --body-file FILE [--threads N (default: the number of CPUs)]\n");
}

int main(int argc, char **argv)
{
    const char *listen_addr = NULL, *body_file = NULL;
    long nthreads = sysconf(_SC_NPROCESSORS_ONLN);
    sigset_t set;
    int sig;

    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_addr = argv[++i];
        else if (strcmp(argv[i], "--body-file") == 0 && i + 1 < argc)
            body_file = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = strtol(argv[++i], NULL, 10);
        else {
            ceiling_usage();
            return 2;
        }
    }
    if (listen_addr == NULL || body_file == NULL || nthreads < 1 || nthreads > 256) {
        ceiling_usage();
        return 2;
    }
    if (ceiling_read_body(body_file) != 0)
        return 1;

    /* as the gateway: signals go to sigwait below only, SIGPIPE is ignored */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the gateway's h2o settings (gateway/main.c) */
    h2o_config_init(&ceiling_config);
    ceiling_config.server_name = h2o_iovec_init(H2O_STRLIT("notigate"));
    ceiling_config.max_request_entity_size = 4 * CEILING_PUBLISH_BODY_MAX;
    ceiling_config.http2.max_concurrent_requests_per_connection = 100;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&ceiling_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = ceiling_on_req;

    ceiling_thread_t *threads = calloc((size_t)nthreads, sizeof(*threads));
    if (threads == NULL)
        abort();
    for (long i = 0; i < nthreads; ++i)
        if ((threads[i].listen_fd = ceiling_open_listener(listen_addr)) == -1)
            return 1;
    for (long i = 0; i < nthreads; ++i)
        h2o_multithread_create_thread(&threads[i].tid, NULL, ceiling_thread_main, threads + i);
    fprintf(stderr, "ceiling: listening on %s, %ld threads, %zu-byte body\n", listen_addr, nthreads, ceiling_body.len);

    while (sigwait(&set, &sig) != 0)
        ;
    return 0;
}
