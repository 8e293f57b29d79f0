/*
 * The REST API: each handler validates what the client sent, asks the workers over nng (concurrently where there
 * are two), and answers from the loop thread when the replies (or their timeouts) are in. No handler blocks.
 *
 * A request waiting on workers is a pending_t in the request's memory pool. If the client goes away first (connection
 * closed, HTTP/2 stream reset), h2o disposes the pool: the dispose callback cancels the worker calls so that no
 * completion ever touches freed memory.
 */
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "clock.h"
#include "gateway.h"
#include "http_parse.h"
#include "log.h"
#include "merge.h"
#include "page.h"
#include "valid.h"

enum { SLOT_NOTIFIER = 0, SLOT_HISTORY = 1, NSLOTS = 2 };

typedef struct st_pending_t pending_t;

typedef struct st_pending_slot_t {
    pending_t *pending;
    upstream_call_t *call; /* while in flight */
    upstream_result_t result;
    bool used;
} pending_slot_t;

struct st_pending_t {
    h2o_req_t *req;
    gateway_thread_t *thread;
    route_t route;
    uint64_t started_us;
    pending_slot_t slots[NSLOTS];
    unsigned outstanding;
    bool completed;
    char user_id[VALID_USER_ID_MAX + 1];
    uint64_t before;
    uint64_t id;
    const route_entry_t *forward; /* ROUTE_FORWARD: the route taken */
    bool check_owner;             /* ROUTE_AUTH_OWNER for a non-publisher: the answer must be the token's user's */
    char owner[VALID_USER_ID_MAX + 1];
};

static const char *source_names[NSLOTS] = {"notifier", "history"};

/* ---- responses -------------------------------------------------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

static void respond(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status, const char *ctype,
                    const char *body, size_t len)
{
    metrics_record(&thread->metrics, route, status, clock_mono_us() - started_us);
    req->res.status = status;
    req->res.reason = reason_of(status);
    if (ctype != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL, H2O_STRLIT("nosniff"));
    req->res.content_length = status == 204 ? SIZE_MAX : len; /* 204 carries no Content-Length */
    h2o_send_inline(req, body, len);
}

void gateway_respond(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status, const char *ctype,
                     const char *body, size_t len)
{
    respond(thread, req, route, started_us, status, ctype, body, len);
}

static void respond_json(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status)
{
    respond(thread, req, route, started_us, status, "application/json", thread->out.buf, thread->out.len);
}

/* The API's error body, {"error":{"code":..,"message":..}}, appended to o. */
static void write_error_body(json_out_t *o, const char *code, const char *message, size_t message_len)
{
    json_out_lit(o, "{\"error\":{\"code\":");
    json_out_str(o, code, strlen(code));
    json_out_lit(o, ",\"message\":");
    json_out_str(o, message, message_len);
    json_out_lit(o, "}}");
}

static void respond_error(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status,
                          const char *code, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void respond_error(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status,
                          const char *code, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    json_out_reset(&thread->out);
    write_error_body(&thread->out, code, message, n < 0 ? 0 : ((size_t)n < sizeof(message) ? (size_t)n : sizeof(message) - 1));
    respond_json(thread, req, route, started_us, status);
}

void gateway_respond_error(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, int status,
                           const char *code, const char *message)
{
    respond_error(thread, req, route, started_us, status, code, "%s", message);
}

static void respond_api_error(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, const api_error_t *err)
{
    respond_error(thread, req, route, started_us, err->status, err->code, "%s", err->message);
}

static void write_list(json_out_t *o, const proto_notification_t *const *items, size_t n)
{
    json_out_lit(o, "[");
    for (size_t i = 0; i < n; ++i) {
        if (i != 0)
            json_out_lit(o, ",");
        json_out_notification(o, items[i]);
    }
    json_out_lit(o, "]");
}

/* ---- authentication --------------------------------------------------------------------------------------------- */

static void check_token(gateway_thread_t *thread, const char *token, size_t len, auth_principal_t *a)
{
    gateway_t *gw = thread->gw;
    a->present = true;
    a->result =
        auth_cache_verify(thread->auth_cache, gw->auth.secret, gw->auth.secret_len, token, len, (int64_t)time(NULL), &a->claims);
    a->valid = a->result == AUTH_OK;
    a->publisher = a->valid && (a->claims.scopes & AUTH_SCOPE_PUBLISH) != 0;
}

void gateway_authenticate_token(gateway_thread_t *thread, const char *token, size_t len, auth_principal_t *a)
{
    memset(a, 0, sizeof(*a));
    a->off = thread->gw->auth.secret_len == 0;
    check_token(thread, token, len, a);
}

static bool header_value(h2o_req_t *req, const h2o_token_t *token, const char *name, size_t name_len, h2o_iovec_t *v)
{
    ssize_t i =
        token != NULL ? h2o_find_header(&req->headers, token, -1) : h2o_find_header_by_str(&req->headers, name, name_len, -1);
    if (i == -1)
        return false;
    *v = req->headers.entries[i].value;
    return true;
}

void gateway_authenticate(gateway_thread_t *thread, h2o_req_t *req, const char *query, size_t query_len, auth_principal_t *a)
{
    gateway_t *gw = thread->gw;
    h2o_iovec_t v;
    memset(a, 0, sizeof(*a));
    if ((a->off = gw->auth.secret_len == 0))
        return;
    a->result = AUTH_MALFORMED;
    if (header_value(req, H2O_TOKEN_AUTHORIZATION, NULL, 0, &v)) {
        a->present = true;
        if (v.len < 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
            return; /* another scheme: malformed */
        const char *cred = v.base + 7;
        size_t len = v.len - 7;
        while (len > 0 && *cred == ' ')
            ++cred, --len;
        if (auth_api_key_valid(&gw->auth, cred, len)) {
            a->valid = a->publisher = a->api_key = true;
            a->result = AUTH_OK;
        } else {
            check_token(thread, cred, len, a);
        }
        return;
    }
    if (header_value(req, NULL, H2O_STRLIT("x-api-key"), &v)) {
        a->present = true;
        a->valid = a->publisher = a->api_key = auth_api_key_valid(&gw->auth, v.base, v.len);
        if (a->valid)
            a->result = AUTH_OK;
        return;
    }
    char token[AUTH_TOKEN_MAX + 1];
    int n = query_get(query, query_len, "token", token, sizeof(token));
    if (n == -1)
        return;
    if (n < 0) {
        a->present = true; /* too long or badly escaped */
        return;
    }
    check_token(thread, token, (size_t)n, a);
}

int gateway_auth_check_any(const auth_principal_t *a)
{
    return a->off || a->valid ? 0 : 401;
}

int gateway_auth_check_user(const auth_principal_t *a, const char *user, size_t len)
{
    if (a->off)
        return 0;
    if (!a->valid)
        return 401;
    return !a->api_key && a->claims.sub_len == len && memcmp(a->claims.sub, user, len) == 0 ? 0 : 403;
}

int gateway_auth_check_publisher(const auth_principal_t *a)
{
    if (a->off)
        return 0;
    if (!a->valid)
        return 401;
    return a->publisher ? 0 : 403;
}

void gateway_respond_auth(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, const auth_principal_t *a,
                          int status, const char *message)
{
    static const char realm[] = "Bearer realm=\"notigate\"";
    if (status == 403) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"notigate\", error=\"insufficient_scope\""));
        respond_error(thread, req, route, started_us, 403, "forbidden", "%s", message);
        return;
    }
    if (!a->present) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, realm, sizeof(realm) - 1);
        respond_error(thread, req, route, started_us, 401, "unauthorized",
                      "a token is required: Authorization: Bearer <token> (or ?token=<token>)");
        return;
    }
    const char *code =
        a->result == AUTH_EXPIRED ? "token_expired" : (a->result == AUTH_NOT_YET_VALID ? "token_not_yet_valid" : "invalid_token");
    const char *why =
        a->result == AUTH_MALFORMED ? "the credential is neither a valid token nor an API key" : auth_result_message(a->result);
    h2o_iovec_t hdr =
        h2o_concat(&req->pool, h2o_iovec_init(realm, sizeof(realm) - 1), h2o_iovec_init(H2O_STRLIT(", error=\"invalid_token\"")));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, hdr.base, hdr.len);
    respond_error(thread, req, route, started_us, 401, code, "%s", why);
}

/* Answers and returns true unless a may act as user. */
static bool deny_user(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us, const auth_principal_t *a,
                      const char *user, size_t len)
{
    int st = gateway_auth_check_user(a, user, len);
    if (st == 0)
        return false;
    gateway_respond_auth(thread, req, route, started_us, a, st,
                         a->api_key ? "API keys publish; reading or marking a user's notifications needs that user's token"
                                    : "the token is for another user");
    return true;
}

/* ---- talking to workers ----------------------------------------------------------------------------------------- */

void gateway_new_rid(gateway_t *gw, uint8_t rid[PROTO_RID_LEN])
{
    uint64_t n = atomic_fetch_add_explicit(&gw->next_rid, 1, memory_order_relaxed);
    memcpy(rid, gw->instance_id, 8);
    for (int i = 0; i < 8; ++i)
        rid[8 + i] = (uint8_t)(n >> (56 - 8 * i));
}

static void on_pending_dispose(void *ptr)
{
    pending_t *p = ptr;
    if (p->completed)
        return;
    /* the client went away before the answer: stop waiting for the workers */
    for (int i = 0; i < NSLOTS; ++i) {
        pending_slot_t *slot = p->slots + i;
        if (slot->call != NULL) {
            upstream_call_cancel(slot->call);
            slot->call = NULL;
        }
        upstream_result_dispose(&slot->result);
    }
    --p->thread->pending;
}

static pending_t *pending_new(gateway_thread_t *thread, h2o_req_t *req, route_t route, uint64_t started_us)
{
    pending_t *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), on_pending_dispose);
    memset(p, 0, sizeof(*p));
    p->req = req;
    p->thread = thread;
    p->route = route;
    p->started_us = started_us;
    ++thread->pending;
    return p;
}

static void pending_complete(pending_t *p);

static void on_slot_done(upstream_result_t *result, void *data)
{
    pending_slot_t *slot = data;
    pending_t *p = slot->pending;
    slot->call = NULL;
    slot->result = *result;
    if (--p->outstanding == 0)
        pending_complete(p);
}

/* Sends preq to a worker kind with a fresh request id (or the one in preq if keep_rid), resent to another replica if
 * its replica goes away (resend); a call that cannot start (no replica, too many in flight) finishes at once. */
static void pending_ask(pending_t *p, int index, upstream_client_t *client, proto_request_t *preq, int64_t timeout_ms,
                        bool keep_rid, bool resend)
{
    pending_slot_t *slot = p->slots + index;
    upstream_outcome_t outcome;
    slot->pending = p;
    slot->used = true;
    if (!keep_rid)
        gateway_new_rid(p->thread->gw, preq->rid);
    if ((slot->call = upstream_call(client, preq, (uint32_t)timeout_ms, resend, on_slot_done, slot, &outcome)) != NULL)
        ++p->outstanding;
    else
        slot->result.outcome = outcome;
}

/* After every pending_ask of a handler. */
static void pending_go(pending_t *p)
{
    if (p->outstanding == 0)
        pending_complete(p);
}

/* The worker's reply if it answered with success, else NULL. */
static const proto_reply_t *ok_reply(const pending_slot_t *slot)
{
    return slot->result.outcome == UPSTREAM_OK && slot->result.rep.status == PROTO_ST_OK ? &slot->result.rep : NULL;
}

/* Why a worker gave no usable answer: a code and a sentence. */
static const char *failure_code(const pending_slot_t *slot)
{
    if (slot->result.outcome == UPSTREAM_OK)
        return slot->result.rep.status == PROTO_ST_UNAVAILABLE ? "unavailable" : "worker_error";
    return upstream_outcome_name(slot->result.outcome);
}

static void failure_message(const pending_t *p, int index, char *buf, size_t bufsz)
{
    const pending_slot_t *slot = p->slots + index;
    const gateway_config_t *cfg = &p->thread->gw->cfg;
    const char *name = source_names[index];
    switch (slot->result.outcome) {
    case UPSTREAM_OK:
        snprintf(buf, bufsz, "%s answered: %.*s", name, (int)slot->result.rep.error.len, slot->result.rep.error.ptr);
        break;
    case UPSTREAM_TIMEOUT:
        snprintf(buf, bufsz, "%s did not answer within %" PRId64 " ms", name,
                 p->route == ROUTE_PUBLISH || p->route == ROUTE_MARK_READ || p->route == ROUTE_MARK_ALL_READ
                     ? cfg->write_timeout_ms
                     : cfg->read_timeout_ms);
        break;
    case UPSTREAM_NO_REPLICA:
        snprintf(buf, bufsz, "no %s replica is connected", name);
        break;
    case UPSTREAM_OVERLOADED:
        snprintf(buf, bufsz, "too many requests in flight to %s", name);
        break;
    default:
        snprintf(buf, bufsz, "%s request failed (%s)", name, upstream_outcome_name(slot->result.outcome));
        break;
    }
}

/* ---- answers once the workers have replied ---------------------------------------------------------------------- */

static void write_errors(json_out_t *o, const pending_t *p, const bool failed[NSLOTS])
{
    char msg[256];
    bool first = true;
    json_out_lit(o, "[");
    for (int i = 0; i < NSLOTS; ++i) {
        if (!failed[i])
            continue;
        if (!first)
            json_out_lit(o, ",");
        first = false;
        failure_message(p, i, msg, sizeof(msg));
        const char *code = failure_code(p->slots + i);
        json_out_lit(o, "{\"source\":");
        json_out_str(o, source_names[i], strlen(source_names[i]));
        json_out_lit(o, ",\"code\":");
        json_out_str(o, code, strlen(code));
        json_out_lit(o, ",\"message\":");
        json_out_str(o, msg, strlen(msg));
        json_out_lit(o, "}");
    }
    json_out_lit(o, "]");
}

static int answer_list(pending_t *p, bool hybrid)
{
    json_out_t *o = &p->thread->out;
    const proto_reply_t *rt = ok_reply(p->slots + SLOT_NOTIFIER), *hist = ok_reply(p->slots + SLOT_HISTORY);
    bool failed[NSLOTS] = {rt == NULL, hist == NULL};
    merge_result_t m;
    merge_notifications(rt, hist, p->before, &m);
    metrics_record_partial(&p->thread->metrics, p->route, failed[0], failed[1]);

    json_out_reset(o);
    if (hybrid) {
        /* the shape of the FastAPI endpoint clients migrate from; partial answers are flagged in a header */
        json_out_lit(o, "{\"realtime\":");
        write_list(o, m.realtime, m.nrealtime);
        json_out_lit(o, ",\"historical\":");
        write_list(o, m.historical, m.nhistorical);
        json_out_lit(o, ",\"server\":\"notigate (C, h2o + nng workers)\"}");
        if (failed[0] || failed[1]) {
            const char *missing = failed[0] && failed[1] ? "notifier, history" : (failed[0] ? "notifier" : "history");
            h2o_add_header_by_str(&p->req->pool, &p->req->res.headers, H2O_STRLIT("x-partial"), 0, NULL, missing, strlen(missing));
        }
        return 200;
    }
    json_out_lit(o, "{\"user_id\":");
    json_out_str(o, p->user_id, strlen(p->user_id));
    json_out_lit(o, ",\"realtime\":");
    write_list(o, m.realtime, m.nrealtime);
    json_out_lit(o, ",\"historical\":");
    write_list(o, m.historical, m.nhistorical);
    json_out_lit(o, ",\"unread_count\":");
    if (rt == NULL && hist == NULL)
        json_out_lit(o, "null");
    else
        json_out_u64(o, m.unread_count);
    json_out_lit(o, ",\"next_before\":");
    if (m.next_before != 0)
        json_out_u64(o, m.next_before);
    else
        json_out_lit(o, "null");
    json_out_cstr(o, failed[0] || failed[1] ? ",\"partial\":true,\"errors\":" : ",\"partial\":false,\"errors\":");
    write_errors(o, p, failed);
    json_out_lit(o, "}");
    return 200;
}

/* For the write routes: the status and error body when history-svc gave no success. */
static int answer_write_failure(pending_t *p)
{
    const pending_slot_t *slot = p->slots + SLOT_HISTORY;
    char msg[256];
    failure_message(p, SLOT_HISTORY, msg, sizeof(msg));
    json_out_t *o = &p->thread->out;
    int status = 503;
    const char *code = failure_code(slot);
    if (slot->result.outcome == UPSTREAM_OK) {
        switch (slot->result.rep.status) {
        case PROTO_ST_NOT_FOUND:
            status = 404, code = "not_found";
            snprintf(msg, sizeof(msg), "user %s has no notification %" PRIu64, p->user_id, p->id);
            break;
        case PROTO_ST_BAD_REQUEST:
            status = 400, code = "bad_request";
            break;
        case PROTO_ST_UNAVAILABLE:
            break;
        default:
            status = 500, code = "internal";
            break;
        }
    }
    if (p->route == ROUTE_PUBLISH && status == 503 && slot->result.outcome == UPSTREAM_TIMEOUT)
        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "; the notification may have been stored");
    json_out_reset(o);
    write_error_body(o, code, msg, strlen(msg));
    return status;
}

static int answer_readyz(pending_t *p)
{
    json_out_t *o = &p->thread->out;
    gateway_t *gw = p->thread->gw;
    const proto_reply_t *nt = ok_reply(p->slots + SLOT_NOTIFIER), *hist = ok_reply(p->slots + SLOT_HISTORY);
    /* the notifier's "redis" says its realtime window is loaded and it follows the stream: until then it answers
     * every list "unavailable" */
    bool ready = nt != NULL && nt->redis_ok && hist != NULL && hist->redis_ok;
    char msg[256];

    json_out_reset(o);
    json_out_cstr(o, ready ? "{\"ready\":true,\"checks\":{" : "{\"ready\":false,\"checks\":{");
    for (int i = 0; i < NSLOTS; ++i) {
        const proto_reply_t *rep = i == SLOT_NOTIFIER ? nt : hist;
        json_out_str(o, source_names[i], strlen(source_names[i]));
        json_out_lit(o, ":{\"replicas\":");
        json_out_u64(o, upstream_replicas(i == SLOT_NOTIFIER ? gw->notifier : gw->history));
        json_out_cstr(o, rep != NULL ? ",\"answered\":true" : ",\"answered\":false");
        if (rep != NULL)
            json_out_cstr(o, rep->redis_ok ? ",\"redis\":true" : ",\"redis\":false");
        else {
            failure_message(p, i, msg, sizeof(msg));
            json_out_lit(o, ",\"error\":");
            json_out_str(o, msg, strlen(msg));
        }
        json_out_cstr(o, i + 1 < NSLOTS ? "}," : "}");
    }
    json_out_lit(o, "}}");
    return ready ? 200 : 503;
}

/* The "customer_id" of a JSON object, or of its "order" object; NULL if there is none. */
static const char *customer_of(json_t *root)
{
    json_t *c = json_object_get(root, "customer_id");
    if (c == NULL)
        c = json_object_get(json_object_get(root, "order"), "customer_id");
    return json_string_value(c);
}

/* True if a worker's JSON answer names owner as its customer (fails closed: no customer, no JSON, not owned). */
static bool answer_owned_by(const proto_reply_t *rep, const char *owner)
{
    json_error_t jerr;
    json_t *root = json_loadb(rep->body.ptr, rep->body.len, JSON_REJECT_DUPLICATES, &jerr);
    const char *customer = customer_of(root);
    bool owned = customer != NULL && strcmp(customer, owner) == 0;
    if (root != NULL)
        json_decref(root);
    return owned;
}

/* A routed request: the worker's HTTP answer, or 503/502 JSON when there is none. */
static int answer_forward(pending_t *p, const char **ctype)
{
    const pending_slot_t *slot = p->slots + 0;
    const gateway_t *gw = p->thread->gw;
    const char *kind = gw->routes.kinds[p->forward->kind].name;
    json_out_t *o = &p->thread->out;
    char msg[256];
    json_out_reset(o);
    *ctype = "application/json";
    if (slot->result.outcome == UPSTREAM_OK && slot->result.rep.http_status != 0) {
        const proto_reply_t *rep = &slot->result.rep;
        if (p->check_owner && rep->http_status >= 200 && rep->http_status < 300 && !answer_owned_by(rep, p->owner)) {
            /* another customer's record (an order id or an Idempotency-Key of theirs): nothing of it goes out */
            h2o_add_header(&p->req->pool, &p->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer realm=\"notigate\", error=\"insufficient_scope\""));
            json_out_lit(o, "{\"error\":{\"code\":\"forbidden\",\"message\":\"this belongs to another customer\"}}");
            return 403;
        }
        json_out_raw(o, rep->body.ptr, rep->body.len);
        if (rep->content_type.len != 0 && rep->content_type.len < 64) {
            char *ct = h2o_mem_alloc_pool(&p->req->pool, rep->content_type.len + 1);
            memcpy(ct, rep->content_type.ptr, rep->content_type.len);
            ct[rep->content_type.len] = '\0';
            *ctype = ct;
        }
        return (int)rep->http_status;
    }
    int status = 503;
    const char *code = upstream_outcome_name(slot->result.outcome);
    switch (slot->result.outcome) {
    case UPSTREAM_OK:
        status = 502, code = "bad_gateway";
        snprintf(msg, sizeof(msg), "%s answered without an HTTP answer: %.*s", kind, (int)slot->result.rep.error.len,
                 slot->result.rep.error.ptr);
        break;
    case UPSTREAM_TIMEOUT:
        snprintf(msg, sizeof(msg), "%s did not answer within %u ms%s", kind, p->forward->timeout_ms,
                 p->forward->retry ? "; retry with the same Idempotency-Key to be sure it is applied once" : "");
        break;
    case UPSTREAM_NO_REPLICA:
        snprintf(msg, sizeof(msg), "no %s replica is connected", kind);
        break;
    default:
        snprintf(msg, sizeof(msg), "%s request failed (%s)", kind, code);
        break;
    }
    write_error_body(o, code, msg, strlen(msg));
    return status;
}

static void pending_complete(pending_t *p)
{
    const char *ctype = "application/json";
    gateway_thread_t *thread = p->thread;
    const proto_reply_t *hist = ok_reply(p->slots + SLOT_HISTORY);
    json_out_t *o = &thread->out;
    int status = 200;

    switch (p->route) {
    case ROUTE_LIST:
    case ROUTE_HYBRID:
        status = answer_list(p, p->route == ROUTE_HYBRID);
        break;
    case ROUTE_PUBLISH:
        if (hist == NULL) {
            status = answer_write_failure(p);
            break;
        }
        status = 201;
        json_out_reset(o);
        json_out_lit(o, "{\"id\":");
        json_out_u64(o, hist->id);
        json_out_lit(o, ",\"user_id\":");
        json_out_str(o, p->user_id, strlen(p->user_id));
        json_out_lit(o, ",\"ts\":");
        json_out_i64(o, hist->ts);
        json_out_lit(o, "}");
        break;
    case ROUTE_MARK_READ:
        if (hist == NULL) {
            status = answer_write_failure(p);
            break;
        }
        status = 204;
        json_out_reset(o);
        break;
    case ROUTE_MARK_ALL_READ:
        if (hist == NULL) {
            status = answer_write_failure(p);
            break;
        }
        json_out_reset(o);
        json_out_lit(o, "{\"user_id\":");
        json_out_str(o, p->user_id, strlen(p->user_id));
        json_out_lit(o, ",\"marked\":");
        json_out_u64(o, hist->count);
        json_out_lit(o, "}");
        break;
    case ROUTE_READYZ:
        status = answer_readyz(p);
        break;
    case ROUTE_FORWARD:
        status = answer_forward(p, &ctype);
        break;
    default:
        status = 500;
        json_out_reset(o);
        json_out_lit(o, "{\"error\":{\"code\":\"internal\",\"message\":\"unexpected route\"}}");
        break;
    }

    /* the body is in thread->out: release the replies first, since sending may end the request */
    p->completed = true;
    --thread->pending;
    for (int i = 0; i < NSLOTS; ++i)
        upstream_result_dispose(&p->slots[i].result);
    if (status == 204)
        respond(thread, p->req, p->route, p->started_us, status, NULL, "", 0);
    else
        respond(thread, p->req, p->route, p->started_us, status, ctype, thread->out.buf, thread->out.len);
}

/* ---- handlers --------------------------------------------------------------------------------------------------- */

static void copy_user(pending_t *p, const char *s, size_t len)
{
    memcpy(p->user_id, s, len); /* validated: at most VALID_USER_ID_MAX */
    p->user_id[len] = '\0';
}

/* With an Idempotency-Key header, the request id is derived from the key and its scope (a publish: the user; a routed
 * request: the worker kind), so that the worker applies a retried request once and answers it with the first answer
 * (for 24 hours). Returns 1 if a key was given, 0 if not, -1 if it is malformed. */
static int idempotency_rid(h2o_req_t *req, const char *scope, const char *name, size_t name_len, uint8_t rid[PROTO_RID_LEN])
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);
    if (i == -1)
        return 0;
    h2o_iovec_t key = req->headers.entries[i].value;
    if (key.len == 0 || key.len > 255)
        return -1;
    for (size_t j = 0; j < key.len; ++j)
        if (key.base[j] < 0x21 || key.base[j] > 0x7e)
            return -1;
    unsigned char md[SHA256_DIGEST_LENGTH], input[64 + VALID_USER_ID_MAX + 255];
    int n = snprintf((char *)input, sizeof(input), "notigate %s\n%.*s\n", scope, (int)name_len, name);
    memcpy(input + n, key.base, key.len);
    SHA256(input, (size_t)n + key.len, md);
    memcpy(rid, md, PROTO_RID_LEN);
    return 1;
}

static int handle_publish(gateway_thread_t *thread, h2o_req_t *req, const auth_principal_t *a, uint64_t started_us)
{
    publish_body_t body;
    api_error_t err;
    int st = gateway_auth_check_publisher(a);
    if (st != 0) {
        gateway_respond_auth(thread, req, ROUTE_PUBLISH, started_us, a, st,
                             "publishing needs an API key or a token with the publish scope");
        return 0;
    }
    if (publish_body_parse(&body, req->entity.base, req->entity.base != NULL ? req->entity.len : 0, &err) != 0) {
        respond_api_error(thread, req, ROUTE_PUBLISH, started_us, &err);
        return 0;
    }
    proto_request_t preq = {.op = PROTO_OP_PUBLISH,
                            .user_id = {body.user_id, body.user_id_len},
                            .message = {body.message, body.message_len},
                            .kind = {body.kind, body.kind_len}};
    int keyed = idempotency_rid(req, "publish", body.user_id, body.user_id_len, preq.rid);
    if (keyed < 0) {
        publish_body_dispose(&body);
        respond_error(thread, req, ROUTE_PUBLISH, started_us, 400, "invalid_idempotency_key",
                      "Idempotency-Key must be 1-255 visible ASCII characters");
        return 0;
    }
    preq.keyed = keyed == 1;
    pending_t *p = pending_new(thread, req, ROUTE_PUBLISH, started_us);
    copy_user(p, body.user_id, body.user_id_len);
    pending_ask(p, SLOT_HISTORY, thread->history, &preq, thread->gw->cfg.write_timeout_ms, keyed == 1, true);
    publish_body_dispose(&body); /* the request was encoded into the nng message */
    pending_go(p);
    return 0;
}

static int handle_list(gateway_thread_t *thread, h2o_req_t *req, const auth_principal_t *a, route_t route, const char *user,
                       size_t user_len, const char *query, size_t query_len, uint64_t started_us)
{
    char userbuf[VALID_USER_ID_MAX + 2];
    api_error_t err;
    uint32_t limit;
    uint64_t before;

    if (gateway_auth_check_any(a) != 0) {
        gateway_respond_auth(thread, req, route, started_us, a, 401, "");
        return 0;
    }
    if (route == ROUTE_HYBRID) {
        int n = query_get(query, query_len, "user_id", userbuf, sizeof(userbuf));
        if (n < 0 || !valid_user_id(userbuf, (size_t)n)) {
            respond_error(thread, req, route, started_us, 400, "invalid_user_id",
                          "query parameter user_id is required: 1-64 characters of A-Z a-z 0-9 _ . -");
            return 0;
        }
        user = userbuf;
        user_len = (size_t)n;
    }
    if (deny_user(thread, req, route, started_us, a, user, user_len))
        return 0;
    if (list_params_parse(query, query_len, &limit, &before, &err) != 0) {
        respond_api_error(thread, req, route, started_us, &err);
        return 0;
    }
    pending_t *p = pending_new(thread, req, route, started_us);
    copy_user(p, user, user_len);
    p->before = before;
    proto_request_t recent = {.op = PROTO_OP_RECENT, .user_id = {p->user_id, user_len}, .before = before, .limit = limit};
    proto_request_t page = {.op = PROTO_OP_PAGE, .user_id = {p->user_id, user_len}, .before = before, .limit = limit};
    pending_ask(p, SLOT_NOTIFIER, thread->notifier, &recent, thread->gw->cfg.read_timeout_ms, false, true);
    pending_ask(p, SLOT_HISTORY, thread->history, &page, thread->gw->cfg.read_timeout_ms, false, true);
    pending_go(p);
    return 0;
}

static int handle_mark(gateway_thread_t *thread, h2o_req_t *req, const auth_principal_t *a, const route_match_t *m,
                       uint64_t started_us)
{
    if (deny_user(thread, req, m->route, started_us, a, m->user_id, m->user_id_len))
        return 0;
    pending_t *p = pending_new(thread, req, m->route, started_us);
    copy_user(p, m->user_id, m->user_id_len);
    p->id = m->id;
    proto_request_t preq = {.op = m->route == ROUTE_MARK_READ ? PROTO_OP_MARK_READ : PROTO_OP_MARK_ALL_READ,
                            .user_id = {p->user_id, m->user_id_len},
                            .id = m->id};
    pending_ask(p, SLOT_HISTORY, thread->history, &preq, thread->gw->cfg.write_timeout_ms, false, true);
    pending_go(p);
    return 0;
}

/* Applies a routed entry's auth policy. Returns 0 to go on (*check_owner: the answer must be a's user's), or answers
 * 401/403 and returns -1. */
static int forward_auth(gateway_thread_t *thread, h2o_req_t *req, const route_entry_t *e, const auth_principal_t *a,
                        uint64_t started_us, bool *check_owner)
{
    *check_owner = false;
    int st = 0;
    const char *why = "";
    switch (e->auth) {
    case ROUTE_AUTH_PUBLIC:
        return 0;
    case ROUTE_AUTH_USER:
        st = gateway_auth_check_any(a);
        break;
    case ROUTE_AUTH_PUBLISHER:
        st = gateway_auth_check_publisher(a);
        why = "this needs an API key or a token with the publish scope";
        break;
    case ROUTE_AUTH_OWNER:
        if ((st = gateway_auth_check_any(a)) != 0 || a->off || a->publisher)
            break;
        size_t len = req->entity.base != NULL ? req->entity.len : 0;
        if (len != 0) {
            json_error_t jerr;
            json_t *root = json_loadb(req->entity.base, len, JSON_REJECT_DUPLICATES, &jerr);
            json_t *c = json_object_get(root, "customer_id");
            /* a body that is not JSON or names no customer is the worker's to refuse (400): it places nothing */
            if (json_is_string(c) && strcmp(json_string_value(c), a->claims.sub) != 0) {
                st = 403;
                why = "customer_id must be the token's user";
            }
            if (root != NULL)
                json_decref(root);
        }
        *check_owner = st == 0;
        if (why[0] == '\0')
            why = "this belongs to another customer";
        break;
    }
    if (st == 0)
        return 0;
    gateway_respond_auth(thread, req, ROUTE_FORWARD, started_us, a, st, why);
    return -1;
}

static int handle_forward(gateway_thread_t *thread, h2o_req_t *req, const auth_principal_t *a, const route_entry_t *e,
                          const char *path, size_t path_len, const char *query, size_t query_len, uint64_t started_us)
{
    gateway_t *gw = thread->gw;
    size_t body_len = req->entity.base != NULL ? req->entity.len : 0;
    bool check_owner;
    if (body_len > PUBLISH_BODY_MAX) {
        respond_error(thread, req, ROUTE_FORWARD, started_us, 413, "payload_too_large", "request body is larger than %d bytes",
                      PUBLISH_BODY_MAX);
        return 0;
    }
    if (forward_auth(thread, req, e, a, started_us, &check_owner) != 0)
        return 0;
    const char *kind = gw->routes.kinds[e->kind].name;
    ssize_t hi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);
    proto_request_t preq = {.op = PROTO_OP_FORWARD,
                            .method = {req->method.base, req->method.len},
                            .path = {path, path_len},
                            .query = {query, query_len},
                            .body = {req->entity.base, body_len}};
    int keyed = idempotency_rid(req, "forward", kind, strlen(kind), preq.rid);
    if (keyed < 0) {
        respond_error(thread, req, ROUTE_FORWARD, started_us, 400, "invalid_idempotency_key",
                      "Idempotency-Key must be 1-255 visible ASCII characters");
        return 0;
    }
    if (keyed)
        preq.idempotency_key = (proto_str_t){req->headers.entries[hi].value.base, req->headers.entries[hi].value.len};
    pending_t *p = pending_new(thread, req, ROUTE_FORWARD, started_us);
    p->forward = e;
    if ((p->check_owner = check_owner))
        memcpy(p->owner, a->claims.sub, a->claims.sub_len + 1);
    pending_ask(p, 0, thread->routed[e->kind], &preq, e->timeout_ms, keyed == 1, e->retry);
    pending_go(p);
    return 0;
}

static int handle_readyz(gateway_thread_t *thread, h2o_req_t *req, uint64_t started_us)
{
    pending_t *p = pending_new(thread, req, ROUTE_READYZ, started_us);
    proto_request_t health = {.op = PROTO_OP_HEALTH};
    pending_ask(p, SLOT_NOTIFIER, thread->notifier, &health, thread->gw->cfg.read_timeout_ms, false, true);
    pending_ask(p, SLOT_HISTORY, thread->history, &health, thread->gw->cfg.read_timeout_ms, false, true);
    pending_go(p);
    return 0;
}

int gateway_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    gateway_thread_t *thread = gateway_thread_of(req);
    uint64_t started_us = clock_mono_us();
    const char *path = req->path.base, *query = "";
    size_t path_len = req->path.len, query_len = 0;
    const char *q = memchr(path, '?', path_len);
    route_match_t m;
    api_error_t err;
    auth_principal_t auth;

    if (q != NULL) {
        query = q + 1;
        query_len = path_len - (size_t)(q + 1 - path);
        path_len = (size_t)(q - path);
    }
    char allow[64];
    const route_entry_t *routed =
        route_table_match(&thread->gw->routes, req->method.base, req->method.len, path, path_len, allow, sizeof(allow));
    int matched = routed == NULL && allow[0] == '\0' ? route_match(path, path_len, &m, &err) : -1;
    route_t route = routed != NULL || allow[0] != '\0' ? ROUTE_FORWARD : (matched == 0 ? m.route : ROUTE_NOT_FOUND);
    /* who sent it, first: the rate limit counts a valid credential's requests under its owner, and any other under
     * the client's address (made-up tokens must not each get a fresh bucket) */
    gateway_authenticate(thread, req, query, query_len, &auth);
    if (guard_on_req(thread, req, route, query, query_len, &auth, started_us)) /* limits, CORS: answered if refused */
        return 0;
    if (routed != NULL) {
        return handle_forward(thread, req, &auth, routed, path, path_len, query, query_len, started_us);
    }
    if (allow[0] != '\0') {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, h2o_strdup(&req->pool, allow, SIZE_MAX).base,
                       strlen(allow));
        respond_error(thread, req, ROUTE_FORWARD, started_us, 405, "method_not_allowed", "%.*s is not allowed here; use %s",
                      (int)(req->method.len > 16 ? 16 : req->method.len), req->method.base, allow);
        return 0;
    }
    if (matched != 0) {
        respond_api_error(thread, req, ROUTE_NOT_FOUND, started_us, &err);
        return 0;
    }
    if (m.route == ROUTE_NOT_FOUND) {
        respond_error(thread, req, ROUTE_NOT_FOUND, started_us, 404, "not_found", "no route for %.*s %.*s", (int)req->method.len,
                      req->method.base, (int)(path_len > 200 ? 200 : path_len), path);
        return 0;
    }
    if (!route_allows(m.route, req->method.base, req->method.len)) {
        const char *allow = route_allow(m.route);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
        respond_error(thread, req, m.route, started_us, 405, "method_not_allowed", "%.*s is not allowed here; use %s",
                      (int)(req->method.len > 16 ? 16 : req->method.len), req->method.base, allow);
        return 0;
    }

    switch (m.route) {
    case ROUTE_PUBLISH:
        return handle_publish(thread, req, &auth, started_us);
    case ROUTE_LIST:
    case ROUTE_HYBRID:
        return handle_list(thread, req, &auth, m.route, m.user_id, m.user_id_len, query, query_len, started_us);
    case ROUTE_MARK_READ:
    case ROUTE_MARK_ALL_READ:
        return handle_mark(thread, req, &auth, &m, started_us);
    case ROUTE_READYZ:
        return handle_readyz(thread, req, started_us);
    case ROUTE_HEALTHZ:
        json_out_reset(&thread->out);
        json_out_lit(&thread->out, "{\"status\":\"ok\"}");
        respond_json(thread, req, m.route, started_us, 200);
        return 0;
    case ROUTE_WS:
        return session_handle_native(thread, req, query, query_len, &auth, started_us);
    case ROUTE_SOCKETIO:
        return session_handle_socketio(thread, req, query, query_len, &auth, started_us);
    case ROUTE_PAGE:
    case ROUTE_PAGE_JS:
        guard_page_headers(req); /* CSP (the page's script is a file of its own: no inline script), no framing */
        if (m.route == ROUTE_PAGE)
            respond(thread, req, m.route, started_us, 200, "text/html; charset=utf-8", page_html, page_html_len);
        else
            respond(thread, req, m.route, started_us, 200, "text/javascript; charset=utf-8", page_js, page_js_len);
        return 0;
    case ROUTE_METRICS:
        json_out_reset(&thread->out);
        metrics_render(&thread->gw->metrics_source, &thread->out);
        respond(thread, req, m.route, started_us, 200, "text/plain; version=0.0.4", thread->out.buf, thread->out.len);
        return 0;
    default:
        return -1;
    }
}
