/*
 * Integration-test harness: starts a real notigate system (redis-server, gateway, notifier, history-svc and orders
 * replicas) on free loopback ports, controls its processes, and talks HTTP to the gateway with libcurl.
 *
 * How it fits Check (decided here, once for every runner):
 *   - Runners use Check's fork mode (the default): each test runs in a child forked by the runner, with Check's
 *     timeout, and a failed assertion or a crash ends only that test.
 *   - The runner never calls nng (it does not even link it): it only forks and execs the product binaries and speaks
 *     HTTP, so forking test children is safe.
 *   - A system shared by the read-only tests of a TCase is started by an unchecked fixture, in the runner; the tests
 *     (forked children) use it and must not stop or kill its processes. A test that kills, stops, adds or terminates
 *     processes gets its own system from a checked fixture, which runs in the forked child: the child then owns those
 *     processes (it can wait for their exit status) and nothing it does leaks into another test.
 *   - Every process the harness spawns gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the process that spawned it
 *     (Check's failure path _exits the child without running teardown or atexit handlers); checked setups also tie the
 *     test child to the runner the same way. Nothing outlives the runner, even after ctest kills it on a timeout.
 *   - Each system has a directory under the runner's root (/tmp/notigate-it.<pid>.XXXXXX): redis data, the TLS
 *     certificate, and one log file per process (stdout and stderr). harness_main prints the tail of every log of the
 *     systems of each failing TCase, then removes the root (kept if NOTIGATE_IT_KEEP=1, marked so that later runs
 *     leave it alone). Roots left behind by a runner that was killed are removed by the next run.
 *   - CK_FORK=no also works (handy under gdb), but then a crash takes the whole runner down.
 *
 * Unless said otherwise, functions run on the test's main thread, and failures of the harness itself (cannot spawn,
 * system not ready in time) fail the current test with ck_abort_msg.
 */
#ifndef NOTIGATE_TESTS_HARNESS_H
#define NOTIGATE_TESTS_HARNESS_H

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HARNESS_MAX_PROCS 32

typedef enum en_harness_kind_t {
    HARNESS_REDIS = 0,
    HARNESS_GATEWAY,
    HARNESS_NOTIFIER,
    HARNESS_HISTORY,
    HARNESS_ORDERS, /* the orders worker: its replicas dial the gateway's --orders-bind */
    HARNESS_NKINDS
} harness_kind_t;

typedef struct st_harness_proc_t {
    harness_kind_t kind;
    char name[32]; /* "notifier-2": the second notifier this system started; also the log file's name */
    char log_path[384];
    pid_t pid;
    pid_t owner;       /* the process that spawned it: only it can wait for the exit status */
    bool expected_end; /* the test killed or terminated it: not a crash */
    bool reaped;
    int wait_status; /* waitpid status once reaped */
} harness_proc_t;

typedef struct st_harness_opts_t {
    int notifiers;                   /* replicas started with the system */
    int histories;                   /* history-svc replicas started with the system */
    int orders;                      /* orders replicas started with the system (0 by default) */
    int worker_timeout_ms;           /* gateway --worker-timeout-ms */
    int write_timeout_ms;            /* gateway --write-timeout-ms */
    bool tls;                        /* also serve HTTPS (self-signed certificate made with the openssl CLI) */
    bool no_wait_ready;              /* return once the gateway answers /healthz instead of waiting for /readyz 200 */
    const char *const *gateway_args; /* NULL-terminated extra flags of every gateway of the system, or NULL (the
                                        harness passes --rate-limit 0: a later flag here wins) */
    bool no_auth;                    /* --insecure-no-auth instead of the system's JWT secret */
} harness_opts_t;

/* One notifier, one history-svc, no orders replica, the gateway's default timeouts, no TLS, wait for /readyz. */
#define HARNESS_OPTS_DEFAULT                                                                                                       \
    (harness_opts_t)                                                                                                               \
    {                                                                                                                              \
        .notifiers = 1, .histories = 1, .worker_timeout_ms = 250, .write_timeout_ms = 2000                                         \
    }

typedef struct st_harness_t {
    char tcase[64];
    char dir[256];
    char cert_path[384], key_path[384];
    harness_opts_t opts;
    uint16_t http_port, tls_port, notifier_port, history_port, orders_port, redis_port; /* orders_port: --orders-bind */
    harness_proc_t procs[HARNESS_MAX_PROCS];
    size_t nprocs;
    unsigned started[HARNESS_NKINDS]; /* per kind, for process names */
    char jwt_secret[65];              /* the gateways' HS256 secret (random per system), in jwt_secret_path */
    char jwt_secret_path[384];
} harness_t;

/* ---- the runner ------------------------------------------------------------------------------------------------ */

/* Runs suite in a Check runner (fork mode unless CK_FORK=no; verbose unless CK_VERBOSITY is set), prints the log tails
 * of the systems of failing TCases, cleans up, and returns the process exit code (0 when every test passed and no
 * system process died unexpectedly). Takes ownership of suite. Call from main before anything else of this file. */
int harness_main(Suite *suite);

/* ---- systems --------------------------------------------------------------------------------------------------- */

/* Every gateway runs with authentication on (--jwt-secret-file, a random secret per system) unless opts.no_auth, and
 * requests carry a token chosen for them (see harness_req_t.token): tests that do not test authentication are written
 * as if it were off.
 *
 * Starts redis-server (appendonly yes with appendfsync always: an acknowledged write survives a SIGKILL of Redis, which
 * Redis's default everysec does not promise; its own directory), the gateway, and the opts' worker replicas on free loopback
 * ports, and waits (up to 15 s) until /readyz is 200 (or only /healthz, with no_wait_ready) and every replica is connected.
 * The gateway always gets --orders-bind on a free port of its own (orders_port), whether or not orders replicas run.
 * tcase names the TCase the system serves: logs of failing TCases are printed by name. opts NULL means
 * HARNESS_OPTS_DEFAULT. Retries with new ports when one was taken meanwhile. The caller owns the result: release it
 * with harness_stop. */
harness_t *harness_start(const char *tcase, const harness_opts_t *opts);

/* Stops the system and frees h: SIGTERM to every gateway and worker still running, waiting (up to 15 s) for each to
 * exit, then SIGKILL to redis-server (and to anything stuck); reaps those this process spawned. The directory and its
 * logs stay until harness_main ends. Returns the number of failures, after printing each: processes that had died
 * without the test asking (crashes), that did not exit 0 after the SIGTERM, and whose log holds a sanitizer report
 * (AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer), wherever in the test it was printed. Never asserts,
 * so it is safe in unchecked teardowns. */
int harness_stop(harness_t *h);

/* The teardown of a test that starts its own system in *h: stops it, clears *h and fails the test if a process crashed
 * during it. */
void harness_stop_own(harness_t **h);

/* Adds test to s as a test case of its own, named after the test (the runner prints its system's logs if it fails),
 * with teardown as its checked fixture and a timeout. */
void harness_add_own(Suite *s, const TTest *test, int timeout_s, SFun teardown);

/* Fails the current test if any process of h that the test did not kill or terminate has exited. Any process. */
void harness_assert_alive(harness_t *h);

/* Starts one more process of kind: a worker replica (it dials in to the gateway), a gateway on the system's ports,
 * or redis-server on its port and directory (after the old one was killed). Does not wait for it to be useful: see
 * harness_wait_replicas and harness_wait_ready. */
harness_proc_t *harness_add(harness_t *h, harness_kind_t kind);

/* The same with extra command-line flags (NULL-terminated), after the harness's own: a later flag wins, so they can
 * override one (e.g. {"--redis-url", "redis://127.0.0.1:1", NULL}). */
harness_proc_t *harness_add_args(harness_t *h, harness_kind_t kind, const char *const *extra);

/* Starts a redis-server replicating the system's Redis (its own port and directory) and waits until it is in sync.
 * *port gets its port, for a worker's --redis-url (harness_add_args). */
harness_proc_t *harness_add_redis_replica(harness_t *h, uint16_t *port);

/* The index-th (from 0) process of kind that is still running (not reaped, not killed by the test), or NULL. */
harness_proc_t *harness_proc(harness_t *h, harness_kind_t kind, unsigned index);

/* SIGKILL; if this process spawned p, also waits for it. */
void harness_proc_kill(harness_t *h, harness_proc_t *p);

/* SIGSTOP and SIGCONT. A stopped process is killed normally by harness_stop. */
void harness_proc_pause(harness_proc_t *p);
void harness_proc_resume(harness_proc_t *p);

/* Sends sig without waiting (SIGTERM, SIGINT and SIGKILL mark p as ended on purpose, not a crash). */
void harness_proc_signal(harness_t *h, harness_proc_t *p, int sig);

/* SIGTERM, then waits up to timeout_ms for p to exit. Returns the waitpid status, or -1 if it did not exit in time
 * (its threads' stacks are then appended to its log, if gdb is installed, and it is SIGKILLed). Only the process that
 * spawned p may call it. */
int harness_proc_terminate(harness_t *h, harness_proc_t *p, int timeout_ms);

/* Waits up to timeout_ms for p to exit by itself; returns the waitpid status or -1. Only p's owner may call it. */
int harness_proc_wait(harness_proc_t *p, int timeout_ms);

/* True while p runs (a stopped process runs). Any process. */
bool harness_proc_alive(harness_proc_t *p);

/* Waits up to timeout_ms until the gateway's /metrics reports n replicas of kind ("notifier", "history" or "orders").
 * Returns 0, or -1 on timeout. */
int harness_wait_replicas(harness_t *h, const char *kind, unsigned n, int timeout_ms);

/* Waits up to timeout_ms until GET /readyz answers 200. Returns 0, or -1 on timeout. */
int harness_wait_ready(harness_t *h, int timeout_ms);

/* Prints the last lines of each log of h to stderr. */
void harness_print_logs(const harness_t *h, int lines);

/* True if the log of p contains needle. */
bool harness_log_contains(const harness_proc_t *p, const char *needle);

/* Sends one inline command (e.g. "HGET ord:stock item1\r\n"; Redis's inline syntax takes double-quoted arguments) to the
 * system's Redis and returns its reply as an integer: an integer reply, or a bulk string holding one. Fails the test on
 * any other reply (an error, nil, no answer within 2 s). */
long long harness_redis_int(const harness_t *h, const char *command);

/* Runs the system's gateway binary with exactly args (NULL-terminated, after the program name) and environment env
 * (NULL-terminated "NAME=value" entries, nothing else), waits up to timeout_ms for it to exit by itself, and returns its
 * waitpid status (-1 if it was still running: then it is killed). Its output goes to out (NUL-terminated, truncated). */
int harness_run_gateway(const harness_t *h, const char *const *args, const char *const *env, char *out, size_t outsz,
                        int timeout_ms);

/* ---- HTTP ------------------------------------------------------------------------------------------------------ */

typedef enum en_harness_proto_t {
    HARNESS_HTTP1 = 0, /* cleartext HTTP/1.1 */
    HARNESS_H2C,       /* cleartext HTTP/2 with prior knowledge */
    HARNESS_HTTPS,     /* TLS, HTTP/2 offered by ALPN (http/1.1 as fallback); the system needs opts.tls */
    HARNESS_HTTPS_H1,  /* TLS, HTTP/1.1 only */
} harness_proto_t;

typedef struct st_harness_req_t {
    harness_proto_t proto;
    const char *method; /* default: GET, or POST when there is a body */
    const char *path;   /* with the query string */
    const char *body;   /* NULL: none */
    size_t body_len;    /* 0: strlen(body) */
    long timeout_ms;    /* default 10000 */
    const char *header; /* extra request header lines ("Name: value", several separated by '\n'), or NULL */
    /* The credential sent as Authorization: Bearer. NULL: a token the request needs, made by the harness: for the user
     * a path (/v1/users/{user}/...) or query (user_id=) names, else a publisher's (sub "harness", scope publish).
     * HARNESS_NO_TOKEN: none. Anything else is sent as it is. */
    const char *token;
} harness_req_t;

#define HARNESS_NO_TOKEN "" /* harness_req_t.token: send no Authorization header */

typedef struct st_harness_resp_t {
    long status;       /* 0 when no response arrived */
    char error[256];   /* curl's reason when status is 0 */
    long http_version; /* 11 or 20 (HTTP/1.1, HTTP/2), 0 when unknown */
    char *body;        /* NUL-terminated */
    size_t body_len;
    json_t *json; /* the body parsed, NULL if it is not JSON */
    char content_type[128], allow[128], x_partial[128], www_authenticate[128];
    double elapsed_ms; /* connect to last byte */
} harness_resp_t;

/* Sends one request on a new connection and waits for the answer. Any thread (curl_global_init is done by
 * harness_main). The caller owns the result: harness_resp_free. */
harness_resp_t *harness_request(const harness_t *h, const harness_req_t *req);
void harness_resp_free(harness_resp_t *r);

/* Shorthands over HTTP/1.1: GET of a printf-formatted path, and POST of a body. */
harness_resp_t *harness_get(const harness_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
harness_resp_t *harness_post(const harness_t *h, const char *path, const char *body);

/* Sends n requests at once, multiplexed as streams of one HTTP/2 connection, and waits for them all; out[i] is the
 * response to reqs[i] (owned by the caller). A request whose timeout_ms passes is reset (RST_STREAM) while the others go
 * on. Only over TLS (HARNESS_HTTPS, the system needs opts.tls): libcurl 7.88.1 breaks every stream but the first on a
 * reused prior-knowledge h2c connection ("Error in the HTTP2 framing layer", curl issue #10634, fixed after 7.88.1);
 * nghttp2's h2load multiplexes h2c on the gateway fine. */
void harness_request_multiplexed(const harness_t *h, const harness_req_t *reqs, size_t n, harness_resp_t **out);

/* A request running on its own thread: start it, then finish to wait for its response (owned by the caller). */
typedef struct st_harness_async_t harness_async_t;
harness_async_t *harness_request_start(const harness_t *h, const harness_req_t *req);
harness_resp_t *harness_request_finish(harness_async_t *a);

/* A token signed with h's secret for sub, with scope (NULL: none), expiring ttl_s seconds from now (negative: already
 * expired), written into buf (1024 bytes are enough). Returns buf. Any thread. */
const char *harness_token(const harness_t *h, char *buf, size_t bufsz, const char *sub, const char *scope, int ttl_s);

/* ---- the API, asserted ----------------------------------------------------------------------------------------- */

/* POSTs {"user_id", "message", "kind"?} (kind NULL: left out) and asserts 201 with an id and the ts. Returns the id;
 * *ts (if not NULL) gets the ts. */
uint64_t harness_publish(const harness_t *h, const char *user, const char *message, const char *kind, int64_t *ts);

/* GET /v1/users/{user}/notifications with limit (0: none) and before (0: none); asserts 200 and the reply's shape
 * (every field present with its type). */
harness_resp_t *harness_list(const harness_t *h, const char *user, unsigned limit, uint64_t before);

/* Polls the list of user (up to timeout_ms) until id is in "realtime" and the answer is not partial. Returns true
 * if it got there. */
bool harness_wait_realtime(const harness_t *h, const char *user, uint64_t id, int timeout_ms);

/* Copies the "id"s of a JSON array of notifications into out (up to max); returns how many there are. */
size_t harness_ids(const json_t *list, uint64_t *out, size_t max);

/* True if a JSON array of notifications holds id. */
bool harness_has_id(const json_t *list, uint64_t id);

/* The value of one sample in the gateway's /metrics, e.g. "notigate_worker_replicas{kind=\"history\"}"; -1 if absent. */
double harness_metric(const harness_t *h, const char *series);

/* The replicas of kind ("notifier", "history" or "orders") in notigate_worker_replica_replies_total: names into names (up to
 * max), reply counts into replies. Returns how many. */
size_t harness_replica_replies(const harness_t *h, const char *kind, char names[][96], double *replies, size_t max);

/* A user id no other test uses: prefix, the pid and a counter. buf must hold 64 bytes. */
const char *harness_user(char *buf, const char *prefix);

/* Wall-clock and monotonic milliseconds, and a sleep. */
int64_t harness_wall_ms(void);
double harness_mono_ms(void);
void harness_sleep_ms(int ms);

/* connect() to 127.0.0.1:port: 0 if it connected, else the errno (ECONNREFUSED...). */
int harness_tcp_connect(uint16_t port);

/* Asserts that r is the JSON error {"error":{"code":code,"message":...}} with the HTTP status. */
#define HARNESS_ASSERT_ERROR(r, st, code)                                                                                          \
    do {                                                                                                                           \
        const harness_resp_t *_r = (r);                                                                                            \
        ck_assert_msg(_r->status == (st), "expected HTTP %d, got %ld (%s): %.300s", (int)(st), _r->status, _r->error, _r->body);   \
        ck_assert_msg(strncmp(_r->content_type, "application/json", 16) == 0, "error is not JSON: content-type '%s'",              \
                      _r->content_type);                                                                                           \
        json_t *_e = json_object_get(_r->json, "error");                                                                           \
        ck_assert_msg(json_is_object(_e), "no error object in: %.300s", _r->body);                                                 \
        ck_assert_msg(json_is_string(json_object_get(_e, "code")) &&                                                               \
                          strcmp(json_string_value(json_object_get(_e, "code")), (code)) == 0,                                     \
                      "expected error code \"%s\" in: %.300s", (code), _r->body);                                                  \
        ck_assert_msg(json_is_string(json_object_get(_e, "message")) && json_string_length(json_object_get(_e, "message")) > 0,    \
                      "error without a message: %.300s", _r->body);                                                                \
    } while (0)

#endif
