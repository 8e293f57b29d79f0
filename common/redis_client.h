/*
 * One asynchronous Redis connection (hiredis 0.14) driven by an h2o evloop, with what hiredis lacks: a deadline on
 * every command, reconnection with backoff, AUTH and SELECT from a redis:// URL.
 *
 * If the oldest command in flight passes its deadline, the connection is dropped (Redis answers in order, so nothing
 * behind it can arrive first): every pending callback then runs with a NULL reply, and a new connection is made.
 * All functions run on the loop's thread only.
 */
#ifndef NOTIGATE_REDIS_CLIENT_H
#define NOTIGATE_REDIS_CLIENT_H

#define H2O_USE_LIBUV 0
#include <h2o/socket.h>
#include <h2o/timeout.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_redis_client_t redis_client_t;

/* Called once for every command: reply is hiredis's (owned by hiredis, valid during the call) or NULL when the
 * command failed for want of a connection, timed out, or the connection was lost. A REDIS_REPLY_ERROR reply is
 * passed as it is. */
typedef void (*redis_reply_cb)(redisReply *reply, void *data);

/* Called after each successful (re)connection, before any queued command of the caller's runs. */
typedef void (*redis_connect_cb)(redis_client_t *rc, void *data);

/* Parses url (redis://[:password@]host[:port][/db]) and starts connecting. name appears in logs. timeout_ms is the
 * default command deadline. Returns NULL (and logs why) if the URL is invalid. */
redis_client_t *redis_client_create(h2o_loop_t *loop, const char *url, const char *name, uint32_t timeout_ms,
                                    redis_connect_cb on_connect, void *data);

/* Replaces the connect callback (e.g. once the object it needs exists). */
void redis_client_set_connect_cb(redis_client_t *rc, redis_connect_cb on_connect, void *data);

/* Closes the connection (pending callbacks run with NULL) and frees rc. */
void redis_client_destroy(redis_client_t *rc);

/* True while a connection is established. */
bool redis_client_is_connected(redis_client_t *rc);

/* Sends one command (argv copied by hiredis). timeout_ms 0 means the default. Returns 0 if sent (cb will run exactly
 * once, possibly with NULL), or -1 if not connected (cb will not run). */
int redis_client_command(redis_client_t *rc, redis_reply_cb cb, void *data, uint32_t timeout_ms, int argc, const char **argv,
                         const size_t *argvlen);

/* Sends MULTI, the ncmds commands (cmds[i] is argc[i] arguments argv[i] of lengths argvlen[i], copied) and EXEC, so
 * that Redis runs them as one unit; cb runs once with EXEC's reply (an array of the commands' replies) or NULL, as for
 * redis_client_command. Returns 0, or -1 if not connected (cb will not run). */
int redis_client_transaction(redis_client_t *rc, redis_reply_cb cb, void *data, uint32_t timeout_ms, int ncmds,
                             const int *argc, const char *const *const *argv, const size_t *const *argvlen);

/* Number of commands sent and not yet answered. */
size_t redis_client_pending(redis_client_t *rc);

#endif
