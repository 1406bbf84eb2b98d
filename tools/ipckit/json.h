/*
 * json.h - the one JSON writer of the ipckit tool (recv -f json, ls --json, bench --json).
 *
 * It streams to a FILE: no tree is built and no payload is copied, so a 16 MiB message costs
 * its bytes once. Strings keep valid UTF-8 as it is, escaping only what JSON requires (quote,
 * backslash, control characters; DEL too, for terminals), so "héllo" stays "héllo". Bytes that
 * are not valid UTF-8 never reach a string: json_bytes() writes such a value base64-encoded
 * under KEY_base64 instead of KEY, so a reader always gets the exact bytes back.
 *
 * Usage: json_w w; json_init(&w, stdout); json_obj(&w); json_key(&w, "len"); json_int(&w, 5);
 * json_bytes(&w, "data", p, n); json_end(&w); - commas are placed by the writer.
 *
 * Why not jansson: it builds a tree (a copy of every payload), refuses invalid UTF-8 with an
 * error where we want a base64 field (so the UTF-8 check would be ours anyway), and would make
 * the tool depend on one more library for ~150 lines of writing. Reading JSON back (rm taking
 * ls --json) is where a parser such as jansson's json_loads() would earn its place.
 */
#ifndef IPK_CLI_JSON_H
#define IPK_CLI_JSON_H

#include <stddef.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct json_w {
    FILE *f;
    int depth;
    int after_key;                       /* a key was written: the value needs no comma */
    unsigned char any[JSON_MAX_DEPTH];   /* something was written at this depth already */
    unsigned char close[JSON_MAX_DEPTH]; /* '}' or ']' */
} json_w;

void json_init(json_w *w, FILE *f);
void json_obj(json_w *w); /* { */
void json_arr(json_w *w); /* [ */
void json_end(json_w *w); /* the } or ] of the innermost open object or array */
void json_key(json_w *w, const char *key);

/* A string from bytes that should be UTF-8: each invalid byte becomes U+FFFD, so the output is
 * always valid JSON (use json_bytes() where the exact bytes matter). */
void json_str(json_w *w, const char *s);
void json_strn(json_w *w, const void *s, size_t n);
void json_int(json_w *w, long long v);
void json_uint(json_w *w, unsigned long long v);
void json_num(json_w *w, double v, int decimals); /* NaN and infinities: null */
void json_bool(json_w *w, int v);
void json_null(json_w *w);
/* A line break between values (allowed whitespace), for documents read by people too. */
void json_nl(json_w *w);

/* "KEY":"text" when p[0..n) is valid UTF-8, else "KEY_base64":"..." (RFC 4648). */
void json_bytes(json_w *w, const char *key, const void *p, size_t n);

/* Whether p[0..n) is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF). */
int json_utf8_valid(const void *p, size_t n);
/* Writes base64 (RFC 4648, padded) of p[0..n) to f. */
void json_base64(FILE *f, const void *p, size_t n);

#endif
