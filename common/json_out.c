#include <stdlib.h>
#include <string.h>
#include "json_out.h"
#include "proto.h"

void json_out_dispose(json_out_t *j)
{
    free(j->buf);
    *j = (json_out_t){NULL};
}

static void reserve(json_out_t *j, size_t extra)
{
    if (j->cap - j->len >= extra)
        return;
    size_t cap = j->cap != 0 ? j->cap : 1024;
    while (cap - j->len < extra)
        cap *= 2;
    if ((j->buf = realloc(j->buf, cap)) == NULL)
        abort();
    j->cap = cap;
}

void json_out_raw(json_out_t *j, const char *s, size_t len)
{
    if (len == 0)
        return; /* j->buf may still be NULL: memcpy to NULL is undefined even for 0 bytes */
    reserve(j, len);
    memcpy(j->buf + j->len, s, len);
    j->len += len;
}

void json_out_cstr(json_out_t *j, const char *s)
{
    json_out_raw(j, s, strlen(s));
}

void json_out_str(json_out_t *j, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    reserve(j, len * 6 + 2); /* worst case: every byte as \u00XX */
    char *o = j->buf + j->len;
    *o++ = '"';
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[c >> 4], *o++ = hex[c & 15];
            break;
        }
    }
    *o++ = '"';
    j->len = (size_t)(o - j->buf);
}

void json_out_u64(json_out_t *j, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    reserve(j, n);
    while (n > 0)
        j->buf[j->len++] = tmp[--n];
}

void json_out_i64(json_out_t *j, int64_t v)
{
    if (v < 0) {
        json_out_lit(j, "-");
        json_out_u64(j, (uint64_t)0 - (uint64_t)v);
    } else {
        json_out_u64(j, (uint64_t)v);
    }
}

void json_out_notification(json_out_t *o, const proto_notification_t *n)
{
    json_out_lit(o, "{\"id\":");
    json_out_u64(o, n->id);
    json_out_lit(o, ",\"user_id\":");
    json_out_str(o, n->user_id.ptr, n->user_id.len);
    json_out_lit(o, ",\"message\":");
    json_out_str(o, n->message.ptr, n->message.len);
    json_out_lit(o, ",\"kind\":");
    json_out_str(o, n->kind.ptr, n->kind.len);
    json_out_lit(o, ",\"ts\":");
    json_out_i64(o, n->ts);
    if (n->read)
        json_out_lit(o, ",\"read\":true}");
    else
        json_out_lit(o, ",\"read\":false}");
}
