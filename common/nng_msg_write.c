#include <nng/nng.h>
#include "nng_msg_write.h"

#define FIRST_CAPACITY 512

int nng_msg_write(void *data, const char *buf, size_t len)
{
    nng_msg *m = data;
    size_t need = nng_msg_len(m) + len;
    if (need > nng_msg_capacity(m)) {
        size_t cap = nng_msg_capacity(m) < FIRST_CAPACITY / 2 ? FIRST_CAPACITY : 2 * nng_msg_capacity(m);
        while (cap < need)
            cap *= 2;
        if (nng_msg_reserve(m, cap) != 0)
            return -1;
    }
    return nng_msg_append(m, buf, len) == 0 ? 0 : -1;
}
