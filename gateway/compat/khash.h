/*
 * Just enough of khash's names for h2o 2.2.5's h2o/http2_internal.h to compile: libh2o-evloop-dev installs that
 * header but not the khash.h it includes. The HTTP/2 connection holds only a pointer to its stream table, so the
 * structure's layout does not depend on what is declared here. The table's functions are declared, never defined:
 * the one inline function of h2o's header that uses them is never called here, and a call would fail to link.
 * Used by gateway/h2_idle.c only.
 */
#ifndef NOTIGATE_COMPAT_KHASH_H
#define NOTIGATE_COMPAT_KHASH_H

#include <stdint.h>

typedef uint32_t khint_t;
typedef khint_t khiter_t;

#define khash_t(name) struct notigate_kh_##name
#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                                        \
    khash_t(name);                                                                                                                 \
    khiter_t notigate_kh_get_##name(const khash_t(name) * h, uint64_t key);                                                        \
    khiter_t notigate_kh_end_##name(const khash_t(name) * h);                                                                      \
    khval_t *notigate_kh_val_##name(const khash_t(name) * h, khiter_t it);
/* only the names h2o/http2_internal.h uses, for its table of streams */
#define kh_get(name, h, key) notigate_kh_get_##name(h, key)
#define kh_end(h) notigate_kh_end_h2o_http2_stream_t(h)
#define kh_val(h, it) (*notigate_kh_val_h2o_http2_stream_t(h, it))

#endif
