/*
 * fuzz_url.c - the address parser against arbitrary input: it must accept or refuse with
 * IPK_EADDR/IPK_EOPTION/-EINVAL, never crash, never leak, never read past the string.
 */
#include "ipk.h"
#include "signame.h" /* src/transport/signal */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    ipk__addr a;
    int r = ipk__addr_parse(&a, s);
    assert(r == 0 || r == IPK_EADDR || r == -ENOMEM);
    if (r == 0) {
        assert(a.body != NULL);
        ipk__addr_free(&a);
    }
    int sig;
    r = ipk__parse_signal(s, &sig);
    assert(r == 0 || r == IPK_EOPTION);
    if (r == 0)
        assert(sig > 0 && sig <= 64);
    size_t sz;
    (void)ipk__parse_size(s, &sz);
    free(s);
    return 0;
}
