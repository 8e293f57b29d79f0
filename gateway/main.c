/*
 * gateway: the HTTP/1.1 + HTTP/2 front of notigate. It serves the REST API from h2o event loops and hands every
 * notification read and write to the workers over nng: the notifier (realtime view) and history-svc (Redis).
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "config.h"
#include "gateway.h"
#include "log.h"
#include "worker.h"

static SSL_CTX *make_ssl_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char err[256];
        ERR_error_string_n(ERR_get_error(), err, sizeof(err));
        log_error("cannot load TLS certificate or key", "cert=%s key=%s error=\"%s\"", cert, key, err);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols); /* h2, then http/1.1 */
    return ctx;
}

/* Reads a small file whole into buf (NUL-terminated). Returns its length, or -1 after printing why. */
static ssize_t read_small_file(const char *what, const char *path, char *buf, size_t bufsz)
{
    FILE *fp = fopen(path, "r");
    size_t n = fp != NULL ? fread(buf, 1, bufsz - 1, fp) : 0;
    bool bad = fp == NULL || ferror(fp) || n == bufsz - 1;
    if (fp != NULL)
        fclose(fp);
    if (bad) {
        fprintf(stderr, "gateway: cannot read the %s file %s%s\n", what, path, n == bufsz - 1 ? ": too large" : "");
        return -1;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

/* The HS256 secret: NOTIGATE_JWT_SECRET, or the file --jwt-secret-file names (never a flag's value: ps shows those).
 * The variable's value is wiped from the environment once copied. Returns 1 with the secret in keys, 0 when none is
 * configured, -1 after printing why it cannot be used. */
static int load_secret(auth_keys_t *keys, const char *file)
{
    char *env = getenv("NOTIGATE_JWT_SECRET"), buf[AUTH_SECRET_MAX + 4], err[160];
    bool from_env = env != NULL && env[0] != '\0';
    if (from_env && file[0] != '\0') {
        fprintf(stderr, "gateway: the JWT secret is given twice (NOTIGATE_JWT_SECRET and --jwt-secret-file): give one\n");
        return -1;
    }
    if (!from_env && file[0] == '\0')
        return 0;
    int rv;
    if (from_env) {
        rv = auth_keys_set_secret(keys, env, strlen(env), err, sizeof(err));
        OPENSSL_cleanse(env, strlen(env)); /* out of /proc/<pid>/environ */
    } else {
        ssize_t n = read_small_file("JWT secret", file, buf, sizeof(buf));
        if (n < 0)
            return -1;
        rv = auth_keys_set_secret(keys, buf, (size_t)n, err, sizeof(err));
        OPENSSL_cleanse(buf, sizeof(buf));
    }
    if (rv != 0) {
        fprintf(stderr, "gateway: %s (%s); make one with: head -c 32 /dev/urandom | base64\n", err,
                from_env ? "NOTIGATE_JWT_SECRET" : file);
        return -1;
    }
    return 1;
}

/* Authentication: on whenever a secret is configured; without one only with --insecure-no-auth. Returns 0 or -1. */
static int setup_auth(gateway_t *gw)
{
    const gateway_config_t *cfg = &gw->cfg;
    int has = load_secret(&gw->auth, cfg->jwt_secret_file);
    if (has < 0)
        return -1;
    if (has == 0) {
        if (!cfg->insecure_no_auth) {
            fprintf(stderr,
                    "gateway: no JWT secret: set NOTIGATE_JWT_SECRET or --jwt-secret-file (NOTIGATE_JWT_SECRET_FILE), "
                    "at least %d bytes; or run without authentication with --insecure-no-auth (never in production)\n",
                    AUTH_SECRET_MIN);
            return -1;
        }
        log_warn("AUTHENTICATION IS OFF (--insecure-no-auth): anyone can read and write every user's notifications", NULL);
        return 0;
    }
    if (cfg->insecure_no_auth)
        log_warn("--insecure-no-auth ignored: a JWT secret is configured, so authentication is on", NULL);
    if (cfg->api_keys_file[0] != '\0') {
        static char buf[256 * 1024];
        char err[160];
        ssize_t n = read_small_file("API keys", cfg->api_keys_file, buf, sizeof(buf));
        if (n < 0)
            return -1;
        int rv = auth_keys_load_api_keys(&gw->auth, buf, (size_t)n, err, sizeof(err));
        OPENSSL_cleanse(buf, (size_t)n);
        if (rv != 0) {
            fprintf(stderr, "gateway: API keys file %s: %s\n", cfg->api_keys_file, err);
            return -1;
        }
    }
    log_info("authentication on", "jwt=HS256 api_keys=%zu", gw->auth.napi_keys);
    return 0;
}

/* gateway mint-token: prints a token signed with the gateway's secret, for scripts and tests. */
static int mint_main(int argc, char **argv)
{
    static auth_keys_t keys;
    const char *sub = "", *scope = "", *file = "";
    int64_t ttl = 3600;
    config_option_t options[] = {
        {"sub", "NOTIGATE_TOKEN_SUB", CONFIG_STRING, &sub, 0, 0, "the user id the token is for (required)"},
        {"scope", "NOTIGATE_TOKEN_SCOPE", CONFIG_STRING, &scope, 0, 0, "space-separated scopes, e.g. publish"},
        {"ttl", "NOTIGATE_TOKEN_TTL", CONFIG_INT, &ttl, 1, 366 * 86400, "seconds until the token expires"},
        {"jwt-secret-file", "NOTIGATE_JWT_SECRET_FILE", CONFIG_STRING, &file, 0, 0,
         "file holding the secret (or the variable NOTIGATE_JWT_SECRET), as the gateway takes it"},
        {NULL}};
    config_result_t rv = config_parse("gateway mint-token",
                                      "Prints a JWT (HS256) for --sub signed with the gateway's secret, valid for --ttl seconds.",
                                      options, argc, argv);
    if (rv != CONFIG_OK)
        return rv == CONFIG_EXIT_SUCCESS ? 0 : 2;
    if (sub[0] == '\0') {
        fprintf(stderr, "gateway mint-token: --sub is required (try --help)\n");
        return 2;
    }
    int has = load_secret(&keys, file);
    if (has <= 0) {
        if (has == 0)
            fprintf(stderr, "gateway mint-token: no secret: set NOTIGATE_JWT_SECRET or --jwt-secret-file\n");
        return 2;
    }
    char token[AUTH_TOKEN_MAX];
    int n = auth_mint(keys.secret, keys.secret_len, sub, scope, (int64_t)time(NULL), ttl, token, sizeof(token));
    auth_keys_dispose(&keys);
    if (n < 0) {
        fprintf(stderr, "gateway mint-token: --sub must be 1-64 characters of A-Z a-z 0-9 _ . -, --scope printable ASCII\n");
        return 2;
    }
    printf("%s\n", token);
    return 0;
}

/* The built-in route table, or the one in --routes. */
static int load_routes(gateway_t *gw)
{
    const char *file = gw->cfg.routes_file;
    route_table_builtin(&gw->routes, gw->cfg.orders_bind);
    if (file[0] == '\0')
        return 0;
    FILE *fp = fopen(file, "r");
    char buf[65536], err[256];
    size_t n = fp != NULL ? fread(buf, 1, sizeof(buf), fp) : 0;
    if (fp == NULL || ferror(fp) || n == sizeof(buf)) {
        fprintf(stderr, "gateway: cannot read the route table %s%s\n", file, n == sizeof(buf) ? ": larger than 64 KiB" : "");
        if (fp != NULL)
            fclose(fp);
        return -1;
    }
    fclose(fp);
    if (route_table_parse(&gw->routes, buf, n, err, sizeof(err)) != 0) {
        fprintf(stderr, "gateway: route table %s: %s\n", file, err);
        return -1;
    }
    log_info("route table loaded", "file=%s routes=%zu kinds=%zu", file, gw->routes.n, gw->routes.nkinds);
    return 0;
}

/* The routes to HTTP upstreams go to h2o's reverse proxy, each on a path of its own. */
static int register_upstreams(gateway_t *gw, h2o_hostconf_t *hostconf)
{
    for (size_t i = 0; i < gw->routes.n; ++i) {
        route_entry_t *e = &gw->routes.entries[i];
        if (e->kind >= 0)
            continue;
        h2o_url_t url; /* points into e->upstream; h2o_proxy_register_reverse_proxy copies it */
        if (h2o_url_parse(e->upstream, SIZE_MAX, &url) != 0) {
            fprintf(stderr, "gateway: route %s: cannot parse the upstream URL %s\n", e->path, e->upstream);
            return -1;
        }
        /* No keep-alive pool (a connection per request): h2o 2.2's pool arms its timer on the loop of whichever thread
         * initialises its context first (racing when the threads start together) and keeps it until the configuration
         * is disposed, after the threads have destroyed their loops: h2o_evloop_destroy then asserts at every stop. */
        h2o_proxy_config_vars_t proxy = {.io_timeout = e->timeout_ms, .keepalive_timeout = 0, .preserve_host = 0};
        h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, e->path, 0);
        h2o_proxy_register_reverse_proxy(pathconf, &url, &proxy);
        log_info("route to an HTTP upstream", "path=%s upstream=%s", e->path, e->upstream);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static gateway_t gw;
    gateway_config_t *cfg = &gw.cfg;
    if (argc > 1 && strcmp(argv[1], "mint-token") == 0)
        return mint_main(argc - 1, argv + 1);
    *cfg = (gateway_config_t){.listen = "0.0.0.0:8080",
                              .tls_listen = "",
                              .tls_cert = "",
                              .tls_key = "",
                              .notifier_bind = "tcp://127.0.0.1:7101",
                              .history_bind = "tcp://127.0.0.1:7102",
                              .threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1,
                              .read_timeout_ms = 250,
                              .write_timeout_ms = 2000,
                              .max_inflight = 4096,
                              .routes_file = "",
                              .orders_bind = "tcp://127.0.0.1:7103",
                              .shutdown_timeout_ms = 10000,
                              .http_request_timeout_ms = H2O_DEFAULT_HTTP1_REQ_TIMEOUT,
                              .http2_idle_timeout_ms = H2O_DEFAULT_HTTP2_IDLE_TIMEOUT,
                              .ws_ping_interval_ms = 25000,
                              .ws_ping_timeout_ms = 20000,
                              .ws_max_message = 64 * 1024,
                              .ws_queue_max = 1024 * 1024,
                              .presence_full_max = CHAT_PRESENCE_FULL_MAX_DEFAULT,
                              .guard = {.max_conns_per_addr = 256,
                                        .rate_limit = 100,
                                        .rate_burst = 200,
                                        .max_sessions_per_user = 16,
                                        .ws_message_rate = 20,
                                        .ws_message_burst = 40,
                                        .table_size = 65536,
                                        .cors_origins = ""},
                              .jwt_secret_file = "",
                              .api_keys_file = ""};
    config_option_t options[] = {
        {"listen", NULL, CONFIG_STRING, &cfg->listen, 0, 0, "host:port for HTTP/1.1 and cleartext HTTP/2 (\"\" for none)"},
        {"tls-listen", NULL, CONFIG_STRING, &cfg->tls_listen, 0, 0,
         "host:port for HTTPS (HTTP/2 and 1.1 by ALPN); needs --tls-cert and --tls-key"},
        {"tls-cert", NULL, CONFIG_STRING, &cfg->tls_cert, 0, 0, "PEM certificate chain for --tls-listen"},
        {"tls-key", NULL, CONFIG_STRING, &cfg->tls_key, 0, 0, "PEM private key for --tls-listen"},
        {"notifier-bind", NULL, CONFIG_STRING, &cfg->notifier_bind, 0, 0, "nng URL notifier replicas dial in to"},
        {"history-bind", NULL, CONFIG_STRING, &cfg->history_bind, 0, 0, "nng URL history-svc replicas dial in to"},
        {"orders-bind", NULL, CONFIG_STRING, &cfg->orders_bind, 0, 0,
         "nng URL orders replicas dial in to (the built-in route table's orders kind)"},
        {"routes", NULL, CONFIG_STRING, &cfg->routes_file, 0, 0,
         "JSON file replacing the built-in route table: worker kinds and HTTP upstreams (see README)"},
        {"threads", NULL, CONFIG_INT, &cfg->threads, 1, 256, "event-loop threads (default: the number of CPUs)"},
        {"worker-timeout-ms", NULL, CONFIG_INT, &cfg->read_timeout_ms, 1, 60000,
         "how long a read waits for each worker before answering without it (partial)"},
        {"write-timeout-ms", NULL, CONFIG_INT, &cfg->write_timeout_ms, 1, 60000,
         "how long a publish or mark-read waits for history-svc"},
        {"max-inflight", NULL, CONFIG_INT, &cfg->max_inflight, 1, 1000000,
         "requests in flight per thread and worker kind (503 beyond)"},
        {"ws-ping-interval-ms", NULL, CONFIG_INT, &cfg->ws_ping_interval_ms, 100, 600000,
         "WebSocket and Socket.IO sessions: a ping every interval (Socket.IO's pingInterval)"},
        {"ws-ping-timeout-ms", NULL, CONFIG_INT, &cfg->ws_ping_timeout_ms, 100, 600000,
         "a session that sent nothing for interval + this is closed (Socket.IO's pingTimeout)"},
        {"ws-max-message", NULL, CONFIG_INT, &cfg->ws_max_message, 1024, 16 * 1024 * 1024,
         "largest message a client may send, bytes (larger: close 1009)"},
        {"ws-queue-max", NULL, CONFIG_INT, &cfg->ws_queue_max, 4096, 256 * 1024 * 1024,
         "bytes queued to one session before it is disconnected as a slow reader"},
        {"presence-full-max", NULL, CONFIG_INT, &cfg->presence_full_max, 0, CHAT_PRESENCE_FULL_MAX_LIMIT,
         "chat rooms of up to this many members announce each join and leave (user_joined, user_left) and list every "
         "name in online_users; in bigger rooms only online_users goes out, with the first this many names and the count"},
        {"max-conns-per-addr", NULL, CONFIG_INT, &cfg->guard.max_conns_per_addr, 0, 1000000,
         "open connections per client address (IPv4, IPv6 /64); over it 429, beyond twice it closed at once (0: no limit)"},
        {"rate-limit", NULL, CONFIG_INT, &cfg->guard.rate_limit, 0, 1000000,
         "requests per second per credential (Bearer token or ?token=), or per client address without one (0: no limit)"},
        {"rate-burst", NULL, CONFIG_INT, &cfg->guard.rate_burst, 0, 10000000,
         "requests a credential may send at once (the token bucket's size; 0: as --rate-limit)"},
        {"max-sessions-per-user", NULL, CONFIG_INT, &cfg->guard.max_sessions_per_user, 0, 1000000,
         "WebSocket and Socket.IO sessions open at once per user (0: no limit)"},
        {"ws-message-rate", NULL, CONFIG_INT, &cfg->guard.ws_message_rate, 0, 1000000,
         "messages per second a session may send; over it they are dropped with an error event (0: no limit)"},
        {"ws-message-burst", NULL, CONFIG_INT, &cfg->guard.ws_message_burst, 0, 10000000,
         "messages a session may send at once (its token bucket's size; 0: as --ws-message-rate)"},
        {"limit-table-size", NULL, CONFIG_INT, &cfg->guard.table_size, 16, 16 * 1024 * 1024,
         "keys each limit's table holds (client addresses, credentials, users); a key with no room is refused"},
        {"cors-origins", NULL, CONFIG_STRING, &cfg->guard.cors_origins, 0, 0,
         "origins allowed to call the API from a browser, comma-separated (\"https://a.example,https://b.example\", or *); "
         "\"\": same origin only"},
        {"http-request-timeout-ms", NULL, CONFIG_INT, &cfg->http_request_timeout_ms, 100, 600000,
         "HTTP/1.1: a connection whose request has not fully arrived within this is closed (slow clients)"},
        {"http2-idle-timeout-ms", NULL, CONFIG_INT, &cfg->http2_idle_timeout_ms, 100, 600000,
         "HTTP/2: a connection with no request in flight for this long is closed"},
        {"jwt-secret-file", "NOTIGATE_JWT_SECRET_FILE", CONFIG_STRING, &cfg->jwt_secret_file, 0, 0,
         "file holding the JWT (HS256) secret, at least 32 bytes; or put it in the variable NOTIGATE_JWT_SECRET (no flag "
         "takes the secret itself: ps would show it). With a secret, every user route needs a token"},
        {"api-keys-file", "NOTIGATE_API_KEYS_FILE", CONFIG_STRING, &cfg->api_keys_file, 0, 0,
         "publisher API keys, one a line (Authorization: Bearer KEY or X-API-Key: KEY)"},
        {"insecure-no-auth", "NOTIGATE_INSECURE_NO_AUTH", CONFIG_BOOL, &cfg->insecure_no_auth, 0, 1,
         "run with no authentication at all when no secret is configured (local experiments only)"},
        {"shutdown-timeout-ms", NULL, CONFIG_INT, &cfg->shutdown_timeout_ms, 0, 600000,
         "on SIGTERM, how long to finish requests in flight"},
        {NULL}};

    int exit_code =
        config_init_process("gateway",
                            "HTTP/1.1 + HTTP/2 gateway of notigate: REST API in front of the notifier and history-svc workers.\n"
                            "`gateway mint-token --help`: make a token for a user.",
                            options, argc, argv);
    if (exit_code >= 0)
        return exit_code;
    if (cfg->listen[0] == '\0' && cfg->tls_listen[0] == '\0') {
        fprintf(stderr, "gateway: nothing to listen on: give --listen or --tls-listen\n");
        return 2;
    }
    if (cfg->tls_listen[0] != '\0' && (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0')) {
        fprintf(stderr, "gateway: --tls-listen needs --tls-cert and --tls-key\n");
        return 2;
    }
    char err[300];
    if (guard_init(&gw.guard, &cfg->guard, err, sizeof(err)) != 0) {
        fprintf(stderr, "gateway: %s\n", err);
        return 2;
    }
    if (setup_auth(&gw) != 0)
        return 2;
    worker_block_signals(); /* before any thread exists, so that only sigwait below sees SIGTERM */

    gw.started_at_ms = clock_wall_ms();
    gw.nthreads = (unsigned)cfg->threads;
    if (getrandom(gw.instance_id, sizeof(gw.instance_id), 0) != (ssize_t)sizeof(gw.instance_id)) {
        log_error("getrandom failed", NULL);
        return 1;
    }

    h2o_config_init(&gw.h2o_config);
    gw.h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("notigate"));
    gw.h2o_config.max_request_entity_size = 4 * PUBLISH_BODY_MAX; /* beyond the API's limit, so the API answers 413 itself */
    gw.h2o_config.http2.max_concurrent_requests_per_connection = 100;
    gw.h2o_config.http1.req_timeout = (uint64_t)cfg->http_request_timeout_ms;
    gw.h2o_config.http2.idle_timeout = (uint64_t)cfg->http2_idle_timeout_ms;
    if (load_routes(&gw) != 0)
        return 2;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&gw.h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    if (register_upstreams(&gw, hostconf) != 0)
        return 2;
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0); /* after the upstreams: the first match wins */
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = gateway_on_req;

    if (cfg->tls_listen[0] != '\0' && (gw.ssl_ctx = make_ssl_ctx(cfg->tls_cert, cfg->tls_key)) == NULL)
        return 1;
    if ((gw.notifier = upstream_create("notifier", cfg->notifier_bind)) == NULL ||
        (gw.history = upstream_create("history", cfg->history_bind)) == NULL)
        return 1;
    for (size_t k = 0; k < gw.routes.nkinds; ++k)
        if ((gw.routed[k] = upstream_create(gw.routes.kinds[k].name, gw.routes.kinds[k].address)) == NULL)
            return 1;
    if (gateway_start(&gw) != 0)
        return 1;
    log_info("gateway started", "listen=%s tls_listen=%s threads=%u worker_timeout_ms=%d write_timeout_ms=%d",
             cfg->listen[0] != '\0' ? cfg->listen : "-", cfg->tls_listen[0] != '\0' ? cfg->tls_listen : "-", gw.nthreads,
             (int)cfg->read_timeout_ms, (int)cfg->write_timeout_ms);

    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    while (sigwait(&set, &sig) != 0)
        ;
    log_info("stopping: no new connections, finishing requests in flight", "signal=%s", strsignal(sig));
    if (gateway_stop(&gw) == 0) {
        guard_dispose(&gw.guard); /* no connection is left to close into its tables */
        h2o_config_dispose(&gw.h2o_config);
        if (gw.ssl_ctx != NULL)
            SSL_CTX_free(gw.ssl_ctx);
    }
    bool closed = upstream_destroy(gw.notifier) == 0 && upstream_destroy(gw.history) == 0;
    for (size_t k = 0; closed && k < gw.routes.nkinds; ++k)
        closed = upstream_destroy(gw.routed[k]) == 0;
    auth_keys_dispose(&gw.auth);
    log_info("gateway stopped", NULL);
    return 0;
}
