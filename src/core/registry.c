/*
 * registry.c - the one list of transports. The build writes registry.inc from the
 * ipk_transport() line of each transport's CMakeLists.txt: IPK__BUILT(sym) for a transport in
 * this build, IPK__OFF(scheme, NAME) for one switched off with -DIPK_TRANSPORT_<NAME>=OFF. Nothing
 * else in the tree names the schemes.
 */
#include "ipk.h"
#include "transport.h"

#include <string.h>

#define IPK__BUILT(sym) extern const ipk__transport ipk__tr_##sym;
#define IPK__OFF(name, opt)
#include "registry.inc"
#undef IPK__BUILT
#undef IPK__OFF

/* A scheme known to the build but not in it: every call says IPK_ENOTBUILT. */
#define IPK__OFF(name, opt)                                                                        \
    static const ipk__transport ipk__off_##name = {                                                \
        .scheme = #name,                                                                           \
        .usage = #name ":...",                                                                     \
        .summary = "not built in this version (cmake -DIPK_TRANSPORT_" #opt "=ON builds it)",      \
    };
#define IPK__BUILT(sym)
#include "registry.inc"
#undef IPK__BUILT
#undef IPK__OFF

static const ipk__transport *const ipk__registry[] = {
#define IPK__BUILT(sym)     &ipk__tr_##sym,
#define IPK__OFF(name, opt) &ipk__off_##name,
#include "registry.inc"
#undef IPK__BUILT
#undef IPK__OFF
};

#define IPK__NTRANSPORTS (sizeof ipk__registry / sizeof ipk__registry[0])

const ipk__transport *ipk__transport_at(size_t i)
{
    return i < IPK__NTRANSPORTS ? ipk__registry[i] : NULL;
}

const ipk__transport *ipk__transport_find(const char *scheme, size_t n)
{
    if (scheme == NULL)
        return NULL;
    for (size_t i = 0; i < IPK__NTRANSPORTS; i++)
        if (strncmp(ipk__registry[i]->scheme, scheme, n) == 0 &&
            ipk__registry[i]->scheme[n] == '\0')
            return ipk__registry[i];
    return NULL;
}

static const ipk__transport *ipk__named(const char *scheme)
{
    return scheme ? ipk__transport_find(scheme, strlen(scheme)) : NULL;
}

const char *ipk_scheme_at(size_t i)
{
    return i < IPK__NTRANSPORTS ? ipk__registry[i]->scheme : NULL;
}

unsigned ipk_scheme_flags(const char *scheme)
{
    const ipk__transport *tr = ipk__named(scheme);
    if (tr == NULL)
        return 0;
    return (tr->flags & IPK__TF_PUBLIC) | (ipk__transport_built(tr) ? IPK_SCHEME_BUILT : 0);
}

int ipk_scheme_built(const char *scheme)
{
    return (ipk_scheme_flags(scheme) & IPK_SCHEME_BUILT) != 0;
}

const char *ipk_scheme_usage(const char *scheme)
{
    const ipk__transport *tr = ipk__named(scheme);
    return tr ? tr->usage : NULL;
}

const char *ipk_scheme_summary(const char *scheme)
{
    const ipk__transport *tr = ipk__named(scheme);
    return tr ? tr->summary : NULL;
}

const char *ipk_scheme_option(const char *scheme, size_t i)
{
    const ipk__transport *tr = ipk__named(scheme);
    if (tr == NULL || tr->keys == NULL)
        return NULL;
    for (size_t k = 0; tr->keys[k]; k++)
        if (k == i)
            return tr->keys[k];
    return NULL;
}
