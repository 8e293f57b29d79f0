/*
 * See harness.h for how the harness fits Check's fork mode. Processes are started with fork + exec: between the two
 * the child makes only async-signal-safe calls (the test may have curl threads running).
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "auth.h"
#include "harness.h"
#include "valid.h"

#ifndef NOTIGATE_GATEWAY_BIN
#error "NOTIGATE_GATEWAY_BIN, NOTIGATE_NOTIFIER_BIN, NOTIGATE_HISTORY_BIN and NOTIGATE_ORDERS_BIN must name the binaries under test"
#endif

#define ROOT_PREFIX "/tmp/notigate-it."
#define START_ATTEMPTS 3
#define READY_TIMEOUT_MS 15000
#define LOG_TAIL_LINES 40
#define STOP_TIMEOUT_MS 15000 /* the gateway's own --shutdown-timeout-ms is 10 s, a worker's --drain-ms 5 s */

extern char **environ;

static char root_dir[64]; /* set by harness_main before the runner forks any test */
static pid_t runner_pid;

static const char *kind_names[HARNESS_NKINDS] = {"redis", "gateway", "notifier", "history-svc", "orders"};

/* ---- small utilities ------------------------------------------------------------------------------------------- */

int64_t harness_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

double harness_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void harness_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        abort();
    return p;
}

/* Appends one line to the system's harness.log: what the test did to the system, for the failure report. */
static void note(const harness_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const harness_t *h, const char *fmt, ...)
{
    char line[768], path[600];
    int n = snprintf(line, sizeof(line), "%.3f pid=%d ", harness_mono_ms() / 1000.0, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    snprintf(path, sizeof(path), "%s/harness.log", h->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, line, (size_t)n); /* O_APPEND: one line at a time, even from several test children */
        (void)w;
        close(fd);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes roots of earlier runners that are gone (killed by a ctest timeout, say); never those of live runners. */
static void remove_stale_roots(void)
{
    DIR *d = opendir("/tmp");
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char path[300], *end;
        struct stat st;
        if (strncmp(e->d_name, "notigate-it.", 12) != 0)
            continue;
        long pid = strtol(e->d_name + 12, &end, 10);
        if (end == e->d_name + 12 || *end != '.' || pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid())
            continue;
        harness_proc_t runner = {.pid = (pid_t)pid, .owner = -1};
        char keep[320];
        snprintf(keep, sizeof(keep), "%s/KEEP", path);
        if (harness_proc_alive(&runner) || access(keep, F_OK) == 0) /* a zombie counts as gone; kept roots stay */
            continue;
        rm_rf(path);
    }
    closedir(d);
}

static bool find_in_path(const char *name, char *out, size_t outsz)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path != NULL ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    char *save = NULL;
    for (char *dir = strtok_r(buf, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, outsz, "%s/%s", dir, name);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static const char *binary_of(harness_kind_t kind, char *buf, size_t bufsz)
{
    static const char *built[HARNESS_NKINDS] = {NULL, NOTIGATE_GATEWAY_BIN, NOTIGATE_NOTIFIER_BIN, NOTIGATE_HISTORY_BIN,
                                                NOTIGATE_ORDERS_BIN};
    if (kind == HARNESS_REDIS) {
        if (!find_in_path("redis-server", buf, bufsz))
            ck_abort_msg("redis-server is not in PATH");
        return buf;
    }
    const char *dir = getenv("NOTIGATE_BIN_DIR"); /* to test another build (e.g. a sanitizer one) */
    if (dir != NULL && dir[0] != '\0') {
        snprintf(buf, bufsz, "%s/%s", dir, strrchr(built[kind], '/') + 1);
        return buf;
    }
    return built[kind];
}

/* The environment given to the processes: only what does not configure them (they read their options from variables
 * like LISTEN or REDIS_URL too, and every option the tests rely on is passed as a flag). */
static char **child_environ(void)
{
    static const char *keep[] = {"PATH=", "HOME=", "LANG=", "LC_", "TZ=", "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", NULL};
    size_t n = 0, cap = 16;
    char **env = xmalloc(cap * sizeof(*env));
    for (char **e = environ; *e != NULL; ++e) {
        for (const char **k = keep; *k != NULL; ++k) {
            if (strncmp(*e, *k, strlen(*k)) == 0) {
                if (n + 2 > cap && (env = realloc(env, (cap *= 2) * sizeof(*env))) == NULL)
                    abort();
                env[n++] = *e;
                break;
            }
        }
    }
    env[n] = NULL;
    return env;
}

/* ---- processes ------------------------------------------------------------------------------------------------- */

/* fork + exec of argv with stdout and stderr appended to log_path; the child dies with its parent (PDEATHSIG).
 * Returns the pid, or -1. */
static pid_t spawn(const char *log_path, char *const argv[])
{
    char **env = child_environ();
    pid_t parent = getpid(), pid = -1;
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0)
        goto Exit;

    if ((pid = fork()) == 0) {
        /* async-signal-safe calls only until exec */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(127);
        if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
            for (int fd = 3; fd < 4096; ++fd)
                close(fd);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig)
            if (sig != SIGKILL && sig != SIGSTOP)
                sigaction(sig, &dfl, NULL); /* ignored signals would stay ignored across exec */
        execve(argv[0], argv, env);
        static const char msg[] = "harness: execve failed\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }

Exit:
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    free(env);
    return pid;
}

static void reap(harness_proc_t *p, int options)
{
    int status;
    if (p->reaped || p->owner != getpid())
        return;
    pid_t r;
    while ((r = waitpid(p->pid, &status, options)) < 0 && errno == EINTR)
        ;
    if (r == p->pid) {
        p->reaped = true;
        p->wait_status = status;
    } else if (r < 0) {
        p->reaped = true; /* not ours to wait for any more: treat as gone */
        p->wait_status = -1;
    }
}

bool harness_proc_alive(harness_proc_t *p)
{
    if (p->owner == getpid()) {
        reap(p, WNOHANG);
        return !p->reaped;
    }
    /* someone else's child: alive unless gone or a zombie */
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void describe_status(int status, char *buf, size_t bufsz)
{
    if (status == -1)
        snprintf(buf, bufsz, "exited (status unknown)");
    else if (WIFEXITED(status))
        snprintf(buf, bufsz, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, bufsz, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, bufsz, "wait status 0x%x", status);
}

static harness_proc_t *start_proc(harness_t *h, harness_kind_t kind, const char *const *extra)
{
    char bin[600], listen[64], nbind[64], hbind[64], obind[64], redis_url[64], port[16], wt[16], wrt[16], tls_listen[64],
        redis_dir[600];
    char *argv[48];
    int argc = 0;

    if (h->nprocs == HARNESS_MAX_PROCS)
        ck_abort_msg("harness: more than %d processes in one system", HARNESS_MAX_PROCS);
    harness_proc_t *p = h->procs + h->nprocs;
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    snprintf(p->name, sizeof(p->name), "%s-%u", kind_names[kind], ++h->started[kind]);
    snprintf(p->log_path, sizeof(p->log_path), "%s/%s.log", h->dir, p->name);

    snprintf(nbind, sizeof(nbind), "tcp://127.0.0.1:%u", h->notifier_port);
    snprintf(hbind, sizeof(hbind), "tcp://127.0.0.1:%u", h->history_port);
    snprintf(obind, sizeof(obind), "tcp://127.0.0.1:%u", h->orders_port);
    snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%u", h->redis_port);
    argv[argc++] = (char *)binary_of(kind, bin, sizeof(bin));
    switch (kind) {
    case HARNESS_REDIS:
        snprintf(port, sizeof(port), "%u", h->redis_port);
        snprintf(redis_dir, sizeof(redis_dir), "%s/redis", h->dir);
        mkdir(redis_dir, 0755);
        {
            char *args[] = {"--port",       port,  "--bind",        "127.0.0.1", "--dir",       redis_dir,
                            "--appendonly", "yes", "--appendfsync", "always",    "--save",      "",
                            "--daemonize",  "no",  "--logfile",     "",          "--databases", "1"};
            for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); ++i)
                argv[argc++] = args[i];
        }
        break;
    case HARNESS_GATEWAY:
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", h->http_port);
        snprintf(wt, sizeof(wt), "%d", h->opts.worker_timeout_ms);
        snprintf(wrt, sizeof(wrt), "%d", h->opts.write_timeout_ms);
        {
            char *args[] = {"--listen",      listen, "--notifier-bind",     nbind, "--history-bind",     hbind,
                            "--orders-bind", obind,  "--worker-timeout-ms", wt,    "--write-timeout-ms", wrt,
                            "--threads",     "2",    "--log-level",         "info",
                            /* every request here comes from 127.0.0.1 without a credential, many a second: no rate
                             * limit per address unless a test sets one (test_limits.c) */
                            "--rate-limit", "0"};
            for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); ++i)
                argv[argc++] = args[i];
        }
        for (const char *const *a = h->opts.gateway_args; a != NULL && *a != NULL; ++a) {
            ck_assert_msg(argc < (int)(sizeof(argv) / sizeof(argv[0])) - 8, "harness: too many gateway arguments");
            argv[argc++] = (char *)*a;
        }
        if (h->opts.no_auth) {
            argv[argc++] = "--insecure-no-auth";
        } else {
            argv[argc++] = "--jwt-secret-file";
            argv[argc++] = h->jwt_secret_path;
        }
        if (h->opts.tls) {
            snprintf(tls_listen, sizeof(tls_listen), "127.0.0.1:%u", h->tls_port);
            char *args[] = {"--tls-listen", tls_listen, "--tls-cert", h->cert_path, "--tls-key", h->key_path};
            for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); ++i)
                argv[argc++] = args[i];
        }
        break;
    case HARNESS_NOTIFIER:
    case HARNESS_HISTORY:
    case HARNESS_ORDERS: {
        char *args[] = {"--gateway",   kind == HARNESS_NOTIFIER ? nbind : (kind == HARNESS_HISTORY ? hbind : obind),
                        "--redis-url", redis_url,
                        "--log-level", "info"};
        for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); ++i)
            argv[argc++] = args[i];
    } break;
    default:
        ck_abort_msg("harness: unknown process kind %d", (int)kind);
    }
    for (; extra != NULL && *extra != NULL; ++extra) {
        ck_assert_msg(argc < (int)(sizeof(argv) / sizeof(argv[0])) - 1, "harness: too many arguments");
        argv[argc++] = (char *)*extra;
    }
    argv[argc] = NULL;

    if ((p->pid = spawn(p->log_path, argv)) < 0)
        ck_abort_msg("harness: cannot start %s: %s", argv[0], strerror(errno));
    p->owner = getpid();
    ++h->nprocs;
    note(h, "started %s pid=%d", p->name, (int)p->pid);
    return p;
}

harness_proc_t *harness_proc(harness_t *h, harness_kind_t kind, unsigned index)
{
    for (size_t i = 0; i < h->nprocs; ++i) {
        harness_proc_t *p = h->procs + i;
        if (p->kind == kind && !p->expected_end && !p->reaped && index-- == 0)
            return p;
    }
    return NULL;
}

void harness_proc_kill(harness_t *h, harness_proc_t *p)
{
    note(h, "SIGKILL %s pid=%d", p->name, (int)p->pid);
    p->expected_end = true;
    if (p->reaped)
        return;
    kill(p->pid, SIGKILL);
    if (p->owner == getpid()) {
        reap(p, 0);
    } else {
        for (int i = 0; i < 200 && harness_proc_alive(p); ++i)
            harness_sleep_ms(10);
    }
}

void harness_proc_pause(harness_proc_t *p)
{
    kill(p->pid, SIGSTOP);
    /* wait until the kernel says it is stopped, so that the test's next step really meets a stopped process */
    for (int i = 0; i < 200; ++i) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        const char *rp = strrchr(buf, ')');
        if (rp == NULL || rp[2] == 'T')
            return;
        harness_sleep_ms(5);
    }
}

void harness_proc_resume(harness_proc_t *p)
{
    kill(p->pid, SIGCONT);
}

void harness_proc_signal(harness_t *h, harness_proc_t *p, int sig)
{
    note(h, "signal %d (%s) to %s pid=%d", sig, strsignal(sig), p->name, (int)p->pid);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGKILL)
        p->expected_end = true;
    kill(p->pid, sig);
}

int harness_proc_wait(harness_proc_t *p, int timeout_ms)
{
    ck_assert_msg(p->owner == getpid(), "harness: only the process that started %s can wait for it", p->name);
    double deadline = harness_mono_ms() + timeout_ms;
    for (;;) {
        reap(p, WNOHANG);
        if (p->reaped)
            return p->wait_status;
        if (harness_mono_ms() > deadline)
            return -1;
        harness_sleep_ms(5);
    }
}

/* Appends the stacks of every thread of p to its log (with gdb, if installed): where a process hangs is the first thing a
 * failure report needs. The caller is p's parent, so the attach is allowed. */
static void capture_stacks(harness_t *h, harness_proc_t *p)
{
    char gdb[600], pid[16];
    if (!find_in_path("gdb", gdb, sizeof(gdb)))
        return;
    snprintf(pid, sizeof(pid), "%d", (int)p->pid);
    char *argv[] = {gdb, "-p", pid, "-batch", "-nx", "-ex", "thread apply all bt", NULL};
    harness_proc_t g = {.pid = spawn(p->log_path, argv), .owner = getpid()};
    snprintf(g.name, sizeof(g.name), "gdb");
    if (g.pid > 0 && harness_proc_wait(&g, 30000) == -1) {
        kill(g.pid, SIGKILL);
        reap(&g, 0);
    }
    note(h, "stacks of %s appended to its log", p->name);
}

int harness_proc_terminate(harness_t *h, harness_proc_t *p, int timeout_ms)
{
    ck_assert_msg(p->owner == getpid(), "harness: only the process that started %s can wait for it", p->name);
    note(h, "SIGTERM %s pid=%d", p->name, (int)p->pid);
    p->expected_end = true;
    kill(p->pid, SIGTERM);
    int status = harness_proc_wait(p, timeout_ms);
    if (status == -1) {
        note(h, "%s did not exit within %d ms of SIGTERM: SIGKILL", p->name, timeout_ms);
        capture_stacks(h, p);
        kill(p->pid, SIGKILL);
        reap(p, 0);
        return -1;
    }
    char how[96];
    describe_status(status, how, sizeof(how));
    note(h, "%s %s", p->name, how);
    return status;
}

/* ---- waiting for things ---------------------------------------------------------------------------------------- */

/* Sends one inline command over a raw socket and returns true if the reply (its first 16 KiB) contains needle. */
static bool redis_reply_contains(uint16_t port, const char *command, const char *needle)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 1};
    static char buf[16384];
    size_t len = 0, cmdlen = strlen(command);
    bool ok = false;
    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, command, cmdlen) == (ssize_t)cmdlen) {
        ssize_t n;
        while (!ok && len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            ok = strstr(buf, needle) != NULL;
        }
    }
    close(fd);
    return ok;
}

long long harness_redis_int(const harness_t *h, const char *command)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(h->redis_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 2};
    char buf[256];
    size_t len = 0, cmdlen = strlen(command);
    ssize_t n;
    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    bool sent = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, command, cmdlen) == (ssize_t)cmdlen;
    /* a reply is one line (":42", "-ERR ..", "$-1"), or "$2" and a second line holding the value */
    while (sent && len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)n;
        buf[len] = '\0';
        const char *eol = strstr(buf, "\r\n");
        if (eol != NULL && (buf[0] != '$' || buf[1] == '-' || strstr(eol + 2, "\r\n") != NULL))
            break;
    }
    close(fd);
    buf[len] = '\0';
    char *end;
    long long v = 0;
    bool ok = false;
    if (len > 1 && buf[0] == ':') {
        v = strtoll(buf + 1, &end, 10);
        ok = *end == '\r';
    } else if (len > 1 && buf[0] == '$' && buf[1] != '-' && strstr(buf, "\r\n") != NULL) {
        v = strtoll(strstr(buf, "\r\n") + 2, &end, 10);
        ok = *end == '\r';
    }
    ck_assert_msg(ok, "redis %.*s: not an integer reply: %.200s", (int)strcspn(command, "\r\n"), command,
                  sent ? buf : "(not sent)");
    return v;
}

/* PING over a raw socket: true on +PONG. */
static bool redis_ping(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 1};
    char buf[64];
    bool ok = false;
    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, "PING\r\n", 6) == 6) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        ok = n >= 5 && memcmp(buf, "+PONG", 5) == 0;
    }
    close(fd);
    return ok;
}

int harness_tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        err = errno;
    close(fd);
    return err;
}

static long get_status(const harness_t *h, const char *path, long timeout_ms)
{
    harness_req_t req = {.path = path, .timeout_ms = timeout_ms};
    harness_resp_t *r = harness_request(h, &req);
    long status = r->status;
    harness_resp_free(r);
    return status;
}

int harness_wait_ready(harness_t *h, int timeout_ms)
{
    double deadline = harness_mono_ms() + timeout_ms;
    do {
        if (get_status(h, "/readyz", 2000) == 200)
            return 0;
        harness_sleep_ms(20);
    } while (harness_mono_ms() < deadline);
    return -1;
}

int harness_wait_replicas(harness_t *h, const char *kind, unsigned n, int timeout_ms)
{
    char series[96];
    snprintf(series, sizeof(series), "notigate_worker_replicas{kind=\"%s\"}", kind);
    double deadline = harness_mono_ms() + timeout_ms;
    do {
        if (harness_metric(h, series) == (double)n)
            return 0;
        harness_sleep_ms(10);
    } while (harness_mono_ms() < deadline);
    return -1;
}

/* ---- systems --------------------------------------------------------------------------------------------------- */

static void pick_ports(uint16_t *ports[], size_t n)
{
    int fds[8];
    for (size_t i = 0; i < n; ++i) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0)
            ck_abort_msg("harness: cannot find a free port: %s", strerror(errno));
        *ports[i] = ntohs(sa.sin_port);
    }
    for (size_t i = 0; i < n; ++i) /* all held open until here: the ports are distinct */
        close(fds[i]);
}

static void make_certificate(harness_t *h)
{
    char openssl[600], log_path[600];
    if (!find_in_path("openssl", openssl, sizeof(openssl)))
        ck_abort_msg("openssl is not in PATH");
    snprintf(h->cert_path, sizeof(h->cert_path), "%s/cert.pem", h->dir);
    snprintf(h->key_path, sizeof(h->key_path), "%s/key.pem", h->dir);
    snprintf(log_path, sizeof(log_path), "%s/openssl.log", h->dir);
    char *argv[] = {openssl,   "req",           "-x509", "-newkey",    "rsa:2048", "-nodes",
                    "-subj",   "/CN=localhost", "-days", "1",          "-addext",  "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", h->key_path,     "-out",  h->cert_path, NULL};
    harness_proc_t p = {.pid = spawn(log_path, argv), .owner = getpid()};
    snprintf(p.name, sizeof(p.name), "openssl");
    ck_assert_msg(p.pid > 0, "harness: cannot run openssl");
    int status = harness_proc_wait(&p, 30000);
    ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "openssl req failed (status %d): see %s", status,
                  log_path);
}

static void kill_all(harness_t *h)
{
    for (size_t i = 0; i < h->nprocs; ++i) {
        harness_proc_t *p = h->procs + i;
        if (!p->reaped) {
            kill(p->pid, SIGKILL);
            reap(p, 0);
        }
    }
}

/* The first process of h that exited during startup, or NULL. */
static harness_proc_t *died_early(harness_t *h)
{
    for (size_t i = 0; i < h->nprocs; ++i)
        if (!harness_proc_alive(h->procs + i))
            return h->procs + i;
    return NULL;
}

/* One attempt: 0 when up, 1 when a process died (a port was taken: worth another attempt), -1 on timeout. */
static int try_start(harness_t *h, char *why, size_t whysz)
{
    uint16_t *ports[] = {&h->http_port, &h->tls_port, &h->notifier_port, &h->history_port, &h->orders_port, &h->redis_port};
    pick_ports(ports, sizeof(ports) / sizeof(ports[0]));
    note(h, "ports http=%u tls=%u notifier=%u history=%u orders=%u redis=%u", h->http_port, h->tls_port, h->notifier_port,
         h->history_port, h->orders_port, h->redis_port);

    double deadline = harness_mono_ms() + READY_TIMEOUT_MS;
    const char *path = "redis PING";
    harness_proc_t *dead;
    start_proc(h, HARNESS_REDIS, NULL);
    while (!redis_ping(h->redis_port)) {
        if ((dead = died_early(h)) != NULL || harness_mono_ms() > deadline)
            goto Failed;
        harness_sleep_ms(10);
    }
    start_proc(h, HARNESS_GATEWAY, NULL);
    for (int i = 0; i < h->opts.histories; ++i)
        start_proc(h, HARNESS_HISTORY, NULL);
    for (int i = 0; i < h->opts.notifiers; ++i)
        start_proc(h, HARNESS_NOTIFIER, NULL);
    for (int i = 0; i < h->opts.orders; ++i)
        start_proc(h, HARNESS_ORDERS, NULL);

    path = h->opts.no_wait_ready ? "/healthz" : "/readyz";
    while (get_status(h, path, 2000) != 200) {
        if ((dead = died_early(h)) != NULL || harness_mono_ms() > deadline)
            goto Failed;
        harness_sleep_ms(10);
    }
    if (!h->opts.no_wait_ready) {
        /* /readyz needs one replica of each kind; wait for all of them */
        if (harness_wait_replicas(h, "notifier", (unsigned)h->opts.notifiers, (int)(deadline - harness_mono_ms())) != 0 ||
            harness_wait_replicas(h, "history", (unsigned)h->opts.histories, (int)(deadline - harness_mono_ms())) != 0 ||
            harness_wait_replicas(h, "orders", (unsigned)h->opts.orders, (int)(deadline - harness_mono_ms())) != 0) {
            dead = NULL;
            goto Failed;
        }
    }
    note(h, "system ready");
    return 0;

Failed:
    if (dead != NULL) {
        char how[96];
        reap(dead, 0);
        describe_status(dead->wait_status, how, sizeof(how));
        snprintf(why, whysz, "%s %s during startup", dead->name, how);
    } else {
        snprintf(why, whysz, "not ready (%s) within %d ms", path, READY_TIMEOUT_MS);
    }
    note(h, "start failed: %s", why);
    kill_all(h);
    return dead != NULL ? 1 : -1;
}

/* A random secret for the system's gateways, in a file only the owner reads. */
static void write_secret(harness_t *h)
{
    unsigned char raw[32];
    ck_assert_msg(getrandom(raw, sizeof(raw), 0) == (ssize_t)sizeof(raw), "harness: getrandom failed");
    for (size_t i = 0; i < sizeof(raw); ++i)
        snprintf(h->jwt_secret + 2 * i, 3, "%02x", raw[i]);
    snprintf(h->jwt_secret_path, sizeof(h->jwt_secret_path), "%s/jwt.secret", h->dir);
    int fd = open(h->jwt_secret_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "harness: cannot write %s: %s", h->jwt_secret_path, strerror(errno));
    ck_assert_msg(write(fd, h->jwt_secret, strlen(h->jwt_secret)) == (ssize_t)strlen(h->jwt_secret), "harness: short write");
    close(fd);
}

const char *harness_token(const harness_t *h, char *buf, size_t bufsz, const char *sub, const char *scope, int ttl_s)
{
    int n = auth_mint((const uint8_t *)h->jwt_secret, strlen(h->jwt_secret), sub, scope, (int64_t)time(NULL), ttl_s, buf, bufsz);
    ck_assert_msg(n > 0, "harness: cannot mint a token for \"%s\"", sub);
    return buf;
}

/* The token a request needs (harness_req_t.token NULL): its user's, or a publisher's. */
static void auto_token(const harness_t *h, const char *path, char *buf, size_t bufsz)
{
    char user[VALID_USER_ID_MAX + 1] = "";
    const char *q = strchr(path, '?');
    if (strncmp(path, "/v1/users/", 10) == 0) {
        size_t n = strcspn(path + 10, "/?");
        if (n < sizeof(user))
            snprintf(user, sizeof(user), "%.*s", (int)n, path + 10);
    } else if (q != NULL) {
        const char *u = strstr(q, "user_id=");
        if (u != NULL && (u[-1] == '?' || u[-1] == '&')) {
            size_t n = strcspn(u + 8, "&");
            if (n < sizeof(user))
                snprintf(user, sizeof(user), "%.*s", (int)n, u + 8);
        }
    }
    if (user[0] != '\0' && valid_user_id(user, strlen(user)))
        harness_token(h, buf, bufsz, user, NULL, 3600);
    else
        harness_token(h, buf, bufsz, "harness", "publish", 3600);
}

harness_t *harness_start(const char *tcase, const harness_opts_t *opts)
{
    harness_t *h = calloc(1, sizeof(*h));
    char why[256] = "";
    if (h == NULL)
        abort();
    ck_assert_msg(root_dir[0] != '\0', "harness: harness_main must run the suite");
    if (getpid() != runner_pid)
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a forked test child: die with the runner, and the system with it */
    snprintf(h->tcase, sizeof(h->tcase), "%s", tcase);
    h->opts = opts != NULL ? *opts : HARNESS_OPTS_DEFAULT;

    for (int attempt = 1; attempt <= START_ATTEMPTS; ++attempt) {
        snprintf(h->dir, sizeof(h->dir), "%s/%s.XXXXXX", root_dir, h->tcase);
        ck_assert_msg(mkdtemp(h->dir) != NULL, "harness: mkdtemp: %s", strerror(errno));
        h->nprocs = 0;
        memset(h->started, 0, sizeof(h->started));
        if (h->opts.tls)
            make_certificate(h);
        write_secret(h);
        int rv = try_start(h, why, sizeof(why));
        if (rv == 0)
            return h;
        fprintf(stderr, "harness: system for %s, attempt %d: %s\n", h->tcase, attempt, why);
        if (rv < 0 || attempt == START_ATTEMPTS) {
            harness_print_logs(h, LOG_TAIL_LINES);
            break;
        }
    }
    ck_abort_msg("harness: cannot start a system for %s: %s (logs above)", tcase, why);
    return NULL;
}

harness_proc_t *harness_add(harness_t *h, harness_kind_t kind)
{
    return start_proc(h, kind, NULL);
}

harness_proc_t *harness_add_redis_replica(harness_t *h, uint16_t *port)
{
    char dir[300], port_arg[16], primary_port[16];
    uint16_t *ports[] = {port};
    pick_ports(ports, 1);
    snprintf(port_arg, sizeof(port_arg), "%u", *port);
    snprintf(primary_port, sizeof(primary_port), "%u", h->redis_port);
    snprintf(dir, sizeof(dir), "%s/redis-replica-%u", h->dir, *port);
    mkdir(dir, 0755);
    const char *const extra[] = {"--port", port_arg, "--dir", dir, "--replicaof", "127.0.0.1", primary_port, NULL};
    harness_proc_t *p = start_proc(h, HARNESS_REDIS, extra); /* later flags win over the primary's */
    double deadline = harness_mono_ms() + 10000;
    while (!redis_reply_contains(*port, "INFO replication\r\n", "master_link_status:up")) {
        ck_assert_msg(harness_proc_alive(p) && harness_mono_ms() < deadline, "the Redis replica did not sync within 10 s");
        harness_sleep_ms(20);
    }
    note(h, "%s replicates 127.0.0.1:%u on port %u", p->name, h->redis_port, *port);
    return p;
}

harness_proc_t *harness_add_args(harness_t *h, harness_kind_t kind, const char *const *extra)
{
    return start_proc(h, kind, extra);
}

static int count_crashes(harness_t *h, bool print)
{
    int crashes = 0;
    for (size_t i = 0; i < h->nprocs; ++i) {
        harness_proc_t *p = h->procs + i;
        if (p->expected_end || harness_proc_alive(p))
            continue;
        char how[96];
        describe_status(p->wait_status, how, sizeof(how));
        if (p->owner != getpid())
            snprintf(how, sizeof(how), "exited");
        ++crashes;
        note(h, "UNEXPECTED: %s (pid %d) %s", p->name, (int)p->pid, how);
        if (print)
            fprintf(stderr, "harness: %s (pid %d) %s without the test asking (see %s)\n", p->name, (int)p->pid, how, p->log_path);
    }
    return crashes;
}

void harness_assert_alive(harness_t *h)
{
    int crashes = count_crashes(h, true);
    ck_assert_msg(crashes == 0, "%d process(es) of the system exited without the test asking (see above)", crashes);
}

/* Prints the sanitizer report in p's log, if there is one (from its first line, at most 200 lines), and returns
 * whether there was. Reports are what AddressSanitizer, LeakSanitizer (at exit) and UndefinedBehaviorSanitizer print
 * on stderr, which goes to the log. */
static bool print_sanitizer_report(const harness_proc_t *p)
{
    static const char *markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", NULL};
    FILE *fp = fopen(p->log_path, "r");
    char line[4096];
    int printed = -1; /* lines printed, -1 before the report's first */
    if (fp == NULL)
        return false;
    while (printed < 200 && fgets(line, sizeof(line), fp) != NULL) {
        for (const char **m = markers; printed < 0 && *m != NULL; ++m) {
            if (strstr(line, *m) != NULL) {
                fprintf(stderr, "harness: sanitizer report in %s (%s):\n", p->name, p->log_path);
                printed = 0;
            }
        }
        if (printed >= 0) {
            fputs(line, stderr);
            ++printed;
        }
    }
    fclose(fp);
    return printed >= 0;
}

/* Stops every notigate process of h that still runs as an operator would: SIGCONT (for a paused one) and SIGTERM, then
 * waits for all of them (redis-server keeps running: workers may still talk to it while they stop). Returns how many
 * did not exit 0 within STOP_TIMEOUT_MS: a graceful stop that fails is a bug, and a sanitizer build reports leaks only
 * at a clean exit (with a non-zero exit code, see scripts/test.sh). A process another one spawned is only waited for. */
static int stop_notigate(harness_t *h)
{
    int failures = 0;
    bool stopping[HARNESS_MAX_PROCS] = {false};
    for (size_t i = 0; i < h->nprocs; ++i) {
        harness_proc_t *p = h->procs + i;
        if (!harness_proc_alive(p))
            continue;
        kill(p->pid, SIGCONT);
        if (p->kind == HARNESS_REDIS)
            continue;
        note(h, "SIGTERM %s pid=%d (end of test)", p->name, (int)p->pid);
        p->expected_end = true;
        kill(p->pid, SIGTERM);
        stopping[i] = true;
    }
    double deadline = harness_mono_ms() + STOP_TIMEOUT_MS;
    for (size_t i = 0; i < h->nprocs; ++i) {
        harness_proc_t *p = h->procs + i;
        if (!stopping[i])
            continue;
        int status = 0;
        bool exited;
        if (p->owner == getpid()) {
            int left = (int)(deadline - harness_mono_ms());
            exited = (status = harness_proc_wait(p, left > 0 ? left : 0)) != -1;
        } else {
            while ((exited = !harness_proc_alive(p)) == false && harness_mono_ms() < deadline)
                harness_sleep_ms(5);
        }
        char how[96];
        if (!exited) {
            snprintf(how, sizeof(how), "did not exit within %d ms of SIGTERM", STOP_TIMEOUT_MS);
            capture_stacks(h, p);
            kill(p->pid, SIGKILL);
            reap(p, 0);
        } else if (p->owner == getpid() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            describe_status(status, how, sizeof(how));
        } else {
            note(h, "%s stopped", p->name);
            continue;
        }
        ++failures;
        note(h, "FAILED STOP: %s (pid %d) %s", p->name, (int)p->pid, how);
        fprintf(stderr, "harness: at the end of the test, %s (pid %d) %s (see %s)\n", p->name, (int)p->pid, how, p->log_path);
    }
    return failures;
}

int harness_stop(harness_t *h)
{
    if (h == NULL)
        return 0;
    int crashes = count_crashes(h, true);
    crashes += stop_notigate(h);
    for (size_t i = 0; i < h->nprocs; ++i) {
        harness_proc_t *p = h->procs + i;
        if (p->kind != HARNESS_REDIS && print_sanitizer_report(p)) {
            note(h, "SANITIZER REPORT in %s (pid %d)", p->name, (int)p->pid);
            ++crashes;
        }
    }
    if (crashes != 0) {
        char path[300];
        snprintf(path, sizeof(path), "%s/CRASHED", h->dir);
        FILE *fp = fopen(path, "w");
        if (fp != NULL)
            fclose(fp);
    }
    kill_all(h);
    note(h, "system stopped");
    free(h);
    return crashes;
}

int harness_run_gateway(const harness_t *h, const char *const *args, const char *const *env, char *out, size_t outsz,
                        int timeout_ms)
{
    char bin[600], path[400];
    const char *argv[32];
    int argc = 0;
    argv[argc++] = binary_of(HARNESS_GATEWAY, bin, sizeof(bin));
    for (; args != NULL && *args != NULL && argc < 31; ++args)
        argv[argc++] = *args;
    argv[argc] = NULL;
    snprintf(path, sizeof(path), "%s/run-gateway.%d.out", h->dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "harness: %s: %s", path, strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(argv[0], (char *const *)argv, (char *const *)env);
        _exit(127);
    }
    ck_assert_msg(pid > 0, "harness: fork: %s", strerror(errno));
    harness_proc_t p = {.pid = pid, .owner = getpid()};
    int status = harness_proc_wait(&p, timeout_ms);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    ssize_t n = pread(fd, out, outsz - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return status;
}

/* ---- logs ------------------------------------------------------------------------------------------------------ */

static void print_tail(const char *path, const char *label, int lines)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return;
    static char buf[65536];
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    long from = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
    fseek(fp, from, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    const char *start = buf + n;
    int seen = 0;
    while (start > buf) {
        if (start[-1] == '\n' && start != buf + n && ++seen > lines)
            break;
        --start;
    }
    fprintf(stderr, "---- %s (last %d lines) ----\n%s%s", label, lines, start, n > 0 && buf[n - 1] != '\n' ? "\n" : "");
}

static void print_dir_logs(const char *dir, int lines)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return;
    fprintf(stderr, "==== logs of %s ====\n", dir);
    for (int i = 0; i < n; ++i) {
        size_t len = strlen(names[i]->d_name);
        if (len > 4 && strcmp(names[i]->d_name + len - 4, ".log") == 0) {
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            print_tail(path, names[i]->d_name, lines);
        }
        free(names[i]);
    }
    free(names);
}

void harness_print_logs(const harness_t *h, int lines)
{
    print_dir_logs(h->dir, lines);
}

bool harness_log_contains(const harness_proc_t *p, const char *needle)
{
    FILE *fp = fopen(p->log_path, "r");
    char line[4096];
    bool found = false;
    if (fp == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), fp) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

/* ---- the runner ------------------------------------------------------------------------------------------------ */

/* Prints the logs of every system of tcase (systems are named <tcase>.XXXXXX under the root). */
static void print_tcase_logs(const char *tcase)
{
    DIR *d = opendir(root_dir);
    struct dirent *e;
    size_t len = strlen(tcase);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, tcase, len) == 0 && e->d_name[len] == '.' && strlen(e->d_name + len) == 7) {
            char dir[600];
            snprintf(dir, sizeof(dir), "%s/%s", root_dir, e->d_name);
            print_dir_logs(dir, LOG_TAIL_LINES);
        }
    }
    closedir(d);
}

/* Systems whose processes crashed without failing a test (shared systems stop in unchecked teardowns, which cannot
 * fail a test): prints them (logs too, unless their TCase's were printed already) and returns how many. */
static int report_crashed_systems(const char **printed, size_t nprinted)
{
    DIR *d = opendir(root_dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[1100], dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s", root_dir, e->d_name);
        snprintf(path, sizeof(path), "%s/CRASHED", dir);
        if (e->d_name[0] == '.' || access(path, F_OK) != 0)
            continue;
        fprintf(stderr, "harness: a process of system %s died unexpectedly\n", e->d_name);
        bool seen = false;
        for (size_t i = 0; i < nprinted && !seen; ++i)
            seen = strncmp(e->d_name, printed[i], strlen(printed[i])) == 0 && e->d_name[strlen(printed[i])] == '.';
        if (!seen)
            print_dir_logs(dir, LOG_TAIL_LINES);
        ++n;
    }
    closedir(d);
    return n;
}

/* The runner is a child subreaper: processes orphaned by a test child that died come back to it (PDEATHSIG has
 * killed them, or is about to). Kills any still running and reaps them all, so that nothing outlives the runner.
 * Runs after the tests. */
static void reap_orphans(void)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    for (char *p = buf, *end; *p != '\0'; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        harness_proc_t child = {.pid = (pid_t)pid, .owner = -1};
        if (harness_proc_alive(&child)) { /* not even a zombie yet: maybe PDEATHSIG is still on its way */
            harness_sleep_ms(100);
            if (harness_proc_alive(&child))
                fprintf(stderr, "harness: process %ld outlived its test: killing it\n", pid);
        }
        kill((pid_t)pid, SIGKILL);
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
}

int harness_main(Suite *suite)
{
    if (curl_global_init(CURL_GLOBAL_ALL) != 0) {
        fprintf(stderr, "harness: curl_global_init failed\n");
        return 1;
    }
    runner_pid = getpid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    remove_stale_roots();
    snprintf(root_dir, sizeof(root_dir), ROOT_PREFIX "%d.XXXXXX", (int)runner_pid);
    if (mkdtemp(root_dir) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", root_dir, strerror(errno));
        return 1;
    }

    SRunner *sr = srunner_create(suite);
    double t0 = harness_mono_ms();
    srunner_run_all(sr, getenv("CK_VERBOSITY") != NULL ? CK_ENV : CK_VERBOSE);
    int nfailed = srunner_ntests_failed(sr);
    TestResult **failures = NULL;
    const char *printed[64];
    size_t nprinted = 0;
    reap_orphans();
    if (nfailed > 0) {
        failures = srunner_failures(sr);
        for (int i = 0; i < nfailed; ++i) {
            const char *tc = tr_tcname(failures[i]);
            bool seen = false;
            for (size_t j = 0; j < nprinted && !seen; ++j)
                seen = strcmp(printed[j], tc) == 0;
            if (seen || nprinted == 64)
                continue;
            printed[nprinted++] = tc;
            fprintf(stderr, "\n######## TCase %s failed: logs of its system(s) ########\n", tc);
            print_tcase_logs(tc);
        }
    }
    int crashed = report_crashed_systems(printed, nprinted);
    free(failures);
    srunner_free(sr);
    fprintf(stderr, "harness: %.1f s, %d failed, %d system(s) with crashed processes\n", (harness_mono_ms() - t0) / 1000.0, nfailed,
            crashed);

    const char *keep = getenv("NOTIGATE_IT_KEEP");
    if (keep != NULL && strcmp(keep, "1") == 0) {
        char marker[128];
        snprintf(marker, sizeof(marker), "%s/KEEP", root_dir); /* later runs leave it alone */
        FILE *fp = fopen(marker, "w");
        if (fp != NULL)
            fclose(fp);
        fprintf(stderr, "harness: logs kept in %s (remove it yourself)\n", root_dir);
    } else
        rm_rf(root_dir);
    curl_global_cleanup();
    return nfailed == 0 && crashed == 0 ? 0 : 1;
}

/* ---- HTTP ------------------------------------------------------------------------------------------------------ */

typedef struct st_buffer_t {
    char *data;
    size_t len, cap;
} buffer_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buffer_t *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap != 0 ? b->cap * 2 : 4096;
        if ((b->data = realloc(b->data, b->cap)) == NULL)
            abort();
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void header_value(char *dst, size_t dstsz, const char *line, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    const char *v = line + nlen + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        ++v;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        --end;
    snprintf(dst, dstsz, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userdata)
{
    harness_resp_t *r = userdata;
    size_t len = size * nitems;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) /* a new response (after a 100 Continue, say) */
        r->content_type[0] = r->allow[0] = r->x_partial[0] = r->www_authenticate[0] = '\0';
    header_value(r->content_type, sizeof(r->content_type), line, len, "content-type");
    header_value(r->allow, sizeof(r->allow), line, len, "allow");
    header_value(r->x_partial, sizeof(r->x_partial), line, len, "x-partial");
    header_value(r->www_authenticate, sizeof(r->www_authenticate), line, len, "www-authenticate");
    return len;
}

/* One transfer: an easy handle with what it writes into. */
typedef struct st_transfer_t {
    CURL *c;
    harness_resp_t *r;
    buffer_t body;
    struct curl_slist *headers, *resolve;
    char errbuf[CURL_ERROR_SIZE];
} transfer_t;

static void transfer_prepare(transfer_t *t, const harness_t *h, const harness_req_t *req, bool multiplex)
{
    char url[2048], resolve_entry[64];
    bool tls = req->proto == HARNESS_HTTPS || req->proto == HARNESS_HTTPS_H1;
    const char *method = req->method != NULL ? req->method : (req->body != NULL ? "POST" : "GET");
    memset(t, 0, sizeof(*t));
    if ((t->r = calloc(1, sizeof(*t->r))) == NULL || (t->c = curl_easy_init()) == NULL)
        abort();
    CURL *c = t->c;

    if (tls) {
        snprintf(url, sizeof(url), "https://localhost:%u%s", h->tls_port, req->path);
        snprintf(resolve_entry, sizeof(resolve_entry), "localhost:%u:127.0.0.1", h->tls_port);
        t->resolve = curl_slist_append(NULL, resolve_entry);
        curl_easy_setopt(c, CURLOPT_RESOLVE, t->resolve);
        curl_easy_setopt(c, CURLOPT_CAINFO, h->cert_path); /* verify against the test's own certificate */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    } else {
        snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", h->http_port, req->path);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (multiplex)
        curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L); /* wait for the first connection and share it */
    else
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf);
    switch (req->proto) {
    case HARNESS_H2C:
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        break;
    case HARNESS_HTTPS:
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        break;
    default:
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        break;
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (req->body != NULL || strcmp(method, "POST") == 0) {
        const char *b = req->body != NULL ? req->body : "";
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body_len != 0 ? req->body_len : strlen(b)));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, b);
        t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    }
    for (const char *hl = req->header; hl != NULL && *hl != '\0';) {
        size_t n = strcspn(hl, "\n");
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)n, hl);
        t->headers = curl_slist_append(t->headers, line);
        hl += n + (hl[n] == '\n');
    }
    if (req->token == NULL || req->token[0] != '\0') {
        char token[1024], line[1100];
        if (req->token == NULL)
            auto_token(h, req->path, token, sizeof(token));
        snprintf(line, sizeof(line), "Authorization: Bearer %s", req->token != NULL ? req->token : token);
        t->headers = curl_slist_append(t->headers, line);
    }
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t->r);
}

/* Fills the response from the finished transfer, frees the rest, and returns the response. */
static harness_resp_t *transfer_complete(transfer_t *t, CURLcode rc)
{
    harness_resp_t *r = t->r;
    if (rc == CURLE_OK) {
        long version = 0;
        curl_off_t total_us = 0;
        curl_easy_getinfo(t->c, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(t->c, CURLINFO_HTTP_VERSION, &version);
        curl_easy_getinfo(t->c, CURLINFO_TOTAL_TIME_T, &total_us);
        r->http_version = version == CURL_HTTP_VERSION_2_0 ? 20 : (version == CURL_HTTP_VERSION_1_1 ? 11 : 0);
        r->elapsed_ms = (double)total_us / 1000.0;
    } else {
        r->status = 0;
        snprintf(r->error, sizeof(r->error), "%s: %.160s", curl_easy_strerror(rc), t->errbuf);
    }
    r->body = t->body.data != NULL ? t->body.data : strdup("");
    r->body_len = t->body.len;
    if (r->body_len > 0)
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->resolve);
    curl_easy_cleanup(t->c);
    return r;
}

harness_resp_t *harness_request(const harness_t *h, const harness_req_t *req)
{
    transfer_t t;
    transfer_prepare(&t, h, req, false);
    CURLcode rc = curl_easy_perform(t.c);
    return transfer_complete(&t, rc);
}

void harness_request_multiplexed(const harness_t *h, const harness_req_t *reqs, size_t n, harness_resp_t **out)
{
    transfer_t *t = calloc(n, sizeof(*t));
    CURLM *m = curl_multi_init();
    int running = 0;
    if (t == NULL || m == NULL)
        abort();
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
    for (size_t i = 0; i < n; ++i) {
        ck_assert_msg(reqs[i].proto == HARNESS_HTTPS && h->opts.tls, "multiplexing needs HTTPS (see harness.h)");
        transfer_prepare(t + i, h, reqs + i, true);
        curl_easy_setopt(t[i].c, CURLOPT_PRIVATE, (void *)(t + i));
        curl_multi_add_handle(m, t[i].c);
    }
    do {
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc == CURLM_OK && running > 0)
            mc = curl_multi_poll(m, NULL, 0, 100, NULL);
        ck_assert_msg(mc == CURLM_OK, "curl multi: %s", curl_multi_strerror(mc));
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            transfer_t *done;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&done);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(m, done->c);
            out[done - t] = transfer_complete(done, rc);
        }
    } while (running > 0);
    curl_multi_cleanup(m);
    free(t);
}

void harness_resp_free(harness_resp_t *r)
{
    if (r == NULL)
        return;
    if (r->json != NULL)
        json_decref(r->json);
    free(r->body);
    free(r);
}

harness_resp_t *harness_get(const harness_t *h, const char *fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    harness_req_t req = {.path = path};
    return harness_request(h, &req);
}

harness_resp_t *harness_post(const harness_t *h, const char *path, const char *body)
{
    harness_req_t req = {.method = "POST", .path = path, .body = body};
    return harness_request(h, &req);
}

struct st_harness_async_t {
    pthread_t tid;
    const harness_t *h;
    harness_req_t req; /* path and body copied */
    harness_resp_t *resp;
};

static void *async_main(void *arg)
{
    harness_async_t *a = arg;
    a->resp = harness_request(a->h, &a->req);
    return NULL;
}

harness_async_t *harness_request_start(const harness_t *h, const harness_req_t *req)
{
    harness_async_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        abort();
    a->h = h;
    a->req = *req;
    a->req.path = strdup(req->path);
    if (req->body != NULL) {
        size_t len = req->body_len != 0 ? req->body_len : strlen(req->body);
        char *b = xmalloc(len + 1);
        memcpy(b, req->body, len);
        b[len] = '\0';
        a->req.body = b;
        a->req.body_len = len;
    }
    ck_assert_msg(pthread_create(&a->tid, NULL, async_main, a) == 0, "harness: pthread_create failed");
    return a;
}

harness_resp_t *harness_request_finish(harness_async_t *a)
{
    pthread_join(a->tid, NULL);
    harness_resp_t *r = a->resp;
    free((char *)a->req.path);
    free((char *)a->req.body);
    free(a);
    return r;
}

/* ---- the API, asserted ----------------------------------------------------------------------------------------- */

uint64_t harness_publish(const harness_t *h, const char *user, const char *message, const char *kind, int64_t *ts)
{
    json_t *o = json_pack("{s:s, s:s}", "user_id", user, "message", message);
    if (kind != NULL)
        json_object_set_new(o, "kind", json_string(kind));
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    harness_resp_t *r = harness_post(h, "/v1/notifications", body);
    free(body);
    ck_assert_msg(r->status == 201, "publish for %s: expected 201, got %ld (%s): %.300s", user, r->status, r->error, r->body);
    json_t *id = json_object_get(r->json, "id"), *t = json_object_get(r->json, "ts"), *u = json_object_get(r->json, "user_id");
    ck_assert_msg(json_is_integer(id) && json_integer_value(id) > 0 && json_is_integer(t) && json_is_string(u) &&
                      strcmp(json_string_value(u), user) == 0,
                  "publish: unexpected answer %.300s", r->body);
    uint64_t v = (uint64_t)json_integer_value(id);
    if (ts != NULL)
        *ts = (int64_t)json_integer_value(t);
    harness_resp_free(r);
    return v;
}

static void assert_notification(const json_t *n, const char *body)
{
    ck_assert_msg(json_is_object(n) && json_is_integer(json_object_get(n, "id")) &&
                      json_integer_value(json_object_get(n, "id")) > 0 && json_is_string(json_object_get(n, "user_id")) &&
                      json_is_string(json_object_get(n, "message")) && json_is_string(json_object_get(n, "kind")) &&
                      json_is_integer(json_object_get(n, "ts")) && json_is_boolean(json_object_get(n, "read")) &&
                      json_object_size(n) == 6,
                  "malformed notification in: %.500s", body);
}

harness_resp_t *harness_list(const harness_t *h, const char *user, unsigned limit, uint64_t before)
{
    char path[256];
    int n = snprintf(path, sizeof(path), "/v1/users/%s/notifications", user);
    if (limit != 0)
        n += snprintf(path + n, sizeof(path) - (size_t)n, "?limit=%u", limit);
    if (before != 0)
        snprintf(path + n, sizeof(path) - (size_t)n, "%sbefore=%" PRIu64, limit != 0 ? "&" : "?", before);
    harness_resp_t *r = harness_get(h, "%s", path);
    ck_assert_msg(r->status == 200, "GET %s: expected 200, got %ld (%s): %.300s", path, r->status, r->error, r->body);
    json_t *j = r->json, *u = json_object_get(j, "user_id"), *rt = json_object_get(j, "realtime"),
           *hist = json_object_get(j, "historical"), *unread = json_object_get(j, "unread_count"),
           *next = json_object_get(j, "next_before"), *partial = json_object_get(j, "partial"),
           *errors = json_object_get(j, "errors");
    ck_assert_msg(json_is_object(j) && json_is_string(u) && strcmp(json_string_value(u), user) == 0 && json_is_array(rt) &&
                      json_is_array(hist) && (json_is_integer(unread) || json_is_null(unread)) &&
                      (json_is_integer(next) || json_is_null(next)) && json_is_boolean(partial) && json_is_array(errors),
                  "GET %s: malformed answer %.500s", path, r->body);
    size_t i;
    json_t *v;
    json_array_foreach(rt, i, v) assert_notification(v, r->body);
    json_array_foreach(hist, i, v) assert_notification(v, r->body);
    json_array_foreach(errors, i, v)
    {
        ck_assert_msg(json_is_string(json_object_get(v, "source")) && json_is_string(json_object_get(v, "code")) &&
                          json_is_string(json_object_get(v, "message")),
                      "GET %s: malformed error in %.500s", path, r->body);
    }
    ck_assert_msg(json_is_true(partial) == (json_array_size(errors) > 0), "GET %s: partial and errors disagree: %.500s", path,
                  r->body);
    return r;
}

bool harness_wait_realtime(const harness_t *h, const char *user, uint64_t id, int timeout_ms)
{
    double deadline = harness_mono_ms() + timeout_ms;
    for (;;) {
        harness_resp_t *r = harness_list(h, user, 100, 0);
        bool ok = !json_is_true(json_object_get(r->json, "partial")) && harness_has_id(json_object_get(r->json, "realtime"), id);
        harness_resp_free(r);
        if (ok)
            return true;
        if (harness_mono_ms() > deadline)
            return false;
        harness_sleep_ms(10);
    }
}

size_t harness_ids(const json_t *list, uint64_t *out, size_t max)
{
    size_t i, n = json_array_size(list);
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (i < max)
            out[i] = (uint64_t)json_integer_value(json_object_get(v, "id"));
    }
    return n;
}

bool harness_has_id(const json_t *list, uint64_t id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if ((uint64_t)json_integer_value(json_object_get(v, "id")) == id)
            return true;
    }
    return false;
}

double harness_metric(const harness_t *h, const char *series)
{
    harness_resp_t *r = harness_get(h, "/metrics");
    double v = -1;
    size_t len = strlen(series);
    if (r->status == 200) {
        for (const char *line = r->body; line != NULL && *line != '\0';) {
            if (strncmp(line, series, len) == 0 && line[len] == ' ') {
                v = strtod(line + len + 1, NULL);
                break;
            }
            line = strchr(line, '\n');
            if (line != NULL)
                ++line;
        }
    }
    harness_resp_free(r);
    return v;
}

size_t harness_replica_replies(const harness_t *h, const char *kind, char names[][96], double *replies, size_t max)
{
    char prefix[128];
    size_t n = 0;
    int plen = snprintf(prefix, sizeof(prefix), "notigate_worker_replica_replies_total{kind=\"%s\",replica=\"", kind);
    harness_resp_t *r = harness_get(h, "/metrics");
    ck_assert_msg(r->status == 200, "GET /metrics: %ld %s", r->status, r->error);
    for (const char *line = r->body; line != NULL && *line != '\0';) {
        if (strncmp(line, prefix, (size_t)plen) == 0 && n < max) {
            const char *name = line + plen, *end = strstr(name, "\"} ");
            if (end != NULL && end - name < 96) {
                snprintf(names[n], 96, "%.*s", (int)(end - name), name);
                replies[n++] = strtod(end + 3, NULL);
            }
        }
        line = strchr(line, '\n');
        if (line != NULL)
            ++line;
    }
    harness_resp_free(r);
    return n;
}

const char *harness_user(char *buf, const char *prefix)
{
    static unsigned counter;
    snprintf(buf, 64, "%.30s-%d-%u", prefix, (int)getpid(), ++counter);
    return buf;
}

void harness_stop_own(harness_t **h)
{
    int crashes = harness_stop(*h);
    *h = NULL;
    ck_assert_msg(crashes == 0, "%d process(es) crashed during the test (see above)", crashes);
}

void harness_add_own(Suite *s, const TTest *test, int timeout_s, SFun teardown)
{
    TCase *tc = tcase_create(test->name);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, timeout_s);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}
