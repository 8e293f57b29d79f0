#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
#include "log.h"
#include "redis_client.h"

#define TICK_MS 50
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

typedef struct st_redis_cmd_t {
    redis_client_t *rc;
    redis_reply_cb cb;
    void *data;
    uint64_t deadline_us;
    h2o_linklist_t link;
} redis_cmd_t;

struct st_redis_client_t {
    h2o_loop_t *loop;
    char name[32];
    char host[256];
    int port;
    int db;
    char password[256];
    uint32_t timeout_ms;
    redis_connect_cb on_connect;
    void *data;

    redisAsyncContext *ac; /* NULL when there is no connection or connection attempt */
    bool connected;
    uint64_t connect_deadline_us;
    uint64_t next_attempt_us;
    uint32_t backoff_ms;
    bool logged_down;

    h2o_linklist_t pending; /* redis_cmd_t, oldest first */
    size_t npending;
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
};

/* ---- hiredis <-> h2o evloop adapter ----------------------------------------------------------------------------- */

/* One per connection attempt; hiredis owns it through ac->ev.data and frees it in its cleanup hook. */
typedef struct st_redis_conn_t {
    redisAsyncContext *ac;
    h2o_socket_t *sock;
} redis_conn_t;

static void on_sock_read(h2o_socket_t *sock, const char *err)
{
    redis_conn_t *conn = sock->data;
    redisAsyncHandleRead(conn->ac);
}

static void on_sock_write(h2o_socket_t *sock, const char *err)
{
    redis_conn_t *conn = sock->data;
    redisAsyncHandleWrite(conn->ac);
}

static void ev_add_read(void *privdata)
{
    redis_conn_t *conn = privdata;
    h2o_socket_read_start(conn->sock, on_sock_read);
}

static void ev_del_read(void *privdata)
{
    redis_conn_t *conn = privdata;
    h2o_socket_read_stop(conn->sock);
}

static void ev_add_write(void *privdata)
{
    redis_conn_t *conn = privdata;
    if (!h2o_socket_is_writing(conn->sock))
        h2o_socket_notify_write(conn->sock, on_sock_write);
}

static void ev_del_write(void *privdata)
{
    /* h2o's write notification is one-shot: nothing to undo */
}

static void ev_cleanup(void *privdata)
{
    redis_conn_t *conn = privdata;
    h2o_socket_close(conn->sock); /* closes the fd ... */
    conn->ac->c.fd = -1;          /* ... so hiredis must not close it again */
    conn->ac->ev.data = NULL;
    free(conn);
}

/* ---- connection ------------------------------------------------------------------------------------------------- */

static void connection_lost(redis_client_t *rc, const char *why)
{
    rc->ac = NULL;
    rc->connected = false;
    rc->next_attempt_us = clock_mono_us() + (uint64_t)rc->backoff_ms * 1000;
    rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
    if (!rc->logged_down) {
        char q[256];
        log_warn("redis connection down", "conn=%s addr=%s:%d reason=%s", rc->name, rc->host, rc->port,
                 log_quote(q, sizeof(q), why));
        rc->logged_down = true;
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_client_t *rc = ac->data;
    if (rc == NULL || rc->ac != ac)
        return;
    connection_lost(rc, status == REDIS_OK ? "closed" : (ac->errstr[0] != '\0' ? ac->errstr : "error"));
}

static void on_auth_or_select(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        char q[256];
        log_error("redis rejected connection setup", "conn=%s command=%s error=%s", ((redis_client_t *)ac->data)->name,
                  (const char *)privdata, log_quote(q, sizeof(q), reply->str));
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redis_client_t *rc = cac->data;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    if (rc == NULL || rc->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees ac itself after this callback */
        connection_lost(rc, ac->errstr[0] != '\0' ? ac->errstr : "connect failed");
        return;
    }
    rc->connected = true;
    rc->backoff_ms = BACKOFF_MIN_MS;
    log_info("redis connected", "conn=%s addr=%s:%d", rc->name, rc->host, rc->port);
    rc->logged_down = false;
    if (rc->password[0] != '\0')
        redisAsyncCommand(ac, on_auth_or_select, "AUTH", "AUTH %s", rc->password);
    if (rc->db != 0)
        redisAsyncCommand(ac, on_auth_or_select, "SELECT", "SELECT %d", rc->db);
    if (rc->on_connect != NULL)
        rc->on_connect(rc, rc->data);
}

static void start_connect(redis_client_t *rc)
{
    redisAsyncContext *ac = redisAsyncConnect(rc->host, rc->port);
    if (ac == NULL)
        abort();
    if (ac->err != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        rc->ac = NULL;
        connection_lost(rc, why);
        return;
    }
    redis_conn_t *conn = malloc(sizeof(*conn));
    if (conn == NULL)
        abort();
    conn->ac = ac;
    conn->sock = h2o_evloop_socket_create(rc->loop, ac->c.fd, H2O_SOCKET_FLAG_DONT_READ);
    conn->sock->data = conn;
    rc->ac = ac;
    ac->data = rc;
    ac->ev.data = conn;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    rc->connect_deadline_us = clock_mono_us() + (uint64_t)rc->timeout_ms * 1000;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* Drops the connection now: pending callbacks run with NULL (hiredis calls them from redisAsyncFree). */
static void drop_connection(redis_client_t *rc, const char *why)
{
    redisAsyncContext *ac = rc->ac;
    if (ac == NULL)
        return;
    connection_lost(rc, why); /* first, so that callbacks see the client as down */
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    redis_client_t *rc = H2O_STRUCT_FROM_MEMBER(redis_client_t, tick_entry, entry);
    uint64_t now = clock_mono_us();

    if (rc->ac == NULL) {
        if (now >= rc->next_attempt_us)
            start_connect(rc);
    } else if (!rc->connected && now > rc->connect_deadline_us) {
        drop_connection(rc, "connect timed out");
    } else if (!h2o_linklist_is_empty(&rc->pending)) {
        redis_cmd_t *oldest = H2O_STRUCT_FROM_MEMBER(redis_cmd_t, link, rc->pending.next);
        if (now > oldest->deadline_us)
            drop_connection(rc, "command timed out");
    }
    h2o_timeout_link(rc->loop, &rc->tick, &rc->tick_entry);
}

/* ---- URL -------------------------------------------------------------------------------------------------------- */

static int parse_url(redis_client_t *rc, const char *url)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0)
        return -1;
    p += 8;
    const char *at = strchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon != NULL ? colon + 1 : p;
        size_t n = (size_t)(at - pw);
        if (n >= sizeof(rc->password))
            return -1;
        memcpy(rc->password, pw, n);
        rc->password[n] = '\0';
        p = at + 1;
    }
    size_t hostlen = strcspn(p, ":/");
    if (hostlen == 0 || hostlen >= sizeof(rc->host))
        return -1;
    memcpy(rc->host, p, hostlen);
    rc->host[hostlen] = '\0';
    p += hostlen;
    rc->port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return -1;
        rc->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != '\0' || db < 0 || db > 1000)
            return -1;
        rc->db = (int)db;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        return -1;
    }
    return 0;
}

/* ---- public ----------------------------------------------------------------------------------------------------- */

redis_client_t *redis_client_create(h2o_loop_t *loop, const char *url, const char *name, uint32_t timeout_ms,
                                    redis_connect_cb on_connect_cb, void *data)
{
    redis_client_t *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        abort();
    if (parse_url(rc, url) != 0) {
        char q[300];
        log_error("invalid redis url", "url=%s expected=\"redis://[:password@]host[:port][/db]\"", log_quote(q, sizeof(q), url));
        free(rc);
        return NULL;
    }
    rc->loop = loop;
    snprintf(rc->name, sizeof(rc->name), "%s", name);
    rc->timeout_ms = timeout_ms;
    rc->on_connect = on_connect_cb;
    rc->data = data;
    rc->backoff_ms = BACKOFF_MIN_MS;
    h2o_linklist_init_anchor(&rc->pending);
    h2o_timeout_init(loop, &rc->tick, TICK_MS);
    rc->tick_entry.cb = on_tick;
    start_connect(rc);
    h2o_timeout_link(loop, &rc->tick, &rc->tick_entry);
    return rc;
}

void redis_client_destroy(redis_client_t *rc)
{
    if (h2o_timeout_is_linked(&rc->tick_entry))
        h2o_timeout_unlink(&rc->tick_entry);
    rc->logged_down = true; /* no "down" log for a deliberate close */
    drop_connection(rc, "closing");
    h2o_timeout_dispose(rc->loop, &rc->tick);
    free(rc);
}

void redis_client_set_connect_cb(redis_client_t *rc, redis_connect_cb on_connect_cb, void *data)
{
    rc->on_connect = on_connect_cb;
    rc->data = data;
}

bool redis_client_is_connected(redis_client_t *rc)
{
    return rc->connected;
}

size_t redis_client_pending(redis_client_t *rc)
{
    return rc->npending;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redis_cmd_t *cmd = privdata;
    redis_client_t *rc = cmd->rc;
    h2o_linklist_unlink(&cmd->link);
    --rc->npending;
    redis_reply_cb cb = cmd->cb;
    void *data = cmd->data;
    free(cmd);
    if (cb != NULL)
        cb(reply, data);
}

int redis_client_command(redis_client_t *rc, redis_reply_cb cb, void *data, uint32_t timeout_ms, int argc, const char **argv,
                         const size_t *argvlen)
{
    if (!rc->connected)
        return -1;
    redis_cmd_t *cmd = malloc(sizeof(*cmd));
    if (cmd == NULL)
        abort();
    *cmd = (redis_cmd_t){rc, cb, data, clock_mono_us() + (uint64_t)(timeout_ms != 0 ? timeout_ms : rc->timeout_ms) * 1000};
    if (redisAsyncCommandArgv(rc->ac, on_reply, cmd, argc, argv, argvlen) != REDIS_OK) {
        free(cmd);
        return -1;
    }
    h2o_linklist_insert(&rc->pending, &cmd->link);
    ++rc->npending;
    return 0;
}

int redis_client_transaction(redis_client_t *rc, redis_reply_cb cb, void *data, uint32_t timeout_ms, int ncmds,
                             const int *argc, const char *const *const *argv, const size_t *const *argvlen)
{
    static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    static const size_t multi_len[] = {5}, exec_len[] = {4};
    if (redis_client_command(rc, NULL, NULL, timeout_ms, 1, multi, multi_len) != 0)
        return -1;
    /* The queued commands' own replies (+QUEUED) go nowhere: EXEC's reply carries their results. */
    for (int i = 0; i < ncmds; ++i)
        if (redis_client_command(rc, NULL, NULL, timeout_ms, argc[i], (const char **)argv[i], argvlen[i]) != 0)
            goto half_sent;
    if (redis_client_command(rc, cb, data, timeout_ms, 1, exec, exec_len) != 0)
        goto half_sent;
    return 0;

half_sent:
    /* hiredis refused a command after MULTI went out (it only does so while tearing the context down): a connection
     * left inside MULTI would queue every later command, so it goes. */
    drop_connection(rc, "transaction could not be sent whole");
    return -1;
}
