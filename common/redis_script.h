/*
 * Lua scripts in Redis, run by their SHA1 (EVALSHA) so that the body crosses the wire only when Redis does not have
 * it: after a restart or SCRIPT FLUSH, Redis answers NOSCRIPT and the body is sent once (EVAL), which caches it again.
 * Loop thread of the redis client.
 */
#ifndef NOTIGATE_REDIS_SCRIPT_H
#define NOTIGATE_REDIS_SCRIPT_H

#include "redis_client.h"

typedef struct st_redis_script_t {
    const char *name; /* for logs */
    const char *body;
    char sha[41];
} redis_script_t;

/* Names a script and computes its SHA1. body must outlive the script (a string literal). */
void redis_script_init(redis_script_t *script, const char *name, const char *body);

/* Runs script with nkeys keys followed by the other arguments (args[0..nargs), copied). cb runs once with the reply:
 * NULL when the command could not complete (see redis_client_command), or an error reply other than NOSCRIPT.
 * Returns 0, or -1 if there is no connection (cb does not run). */
int redis_script_run(redis_client_t *rc, const redis_script_t *script, int nkeys, int nargs, const char *const *args,
                     const size_t *lens, redis_reply_cb cb, void *data);

#endif
