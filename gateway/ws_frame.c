#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "ws_frame.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* UTF-8 validation states: 0 between characters; 1-3 continuation bytes still expected (80-BF); 4-7 the second byte
 * of a lead byte whose range is narrower (no overlong forms, no surrogates, nothing past U+10FFFF); 8 failed. */
enum { U8_OK = 0, U8_AFTER_E0 = 4, U8_AFTER_ED, U8_AFTER_F0, U8_AFTER_F4, U8_BAD };

bool ws_utf8_feed(uint8_t *state, const uint8_t *s, size_t len)
{
    uint8_t st = *state;
    size_t i = 0;
    if (st == U8_BAD)
        return false;
    while (i < len) {
        if (st == U8_OK) {
            /* ASCII runs, 8 bytes at a time */
            uint64_t w;
            while (i + 8 <= len && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ull) == 0))
                i += 8;
            if (i == len)
                break;
        }
        uint8_t c = s[i++];
        switch (st) {
        case U8_OK:
            if (c < 0x80)
                break;
            if (c < 0xc2)
                goto Bad; /* a continuation byte, or an overlong 2-byte form */
            if (c < 0xe0)
                st = 1;
            else if (c == 0xe0)
                st = U8_AFTER_E0;
            else if (c == 0xed)
                st = U8_AFTER_ED;
            else if (c < 0xf0)
                st = 2;
            else if (c == 0xf0)
                st = U8_AFTER_F0;
            else if (c < 0xf4)
                st = 3;
            else if (c == 0xf4)
                st = U8_AFTER_F4;
            else
                goto Bad;
            break;
        case 1:
        case 2:
        case 3:
            if ((c & 0xc0) != 0x80)
                goto Bad;
            --st;
            break;
        case U8_AFTER_E0: /* E0 A0-BF: not overlong */
            if (c < 0xa0 || c > 0xbf)
                goto Bad;
            st = 1;
            break;
        case U8_AFTER_ED: /* ED 80-9F: not a surrogate */
            if (c < 0x80 || c > 0x9f)
                goto Bad;
            st = 1;
            break;
        case U8_AFTER_F0: /* F0 90-BF: not overlong */
            if (c < 0x90 || c > 0xbf)
                goto Bad;
            st = 2;
            break;
        case U8_AFTER_F4: /* F4 80-8F: not past U+10FFFF */
            if (c < 0x80 || c > 0x8f)
                goto Bad;
            st = 2;
            break;
        default:
            goto Bad;
        }
    }
    *state = st;
    return true;
Bad:
    *state = U8_BAD;
    return false;
}

bool ws_utf8_valid(const uint8_t *s, size_t len)
{
    uint8_t st = WS_UTF8_OK;
    return ws_utf8_feed(&st, s, len) && st == WS_UTF8_OK;
}

bool ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) || (code >= 3000 && code <= 4999);
}

void ws_parser_init(ws_parser_t *p, uint64_t max_message)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message;
    p->first = true;
}

static size_t fail(ws_parser_t *p, ws_event_t *ev, size_t len, uint16_t code, const char *reason)
{
    p->failed = true;
    ev->type = WS_EV_ERROR;
    ev->close_code = code;
    ev->reason = reason;
    ev->reason_len = strlen(reason);
    return len;
}

static void unmask(uint8_t *data, size_t len, const uint8_t mask[4], unsigned off)
{
    for (size_t i = 0; i < len; ++i)
        data[i] ^= mask[(off + i) & 3];
}

/* The next chunk of the current data frame's payload. */
static size_t payload(ws_parser_t *p, uint8_t *buf, size_t len, ws_event_t *ev)
{
    size_t n = p->remaining < len ? (size_t)p->remaining : len;
    if (n == 0 && p->remaining != 0)
        return 0;
    unmask(buf, n, p->mask, p->mask_off);
    p->mask_off = (uint8_t)((p->mask_off + n) & 3);
    p->remaining -= n;
    bool frame_end = p->remaining == 0, last = frame_end && p->fin;
    if (p->msg_opcode == WS_OP_TEXT) {
        if (!ws_utf8_feed(&p->utf8, buf, n) || (last && p->utf8 != WS_UTF8_OK))
            return fail(p, ev, len, WS_CLOSE_INVALID_DATA, "text messages must be valid UTF-8");
    }
    ev->type = WS_EV_DATA;
    ev->opcode = p->msg_opcode;
    ev->first = p->first;
    ev->last = last;
    ev->data = buf;
    ev->len = n;
    p->first = false;
    if (frame_end) {
        p->in_frame = false;
        if (last)
            p->msg_opcode = 0;
    }
    return n;
}

size_t ws_parser_next(ws_parser_t *p, uint8_t *buf, size_t len, ws_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (p->failed)
        return len;
    if (p->in_frame)
        return payload(p, buf, len, ev);
    if (len < 2)
        return 0;

    uint8_t opcode = buf[0] & 0x0f;
    bool fin = (buf[0] & 0x80) != 0, control = (opcode & 0x8) != 0;
    uint64_t plen = buf[1] & 0x7f;
    if ((buf[0] & 0x70) != 0)
        return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "reserved bits set: no extension was negotiated");
    if (opcode > WS_OP_BINARY && opcode != WS_OP_CLOSE && opcode != WS_OP_PING && opcode != WS_OP_PONG)
        return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "unknown opcode");
    if ((buf[1] & 0x80) == 0)
        return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "frames from a client must be masked");
    if (control && !fin)
        return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "control frames cannot be fragmented");
    if (control && plen > WS_CONTROL_MAX)
        return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "control frames carry at most 125 bytes");
    size_t hlen = 2 + (plen == 126 ? 2 : plen == 127 ? 8 : 0) + 4;
    if (len < hlen)
        return 0;
    if (plen == 126) {
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126)
            return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "payload length not in its shortest form");
    } else if (plen == 127) {
        plen = 0;
        for (int i = 0; i < 8; ++i)
            plen = plen << 8 | buf[2 + i];
        if ((plen >> 63) != 0)
            return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "payload length over 2^63");
        if (plen <= 0xffff)
            return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "payload length not in its shortest form");
    }
    const uint8_t *mask = buf + hlen - 4;

    if (control) {
        if (len - hlen < plen)
            return 0; /* read whole, once it is all here */
        uint8_t *data = buf + hlen;
        unmask(data, (size_t)plen, mask, 0);
        ev->type = WS_EV_CONTROL;
        ev->opcode = opcode;
        ev->data = data;
        ev->len = (size_t)plen;
        if (opcode == WS_OP_CLOSE) {
            ev->close_code = WS_CLOSE_NO_STATUS;
            if (plen == 1)
                return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "a close payload starts with a 2-byte code");
            if (plen >= 2) {
                ev->close_code = (uint16_t)(data[0] << 8 | data[1]);
                if (!ws_close_code_valid(ev->close_code))
                    return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
                ev->reason = (const char *)data + 2;
                ev->reason_len = (size_t)plen - 2;
                if (!ws_utf8_valid(data + 2, ev->reason_len))
                    return fail(p, ev, len, WS_CLOSE_INVALID_DATA, "a close reason must be valid UTF-8");
            }
        }
        return hlen + (size_t)plen;
    }

    if (opcode == WS_OP_CONTINUATION && p->msg_opcode == 0)
        return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "a continuation frame without a message to continue");
    if (opcode != WS_OP_CONTINUATION && p->msg_opcode != 0)
        return fail(p, ev, len, WS_CLOSE_PROTOCOL_ERROR, "a new message began before the last one was finished");
    if (opcode != WS_OP_CONTINUATION) {
        p->msg_opcode = opcode;
        p->msg_len = 0;
        p->utf8 = WS_UTF8_OK;
        p->first = true;
    }
    if (plen > p->max_message - p->msg_len)
        return fail(p, ev, len, WS_CLOSE_TOO_BIG, "message too big");
    p->msg_len += plen;
    p->remaining = plen;
    p->fin = fin;
    memcpy(p->mask, mask, 4);
    p->mask_off = 0;
    p->in_frame = true;
    return hlen + payload(p, buf + hlen, len - hlen, ev);
}

size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], uint8_t opcode, uint64_t len)
{
    out[0] = 0x80 | opcode;
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t ws_close_payload(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason, size_t reason_len)
{
    if (code == 0)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = reason_len < WS_CONTROL_MAX - 2 ? reason_len : WS_CONTROL_MAX - 2;
    while (n != 0 && n < reason_len && ((uint8_t)reason[n] & 0xc0) == 0x80)
        --n; /* not in the middle of a character */
    if (n != 0)
        memcpy(out + 2, reason, n);
    return 2 + n;
}

static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool ws_client_key_valid(const char *key, size_t len)
{
    if (len != WS_CLIENT_KEY_LEN || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; ++i)
        if (base64_value(key[i]) < 0)
            return false;
    return (base64_value(key[21]) & 15) == 0; /* its 4 low bits are padding */
}

void ws_accept_key(char out[WS_ACCEPT_KEY_LEN + 1], const char *key, size_t key_len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 || EVP_DigestUpdate(ctx, key, key_len) != 1 ||
        EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) != 1 || EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 20)
        abort();
    EVP_MD_CTX_free(ctx);
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
}
