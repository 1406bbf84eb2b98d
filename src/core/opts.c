/*
 * opts.c - channel options: a small key/value list filled from the address query and from
 * ipk_opts, read by the core and the transports through typed getters that validate ranges.
 */
#include "ipk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

ipk_opts *ipk_opts_new(void)
{
    return calloc(1, sizeof(ipk_opts));
}

int ipk_opts_set(ipk_opts *o, const char *key, const char *value)
{
    if (o == NULL || key == NULL || value == NULL)
        return ipk__err(-EINVAL, "ipk_opts_set: NULL argument");
    size_t n = strlen(key);
    if (n == 0 || n >= 64 || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
        return ipk__err(IPK_EOPTION, "option name '%s': lower-case letters, digits and _", key);
    return ipk__kv_set(&o->kv, key, value);
}

void ipk_opts_free(ipk_opts *o)
{
    if (o == NULL)
        return;
    ipk__kv_free(o->kv);
    free(o);
}

const char *ipk__opt(const ipk_chan *c, const char *key)
{
    for (const ipk__kv *kv = c->opts; kv; kv = kv->next)
        if (strcmp(kv->key, key) == 0)
            return kv->val;
    return NULL;
}

int ipk__opt_size(const ipk_chan *c, const char *key, size_t def, size_t *out)
{
    const char *v = ipk__opt(c, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (ipk__parse_size(v, out) != 0)
        return ipk__err(IPK_EOPTION, "%s: option %s=%s: expected a size such as 4096, 64k, 16m",
                        c->addr.scheme_name, key, v);
    return 0;
}

int ipk__opt_long(const ipk_chan *c, const char *key, long min, long max, long def, long *out)
{
    const char *v = ipk__opt(c, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (ipk__parse_long(v, min, max, out) != 0)
        return ipk__err(IPK_EOPTION, "%s: option %s=%s: expected an integer in %ld..%ld",
                        c->addr.scheme_name, key, v, min, max);
    return 0;
}

int ipk__opt_bool(const ipk_chan *c, const char *key, int def, int *out)
{
    const char *v = ipk__opt(c, key);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0) {
        *out = 0;
        return 0;
    }
    return ipk__err(IPK_EOPTION, "%s: option %s=%s: expected 1 or 0", c->addr.scheme_name, key, v);
}
