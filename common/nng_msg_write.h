/*
 * Appending to an nng message piece by piece (a proto encoder's writes). nng 1.5.2's nng_msg_append grows the body to
 * exactly the length needed on every append past its capacity: a new zeroed buffer and a copy of all that came before,
 * so encoding a 20-notification reply (some 300 writes) copied the message some 300 times. This grows it by doubling.
 */
#ifndef NOTIGATE_NNG_MSG_WRITE_H
#define NOTIGATE_NNG_MSG_WRITE_H

#include <stddef.h>

/* A proto_write_cb: appends len bytes of buf to the nng_msg data. Returns 0, or -1 if memory ran out. */
int nng_msg_write(void *data, const char *buf, size_t len);

#endif
