/*
 * What the libFuzzer targets of tests/fuzz share: an assertion that crashes (so that libFuzzer keeps the input), and a
 * growable buffer for the encoders' write callbacks.
 */
#ifndef NOTIGATE_FUZZ_H
#define NOTIGATE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: print it and abort, which libFuzzer reports as a crash with the input that caused it. */
#define FUZZ_ASSERT(cond)                                                                                                          \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                                           \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

typedef struct st_fuzz_buf_t {
    char *data;
    size_t len, cap;
} fuzz_buf_t;

/* A proto_write_cb appending to a fuzz_buf_t (data); the caller frees buf->data. */
static inline int fuzz_buf_write(void *data, const char *bytes, size_t len)
{
    fuzz_buf_t *buf = data;
    if (len == 0)
        return 0;
    if (buf->len + len > buf->cap) {
        buf->cap = (buf->len + len) * 2;
        if ((buf->data = realloc(buf->data, buf->cap)) == NULL)
            abort();
    }
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    return 0;
}

#endif
