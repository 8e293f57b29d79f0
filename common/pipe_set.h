/*
 * The set of nng pipes (connections) a socket has now, fed by nng_pipe_notify. A removal counts only for a pipe that
 * was added (nng reports NNG_PIPE_EV_REM_POST for pipes torn down before NNG_PIPE_EV_ADD_POST too).
 * Thread-safe: nng calls it from its own threads; the count may be read from any thread.
 */
#ifndef NOTIGATE_PIPE_SET_H
#define NOTIGATE_PIPE_SET_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_pipe_set_t {
    pthread_mutex_t _mutex;
    uint32_t *_ids;
    size_t _n, _cap;
    _Atomic unsigned count;
} pipe_set_t;

void pipe_set_init(pipe_set_t *set);
void pipe_set_dispose(pipe_set_t *set);

/* Applies a pipe event. Returns true if the set changed; *count is then the number of pipes after the change. */
bool pipe_set_update(pipe_set_t *set, nng_pipe pipe, nng_pipe_ev ev, unsigned *count);

/* Writes the pipe's remote address ("ip:port", or "?") into buf, for logs. */
void pipe_set_remote(nng_pipe pipe, char *buf, size_t bufsz);

#endif
