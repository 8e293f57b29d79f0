#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "clock.h"
#include "log.h"
#include "worker.h"

static volatile int stop_signal;

typedef struct st_health_t {
    h2o_loop_t *loop;
    rpc_server_t *server;
    uint64_t alone_since_us; /* when the worker last had no gateway connection, or 0 */
    uint64_t alone_logged_us;
    const char *file;
    worker_health_cb healthy;
    void *data;
    h2o_timeout_t timeout;
    h2o_timeout_entry_t entry;
    bool was_healthy;
} health_t;

/* Every second: rewrite or remove the health file, and complain while no gateway is connected. */
static void on_health_tick(h2o_timeout_entry_t *entry)
{
    health_t *h = H2O_STRUCT_FROM_MEMBER(health_t, entry, entry);
    uint64_t now = clock_mono_us();
    bool connected = rpc_server_gateways(h->server) != 0, ok = connected && h->healthy(h->data);

    if (connected) {
        h->alone_since_us = 0;
    } else if (h->alone_since_us == 0) {
        h->alone_since_us = h->alone_logged_us = now;
    } else if (now - h->alone_logged_us >= 10000000) {
        log_warn("not connected to any gateway: check the gateway URL and that the gateway runs", "for_s=%d",
                 (int)((now - h->alone_since_us) / 1000000));
        h->alone_logged_us = now;
    }

    if (h->file != NULL && h->file[0] != '\0') {
        if (ok) {
            char tmp[4096];
            snprintf(tmp, sizeof(tmp), "%s.tmp", h->file);
            FILE *fp = fopen(tmp, "w");
            if (fp != NULL) {
                fprintf(fp, "%lld\n", (long long)clock_wall_ms());
                if (fclose(fp) == 0)
                    rename(tmp, h->file);
            }
        } else {
            unlink(h->file);
        }
    }
    if (ok != h->was_healthy)
        log_info(ok ? "healthy" : "unhealthy", "gateways=%u", rpc_server_gateways(h->server));
    h->was_healthy = ok;
    h2o_timeout_link(h->loop, &h->timeout, &h->entry);
}

void worker_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void on_signal(h2o_socket_t *sock, const char *err)
{
    struct signalfd_siginfo si;
    int fd = h2o_socket_get_fd(sock);
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        stop_signal = (int)si.ssi_signo;
}

void worker_wait_ready(h2o_loop_t *loop, worker_health_cb ready, void *data, uint32_t timeout_ms)
{
    uint64_t deadline = clock_mono_us() + (uint64_t)timeout_ms * 1000;
    while (!ready(data) && clock_mono_us() < deadline)
        h2o_evloop_run(loop, 10);
}

void worker_run(h2o_loop_t *loop, rpc_server_t *server, uint32_t drain_ms, const char *health_file, worker_health_cb healthy,
                void *data)
{
    health_t health = {.loop = loop, .server = server, .file = health_file, .healthy = healthy, .data = data};
    h2o_timeout_init(loop, &health.timeout, 1000);
    health.entry.cb = on_health_tick;
    h2o_timeout_link(loop, &health.timeout, &health.entry);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    h2o_socket_t *sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(sock, on_signal);

    while (stop_signal == 0)
        h2o_evloop_run(loop, INT32_MAX);

    log_info("stopping: no new requests, finishing the ones in flight", "signal=%s busy=%u", strsignal(stop_signal),
             rpc_server_busy(server));
    rpc_server_drain(server);
    uint64_t deadline = clock_mono_us() + (uint64_t)drain_ms * 1000;
    while (rpc_server_busy(server) != 0 && clock_mono_us() < deadline)
        h2o_evloop_run(loop, 10);
    if (rpc_server_busy(server) != 0)
        log_warn("stopping with requests unanswered", "busy=%u drain_ms=%u", rpc_server_busy(server), drain_ms);
    h2o_socket_read_stop(sock);
    h2o_socket_close(sock);
    h2o_timeout_unlink(&health.entry);
    h2o_timeout_dispose(loop, &health.timeout);
    if (health_file != NULL && health_file[0] != '\0')
        unlink(health_file);
}
