#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "redis_script.h"

typedef struct st_script_run_t {
    redis_client_t *rc;
    const redis_script_t *script;
    redis_reply_cb cb;
    void *data;
    bool retried;
    int argc;
    const char **argv; /* EVALSHA sha nkeys args..., pointing into text */
    size_t *argvlen;
    char nkeys[16];
    char text[]; /* the arguments' bytes */
} script_run_t;

void redis_script_init(redis_script_t *script, const char *name, const char *body)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    script->name = name;
    script->body = body;
    SHA1((const unsigned char *)body, strlen(body), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; ++i)
        sprintf(script->sha + 2 * i, "%02x", md[i]);
}

static void run_free(script_run_t *run)
{
    free(run->argv);
    free(run->argvlen);
    free(run);
}

static void on_reply(redisReply *reply, void *data)
{
    script_run_t *run = data;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !run->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        run->retried = true;
        run->argv[0] = "EVAL";
        run->argvlen[0] = 4;
        run->argv[1] = run->script->body;
        run->argvlen[1] = strlen(run->script->body);
        if (redis_client_command(run->rc, on_reply, run, 0, run->argc, run->argv, run->argvlen) == 0)
            return;
        reply = NULL; /* the connection went away meanwhile */
    }
    run->cb(reply, run->data);
    run_free(run);
}

int redis_script_run(redis_client_t *rc, const redis_script_t *script, int nkeys, int nargs, const char *const *args,
                     const size_t *lens, redis_reply_cb cb, void *data)
{
    size_t total = 0;
    for (int i = 0; i < nargs; ++i)
        total += lens[i];
    int argc = 3 + nargs;
    script_run_t *run = malloc(sizeof(*run) + total);
    if (run == NULL || (run->argv = malloc(argc * sizeof(*run->argv))) == NULL ||
        (run->argvlen = malloc(argc * sizeof(*run->argvlen))) == NULL)
        abort();
    run->rc = rc;
    run->script = script;
    run->cb = cb;
    run->data = data;
    run->retried = false;
    run->argc = argc;
    snprintf(run->nkeys, sizeof(run->nkeys), "%d", nkeys);
    run->argv[0] = "EVALSHA", run->argvlen[0] = 7;
    run->argv[1] = script->sha, run->argvlen[1] = 40;
    run->argv[2] = run->nkeys, run->argvlen[2] = strlen(run->nkeys);
    char *p = run->text;
    for (int i = 0; i < nargs; ++i) {
        memcpy(p, args[i], lens[i]);
        run->argv[3 + i] = p;
        run->argvlen[3 + i] = lens[i];
        p += lens[i];
    }
    if (redis_client_command(rc, on_reply, run, 0, argc, run->argv, run->argvlen) != 0) {
        run_free(run);
        return -1;
    }
    return 0;
}
