/*
 * The messages that cross processes: gateway -> worker requests and worker -> gateway replies.
 *
 * One definition, msgpack-encoded (msgpack-c), versioned. Every frame is one msgpack map with short string keys:
 *
 *   request  {"v":1, "op":<proto_op_t>, "rid":bin16, "user":str, "msg":str, "kind":str, "before":uint, "after":uint,
 *             "limit":uint, "id":uint, "cursor":str, "wait":uint,
 *             "method":str, "path":str, "query":str, "body":bin, "idem":str, "keyed":bool}
 *            (fields by op, see proto_op_t)
 *   reply    {"v":1, "st":<proto_status_t>, "err":str, "by":str, "id":uint, "ts":int,
 *             "items":[[id, ts, user, msg, kind, read], ...], "unread":uint, "more":bool, "count":uint, "redis":bool,
 *             "cursor":str, "gap":bool, "status":uint, "ctype":str, "body":bin}
 *
 *   batch    {"v":1, "batch":[bin, ...]}: several requests in one frame, each bin one request frame as above (at most
 *            PROTO_BATCH_MAX, never a batch itself); it is answered by a batch of as many reply frames, in the same
 *            order, or by one plain reply whose status applies to them all (a worker that cannot read the batch).
 *            The gateway batches the calls one loop iteration makes to a worker kind, so that under load one nng
 *            round trip (and one thread hop on each side) carries many requests.
 *
 * Unknown keys are ignored, so a newer peer may add fields; a frame whose "v" is not PROTO_VERSION is refused with
 * PROTO_EVERSION (a worker answers it with PROTO_ST_BAD_VERSION). Decoding never trusts the bytes: sizes are checked
 * against what is left before msgpack-c allocates anything, truncated frames and trailing bytes are errors.
 *
 * All functions are pure and may be called from any thread.
 */
#ifndef NOTIGATE_PROTO_H
#define NOTIGATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_RID_LEN 16
#define PROTO_LIMIT_MAX 100           /* most items one page or recent request may ask for */
#define PROTO_MAX_FRAME (8 * 1024 * 1024) /* largest frame either side accepts (NNG_OPT_RECVMAXSZ) */
#define PROTO_WATCH_MAX 1000              /* most notifications one WATCH reply carries */
#define PROTO_WATCH_WAIT_MAX 60000        /* longest a WATCH may be held, ms */
#define PROTO_CURSOR_MAX 48               /* longest cursor (a Redis stream id, "ms-seq") */
#define PROTO_FORWARD_BODY_MAX (1024 * 1024) /* largest body a FORWARD carries either way */
#define PROTO_BATCH_MAX 64                   /* most frames one batch carries */

typedef enum en_proto_op_t {
    PROTO_OP_PUBLISH = 1,       /* history: user, msg, kind, rid -> id, ts (idempotent by rid) */
    PROTO_OP_PAGE = 2,          /* history: user, before, limit -> items (newest first), unread, more */
    PROTO_OP_RECENT = 3,        /* notifier: user, before, limit -> unread items in the realtime window, unread */
    PROTO_OP_MARK_READ = 4,     /* history: user, id -> ok or not found */
    PROTO_OP_MARK_ALL_READ = 5, /* history: user -> count */
    PROTO_OP_HEALTH = 6,        /* any worker: -> ok; history also says whether Redis answers ("redis") */
    PROTO_OP_WATCH = 7,         /* notifier: cursor, wait -> the notifications published after cursor (items, oldest
                                 * first), the new cursor, and gap if some were lost; held up to wait ms if none yet.
                                 * An empty cursor answers at once with the current one. */
    PROTO_OP_SINCE = 8,         /* history: user, after, limit -> items with ids above after, oldest first, more */
    PROTO_OP_FORWARD = 9,       /* any worker kind behind the route table: an HTTP request (method, path, query, body,
                                 * idempotency key) -> an HTTP answer (status, content type, body) */
} proto_op_t;

typedef enum en_proto_status_t {
    PROTO_ST_OK = 0,
    PROTO_ST_NOT_FOUND = 1,
    PROTO_ST_BAD_REQUEST = 2,
    PROTO_ST_UNAVAILABLE = 3, /* the worker is up but what it needs (Redis) is not */
    PROTO_ST_INTERNAL = 4,
    PROTO_ST_BAD_VERSION = 5,
} proto_status_t;

/* decode results */
#define PROTO_EMALFORMED (-1) /* not one well-formed msgpack value: truncated, trailing bytes, sizes beyond the frame */
#define PROTO_EINVALID (-2)   /* well-formed, but a field is missing, of the wrong type or out of range */
#define PROTO_EVERSION (-3)   /* "v" is not PROTO_VERSION */
#define PROTO_ENOTBATCH (-4)  /* proto_batch_decode: a well-formed frame, but a single message, not a batch */

/* A string inside a frame: not NUL-terminated, valid only while the frame's bytes are. */
typedef struct st_proto_str_t {
    const char *ptr;
    size_t len;
} proto_str_t;

typedef struct st_proto_request_t {
    proto_op_t op;
    uint8_t rid[PROTO_RID_LEN]; /* request id chosen by the gateway; the same on a resend */
    proto_str_t user_id;
    proto_str_t message;
    proto_str_t kind;
    uint64_t before; /* PAGE, RECENT: only ids below it; 0 = from the newest */
    uint64_t after;  /* SINCE: only ids above it */
    uint64_t id;
    uint32_t limit;
    proto_str_t cursor; /* WATCH: where the caller is in the event stream; empty: now */
    uint32_t wait_ms;   /* WATCH: how long to hold the request when nothing is new */
    proto_str_t method, path, query, body; /* FORWARD: the client's request (path without the query) */
    proto_str_t idempotency_key;            /* FORWARD: the client's Idempotency-Key header, or empty */
    bool keyed; /* PUBLISH: rid comes from the client's Idempotency-Key, so its first answer is kept for a day; else the
                 * rid is the gateway's own and only its resends (seconds apart) need the answer. Absent: true */
} proto_request_t;

typedef struct st_proto_notification_t {
    uint64_t id;
    int64_t ts; /* ms since the epoch */
    proto_str_t user_id;
    proto_str_t message;
    proto_str_t kind;
    bool read;
} proto_notification_t;

typedef struct st_proto_reply_t {
    proto_status_t status;
    proto_str_t error;           /* human-readable reason when status != PROTO_ST_OK */
    proto_str_t worker;          /* identity of the replica that answered */
    uint64_t id;                 /* PUBLISH */
    int64_t ts;                  /* PUBLISH */
    bool list;                   /* PAGE, RECENT: the reply carries items, unread_count and has_more */
    proto_notification_t *items; /* newest first; owned by the reply after decoding */
    size_t nitems;
    uint64_t unread_count; /* PAGE, RECENT */
    bool has_more;         /* PAGE: older items exist below the last one */
    uint64_t count;        /* MARK_ALL_READ */
    bool redis_ok;         /* HEALTH from history-svc */
    proto_str_t cursor;    /* WATCH: pass it in the next WATCH */
    bool gap;              /* WATCH: notifications after the given cursor were lost (the caller must resync) */
    uint32_t http_status;  /* FORWARD: the HTTP status to answer (0: not a FORWARD reply) */
    proto_str_t content_type, body; /* FORWARD */
} proto_reply_t;

/* Output sink for the encoders (same shape as msgpack_packer_write): returns 0 on success. */
typedef int (*proto_write_cb)(void *data, const char *buf, size_t len);

/* Encodes req (only the fields its op uses). Returns 0, or -1 if write failed. */
int proto_request_encode(const proto_request_t *req, proto_write_cb write, void *data);

/* Encodes rep (items, unread and more only if rep->list). Returns 0 or -1. */
int proto_reply_encode(const proto_reply_t *rep, proto_write_cb write, void *data);

/* Encodes a reply that carries only a status and a reason. */
int proto_reply_encode_error(proto_status_t status, const char *error, const char *worker, proto_write_cb write, void *data);

/* Decodes and checks a request: the fields its op needs must be present and valid (user id, message, kind, limit).
 * Strings point into buf. Returns 0 or PROTO_EMALFORMED / PROTO_EINVALID / PROTO_EVERSION. Nothing to free. */
int proto_request_decode(proto_request_t *req, const void *buf, size_t len);

/* Decodes a reply. Strings point into buf, which must outlive rep; rep->items is allocated: release it with
 * proto_reply_dispose (also after a failed decode). Returns 0 or a PROTO_E* code. */
int proto_reply_decode(proto_reply_t *rep, const void *buf, size_t len);

/* Frees what proto_reply_decode allocated. */
void proto_reply_dispose(proto_reply_t *rep);

/* Encodes a batch of n (1..PROTO_BATCH_MAX) already encoded frames. Returns 0 or -1. */
int proto_batch_encode(const proto_str_t *frames, size_t n, proto_write_cb write, void *data);

/* If buf is a batch, points parts[0..*n) (room for PROTO_BATCH_MAX) at its frames, inside buf, and returns 0; they are
 * not decoded yet. Returns PROTO_ENOTBATCH for a well-formed single message (decode it with proto_*_decode), or
 * PROTO_EMALFORMED / PROTO_EINVALID (an empty or oversized batch, an element that is not a bin) / PROTO_EVERSION. */
int proto_batch_decode(const void *buf, size_t len, proto_str_t *parts, size_t *n);

/* Checks that buf holds exactly one msgpack value whose declared sizes fit in the bytes present, nested at most
 * max_depth deep. Returns 0 or PROTO_EMALFORMED. Used by the decoders before msgpack-c sees the bytes. */
int proto_frame_check(const void *buf, size_t len, unsigned max_depth);

/* A short name for a decode error code or op, for logs. */
const char *proto_strerror(int err);
const char *proto_op_name(proto_op_t op);
const char *proto_status_name(proto_status_t st);

#endif
