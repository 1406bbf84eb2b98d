/*
 * input.h - reading a fuzz input as a schedule: bytes, little-endian numbers, and 0 once the
 * input is used up (so that every input, however short, is a whole schedule).
 */
#ifndef IPK_FUZZ_INPUT_H
#define IPK_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rd {
    const unsigned char *p;
    size_t n;
} rd;

static inline unsigned rd8(rd *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

/* bytes little-endian bytes (at most 8) */
static inline uint64_t rdn(rd *r, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)rd8(r) << (8 * i);
    return v;
}

static inline unsigned rd16(rd *r)
{
    return (unsigned)rdn(r, 2);
}

static inline uint32_t rd32(rd *r)
{
    return (uint32_t)rdn(r, 4);
}

#endif
