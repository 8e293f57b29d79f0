/*
 * A small JSON writer into a growable buffer: the gateway's responses are built with it (parsing is jansson's job).
 * Strings are escaped per RFC 8259; input strings must be valid UTF-8 (everything the gateway writes was validated
 * on the way in). One owner thread per buffer; allocation failure aborts.
 */
#ifndef NOTIGATE_JSON_OUT_H
#define NOTIGATE_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_json_out_t {
    char *buf;
    size_t len, cap;
} json_out_t;

/* Empties the buffer, keeping its memory for reuse. */
static inline void json_out_reset(json_out_t *j)
{
    j->len = 0;
}

void json_out_dispose(json_out_t *j);

/* Appends bytes as they are (punctuation, keys known to need no escaping). */
void json_out_raw(json_out_t *j, const char *s, size_t len);
/* The same for a NUL-terminated string, and for a string literal (the "" makes anything else a compile error). */
void json_out_cstr(json_out_t *j, const char *s);
#define json_out_lit(j, s) json_out_raw((j), "" s "", sizeof(s) - 1)

/* Appends s as a quoted, escaped JSON string. */
void json_out_str(json_out_t *j, const char *s, size_t len);

void json_out_u64(json_out_t *j, uint64_t v);
void json_out_i64(json_out_t *j, int64_t v);

/* Appends the API's notification object {"id","user_id","message","kind","ts","read"}. */
struct st_proto_notification_t;
void json_out_notification(json_out_t *j, const struct st_proto_notification_t *n);

#endif
