#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "quota.h"

/* ---- token bucket ----------------------------------------------------------------------------------------------- */

void quota_bucket_init(quota_bucket_t *b, double burst, uint64_t now_us)
{
    b->tokens = burst;
    b->last_us = now_us;
}

static void bucket_refill(quota_bucket_t *b, double rate, double burst, uint64_t now_us)
{
    if (now_us > b->last_us) {
        b->tokens += (double)(now_us - b->last_us) * rate / 1e6;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->last_us = now_us > b->last_us ? now_us : b->last_us;
}

bool quota_bucket_take(quota_bucket_t *b, double rate, double burst, uint64_t now_us, uint64_t *retry_after_us)
{
    bucket_refill(b, rate, burst, now_us);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    if (retry_after_us != NULL)
        *retry_after_us = (uint64_t)((1.0 - b->tokens) * 1e6 / rate) + 1;
    return false;
}

bool quota_bucket_is_full(const quota_bucket_t *b, double rate, double burst, uint64_t now_us)
{
    quota_bucket_t copy = *b;
    bucket_refill(&copy, rate, burst, now_us);
    return copy.tokens >= burst;
}

/* ---- slots shared by both tables -------------------------------------------------------------------------------- */

static size_t round_capacity(size_t capacity)
{
    size_t n = QUOTA_WINDOW;
    while (n < capacity && n < ((size_t)1 << 30))
        n <<= 1;
    return n;
}

static size_t slot_of(const quota_key_t *key, size_t mask)
{
    uint64_t h;
    memcpy(&h, key->b, sizeof(h));
    return (size_t)h & mask;
}

static void *calloc_or_abort(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

/* ---- counts ----------------------------------------------------------------------------------------------------- */

typedef struct st_count_slot_t {
    quota_key_t key;
    uint32_t count; /* 0: free */
} count_slot_t;

struct st_quota_counts_t {
    pthread_mutex_t mutex;
    count_slot_t *slots;
    size_t mask, size;
};

quota_counts_t *quota_counts_create(size_t capacity)
{
    quota_counts_t *t = calloc_or_abort(1, sizeof(*t));
    size_t n = round_capacity(capacity);
    pthread_mutex_init(&t->mutex, NULL);
    t->slots = calloc_or_abort(n, sizeof(*t->slots)); /* pages are touched only as keys land on them */
    t->mask = n - 1;
    return t;
}

void quota_counts_destroy(quota_counts_t *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mutex);
    free(t->slots);
    free(t);
}

/* The slot holding key, or NULL; *free_slot (if not NULL) gets the first free slot of its window, or NULL. Locked. */
static count_slot_t *count_find(quota_counts_t *t, const quota_key_t *key, count_slot_t **free_slot)
{
    size_t i = slot_of(key, t->mask);
    if (free_slot != NULL)
        *free_slot = NULL;
    for (size_t k = 0; k < QUOTA_WINDOW; ++k) {
        count_slot_t *s = t->slots + ((i + k) & t->mask);
        if (s->count == 0) {
            if (free_slot != NULL && *free_slot == NULL)
                *free_slot = s;
        } else if (memcmp(&s->key, key, sizeof(*key)) == 0) {
            return s;
        }
    }
    return NULL;
}

quota_result_t quota_counts_acquire(quota_counts_t *t, const quota_key_t *key, uint32_t max, uint32_t *count)
{
    quota_result_t rv = QUOTA_OK;
    count_slot_t *free_slot;
    pthread_mutex_lock(&t->mutex);
    count_slot_t *s = count_find(t, key, &free_slot);
    if (s == NULL) {
        if (max == 0) {
            rv = QUOTA_OVER;
            goto Exit;
        }
        if ((s = free_slot) == NULL) {
            rv = QUOTA_FULL;
            goto Exit;
        }
        s->key = *key;
        ++t->size;
    } else if (s->count >= max) {
        rv = QUOTA_OVER;
        goto Exit;
    }
    ++s->count;
    if (count != NULL)
        *count = s->count;
Exit:
    pthread_mutex_unlock(&t->mutex);
    return rv;
}

void quota_counts_release(quota_counts_t *t, const quota_key_t *key)
{
    pthread_mutex_lock(&t->mutex);
    count_slot_t *s = count_find(t, key, NULL);
    if (s != NULL && --s->count == 0)
        --t->size;
    pthread_mutex_unlock(&t->mutex);
}

uint32_t quota_counts_get(quota_counts_t *t, const quota_key_t *key)
{
    pthread_mutex_lock(&t->mutex);
    count_slot_t *s = count_find(t, key, NULL);
    uint32_t n = s != NULL ? s->count : 0;
    pthread_mutex_unlock(&t->mutex);
    return n;
}

size_t quota_counts_size(quota_counts_t *t)
{
    pthread_mutex_lock(&t->mutex);
    size_t n = t->size;
    pthread_mutex_unlock(&t->mutex);
    return n;
}

/* ---- buckets ---------------------------------------------------------------------------------------------------- */

typedef struct st_bucket_slot_t {
    quota_key_t key;
    quota_bucket_t bucket;
    bool used;
} bucket_slot_t;

struct st_quota_buckets_t {
    pthread_mutex_t mutex;
    bucket_slot_t *slots;
    size_t mask, size;
    size_t cursor; /* where the next sweep starts */
    double rate, burst;
};

quota_buckets_t *quota_buckets_create(size_t capacity, double rate, double burst)
{
    quota_buckets_t *t = calloc_or_abort(1, sizeof(*t));
    size_t n = round_capacity(capacity);
    pthread_mutex_init(&t->mutex, NULL);
    t->slots = calloc_or_abort(n, sizeof(*t->slots));
    t->mask = n - 1;
    t->rate = rate;
    t->burst = burst;
    return t;
}

void quota_buckets_destroy(quota_buckets_t *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mutex);
    free(t->slots);
    free(t);
}

/* Microseconds until b is full. */
static uint64_t bucket_time_to_full(const quota_bucket_t *b, double rate, double burst, uint64_t now_us)
{
    quota_bucket_t copy = *b;
    bucket_refill(&copy, rate, burst, now_us);
    return copy.tokens >= burst ? 0 : (uint64_t)((burst - copy.tokens) * 1e6 / rate) + 1;
}

quota_result_t quota_buckets_take(quota_buckets_t *t, const quota_key_t *key, uint64_t now_us, uint64_t *retry_after_us)
{
    quota_result_t rv = QUOTA_OK;
    bucket_slot_t *found = NULL, *free_slot = NULL;
    uint64_t soonest_us = UINT64_MAX; /* until a slot of the window frees itself */
    size_t i = slot_of(key, t->mask);
    pthread_mutex_lock(&t->mutex);
    for (size_t k = 0; k < QUOTA_WINDOW && found == NULL; ++k) {
        bucket_slot_t *s = t->slots + ((i + k) & t->mask);
        if (!s->used) {
            if (free_slot == NULL)
                free_slot = s;
            continue;
        }
        if (memcmp(&s->key, key, sizeof(*key)) == 0) {
            found = s;
            continue;
        }
        uint64_t to_full = bucket_time_to_full(&s->bucket, t->rate, t->burst, now_us);
        if (to_full == 0) { /* refilled: the same as no entry, so the slot is freed (and maybe taken) */
            s->used = false;
            --t->size;
            if (free_slot == NULL)
                free_slot = s;
        } else if (to_full < soonest_us) {
            soonest_us = to_full;
        }
    }
    if (found == NULL) {
        if (free_slot == NULL) {
            if (retry_after_us != NULL)
                *retry_after_us = soonest_us;
            rv = QUOTA_FULL;
            goto Exit;
        }
        found = free_slot;
        found->key = *key;
        found->used = true;
        quota_bucket_init(&found->bucket, t->burst, now_us);
        ++t->size;
    }
    if (!quota_bucket_take(&found->bucket, t->rate, t->burst, now_us, retry_after_us))
        rv = QUOTA_OVER;
Exit:
    pthread_mutex_unlock(&t->mutex);
    return rv;
}

size_t quota_buckets_sweep(quota_buckets_t *t, uint64_t now_us, size_t max_slots)
{
    size_t freed = 0;
    pthread_mutex_lock(&t->mutex);
    for (size_t n = 0; n < max_slots && n <= t->mask && t->size != 0; ++n) {
        bucket_slot_t *s = t->slots + t->cursor;
        t->cursor = (t->cursor + 1) & t->mask;
        if (s->used && quota_bucket_is_full(&s->bucket, t->rate, t->burst, now_us)) {
            s->used = false;
            --t->size;
            ++freed;
        }
    }
    pthread_mutex_unlock(&t->mutex);
    return freed;
}

size_t quota_buckets_size(quota_buckets_t *t)
{
    pthread_mutex_lock(&t->mutex);
    size_t n = t->size;
    pthread_mutex_unlock(&t->mutex);
    return n;
}
