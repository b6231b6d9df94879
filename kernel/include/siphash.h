/*
 * SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012):
 * a keyed 64-bit PRF used as the MAC on notification descriptors (descriptor.h)
 * and as the block function of the channel-key generator (drbg.h).
 *
 * Byte order is the paper's: the key is k0 = u64le(key[0..8]), k1 = u64le(key[8..16]);
 * the message is read as little-endian 64-bit words; the result is a uint64_t whose
 * little-endian bytes are the reference implementation's 8-byte output.
 */
#ifndef KEUSIM_SIPHASH_H
#define KEUSIM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *msg, size_t len);

#endif
