/*
 * Validation of the identifiers and text that cross the API. Pure functions, any thread.
 */
#ifndef NOTIGATE_VALID_H
#define NOTIGATE_VALID_H

#include <stdbool.h>
#include <stddef.h>

#define VALID_USER_ID_MAX 64
#define VALID_KIND_MAX 32
#define VALID_MESSAGE_MAX 4096

/* A user id is 1-64 characters of [A-Za-z0-9_.-]. */
bool valid_user_id(const char *s, size_t len);

/* A kind is 1-32 characters of [A-Za-z0-9_.-]. */
bool valid_kind(const char *s, size_t len);

/* True if s is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) with no NUL byte. */
bool valid_utf8(const char *s, size_t len);

/* A message is 1-4096 bytes of valid UTF-8. */
bool valid_message(const char *s, size_t len);

#endif
