/*
 * The demo page the gateway serves at / and its script at /app.js (gateway/www/, embedded at build time).
 */
#ifndef NOTIGATE_PAGE_H
#define NOTIGATE_PAGE_H

#include <stddef.h>

extern const char page_html[];
extern const size_t page_html_len;
extern const char page_js[];
extern const size_t page_js_len;

#endif
