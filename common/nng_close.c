#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include "nng_close.h"
#include "refcount.h"

typedef struct st_closing_t {
    nng_socket sock;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool done;
    refcount_t refs; /* the waiter and the closing thread: the last one frees */
} closing_t;

static void release(closing_t *c)
{
    if (refcount_release(&c->refs)) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mutex);
        free(c);
    }
}

static void *close_thread(void *arg)
{
    closing_t *c = arg;
    nng_close(c->sock);
    pthread_mutex_lock(&c->mutex);
    c->done = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mutex);
    release(c);
    return NULL;
}

int nng_close_within(nng_socket sock, unsigned timeout_ms)
{
    closing_t *c = calloc(1, sizeof(*c));
    pthread_t tid;
    pthread_condattr_t attr;
    if (c == NULL)
        abort();
    c->sock = sock;
    pthread_mutex_init(&c->mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    refcount_init(&c->refs, 2);
    if (pthread_create(&tid, NULL, close_thread, c) != 0) {
        refcount_init(&c->refs, 1);
        release(c);
        nng_close(sock);
        return 0;
    }
    pthread_detach(tid);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        ++deadline.tv_sec;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&c->mutex);
    int rv = 0;
    while (!c->done && rv != ETIMEDOUT)
        rv = pthread_cond_timedwait(&c->cond, &c->mutex, &deadline);
    bool done = c->done;
    pthread_mutex_unlock(&c->mutex);
    release(c);
    return done ? 0 : -1;
}
