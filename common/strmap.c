#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "strmap.h"

typedef struct st_strmap_entry_t {
    struct st_strmap_entry_t *next;
    uint64_t hash;
    void *value;
    size_t len;
    char key[];
} strmap_entry_t;

struct st_strmap_t {
    strmap_entry_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t size;
    uint64_t k0, k1;
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                                   \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = ROTL(v1, 13);                                                                                                         \
        v1 ^= v0;                                                                                                                  \
        v0 = ROTL(v0, 32);                                                                                                         \
        v2 += v3;                                                                                                                  \
        v3 = ROTL(v3, 16);                                                                                                         \
        v3 ^= v2;                                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = ROTL(v3, 21);                                                                                                         \
        v3 ^= v0;                                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = ROTL(v1, 17);                                                                                                         \
        v1 ^= v2;                                                                                                                  \
        v2 = ROTL(v2, 32);                                                                                                         \
    } while (0)

/* SipHash-1-3 (as Redis uses for its dicts) */
static uint64_t siphash13(const unsigned char *in, size_t len, uint64_t k0, uint64_t k1)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1, v2 = 0x6c7967656e657261ULL ^ k0,
             v3 = 0x7465646279746573ULL ^ k1, b = (uint64_t)len << 56, m;
    const unsigned char *end = in + len - (len % 8);
    for (; in != end; in += 8) {
        memcpy(&m, in, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < len % 8; ++i)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

strmap_t *strmap_create(void)
{
    strmap_t *map = calloc(1, sizeof(*map));
    if (map == NULL)
        abort();
    map->nbuckets = 16;
    map->buckets = calloc(map->nbuckets, sizeof(*map->buckets));
    if (map->buckets == NULL)
        abort();
    uint64_t key[2] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        /* keep the fixed key: still a good hash, only not secret */
    }
    map->k0 = key[0];
    map->k1 = key[1];
    return map;
}

void strmap_destroy(strmap_t *map)
{
    for (size_t i = 0; i < map->nbuckets; ++i) {
        for (strmap_entry_t *e = map->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(map->buckets);
    free(map);
}

static strmap_entry_t **find(strmap_t *map, const char *key, size_t len, uint64_t hash)
{
    strmap_entry_t **slot = &map->buckets[hash & (map->nbuckets - 1)];
    for (; *slot != NULL; slot = &(*slot)->next)
        if ((*slot)->hash == hash && (*slot)->len == len && memcmp((*slot)->key, key, len) == 0)
            break;
    return slot;
}

void *strmap_get(strmap_t *map, const char *key, size_t len)
{
    strmap_entry_t *e = *find(map, key, len, siphash13((const unsigned char *)key, len, map->k0, map->k1));
    return e != NULL ? e->value : NULL;
}

static void grow(strmap_t *map)
{
    size_t n = map->nbuckets * 2;
    strmap_entry_t **buckets = calloc(n, sizeof(*buckets));
    if (buckets == NULL)
        abort();
    for (size_t i = 0; i < map->nbuckets; ++i) {
        for (strmap_entry_t *e = map->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            strmap_entry_t **slot = &buckets[e->hash & (n - 1)];
            e->next = *slot;
            *slot = e;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->nbuckets = n;
}

void strmap_set(strmap_t *map, const char *key, size_t len, void *value)
{
    uint64_t hash = siphash13((const unsigned char *)key, len, map->k0, map->k1);
    strmap_entry_t **slot = find(map, key, len, hash);
    if (*slot != NULL) {
        (*slot)->value = value;
        return;
    }
    strmap_entry_t *e = malloc(sizeof(*e) + len);
    if (e == NULL)
        abort();
    e->next = NULL;
    e->hash = hash;
    e->value = value;
    e->len = len;
    memcpy(e->key, key, len);
    *slot = e;
    if (++map->size > map->nbuckets)
        grow(map);
}

void *strmap_remove(strmap_t *map, const char *key, size_t len)
{
    strmap_entry_t **slot = find(map, key, len, siphash13((const unsigned char *)key, len, map->k0, map->k1));
    strmap_entry_t *e = *slot;
    if (e == NULL)
        return NULL;
    void *value = e->value;
    *slot = e->next;
    free(e);
    --map->size;
    return value;
}

size_t strmap_size(const strmap_t *map)
{
    return map->size;
}

void strmap_foreach(strmap_t *map, void (*cb)(const char *key, size_t len, void *value, void *data), void *data)
{
    for (size_t i = 0; i < map->nbuckets; ++i)
        for (strmap_entry_t *e = map->buckets[i]; e != NULL; e = e->next)
            cb(e->key, e->len, e->value, data);
}

uint64_t strmap_hash(const void *in, size_t len, uint64_t k0, uint64_t k1)
{
    return siphash13(in, len, k0, k1);
}
