/*
 * ws_load: the WebSocket benchmark's load client. One thread, one epoll loop, many client sessions per process, over
 * notigate's native protocol (GET /v1/ws, JSON text frames) or Socket.IO v5 over Engine.IO v4's WebSocket transport
 * (/socket.io/?EIO=4&transport=websocket), the two protocols the bench's servers speak (the gateway, the `ws` server
 * and the seed's Socket.IO chat). Client frames are masked (RFC 6455 5.3); pings are answered (WebSocket ping frames with
 * pongs, Engine.IO "2" with "3"), so that sessions stay open for as long as the bench holds them.
 *
 * What one process does, in order:
 *   1. opens --sessions sessions (at most --connect-inflight handshakes at a time), from --source if given; each names
 *      a user (--user, or --user-prefix + its index) and may join a chat room (--join);
 *   2. once every session is open (and joined) and no frame has come for --quiet-ms, prints "ready ..." on stdout;
 *   3. on "go" (a line on stdin; at once with --auto) session 0 sends --send-messages chat messages, one every
 *      --send-interval-ms, and the publisher POSTs --publish-count notifications at --publish-rate per second (open loop,
 *      keep-alive HTTP/1.1 over --publish-conns connections);
 *   4. every sent message carries "wsb <seq> <send time>": each session records the latency of each one it receives
 *      (CLOCK_MONOTONIC, the same clock in every process on the machine) and whether it had it already;
 *   5. prints "complete" once every session has --expect distinct messages, and on "stop" (or the end of stdin; with
 *      --auto, --linger-ms after the last send) prints "result {json}" and exits. --latencies FILE gets "seq latency_us"
 *      lines, one per message received.
 *
 * Credentials: with the gateway's HS256 secret in NOTIGATE_JWT_SECRET (as `gateway mint-token` takes it; never a flag,
 * which ps would show), every session carries a token as the README's clients send it: native sessions an
 * `Authorization: Bearer` header on the upgrade, Socket.IO sessions auth.token in CONNECT (socket.io-client's
 * `auth: {token}`), and the publisher's POSTs a publisher's token (scope publish). A session's token is for its user
 * (--user, --user-prefix), or, for a session that only chats, for its chat name. Tokens are made here by the gateway's own
 * code (auth_mint, gateway/auth.c), one per session as it opens: thousands cost milliseconds, not a process each.
 *
 * A benchmark program, not a test: it trusts the servers' framing and reports what it sees.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include "auth.h"

#define WSL_READ_CHUNK (256 * 1024)
#define WSL_BIG_FRAME 8192 /* larger frames are never bench messages: classified by their start, the rest discarded */
#define WSL_CLASSIFY 48    /* payload bytes enough to tell a frame's type */
#define WSL_TAG "\"message\":\"wsb "
#define WSL_MAX_EVENTS 512
#define WSL_TOKEN_TTL_S (6 * 3600)
#define WSL_TOKEN_MAX 512

enum { WSL_NATIVE, WSL_SIO };
enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED };

typedef struct st_wsl_buf_t {
    char *p;
    size_t len, cap;
} wsl_buf_t;

typedef struct st_wsl_conn_t {
    int fd;
    uint8_t state;
    bool opened, joined, join_sent, want_write, fragmented, closing;
    uint32_t index;
    char key[32];      /* Sec-WebSocket-Key */
    wsl_buf_t in, out; /* unparsed input (a partial frame), output the socket did not take */
    uint64_t skip;     /* payload bytes of a big frame still to discard */
    uint8_t *seen;     /* bitmap of received message seqs (--expect bits) */
    uint32_t distinct;
} wsl_conn_t;

typedef struct st_wsl_http_t {
    int fd;
    bool connected;
    wsl_buf_t in, out;
    uint64_t *pending; /* send times of the requests in flight, in order (a ring) */
    size_t head, count, cap;
} wsl_http_t;

static struct {
    /* options */
    const char *host, *source, *path, *user, *user_prefix, *join_room, *name_prefix, *latencies_path, *publish_user;
    int port, proto, sessions, first_index, inflight_max, quiet_ms, send_messages, send_interval_ms, publish_count, publish_conns,
        linger_ms, join_count;
    double publish_rate;
    bool auth, auto_go, join_ack, verbose;
    unsigned expect;
    /* state */
    struct sockaddr_in dst, src;
    int ep;
    wsl_conn_t *conns;
    int next_to_open, inflight, nopen, nfailed, nclosed, njoined, njoin_gone;
    uint64_t last_frame_ns, started_ns, ready_ns;
    bool ready, go, stopping, complete_said, stdin_open;
    uint64_t go_ns, last_send_ns;
    int sent;
    /* counters */
    uint64_t ws_pings, eio_pings, error_frames, received, duplicates, unexpected, frames;
    /* latencies */
    struct st_wsl_lat_t {
        uint32_t seq;
        uint32_t lat_us10; /* latency in tenths of microseconds */
    } * lats;
    size_t nlats, lats_cap;
    /* publisher */
    wsl_http_t *http;
    int published, post_ok, post_bad, post_errors, http_closes;
    uint64_t *post_lat_ns;
    uint64_t lag_max_ns;
    char stdin_buf[256];
    size_t stdin_len;
    uint64_t rng;
    auth_keys_t keys; /* the gateway's secret (secret_len 0: no tokens are sent) */
    char publisher_token[WSL_TOKEN_MAX];
} W;

/* ---- small helpers ---------------------------------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    if ((p = realloc(p, n)) == NULL && n != 0) {
        fprintf(stderr, "ws_load: out of memory\n");
        abort();
    }
    return p;
}

static void buf_append(wsl_buf_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = b->cap * 2 > b->len + len ? b->cap * 2 : b->len + len + 256;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void buf_consume(wsl_buf_t *b, size_t n)
{
    if (n >= b->len) {
        free(b->p); /* an idle session keeps no buffer */
        *b = (wsl_buf_t){NULL};
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static uint32_t rnd32(void)
{
    W.rng ^= W.rng << 13;
    W.rng ^= W.rng >> 7;
    W.rng ^= W.rng << 17;
    return (uint32_t)(W.rng >> 16);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* ---- tokens ------------------------------------------------------------------------------------------------------- */

/* A token (HS256) for sub with scope (NULL: none), valid for WSL_TOKEN_TTL_S, into out (WSL_TOKEN_MAX bytes): made by
 * the gateway's own code (gateway/auth.c, as `gateway mint-token` makes them). */
static void mint_token(const char *sub, const char *scope, char *out)
{
    if (auth_mint(W.keys.secret, W.keys.secret_len, sub, scope, (int64_t)time(NULL), WSL_TOKEN_TTL_S, out, WSL_TOKEN_MAX) < 0) {
        fprintf(stderr, "ws_load: cannot make a token for '%s' (not a valid user id?)\n", sub);
        exit(2);
    }
}

/* The name a session's token is for: its user, else its chat name. */
static void session_subject(uint32_t index, char *out, size_t outsz)
{
    if (W.user != NULL)
        snprintf(out, outsz, "%s", W.user);
    else if (W.user_prefix != NULL)
        snprintf(out, outsz, "%s%u", W.user_prefix, W.first_index + index);
    else
        snprintf(out, outsz, "%s%u", W.name_prefix, W.first_index + index);
}

/* Session index's token into out, or false when no secret was given (no token sent). */
static bool session_token(uint32_t index, char *out)
{
    static char one_user[WSL_TOKEN_MAX]; /* --user: every session has the same */
    char sub[96];
    if (W.keys.secret_len == 0)
        return false;
    if (W.user != NULL && one_user[0] != '\0') {
        memcpy(out, one_user, sizeof(one_user));
        return true;
    }
    session_subject(index, sub, sizeof(sub));
    mint_token(sub, NULL, out);
    if (W.user != NULL)
        memcpy(one_user, out, sizeof(one_user));
    return true;
}

/* ---- sockets ------------------------------------------------------------------------------------------------------ */

static void ep_set(int fd, void *ptr, bool want_write, bool add)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = ptr};
    if (epoll_ctl(W.ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0) {
        fprintf(stderr, "ws_load: epoll_ctl: %s\n", strerror(errno));
        abort();
    }
}

/* A non-blocking TCP connection to the server, from --source if given; -1 on error (errno set). */
static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (W.source != NULL) {
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on)); /* the port is picked at connect, per peer */
#endif
        if (bind(fd, (struct sockaddr *)&W.src, sizeof(W.src)) != 0)
            goto Error;
    }
    if (connect(fd, (struct sockaddr *)&W.dst, sizeof(W.dst)) != 0 && errno != EINPROGRESS)
        goto Error;
    return fd;
Error:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* Writes what it can of data after what is already pending; keeps the rest for EPOLLOUT. -1 if the socket failed. */
static int sock_send(int fd, wsl_buf_t *out, bool *want_write, void *ptr, const void *data, size_t len)
{
    if (out->len == 0 && len != 0) {
        ssize_t n;
        while ((n = write(fd, data, len)) < 0 && errno == EINTR)
            ;
        if (n < 0 && errno != EAGAIN)
            return -1;
        if (n > 0)
            data = (const char *)data + n, len -= (size_t)n;
    }
    if (len != 0)
        buf_append(out, data, len);
    if ((out->len != 0) != *want_write) {
        *want_write = out->len != 0;
        ep_set(fd, ptr, *want_write, false);
    }
    return 0;
}

static int sock_flush(int fd, wsl_buf_t *out, bool *want_write, void *ptr)
{
    while (out->len != 0) {
        ssize_t n = write(fd, out->p, out->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -1;
        }
        buf_consume(out, (size_t)n);
    }
    if ((out->len != 0) != *want_write) {
        *want_write = out->len != 0;
        ep_set(fd, ptr, *want_write, false);
    }
    return 0;
}

/* ---- WebSocket sessions ----------------------------------------------------------------------------------------- */

static void conn_fail(wsl_conn_t *c, const char *why);

/* Sends one masked frame. */
static void ws_send(wsl_conn_t *c, int opcode, const void *payload, size_t len)
{
    uint8_t frame[14 + 512], *f = frame, *heap = NULL;
    size_t hl = 2;
    if (len + 14 > sizeof(frame))
        f = heap = xrealloc(NULL, len + 14);
    f[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        f[1] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        f[1] = 0x80 | 126, f[2] = (uint8_t)(len >> 8), f[3] = (uint8_t)len;
        hl = 4;
    } else {
        f[1] = 0x80 | 127;
        for (int i = 0; i < 8; ++i)
            f[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t mask = rnd32();
    memcpy(f + hl, &mask, 4);
    const uint8_t *m = f + hl, *src = payload;
    for (size_t i = 0; i < len; ++i)
        f[hl + 4 + i] = src[i] ^ m[i & 3];
    if (sock_send(c->fd, &c->out, &c->want_write, c, f, hl + 4 + len) != 0)
        conn_fail(c, "write failed");
    free(heap);
}

static void ws_send_text(wsl_conn_t *c, const char *text, size_t len)
{
    ws_send(c, 1, text, len);
}

static void conn_close(wsl_conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    free(c->in.p), free(c->out.p);
    c->in = c->out = (wsl_buf_t){NULL};
    c->state = ST_CLOSED;
}

static bool wants_join(const wsl_conn_t *c)
{
    return W.join_room != NULL && (W.join_count < 0 || (int)c->index < W.join_count);
}

/* A session ends: before it opened it is a failure, after it a session the server closed (or the socket broke). */
static void conn_fail(wsl_conn_t *c, const char *why)
{
    if (c->state == ST_CLOSED)
        return;
    if (wants_join(c) && !c->joined)
        ++W.njoin_gone; /* it never will: readiness does not wait for it */
    if (c->opened) {
        if (++W.nclosed <= 5)
            fprintf(stderr, "ws_load: session %u closed: %s\n", c->index, why);
    } else {
        --W.inflight;
        if (++W.nfailed <= 5)
            fprintf(stderr, "ws_load: session %u failed to open: %s\n", c->index, why);
    }
    conn_close(c);
}

static void start_connects(void);

static void send_join(wsl_conn_t *c)
{
    char msg[256];
    int n;
    c->join_sent = true;
    if (W.proto == WSL_NATIVE)
        n = snprintf(msg, sizeof(msg), "{\"type\":\"join\",\"username\":\"%s%u\",\"room\":\"%s\"}", W.name_prefix,
                     W.first_index + c->index, W.join_room);
    else if (W.join_ack) /* ack id = the session's index + 1: its answer tells which join it was */
        n = snprintf(msg, sizeof(msg), "42%u[\"join\",{\"username\":\"%s%u\",\"room\":\"%s\"}]", c->index + 1, W.name_prefix,
                     W.first_index + c->index, W.join_room);
    else /* the seed chat's form: the username alone (one room, everyone) */
        n = snprintf(msg, sizeof(msg), "42[\"join\",\"%s%u\"]", W.name_prefix, W.first_index + c->index);
    ws_send_text(c, msg, (size_t)n);
    if (W.proto == WSL_SIO && !W.join_ack) { /* nothing answers the joiner alone: count it joined once sent */
        c->joined = true;
        ++W.njoined;
    }
}

/* The session's first frame came (native hello, Socket.IO's CONNECT answer). */
static void conn_opened(wsl_conn_t *c)
{
    if (c->opened)
        return;
    c->opened = true;
    ++W.nopen;
    --W.inflight;
    if (wants_join(c))
        send_join(c);
    start_connects();
}

static void conn_joined(wsl_conn_t *c)
{
    if (c->joined)
        return;
    c->joined = true;
    ++W.njoined;
}

/* A bench message arrived: "wsb <seq> <send time ns>" after "message":" in a new_message or notification frame. */
static void on_tagged(wsl_conn_t *c, const char *p, const char *end, uint64_t t_recv)
{
    char tmp[64];
    size_t n = (size_t)(end - p) < sizeof(tmp) - 1 ? (size_t)(end - p) : sizeof(tmp) - 1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    unsigned long seq;
    unsigned long long t_sent;
    if (sscanf(tmp, "%lu %llu", &seq, &t_sent) != 2) {
        ++W.unexpected;
        return;
    }
    if (W.expect == 0 || seq >= W.expect) {
        ++W.unexpected;
        return;
    }
    if (c->seen == NULL)
        c->seen = xrealloc(NULL, (W.expect + 7) / 8), memset(c->seen, 0, (W.expect + 7) / 8);
    if (c->seen[seq / 8] & (1u << (seq % 8))) {
        ++W.duplicates;
        return;
    }
    c->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
    ++c->distinct;
    ++W.received;
    if (W.nlats == W.lats_cap) {
        W.lats_cap = W.lats_cap != 0 ? W.lats_cap * 2 : 65536;
        W.lats = xrealloc(W.lats, W.lats_cap * sizeof(*W.lats));
    }
    uint64_t lat = t_recv > t_sent ? t_recv - t_sent : 0;
    W.lats[W.nlats].seq = (uint32_t)seq;
    W.lats[W.nlats++].lat_us10 = lat / 100 > UINT32_MAX ? UINT32_MAX : (uint32_t)(lat / 100);
}

static bool has_prefix(const char *p, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(p, prefix, n) == 0;
}

/* A text message (whole, or the start of a big one when whole is false). */
static void on_text(wsl_conn_t *c, const char *p, size_t len, bool whole, uint64_t t_recv)
{
    if (W.proto == WSL_NATIVE) {
        if (has_prefix(p, len, "{\"type\":\"hello\"")) {
            conn_opened(c);
        } else if (has_prefix(p, len, "{\"type\":\"joined\"")) {
            conn_joined(c);
        } else if (has_prefix(p, len, "{\"type\":\"error\"")) {
            if (++W.error_frames <= 5)
                fprintf(stderr, "ws_load: session %u got %.*s\n", c->index, (int)(len < 300 ? len : 300), p);
        } else if (whole && (has_prefix(p, len, "{\"type\":\"new_message\"") || has_prefix(p, len, "{\"type\":\"notification\""))) {
            const char *tag = memmem(p, len, WSL_TAG, strlen(WSL_TAG));
            if (tag != NULL)
                on_tagged(c, tag + strlen(WSL_TAG), p + len, t_recv);
        }
        return;
    }
    /* Socket.IO over Engine.IO */
    if (len == 0)
        return;
    switch (p[0]) {
    case '0': { /* Engine.IO open: connect to the default namespace, with auth {user_id, token} as far as given */
        char msg[160 + WSL_TOKEN_MAX], user[96] = "", token[WSL_TOKEN_MAX];
        if (W.auth && (W.user != NULL || W.user_prefix != NULL))
            session_subject(c->index, user, sizeof(user));
        bool has_token = session_token(c->index, token);
        int n = 2;
        memcpy(msg, "40", 2);
        if (user[0] != '\0' && has_token)
            n = snprintf(msg, sizeof(msg), "40{\"user_id\":\"%s\",\"token\":\"%s\"}", user, token);
        else if (user[0] != '\0')
            n = snprintf(msg, sizeof(msg), "40{\"user_id\":\"%s\"}", user);
        else if (has_token)
            n = snprintf(msg, sizeof(msg), "40{\"token\":\"%s\"}", token);
        ws_send_text(c, msg, (size_t)n);
        break;
    }
    case '1':
        conn_fail(c, "Engine.IO close");
        break;
    case '2': /* ping */
        ++W.eio_pings;
        ws_send_text(c, "3", 1);
        break;
    case '4':
        if (has_prefix(p, len, "40")) {
            conn_opened(c);
        } else if (has_prefix(p, len, "44")) {
            conn_fail(c, "connect_error");
        } else if (has_prefix(p, len, "43")) {
            if (c->join_sent && memmem(p, len < 64 ? len : 64, "\"ok\":true", 9) != NULL)
                conn_joined(c);
            else if (++W.error_frames <= 5)
                fprintf(stderr, "ws_load: session %u got %.*s\n", c->index, (int)(len < 300 ? len : 300), p);
        } else if (has_prefix(p, len, "42[\"error\"")) {
            if (++W.error_frames <= 5)
                fprintf(stderr, "ws_load: session %u got %.*s\n", c->index, (int)(len < 300 ? len : 300), p);
        } else if (whole && (has_prefix(p, len, "42[\"new_message\"") || has_prefix(p, len, "42[\"notification\""))) {
            const char *tag = memmem(p, len, WSL_TAG, strlen(WSL_TAG));
            if (tag != NULL)
                on_tagged(c, tag + strlen(WSL_TAG), p + len, t_recv);
        }
        break;
    default:
        break;
    }
}

/* Parses the frames in data (len bytes); returns the bytes consumed (a partial frame stays), or -1 if the session
 * ended. */
static ssize_t parse_frames(wsl_conn_t *c, const uint8_t *data, size_t len, uint64_t t_recv)
{
    size_t off = 0;
    while (off < len && c->state == ST_OPEN) {
        if (c->skip != 0) {
            size_t n = len - off < c->skip ? len - off : (size_t)c->skip;
            c->skip -= n;
            off += n;
            continue;
        }
        const uint8_t *f = data + off;
        size_t avail = len - off, hl = 2;
        if (avail < 2)
            break;
        int fin = f[0] & 0x80, opcode = f[0] & 0x0f;
        uint64_t plen = f[1] & 0x7f;
        if (f[1] & 0x80) {
            conn_fail(c, "a masked frame from the server");
            return -1;
        }
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = ((uint64_t)f[2] << 8) | f[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; ++i)
                plen = (plen << 8) | f[2 + i];
            hl = 10;
        }
        bool data_frame = opcode == 1 || opcode == 2 || opcode == 0;
        if (data_frame && plen > WSL_BIG_FRAME) {
            /* big: never a bench message; classify by its start, discard the rest as it comes */
            if (avail < hl + WSL_CLASSIFY)
                break;
            ++W.frames;
            W.last_frame_ns = t_recv;
            if (opcode == 1)
                on_text(c, (const char *)f + hl, WSL_CLASSIFY, false, t_recv);
            c->fragmented = !fin;
            size_t here = avail - hl < plen ? avail - hl : (size_t)plen;
            c->skip = plen - here;
            off += hl + here;
            continue;
        }
        if (avail < hl + plen)
            break;
        ++W.frames;
        const char *payload = (const char *)f + hl;
        if (opcode <= 2 && !(W.proto == WSL_SIO && plen == 1 && payload[0] == '2'))
            W.last_frame_ns = t_recv; /* quiet means no messages: pings come on their own clock */
        off += hl + (size_t)plen;
        switch (opcode) {
        case 0: /* continuation: bench messages are never fragmented */
            c->fragmented = !fin;
            break;
        case 1:
            c->fragmented = !fin;
            on_text(c, payload, (size_t)plen, fin, t_recv);
            break;
        case 2:
            break;
        case 8: { /* close: answer it, then the session is over */
            uint8_t code[2] = {0x03, 0xe8};
            ws_send(c, 8, plen >= 2 ? payload : (const char *)code, 2);
            char why[96];
            snprintf(why, sizeof(why), "close frame %u from the server",
                     plen >= 2 ? ((unsigned)(uint8_t)payload[0] << 8 | (uint8_t)payload[1]) : 1005u);
            conn_fail(c, why);
            return -1;
        }
        case 9:
            ++W.ws_pings;
            ws_send(c, 10, payload, (size_t)plen);
            break;
        default:
            break;
        }
    }
    return c->state == ST_OPEN ? (ssize_t)off : -1;
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* The handshake's answer: 101 with the right Sec-WebSocket-Accept. Returns the header length, 0 if incomplete, -1 if
 * refused. */
static ssize_t check_handshake(wsl_conn_t *c, const char *p, size_t len)
{
    const char *end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len > 16384 ? -1 : 0;
    size_t hlen = (size_t)(end - p) + 4;
    if (!has_prefix(p, hlen, "HTTP/1.1 101")) {
        const char *eol = memchr(p, '\r', hlen);
        fprintf(stderr, "ws_load: session %u: the upgrade was answered %.*s\n", c->index, (int)(eol - p), p);
        return -1;
    }
    unsigned char digest[SHA_DIGEST_LENGTH];
    char concat[96], accept[64];
    snprintf(concat, sizeof(concat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
    SHA1((const unsigned char *)concat, strlen(concat), digest);
    base64(digest, sizeof(digest), accept);
    for (const char *l = p; l < end; l = (const char *)memchr(l, '\n', (size_t)(end - l)) + 1) {
        if (strncasecmp(l, "sec-websocket-accept:", 21) == 0) {
            const char *v = l + 21;
            while (*v == ' ')
                ++v;
            if (strncmp(v, accept, strlen(accept)) == 0)
                return (ssize_t)hlen;
            break;
        }
        if (memchr(l, '\n', (size_t)(end - l)) == NULL)
            break;
    }
    fprintf(stderr, "ws_load: session %u: wrong or missing Sec-WebSocket-Accept\n", c->index);
    return -1;
}

static void conn_send_handshake(wsl_conn_t *c)
{
    unsigned char raw[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = rnd32();
        memcpy(raw + i, &r, 4);
    }
    base64(raw, sizeof(raw), c->key);
    char query[160] = "", req[768 + WSL_TOKEN_MAX], token[WSL_TOKEN_MAX], authz[WSL_TOKEN_MAX + 32] = "";
    const char *sep = strchr(W.path, '?') != NULL ? "&" : "?";
    if (!W.auth && W.user != NULL)
        snprintf(query, sizeof(query), "%suser_id=%s", sep, W.user);
    else if (!W.auth && W.user_prefix != NULL)
        snprintf(query, sizeof(query), "%suser_id=%s%u", sep, W.user_prefix, W.first_index + c->index);
    /* native: the token on the upgrade (Socket.IO sends it in CONNECT) */
    if (W.proto == WSL_NATIVE && session_token(c->index, token))
        snprintf(authz, sizeof(authz), "Authorization: Bearer %s\r\n", token);
    int n = snprintf(req, sizeof(req),
                     "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     W.path, query, W.host, W.port, c->key, authz);
    c->state = ST_HANDSHAKE;
    if (sock_send(c->fd, &c->out, &c->want_write, c, req, (size_t)n) != 0)
        conn_fail(c, "write failed");
}

static void conn_on_event(wsl_conn_t *c, uint32_t events)
{
    static uint8_t chunk[WSL_READ_CHUNK];
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) {
            conn_fail(c, strerror(err));
            return;
        }
        conn_send_handshake(c);
        return;
    }
    if ((events & EPOLLOUT) && sock_flush(c->fd, &c->out, &c->want_write, c) != 0) {
        conn_fail(c, "write failed");
        return;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                conn_fail(c, strerror(errno));
            return;
        }
        if (n == 0) {
            conn_fail(c, "the server closed the connection");
            return;
        }
        uint64_t t = now_ns();
        const uint8_t *data = chunk;
        size_t len = (size_t)n;
        if (c->in.len != 0) { /* a partial frame (or the handshake's answer) was waiting */
            buf_append(&c->in, chunk, (size_t)n);
            data = (const uint8_t *)c->in.p, len = c->in.len;
        }
        size_t used = 0;
        if (c->state == ST_HANDSHAKE) {
            ssize_t h = check_handshake(c, (const char *)data, len);
            if (h < 0) {
                conn_fail(c, "handshake refused");
                return;
            }
            if (h == 0) {
                if (c->in.len == 0)
                    buf_append(&c->in, chunk, (size_t)n);
                continue;
            }
            c->state = ST_OPEN;
            used = (size_t)h;
        }
        ssize_t k = parse_frames(c, data + used, len - used, t);
        if (k < 0)
            return;
        used += (size_t)k;
        if (c->in.len != 0) {
            buf_consume(&c->in, used);
        } else if (used < len) {
            buf_append(&c->in, data + used, len - used);
        }
        if ((size_t)n < sizeof(chunk))
            return; /* level-triggered: the rest, if any, comes with the next wait */
    }
}

/* Opens sessions until --connect-inflight handshakes are in progress or all are started. */
static void start_connects(void)
{
    while (W.next_to_open < W.sessions && W.inflight < W.inflight_max) {
        wsl_conn_t *c = &W.conns[W.next_to_open];
        c->index = (uint32_t)W.next_to_open++;
        ++W.inflight;
        if ((c->fd = tcp_connect()) < 0) {
            c->state = ST_CONNECTING;
            conn_fail(c, strerror(errno));
            continue;
        }
        c->state = ST_CONNECTING;
        c->want_write = true;
        ep_set(c->fd, c, true, true);
    }
}

/* ---- the publisher: POST /v1/notifications, open loop ------------------------------------------------------------ */

static void http_fail(wsl_http_t *h, const char *why)
{
    /* an idle keep-alive connection the server closed loses nothing: only the requests in flight are failures */
    if (++W.http_closes <= 5 || h->count != 0)
        fprintf(stderr, "ws_load: publisher connection: %s (%zu requests in flight lost)\n", why, h->count);
    W.post_errors += (int)h->count;
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    free(h->in.p), free(h->out.p);
    h->in = h->out = (wsl_buf_t){NULL};
    h->count = 0;
}

/* Reads answers: status line, headers, Content-Length body; each answers the oldest request in flight. */
static void http_on_event(wsl_http_t *h, uint32_t events)
{
    static char chunk[65536];
    if (!h->connected) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0) {
            http_fail(h, strerror(err));
            return;
        }
        h->connected = true;
    }
    bool ww = h->out.len != 0 || (events & EPOLLOUT);
    if (sock_flush(h->fd, &h->out, &ww, h) != 0) {
        http_fail(h, "write failed");
        return;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    for (;;) {
        ssize_t n = read(h->fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                http_fail(h, strerror(errno));
            break;
        }
        if (n == 0) {
            http_fail(h, "closed by the server");
            return;
        }
        buf_append(&h->in, chunk, (size_t)n);
        if ((size_t)n < sizeof(chunk))
            break;
    }
    uint64_t t = now_ns();
    while (h->in.len != 0) {
        const char *p = h->in.p, *end = memmem(p, h->in.len, "\r\n\r\n", 4);
        if (end == NULL)
            return;
        size_t hlen = (size_t)(end - p) + 4, clen = 0;
        for (const char *l = p; l < end;) {
            if (strncasecmp(l, "content-length:", 15) == 0)
                clen = strtoul(l + 15, NULL, 10);
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            if (nl == NULL)
                break;
            l = nl + 1;
        }
        if (h->in.len < hlen + clen)
            return;
        int status = h->in.len > 12 ? atoi(p + 9) : 0;
        if (h->count == 0) {
            http_fail(h, "an answer to no request");
            return;
        }
        uint64_t sent = h->pending[h->head];
        h->head = (h->head + 1) % h->cap;
        --h->count;
        if (status == 201) {
            W.post_lat_ns[W.post_ok++] = t - sent;
        } else if (++W.post_bad <= 5) {
            fprintf(stderr, "ws_load: POST answered %d: %.*s\n", status, (int)(clen < 300 ? clen : 300), p + hlen);
        }
        buf_consume(&h->in, hlen + clen);
    }
}

static void http_open(wsl_http_t *h)
{
    *h = (wsl_http_t){.fd = tcp_connect(), .cap = 1024};
    h->pending = xrealloc(NULL, h->cap * sizeof(*h->pending));
    if (h->fd < 0) {
        fprintf(stderr, "ws_load: publisher cannot connect: %s\n", strerror(errno));
        exit(1);
    }
    ep_set(h->fd, h, true, true);
}

/* Sends the notifications that are due (open loop: request k at go + k / rate, whatever came back). */
static void publish_due(uint64_t t)
{
    while (W.published < W.publish_count) {
        uint64_t due = W.go_ns + (uint64_t)((double)W.published * 1e9 / W.publish_rate);
        if (due > t)
            return;
        /* the connection with the fewest requests in flight (HTTP/1.1 pipelining when all are busy) */
        wsl_http_t *h = NULL;
        for (int i = 0; i < W.publish_conns; ++i)
            if (W.http[i].fd >= 0 && (h == NULL || W.http[i].count < h->count))
                h = &W.http[i];
        if (h == NULL || h->count == h->cap) {
            fprintf(stderr, "ws_load: no publisher connection can take a request\n");
            ++W.post_errors, ++W.published;
            continue;
        }
        char body[256], req[768 + WSL_TOKEN_MAX];
        uint64_t ts = now_ns();
        int bl = snprintf(body, sizeof(body), "{\"user_id\":\"%s\",\"kind\":\"bench\",\"message\":\"wsb %d %" PRIu64 "\"}",
                          W.publish_user, W.published, ts);
        int n = snprintf(req, sizeof(req),
                         "POST /v1/notifications HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                         "%s%s%sContent-Length: %d\r\n\r\n%s",
                         W.host, W.port, W.keys.secret_len != 0 ? "Authorization: Bearer " : "", W.publisher_token,
                         W.keys.secret_len != 0 ? "\r\n" : "", bl, body);
        if (ts - due > W.lag_max_ns)
            W.lag_max_ns = ts - due;
        h->pending[(h->head + h->count) % h->cap] = ts;
        ++h->count;
        ++W.published;
        bool ww = h->out.len != 0;
        if (sock_send(h->fd, &h->out, &ww, h, req, (size_t)n) != 0)
            http_fail(h, "write failed");
    }
}

/* ---- control and results ---------------------------------------------------------------------------------------- */

static void send_chat(int seq)
{
    wsl_conn_t *c = &W.conns[0];
    char msg[256];
    int n;
    uint64_t ts = now_ns();
    if (W.proto == WSL_NATIVE)
        n = snprintf(msg, sizeof(msg), "{\"type\":\"send_message\",\"message\":\"wsb %d %" PRIu64 " hello from the bench\"}", seq,
                     ts);
    else
        n = snprintf(msg, sizeof(msg), "42[\"send_message\",{\"message\":\"wsb %d %" PRIu64 " hello from the bench\"}]", seq, ts);
    if (c->state == ST_OPEN)
        ws_send_text(c, msg, (size_t)n);
    else
        fprintf(stderr, "ws_load: the sender's session is not open\n");
    ++W.sent;
    W.last_send_ns = ts;
}

static void on_go(void)
{
    if (W.go)
        return;
    W.go = true;
    W.go_ns = now_ns();
}

static void on_stdin(void)
{
    ssize_t n = read(0, W.stdin_buf + W.stdin_len, sizeof(W.stdin_buf) - 1 - W.stdin_len);
    if (n <= 0) {
        W.stdin_open = false;
        epoll_ctl(W.ep, EPOLL_CTL_DEL, 0, NULL);
        W.stopping = true;
        return;
    }
    W.stdin_len += (size_t)n;
    char *nl;
    while ((nl = memchr(W.stdin_buf, '\n', W.stdin_len)) != NULL) {
        *nl = '\0';
        if (strcmp(W.stdin_buf, "go") == 0)
            on_go();
        else if (strcmp(W.stdin_buf, "stop") == 0)
            W.stopping = true;
        size_t used = (size_t)(nl - W.stdin_buf) + 1;
        memmove(W.stdin_buf, nl + 1, W.stdin_len - used);
        W.stdin_len -= used;
    }
    if (W.stdin_len == sizeof(W.stdin_buf) - 1)
        W.stdin_len = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return -1;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
    k = k == 0 ? 0 : k - 1;
    return (double)sorted[k < n ? k : n - 1] / 1e6;
}

static void print_result(void)
{
    uint64_t missing = 0, incomplete = 0;
    for (int i = 0; i < W.sessions; ++i) {
        if (W.expect != 0 && W.conns[i].distinct < W.expect) {
            missing += W.expect - W.conns[i].distinct;
            ++incomplete;
        }
    }
    if (W.latencies_path != NULL) {
        FILE *f = fopen(W.latencies_path, "w");
        if (f == NULL) {
            fprintf(stderr, "ws_load: cannot write %s: %s\n", W.latencies_path, strerror(errno));
        } else {
            for (size_t i = 0; i < W.nlats; ++i)
                fprintf(f, "%u %u.%u\n", W.lats[i].seq, W.lats[i].lat_us10 / 10, W.lats[i].lat_us10 % 10);
            fclose(f);
        }
    }
    qsort(W.post_lat_ns, (size_t)W.post_ok, sizeof(uint64_t), cmp_u64);
    printf("result {\"sessions\":%d,\"opened\":%d,\"failed\":%d,\"closed\":%d,\"joined\":%d,\"open_s\":%.3f,"
           "\"ws_pings\":%" PRIu64 ",\"eio_pings\":%" PRIu64 ",\"error_frames\":%" PRIu64 ",\"frames\":%" PRIu64 ","
           "\"expect\":%u,\"received\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"unexpected\":%" PRIu64 ",\"missing\":%" PRIu64
           ",\"incomplete_sessions\":%" PRIu64 ",\"sent\":%d,\"published\":%d,\"post_ok\":%d,\"post_bad\":%d,"
           "\"post_errors\":%d,\"post_p50_ms\":%.3f,\"post_p99_ms\":%.3f,\"post_max_ms\":%.3f,\"publish_lag_max_ms\":%.3f}\n",
           W.sessions, W.nopen, W.nfailed, W.nclosed, W.njoined, W.ready_ns != 0 ? (double)(W.ready_ns - W.started_ns) / 1e9 : -1.0,
           W.ws_pings, W.eio_pings, W.error_frames, W.frames, W.expect, W.received, W.duplicates, W.unexpected, missing, incomplete,
           W.sent, W.published, W.post_ok, W.post_bad, W.post_errors, pct_ms(W.post_lat_ns, (size_t)W.post_ok, 50),
           pct_ms(W.post_lat_ns, (size_t)W.post_ok, 99), pct_ms(W.post_lat_ns, (size_t)W.post_ok, 100), (double)W.lag_max_ns / 1e6);
    fflush(stdout);
}

/* ---- options and the loop --------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: ws_load --port PORT [options]\n"
               "The WebSocket benchmark's load client (bench/run.sh drives it): opens sessions, holds them (answering pings),\n"
               "optionally joins them to a chat room, sends tagged chat messages and publishes tagged notifications, and\n"
               "reports per-message latencies and exactly-once counts. Controlled by lines on stdin: go, stop.\n"
               "\n"
               "  --host ADDR              server address (IPv4, default 127.0.0.1)\n"
               "  --port PORT              server port\n"
               "  --proto native|sio       notigate's native protocol (default) or Socket.IO v5 over WebSocket\n"
               "  --path PATH              upgrade path (default /v1/ws, or /socket.io/?EIO=4&transport=websocket)\n"
               "  --sessions N             sessions to open (default 0)\n"
               "  --source ADDR            bind the client sockets to this local address (e.g. 127.0.0.2)\n"
               "  --connect-inflight N     handshakes in progress at once (default 100)\n"
               "  --user U                 every session names user U (query user_id, or Socket.IO auth with --auth)\n"
               "  --user-prefix P          session i names user P<first-index + i>\n"
               "  --first-index K          index of this process's first session in user and chat names (default 0)\n"
               "  --auth                   Socket.IO: send the user in the CONNECT payload {\"user_id\"} instead of the query\n"
               "  --join ROOM              sessions join chat room ROOM as <name-prefix><index> (Socket.IO: \"lobby\" only\n"
               "                           without --join-ack: the seed chat's join(username), which has no rooms)\n"
               "  --join-count K           only the first K sessions join (default all)\n"
               "  --join-ack               Socket.IO: join with an acknowledgement and wait for it (notigate); without,\n"
               "                           a join counts as done once sent (the seed chat answers the joiner nothing)\n"
               "  --name-prefix P          chat usernames (default b)\n"
               "  --quiet-ms MS            ready once all sessions are open and joined and no frame came for MS (default 500)\n"
               "  --send-messages M        on go, session 0 sends M chat messages \"wsb <seq> <time>\"\n"
               "  --send-interval-ms MS    one every MS (default 1000)\n"
               "  --publish-count M        on go, POST M notifications /v1/notifications (message \"wsb <seq> <time>\")\n"
               "  --publish-rate R         per second, open loop (default 1000)\n"
               "  --publish-conns C        keep-alive HTTP/1.1 connections (default 8)\n"
               "  --publish-user U         the notifications' user_id (default --user)\n"
               "  --expect M               bench messages every session should receive (seqs 0..M-1)\n"
               "  --latencies FILE         write \"seq latency_us\" per message received\n"
               "  --auto                   go once ready; stop --linger-ms after the last send, or once complete\n"
               "  --linger-ms MS           default 3000\n"
               "  -h, --help               this text\n"
               "\n"
               "NOTIGATE_JWT_SECRET (environment): the gateway's HS256 secret; each session then sends a token of its own\n"
               "(native: Authorization header on the upgrade; Socket.IO: auth.token in CONNECT) for its user or its chat\n"
               "name, and the publisher a publisher's token. Without it no credential is sent.\n"
               "\n"
               "stdout: \"ready opened=N failed=N joined=N\", \"complete\" (every session has --expect messages), and at the\n"
               "end \"result {json}\": sessions opened, failed, closed by the server, pings answered, messages received,\n"
               "duplicates, missing, and the publisher's answers and POST latencies.\n");
}

static int parse_options(int argc, char **argv)
{
    static const struct option opts[] = {{"host", 1, NULL, 'H'},
                                         {"port", 1, NULL, 'p'},
                                         {"proto", 1, NULL, 'P'},
                                         {"path", 1, NULL, 'a'},
                                         {"sessions", 1, NULL, 'n'},
                                         {"source", 1, NULL, 's'},
                                         {"connect-inflight", 1, NULL, 'i'},
                                         {"user", 1, NULL, 'u'},
                                         {"user-prefix", 1, NULL, 'U'},
                                         {"first-index", 1, NULL, 'f'},
                                         {"auth", 0, NULL, 'A'},
                                         {"join", 1, NULL, 'j'},
                                         {"join-count", 1, NULL, 'J'},
                                         {"join-ack", 0, NULL, 'k'},
                                         {"name-prefix", 1, NULL, 'N'},
                                         {"quiet-ms", 1, NULL, 'q'},
                                         {"send-messages", 1, NULL, 'm'},
                                         {"send-interval-ms", 1, NULL, 'I'},
                                         {"publish-count", 1, NULL, 'c'},
                                         {"publish-rate", 1, NULL, 'r'},
                                         {"publish-conns", 1, NULL, 'C'},
                                         {"publish-user", 1, NULL, 'W'},
                                         {"expect", 1, NULL, 'e'},
                                         {"latencies", 1, NULL, 'l'},
                                         {"auto", 0, NULL, 'o'},
                                         {"linger-ms", 1, NULL, 'L'},
                                         {"help", 0, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    W.host = "127.0.0.1", W.name_prefix = "b", W.inflight_max = 100, W.quiet_ms = 500, W.send_interval_ms = 1000;
    W.publish_rate = 1000, W.publish_conns = 8, W.linger_ms = 3000, W.join_count = -1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            W.host = optarg;
            break;
        case 'p':
            W.port = atoi(optarg);
            break;
        case 'P':
            if (strcmp(optarg, "native") == 0)
                W.proto = WSL_NATIVE;
            else if (strcmp(optarg, "sio") == 0)
                W.proto = WSL_SIO;
            else
                return -1;
            break;
        case 'a':
            W.path = optarg;
            break;
        case 'n':
            W.sessions = atoi(optarg);
            break;
        case 's':
            W.source = optarg;
            break;
        case 'i':
            W.inflight_max = atoi(optarg);
            break;
        case 'u':
            W.user = optarg;
            break;
        case 'U':
            W.user_prefix = optarg;
            break;
        case 'f':
            W.first_index = atoi(optarg);
            break;
        case 'A':
            W.auth = true;
            break;
        case 'j':
            W.join_room = optarg;
            break;
        case 'J':
            W.join_count = atoi(optarg);
            break;
        case 'k':
            W.join_ack = true;
            break;
        case 'N':
            W.name_prefix = optarg;
            break;
        case 'q':
            W.quiet_ms = atoi(optarg);
            break;
        case 'm':
            W.send_messages = atoi(optarg);
            break;
        case 'I':
            W.send_interval_ms = atoi(optarg);
            break;
        case 'c':
            W.publish_count = atoi(optarg);
            break;
        case 'r':
            W.publish_rate = atof(optarg);
            break;
        case 'C':
            W.publish_conns = atoi(optarg);
            break;
        case 'W':
            W.publish_user = optarg;
            break;
        case 'e':
            W.expect = (unsigned)atoi(optarg);
            break;
        case 'l':
            W.latencies_path = optarg;
            break;
        case 'o':
            W.auto_go = true;
            break;
        case 'L':
            W.linger_ms = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || W.port <= 0 || W.port > 65535 || W.sessions < 0 || W.inflight_max < 1 || W.publish_rate <= 0 ||
        W.publish_conns < 1 || W.quiet_ms < 0)
        return -1;
    if (W.publish_user == NULL)
        W.publish_user = W.user;
    if (W.publish_count > 0 && W.publish_user == NULL) {
        fprintf(stderr, "ws_load: --publish-count needs --publish-user or --user\n");
        return -1;
    }
    if (W.send_messages > 0 && (W.sessions < 1 || W.join_room == NULL || W.join_count == 0)) {
        fprintf(stderr, "ws_load: --send-messages needs a session that joins (--sessions, --join)\n");
        return -1;
    }
    if (W.path == NULL)
        W.path = W.proto == WSL_NATIVE ? "/v1/ws" : "/socket.io/?EIO=4&transport=websocket";
    W.dst = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)W.port)};
    if (inet_pton(AF_INET, W.host, &W.dst.sin_addr) != 1) {
        fprintf(stderr, "ws_load: --host must be an IPv4 address\n");
        return -1;
    }
    if (W.source != NULL) {
        W.src = (struct sockaddr_in){.sin_family = AF_INET};
        if (inet_pton(AF_INET, W.source, &W.src.sin_addr) != 1) {
            fprintf(stderr, "ws_load: --source must be an IPv4 address\n");
            return -1;
        }
    }
    return 0;
}

static bool all_joined(void)
{
    if (W.join_room == NULL)
        return true;
    int want = W.join_count < 0 || W.join_count > W.sessions ? W.sessions : W.join_count;
    return W.njoined + W.njoin_gone >= want;
}

int main(int argc, char **argv)
{
    if (parse_options(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) { /* one descriptor per session */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)W.sessions + W.publish_conns + 16 > rl.rlim_cur) {
        fprintf(stderr, "ws_load: %d sessions need more open files than the limit (%llu): spread them over processes\n", W.sessions,
                (unsigned long long)rl.rlim_cur);
        return 2;
    }
    W.rng = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    const char *secret = getenv("NOTIGATE_JWT_SECRET");
    if (secret != NULL && secret[0] != '\0') {
        char err[160];
        if (auth_keys_set_secret(&W.keys, secret, strlen(secret), err, sizeof(err)) != 0) { /* read as the gateway reads it */
            fprintf(stderr, "ws_load: NOTIGATE_JWT_SECRET: %s\n", err);
            return 2;
        }
        unsetenv("NOTIGATE_JWT_SECRET");
        mint_token("bench-publisher", "publish", W.publisher_token);
    }
    if ((W.ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        perror("ws_load: epoll_create1");
        return 1;
    }
    W.conns = calloc((size_t)W.sessions + 1, sizeof(*W.conns));
    for (int i = 0; i < W.sessions; ++i)
        W.conns[i].fd = -1, W.conns[i].state = ST_CLOSED;
    if (W.publish_count > 0) {
        W.http = calloc((size_t)W.publish_conns, sizeof(*W.http));
        W.post_lat_ns = calloc((size_t)W.publish_count, sizeof(uint64_t));
        for (int i = 0; i < W.publish_conns; ++i)
            http_open(&W.http[i]);
    }
    W.stdin_open = !W.auto_go;
    if (W.stdin_open) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(W.ep, EPOLL_CTL_ADD, 0, &ev) != 0) {
            fprintf(stderr, "ws_load: stdin cannot be polled (%s): give --auto, or go/stop lines through a pipe\n",
                    strerror(errno));
            return 2;
        }
    }
    W.started_ns = W.last_frame_ns = now_ns();
    start_connects();

    struct epoll_event events[WSL_MAX_EVENTS];
    while (!W.stopping) {
        uint64_t t = now_ns();
        /* ready: every session open (or failed) and joined, then quiet */
        if (!W.ready && W.next_to_open == W.sessions && W.inflight == 0 && all_joined() &&
            t - W.last_frame_ns >= (uint64_t)W.quiet_ms * 1000000) {
            W.ready = true;
            W.ready_ns = t;
            say("ready opened=%d failed=%d joined=%d open_s=%.3f", W.nopen, W.nfailed, W.njoined, (double)(t - W.started_ns) / 1e9);
            if (W.auto_go)
                on_go();
        }
        int timeout = 50;
        if (W.go) {
            while (W.sent < W.send_messages && t >= W.go_ns + (uint64_t)W.sent * (uint64_t)W.send_interval_ms * 1000000)
                send_chat(W.sent);
            if (W.publish_count > 0) {
                publish_due(t);
                timeout = 1;
            }
            bool sends_done = W.sent >= W.send_messages && W.published >= W.publish_count &&
                              W.post_ok + W.post_bad + W.post_errors >= W.publish_count; /* every POST answered too */
            if (!W.complete_said && W.expect != 0 && W.received + 0 >= (uint64_t)W.nopen * W.expect && sends_done) {
                W.complete_said = true;
                say("complete received=%" PRIu64, W.received);
                if (W.auto_go)
                    W.stopping = true;
            }
            if (W.auto_go && sends_done && (W.expect == 0 || W.complete_said) && W.last_send_ns != 0 &&
                t > W.last_send_ns + (uint64_t)W.linger_ms * 1000000)
                W.stopping = true;
            if (W.auto_go && sends_done &&
                t > W.go_ns + (uint64_t)W.linger_ms * 1000000 + (uint64_t)W.send_messages * (uint64_t)W.send_interval_ms * 1000000 +
                        (uint64_t)((double)W.publish_count * 1e9 / W.publish_rate))
                W.stopping = true; /* not complete: stop anyway, the result says what is missing */
            if (W.sent < W.send_messages)
                timeout = 1;
        }
        if (W.stopping)
            break;
        int n = epoll_wait(W.ep, events, WSL_MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            perror("ws_load: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; ++i) {
            void *ptr = events[i].data.ptr;
            if (ptr == NULL)
                on_stdin();
            else if (W.http != NULL && (wsl_http_t *)ptr >= W.http && (wsl_http_t *)ptr < W.http + W.publish_conns)
                http_on_event(ptr, events[i].events);
            else
                conn_on_event(ptr, events[i].events);
        }
        start_connects();
    }
    print_result();
    return 0;
}
