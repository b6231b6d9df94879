/*
 * A deterministic byte generator for channel keys: SipHash-2-4 in counter mode.
 *
 *   seed key  S   16 bytes (drbg_seed64() expands a 64-bit manifest seed into S)
 *   block i   B_i = u64le(siphash24(S, "keusim-drbg" || u64le(i)))   8 bytes
 *   stream        B_0 || B_1 || B_2 || ...
 *   channel key k = stream bytes [16k, 16k + 16) = B_2k || B_2k+1
 *
 * It exists so that a run is reproducible: the same seed gives the same channel
 * keys, byte for byte, in the kernel and in keusim/crypto/drbg.py. It is NOT a
 * standard cryptographic DRBG (no NIST SP 800-90A construction, no reseeding,
 * no entropy input, no backtracking resistance): the keys are exactly as secret
 * as the seed. See docs/notify.md.
 */
#ifndef KEUSIM_DRBG_H
#define KEUSIM_DRBG_H

#include <stddef.h>
#include <stdint.h>

#define DRBG_SEED_LEN 16
#define DRBG_BLOCK_LEN 8
#define DRBG_KEY_LEN 16

// The seed a manifest gets when it names none: ASCII "keusim" (0x6b..6d).
#define DRBG_DEFAULT_SEED 0x00006b657573696dULL
// Whitening for the upper half of an expanded 64-bit seed: 2^64 / golden ratio.
#define DRBG_SEED_TWEAK 0x9e3779b97f4a7c15ULL

struct drbg {
    uint8_t key[DRBG_SEED_LEN];    // S, the seed key
    uint64_t counter;              // index of the next block to generate
    uint8_t block[DRBG_BLOCK_LEN]; // the current block
    uint32_t avail;                // unread bytes at the end of block (0..8)
};

void drbg_seed64(uint64_t seed, uint8_t out[DRBG_SEED_LEN]);
void drbg_init(struct drbg *g, const uint8_t seed[DRBG_SEED_LEN]);
void drbg_bytes(struct drbg *g, void *out, size_t n);
void drbg_channel_key(const uint8_t seed[DRBG_SEED_LEN], uint64_t index,
                      uint8_t key[DRBG_KEY_LEN]);

#endif
