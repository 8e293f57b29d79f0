#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "clock.h"
#include "log.h"
#include "worker.h"

static volatile int stop_signal;

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

void worker_run(h2o_loop_t *loop, rpc_server_t *server, uint32_t drain_ms)
{
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
}
