/*
 * addr.c - the address syntax every scheme shares, and the body forms several transports use:
 *
 *   scheme:body?key=value&key=value
 *
 * The scheme names a transport of the registry; the transport parses its own body (its parse
 * member). The query starts at the first '?', except for transports whose body may itself hold
 * '?' (exec:'s shell command, IPK__TF_QUERY_LAST): there it starts at the last '?' and only if
 * everything after it reads as key=value pairs.
 */
#include "ipk.h"
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ipk__valid_key(const char *k, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '_'))
            return 0;
    return 1;
}

/* Whether q (after '?') is key[=value](&key[=value])*. */
static int ipk__looks_like_query(const char *q)
{
    if (*q == '\0')
        return 0;
    for (;;) {
        size_t n = strcspn(q, "=&");
        if (!ipk__valid_key(q, n))
            return 0;
        q += n;
        if (*q == '=')
            q += strcspn(q, "&");
        if (*q == '\0')
            return 1;
        q++; /* '&' */
    }
}

static int ipk__parse_query(ipk__addr *a, const char *url, const char *q)
{
    if (*q == '\0')
        return ipk__err(IPK_EADDR, "%s: empty query after '?'", url);
    while (*q) {
        size_t n = strcspn(q, "&");
        size_t kn = strcspn(q, "=&");
        char key[64], *val;
        if (!ipk__valid_key(q, kn) || kn >= sizeof key)
            return ipk__err(IPK_EADDR, "%s: bad option name '%.*s' (lower-case letters, digits, _)",
                            url, (int)kn, q);
        memcpy(key, q, kn);
        key[kn] = '\0';
        if (kn < n) {
            val = strndup(q + kn + 1, n - kn - 1);
        } else {
            val = strdup("1");
        }
        if (val == NULL)
            return -ENOMEM;
        for (ipk__kv *kv = a->query; kv; kv = kv->next)
            if (strcmp(kv->key, key) == 0) {
                free(val);
                return ipk__err(IPK_EADDR, "%s: option '%s' given twice", url, key);
            }
        int r = ipk__kv_set(&a->query, key, val);
        free(val);
        if (r < 0)
            return r;
        q += n;
        if (*q == '&') {
            q++;
            if (*q == '\0')
                return ipk__err(IPK_EADDR, "%s: trailing '&'", url);
        }
    }
    return 0;
}

int ipk__addr_posix_name(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    size_t n = strlen(b);
    if (b[0] != '/' || n < 2)
        return ipk__err(IPK_EADDR, "%s: the name must be /NAME (a slash, then at least one byte)",
                        url);
    if (strchr(b + 1, '/') != NULL)
        return ipk__err(IPK_EADDR, "%s: no '/' allowed after the leading one", url);
    if (n > NAME_MAX)
        return ipk__err(IPK_EADDR, "%s: name is %zu bytes; NAME_MAX is %d", url, n, NAME_MAX);
    if (strcmp(b, "/.") == 0 || strcmp(b, "/..") == 0)
        return ipk__err(IPK_EADDR, "%s: '.' and '..' are not names", url);
    /* The kernel takes them, but a newline would split the object's line in every listing
     * (ipckit ls, /dev/shm, /dev/mqueue) and make it look like two. */
    for (size_t i = 1; i < n; i++)
        if ((unsigned char)b[i] < 0x20 || b[i] == 0x7f)
            return ipk__err(IPK_EADDR, "%s: control character 0x%02x in the name", url,
                            (unsigned char)b[i]);
    memcpy(a->u.posix.name, b, n + 1);
    return 0;
}

int ipk__addr_path(ipk__addr *a, const char *url)
{
    size_t n = strlen(a->body);
    if (n == 0)
        return ipk__err(IPK_EADDR, "%s: missing path", url);
    if (n >= PATH_MAX)
        return ipk__err(IPK_EADDR, "%s: path is %zu bytes; PATH_MAX is %d", url, n, PATH_MAX);
    return 0;
}

void ipk__addr_free(ipk__addr *a)
{
    free(a->body);
    ipk__kv_free(a->query);
    memset(a, 0, sizeof *a);
}

/* "(file shm exec ...)": the schemes of the registry, for the unknown-scheme message. */
static void ipk__scheme_list(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; ipk__transport_at(i) && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", ipk__transport_at(i)->scheme);
}

int ipk__addr_parse(ipk__addr *a, const char *url)
{
    memset(a, 0, sizeof *a);
    if (url == NULL)
        return ipk__err(-EINVAL, "address is NULL");
    const char *colon = strchr(url, ':');
    if (colon == NULL)
        return ipk__err(IPK_EADDR, "%s: missing scheme (e.g. unix:/path, tcp://127.0.0.1:9000)",
                        url);
    const ipk__transport *tr = ipk__transport_find(url, (size_t)(colon - url));
    if (tr == NULL) {
        char list[256];
        ipk__scheme_list(list, sizeof list);
        return ipk__err(IPK_EADDR, "%s: unknown scheme '%.*s' (%s)", url, (int)(colon - url), url,
                        list);
    }
    a->tr = tr;
    a->scheme_name = tr->scheme;
    const char *body = colon + 1;
    const char *q = NULL;
    if (tr->flags & IPK__TF_QUERY_LAST) {
        const char *last = strrchr(body, '?');
        if (last && ipk__looks_like_query(last + 1))
            q = last;
    } else {
        q = strchr(body, '?');
    }
    size_t bn = q ? (size_t)(q - body) : strlen(body);
    a->body = strndup(body, bn);
    if (a->body == NULL)
        return -ENOMEM;
    int r = 0;
    if (q)
        r = ipk__parse_query(a, url, q + 1);
    /* A transport switched off in this build cannot read its body: listen and dial say so. */
    if (r == 0 && ipk__transport_built(tr))
        r = tr->parse ? tr->parse(a, url) : ipk__addr_path(a, url);
    if (r != 0)
        ipk__addr_free(a);
    return r;
}
