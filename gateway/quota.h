/*
 * The bookkeeping behind the gateway's limits against abuse: a token bucket, a table of counts (open connections per
 * client address, sessions per user) and a table of token buckets (requests per second per credential). Pure code on
 * keys the caller derives (guard.c hashes addresses, credentials and user ids with a per-process secret, so that no
 * client can choose where its key lands); no HTTP here, so that the unit tests drive it with a fake clock.
 *
 * Both tables are fixed arrays allocated once (capacity rounded up to a power of two) and never grow: a key lives in
 * one of QUOTA_WINDOW slots after the one its hash picks. A count entry goes when its count drops to 0; a bucket entry
 * is reused as soon as its bucket has refilled (a full bucket left idle is the same as no entry). When every slot of a
 * key's window is taken by live entries the key cannot be added: the call answers QUOTA_FULL.
 *
 * Each table has its own mutex: any thread may call any function; the tables are shared by every loop thread.
 */
#ifndef NOTIGATE_QUOTA_H
#define NOTIGATE_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUOTA_KEY_LEN 16
#define QUOTA_WINDOW 16 /* slots a key may occupy, from the one its hash picks */

typedef struct st_quota_key_t {
    uint8_t b[QUOTA_KEY_LEN]; /* uniformly distributed bytes (a keyed hash) */
} quota_key_t;

typedef enum en_quota_result_t {
    QUOTA_OK = 0,   /* counted / a token taken */
    QUOTA_OVER = 1, /* over the limit: nothing changed */
    QUOTA_FULL = 2, /* the key is not in the table and its window has no free slot: nothing changed */
} quota_result_t;

/* ---- token bucket ----------------------------------------------------------------------------------------------- */

typedef struct st_quota_bucket_t {
    double tokens;
    uint64_t last_us; /* when tokens was last brought up to date */
} quota_bucket_t;

/* A full bucket (burst tokens) as of now_us. */
void quota_bucket_init(quota_bucket_t *b, double burst, uint64_t now_us);

/* Refills b at rate tokens per second up to burst, then takes one token if there is one. Returns true if it took one;
 * if not, *retry_after_us (if not NULL) gets the time until one is there. now_us is monotonic; a clock that went back
 * refills nothing. */
bool quota_bucket_take(quota_bucket_t *b, double rate, double burst, uint64_t now_us, uint64_t *retry_after_us);

/* True if b is full as of now_us (it would hold burst tokens after refilling). */
bool quota_bucket_is_full(const quota_bucket_t *b, double rate, double burst, uint64_t now_us);

/* ---- counts ----------------------------------------------------------------------------------------------------- */

typedef struct st_quota_counts_t quota_counts_t;

/* A table of at most capacity keys (rounded up to a power of two, at least QUOTA_WINDOW). The caller owns it. */
quota_counts_t *quota_counts_create(size_t capacity);
void quota_counts_destroy(quota_counts_t *t);

/* Adds one to key's count if the count is below max. Returns QUOTA_OK (then *count, if not NULL, gets the new count),
 * QUOTA_OVER (the count is max already) or QUOTA_FULL. */
quota_result_t quota_counts_acquire(quota_counts_t *t, const quota_key_t *key, uint32_t max, uint32_t *count);

/* Takes one from key's count (acquired before); at 0 the entry goes. */
void quota_counts_release(quota_counts_t *t, const quota_key_t *key);

/* key's count now (0 when it has no entry). */
uint32_t quota_counts_get(quota_counts_t *t, const quota_key_t *key);

/* Entries in the table (keys with a count above 0). */
size_t quota_counts_size(quota_counts_t *t);

/* ---- buckets ---------------------------------------------------------------------------------------------------- */

typedef struct st_quota_buckets_t quota_buckets_t;

/* A table of at most capacity token buckets, each refilled at rate tokens per second up to burst. */
quota_buckets_t *quota_buckets_create(size_t capacity, double rate, double burst);
void quota_buckets_destroy(quota_buckets_t *t);

/* Takes a token from key's bucket (a new key starts with a full bucket). Returns QUOTA_OK, QUOTA_OVER (then
 * *retry_after_us gets the time until a token is there) or QUOTA_FULL (then *retry_after_us gets the time until the
 * first bucket of the key's window has refilled and its slot can be reused). */
quota_result_t quota_buckets_take(quota_buckets_t *t, const quota_key_t *key, uint64_t now_us, uint64_t *retry_after_us);

/* Looks at the next max_slots slots (going round the table from where the last call stopped) and frees the entries
 * whose bucket has refilled by now_us; returns how many went. */
size_t quota_buckets_sweep(quota_buckets_t *t, uint64_t now_us, size_t max_slots);

/* Entries in the table (buckets not yet found full and freed). */
size_t quota_buckets_size(quota_buckets_t *t);

#endif
