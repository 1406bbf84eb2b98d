/*
 * parse.c - the small parsers that addresses and options share: numbers, sizes with a k/m/g
 * suffix, and the key/value list that holds a query or a set of options.
 */
#include "ipk.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ipk__parse_long(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int ipk__parse_size(const char *s, size_t *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -ERANGE;
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        return -EINVAL;
    }
    if (*end != '\0')
        return -EINVAL;
    if (shift && v > (~0ULL >> shift))
        return -ERANGE;
    v <<= shift;
    if (v > SIZE_MAX)
        return -ERANGE;
    *out = (size_t)v;
    return 0;
}

void ipk__kv_free(ipk__kv *kv)
{
    while (kv) {
        ipk__kv *next = kv->next;
        free(kv->key);
        free(kv->val);
        free(kv);
        kv = next;
    }
}

int ipk__kv_set(ipk__kv **list, const char *key, const char *val)
{
    char *v = strdup(val);
    if (v == NULL)
        return -ENOMEM;
    for (ipk__kv *kv = *list; kv; kv = kv->next)
        if (strcmp(kv->key, key) == 0) {
            free(kv->val);
            kv->val = v;
            return 0;
        }
    ipk__kv *kv = calloc(1, sizeof *kv);
    if (kv == NULL || (kv->key = strdup(key)) == NULL) {
        free(kv);
        free(v);
        return -ENOMEM;
    }
    kv->val = v;
    /* Append, so that iteration keeps the order the user wrote. */
    while (*list)
        list = &(*list)->next;
    *list = kv;
    return 0;
}

ipk__kv *ipk__kv_dup(const ipk__kv *kv)
{
    ipk__kv *out = NULL;
    for (; kv; kv = kv->next)
        if (ipk__kv_set(&out, kv->key, kv->val) != 0) {
            ipk__kv_free(out);
            return NULL;
        }
    return out;
}
