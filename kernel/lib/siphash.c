/*
 * SipHash-2-4, written for clarity first: 2 compression rounds per 8-byte
 * message word, 4 finalisation rounds, no SIMD, no FP, no libc calls.
 *
 * Reference: J.-P. Aumasson and D. J. Bernstein, "SipHash: a fast short-input
 * PRF", INDOCRYPT 2012, and its reference C code (github.com/veorq/SipHash).
 * tests/test_crypto_c.py checks this file against that code's 64 test vectors
 * (vectors.h, kept in keusim/crypto/siphash.py) and against the Python mirror.
 */
#include <stddef.h>
#include <stdint.h>

#include "siphash.h"

// rotl: x rotated left by b bits; b is in 1..63.
static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

// load64le: the 8 bytes at p as a little-endian word; p needs no alignment.
// Built from single bytes so that it is right on any byte order and never makes
// an alignment-faulting access. Compilers merge it into one load where the
// target allows unaligned loads: x86-64 always; AArch64 on Normal memory with
// SCTLR_EL1.A = 0 (an unaligned access to Device memory, which is all memory
// while the MMU is off, faults whatever SCTLR_EL1.A says).
static inline uint64_t load64le(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

// sipround: one SipRound (paper, section 2) on the state v[0..3].
static inline void sipround(uint64_t v[4])
{
    v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
    v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
    v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
    v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

// compress: absorb one 64-bit message word m with c = 2 SipRounds.
static inline void compress(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sipround(v);
    sipround(v);
    v[0] ^= m;
}

// siphash24: the SipHash-2-4 tag of msg[0..len) under the 16-byte key.
// Any key, any length (0 included) and any alignment of key and msg are valid.
uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *msg, size_t len)
{
    const uint8_t *in = msg;
    uint64_t k0 = load64le(key);
    uint64_t k1 = load64le(key + 8);
    // Initialisation constants: ASCII "somepseudorandomlygeneratedbytes" (paper, section 2).
    uint64_t v[4] = {
        k0 ^ 0x736f6d6570736575ULL,
        k1 ^ 0x646f72616e646f6dULL,
        k0 ^ 0x6c7967656e657261ULL,
        k1 ^ 0x7465646279746573ULL,
    };

    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8)
        compress(v, load64le(in + i));

    // Last word: the 0..7 leftover bytes, and len mod 256 in the top byte.
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[full + i] << (8 * i);
    compress(v, b);

    // Finalisation: d = 4 SipRounds.
    v[2] ^= 0xff;
    sipround(v);
    sipround(v);
    sipround(v);
    sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}
