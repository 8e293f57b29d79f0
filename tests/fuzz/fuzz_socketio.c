/*
 * libFuzzer target: the Engine.IO v4 / Socket.IO v5 side of a Socket.IO session, every text frame a client sends
 * (/socket.io/): sio_parse_packet, then for a CONNECT sio_parse_auth on its payload and for an EVENT sio_parse_event.
 * Whatever the bytes: one of the known error codes, or fields the handler may act on (an ack id in range, a payload
 * inside the frame, a namespace it may name back in a text frame, a valid user id, a valid join). Round trips: the
 * packet header written back (type, namespace, ack id, payload) parses to the same packet, and an accepted event or
 * auth written back as JSON (json_out) parses to the same fields.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "fuzz.h"
#include "json_out.h"
#include "valid.h"
#include "wsmsg.h"

static bool bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool known_error(const char *code)
{
    static const char *const codes[] = {"invalid_packet", "unsupported",     "invalid_event", "invalid_username",
                                        "invalid_room",   "invalid_message", "unknown_event"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); ++i)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

/* Writes pkt back as a frame ("4", the Socket.IO type, the namespace, the ack id, the payload) and parses it again. */
static void check_header_round_trip(const sio_packet_t *pkt, char sio_type)
{
    json_out_t o = {NULL};
    char head[3] = {'4', sio_type, '\0'};
    json_out_cstr(&o, head);
    if (pkt->nsp_len != 0) {
        json_out_raw(&o, pkt->nsp, pkt->nsp_len);
        json_out_lit(&o, ",");
    }
    if (pkt->ack_id >= 0)
        json_out_i64(&o, pkt->ack_id);
    json_out_raw(&o, pkt->payload, pkt->payload_len);
    sio_packet_t again;
    FUZZ_ASSERT(sio_parse_packet(&again, o.buf, o.len) == pkt->kind);
    FUZZ_ASSERT(again.ack_id == pkt->ack_id && bytes_eq(again.payload, again.payload_len, pkt->payload, pkt->payload_len));
    FUZZ_ASSERT(bytes_eq(again.nsp, again.nsp_len, pkt->nsp, pkt->nsp_len));
    json_out_dispose(&o);
}

static void check_auth(const char *payload, size_t len)
{
    sio_auth_t auth, again;
    if (sio_parse_auth(&auth, payload, len) != 0) {
        FUZZ_ASSERT(auth.error != NULL && auth.user == NULL && !auth.has_since);
        sio_auth_dispose(&auth);
        return;
    }
    FUZZ_ASSERT(auth.error == NULL);
    FUZZ_ASSERT(auth.user == NULL || valid_user_id(auth.user, auth.user_len));
    FUZZ_ASSERT(auth.has_since || auth.since == 0);
    FUZZ_ASSERT(auth.since <= INT64_MAX);
    json_out_t o = {NULL};
    json_out_lit(&o, "{\"user_id\":");
    if (auth.user != NULL)
        json_out_str(&o, auth.user, auth.user_len);
    else
        json_out_lit(&o, "null");
    if (auth.has_since) {
        json_out_lit(&o, ",\"since\":");
        json_out_u64(&o, auth.since);
    }
    json_out_lit(&o, "}");
    FUZZ_ASSERT(sio_parse_auth(&again, o.buf, o.len) == 0);
    FUZZ_ASSERT(bytes_eq(again.user, again.user_len, auth.user, auth.user_len) && again.has_since == auth.has_since &&
                again.since == auth.since);
    sio_auth_dispose(&again);
    json_out_dispose(&o);
    sio_auth_dispose(&auth);
}

static void check_event(const char *payload, size_t len)
{
    sio_event_t ev, again;
    json_out_t o = {NULL};
    switch (sio_parse_event(&ev, payload, len)) {
    case SIO_EV_ERROR:
        FUZZ_ASSERT(ev.code != NULL && known_error(ev.code) && ev.error != NULL && ev.error[0] != '\0');
        break;
    case SIO_EV_JOIN:
        FUZZ_ASSERT(wsmsg_valid_username(ev.join.username, ev.join.username_len));
        FUZZ_ASSERT(valid_user_id(ev.join.room, ev.join.room_len));
        json_out_lit(&o, "[\"join\",{\"username\":");
        json_out_str(&o, ev.join.username, ev.join.username_len);
        json_out_lit(&o, ",\"room\":");
        json_out_str(&o, ev.join.room, ev.join.room_len);
        json_out_lit(&o, "}]");
        FUZZ_ASSERT(sio_parse_event(&again, o.buf, o.len) == SIO_EV_JOIN);
        FUZZ_ASSERT(bytes_eq(again.join.username, again.join.username_len, ev.join.username, ev.join.username_len));
        FUZZ_ASSERT(bytes_eq(again.join.room, again.join.room_len, ev.join.room, ev.join.room_len));
        sio_event_dispose(&again);
        break;
    case SIO_EV_SEND_MESSAGE:
        FUZZ_ASSERT(ev.message != NULL);
        json_out_lit(&o, "[\"send_message\",");
        json_out_str(&o, ev.message, ev.message_len);
        json_out_lit(&o, "]");
        FUZZ_ASSERT(sio_parse_event(&again, o.buf, o.len) == SIO_EV_SEND_MESSAGE);
        FUZZ_ASSERT(bytes_eq(again.message, again.message_len, ev.message, ev.message_len));
        sio_event_dispose(&again);
        break;
    case SIO_EV_LEAVE:
        break;
    default:
        FUZZ_ASSERT(!"an event kind sio_parse_event does not define");
    }
    json_out_dispose(&o);
    sio_event_dispose(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    sio_packet_t pkt;
    sio_kind_t kind = sio_parse_packet(&pkt, in, size);
    FUZZ_ASSERT(kind == pkt.kind);
    FUZZ_ASSERT(pkt.ack_id >= -1 && pkt.ack_id <= WSMSG_ACK_ID_MAX);
    if (kind == SIO_PKT_ERROR) {
        FUZZ_ASSERT(pkt.code != NULL && known_error(pkt.code) && pkt.error != NULL && pkt.error[0] != '\0');
        return 0;
    }
    if (kind == SIO_PKT_CONNECT || kind == SIO_PKT_CONNECT_OTHER || kind == SIO_PKT_EVENT || kind == SIO_PKT_EVENT_OTHER) {
        /* a Socket.IO packet: its header and payload are the frame, in order */
        FUZZ_ASSERT(size >= 2 && in[0] == '4');
        FUZZ_ASSERT(pkt.payload >= in + 2 && pkt.payload + pkt.payload_len == in + size);
        FUZZ_ASSERT(pkt.nsp == NULL || (pkt.nsp == in + 2 && pkt.nsp + pkt.nsp_len <= pkt.payload));
        check_header_round_trip(&pkt, in[1]);
    }
    switch (kind) {
    case SIO_PKT_CONNECT_OTHER:
        /* the server names it back in a text frame: printable ASCII, and not the default namespace */
        FUZZ_ASSERT(pkt.nsp_len >= 2 && pkt.nsp_len <= WSMSG_NSP_MAX && pkt.nsp[0] == '/');
        for (size_t i = 0; i < pkt.nsp_len; ++i)
            FUZZ_ASSERT(pkt.nsp[i] >= 0x20 && pkt.nsp[i] <= 0x7e && pkt.nsp[i] != ',');
        break;
    case SIO_PKT_CONNECT:
        FUZZ_ASSERT(pkt.nsp_len <= 1);
        check_auth(pkt.payload, pkt.payload_len);
        break;
    case SIO_PKT_EVENT:
        FUZZ_ASSERT(pkt.nsp_len <= 1);
        check_event(pkt.payload, pkt.payload_len);
        break;
    case SIO_PKT_EVENT_OTHER:
        FUZZ_ASSERT(pkt.nsp_len >= 2);
        break;
    case SIO_PKT_IGNORE:
    case SIO_PKT_CLOSE:
    case SIO_PKT_PING:
        break;
    default:
        FUZZ_ASSERT(!"a kind sio_parse_packet does not define");
    }
    return 0;
}
