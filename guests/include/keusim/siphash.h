/*
 * SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012), the MAC
 * on notification descriptors. Guests link the kernel's own implementation
 * (kernel/lib/siphash.c), so both sides compute the same function.
 *
 * Byte order is the paper's: k0 = u64le(key[0..8]), k1 = u64le(key[8..16]); the
 * message is read as little-endian 64-bit words.
 */
#ifndef KEUSIM_SIPHASH_H
#define KEUSIM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *msg, size_t len);

#endif
