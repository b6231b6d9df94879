/*
 * The C memory functions the guest runtime provides (guests/lib/string.c), with C's
 * signatures, so a guest can copy and compare without a C library.
 */
#ifndef KEUSIM_STRING_H
#define KEUSIM_STRING_H
#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif /* KEUSIM_STRING_H */
