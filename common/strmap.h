/*
 * A hash map from byte strings to pointers, with a keyed hash (SipHash-1-3, random key per map) so that clients
 * choosing user ids cannot pile them into one bucket. Not thread-safe: one owner thread.
 */
#ifndef NOTIGATE_STRMAP_H
#define NOTIGATE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_strmap_t strmap_t;

strmap_t *strmap_create(void);

/* Frees the map and its copies of the keys; the values are the caller's. */
void strmap_destroy(strmap_t *map);

/* Returns the value stored under key, or NULL. */
void *strmap_get(strmap_t *map, const char *key, size_t len);

/* Stores value (not NULL) under a copy of key, replacing any value there. */
void strmap_set(strmap_t *map, const char *key, size_t len, void *value);

/* Removes key; returns the value it had, or NULL. */
void *strmap_remove(strmap_t *map, const char *key, size_t len);

size_t strmap_size(const strmap_t *map);

/* Calls cb for every entry, in no particular order; cb must not change the map. */
void strmap_foreach(strmap_t *map, void (*cb)(const char *key, size_t len, void *value, void *data), void *data);

/* The map's keyed hash, SipHash-1-3 of in under the key (k0, k1), for other tables that must not let clients choose
 * where their keys land. Any thread. */
uint64_t strmap_hash(const void *in, size_t len, uint64_t k0, uint64_t k1);

#endif
