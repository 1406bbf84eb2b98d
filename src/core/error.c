/*
 * error.c - error codes, their names, and the per-thread detailed message of the last failure.
 */
#include "ipk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char ipk__errbuf[512];

static const struct {
    int code;
    const char *text;
} ipk__codes[] = {
    {IPK_EOF, "end of stream: the peer closed the channel"},
    {IPK_ETIMEDOUT, "timed out"},
    {IPK_EMSGSIZE, "message too large"},
    {IPK_EPROTO, "protocol error: the peer broke the framing"},
    {IPK_EADDR, "malformed address"},
    {IPK_ENOTBUILT, "transport not built in this version"},
    {IPK_EOPTION, "bad option"},
    {IPK_ENOTSUP, "operation not supported by this transport"},
    {IPK_ECLOSED, "channel closed after an earlier fatal error"},
};

const char *ipk_strerror(int err)
{
    for (size_t i = 0; i < sizeof ipk__codes / sizeof ipk__codes[0]; i++)
        if (ipk__codes[i].code == err)
            return ipk__codes[i].text;
    if (err == 0)
        return "success";
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

const char *ipk_errmsg(void)
{
    return ipk__errbuf;
}

IPK__HOTPATH void ipk__err_clear(void)
{
    ipk__errbuf[0] = '\0';
}

/* A message longer than the buffer (it names a 100 KB address, say) keeps its start and its
 * end, where the reason is, with " ... " between them. */
#define IPK__ERR_HEAD 160

static void ipk__verr(int code, int with_text, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    char *b = ipk__errbuf;
    const size_t cap = sizeof ipk__errbuf;
    int n = vsnprintf(b, cap, fmt, ap);
    const char *text = with_text ? ipk_strerror(code) : "";
    size_t total = n < 0 ? 0 : (size_t)n + (with_text ? 2 + strlen(text) : 0);
    char *full = total >= cap ? malloc(total + 1) : NULL;
    if (n >= 0 && total < cap) {
        if (with_text)
            snprintf(b + n, cap - (size_t)n, ": %s", text);
    } else if (full) {
        vsnprintf(full, (size_t)n + 1, fmt, again);
        if (with_text)
            snprintf(full + n, total + 1 - (size_t)n, ": %s", text);
        size_t tail = cap - 1 - IPK__ERR_HEAD - 5;
        memcpy(b, full, IPK__ERR_HEAD);
        memcpy(b + IPK__ERR_HEAD, " ... ", 5);
        memcpy(b + IPK__ERR_HEAD + 5, full + total - tail, tail + 1);
    }
    free(full);
    va_end(again);
}

int ipk__err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ipk__verr(code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int ipk__errsys(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ipk__verr(code, 1, fmt, ap);
    va_end(ap);
    return code;
}

size_t ipk__strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap > 0) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(dst, src, k);
        dst[k] = '\0';
    }
    return n;
}

long ipk__info_print(const ipk__addr *a, char *buf, size_t cap,
                     void (*print)(FILE *f, const ipk__addr *a))
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return -ENOMEM;
    print(f, a);
    if (fclose(f) != 0) {
        free(s);
        return -ENOMEM;
    }
    long n = (long)ipk__strlcpy(buf, s, cap);
    free(s);
    return n;
}
