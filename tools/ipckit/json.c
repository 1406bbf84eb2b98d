/*
 * json.c - see json.h.
 */
#include "json.h"

#include <math.h>
#include <string.h>

void json_init(json_w *w, FILE *f)
{
    *w = (json_w){.f = f};
}

/* Before any value: the comma after a previous one at this depth. */
static void json_value(json_w *w)
{
    if (w->after_key)
        w->after_key = 0;
    else if (w->depth > 0 && w->any[w->depth - 1])
        fputc(',', w->f);
    if (w->depth > 0)
        w->any[w->depth - 1] = 1;
}

static void json_open(json_w *w, char open, char close)
{
    json_value(w);
    fputc(open, w->f);
    if (w->depth < JSON_MAX_DEPTH) {
        w->any[w->depth] = 0;
        w->close[w->depth] = (unsigned char)close;
        w->depth++;
    }
}

void json_obj(json_w *w)
{
    json_open(w, '{', '}');
}

void json_arr(json_w *w)
{
    json_open(w, '[', ']');
}

void json_end(json_w *w)
{
    if (w->depth > 0)
        fputc(w->close[--w->depth], w->f);
}

void json_key(json_w *w, const char *key)
{
    json_str(w, key);
    fputc(':', w->f);
    w->after_key = 1;
}

void json_nl(json_w *w)
{
    fputc('\n', w->f);
}

/* The length of the valid UTF-8 sequence at p (n bytes left), 0 when the byte there starts none. */
static size_t json_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong three- and four-byte forms, UTF-16 surrogates, and code points past U+10FFFF. */
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] >= 0x90))
        return 0;
    return len;
}

int json_utf8_valid(const void *s, size_t n)
{
    const unsigned char *p = s;
    for (size_t i = 0, k; i < n; i += k)
        if ((k = json_utf8_seq(p + i, n - i)) == 0)
            return 0;
    return 1;
}

void json_strn(json_w *w, const void *s, size_t n)
{
    const unsigned char *p = s;
    FILE *f = w->f;
    json_value(w);
    fputc('"', f);
    for (size_t i = 0, k; i < n; i += k) {
        unsigned c = p[i];
        k = json_utf8_seq(p + i, n - i);
        if (k == 0) {
            fputs("\xef\xbf\xbd", f); /* U+FFFD for a byte that starts no valid sequence */
            k = 1;
        } else if (k > 1) {
            fwrite(p + i, 1, k, f);
        } else if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc((int)c, f);
        }
    }
    fputc('"', f);
}

void json_str(json_w *w, const char *s)
{
    json_strn(w, s, s ? strlen(s) : 0);
}

void json_int(json_w *w, long long v)
{
    json_value(w);
    fprintf(w->f, "%lld", v);
}

void json_uint(json_w *w, unsigned long long v)
{
    json_value(w);
    fprintf(w->f, "%llu", v);
}

void json_num(json_w *w, double v, int decimals)
{
    json_value(w);
    if (isfinite(v))
        fprintf(w->f, "%.*f", decimals, v);
    else
        fputs("null", w->f);
}

void json_bool(json_w *w, int v)
{
    json_value(w);
    fputs(v ? "true" : "false", w->f);
}

void json_null(json_w *w)
{
    json_value(w);
    fputs("null", w->f);
}

void json_base64(FILE *f, const void *s, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = s;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        fputc(b64[(v >> 18) & 63], f);
        fputc(b64[(v >> 12) & 63], f);
        fputc(i + 1 < n ? b64[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < n ? b64[v & 63] : '=', f);
    }
}

void json_bytes(json_w *w, const char *key, const void *p, size_t n)
{
    if (json_utf8_valid(p, n)) {
        json_key(w, key);
        json_strn(w, p, n);
        return;
    }
    char k[128];
    snprintf(k, sizeof k, "%s_base64", key);
    json_key(w, k);
    json_value(w);
    fputc('"', w->f);
    json_base64(w->f, p, n);
    fputc('"', w->f);
}
