/*
 * Deterministic generator for channel keys: SipHash-2-4 in counter mode.
 * The construction and its limits are in drbg.h and docs/notify.md;
 * keusim/crypto/drbg.py computes the same stream.
 */
#include <stddef.h>
#include <stdint.h>

#include "drbg.h"
#include "siphash.h"

// Domain-separation label prefixed to every counter (11 bytes, no NUL).
static const uint8_t drbg_label[11] = {'k', 'e', 'u', 's', 'i', 'm', '-', 'd', 'r', 'b', 'g'};

// put64le: store x at p as 8 little-endian bytes; p needs no alignment.
static void put64le(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

// drbg_block: block i of the stream keyed by key, as 8 bytes into out.
static void drbg_block(const uint8_t key[DRBG_SEED_LEN], uint64_t i, uint8_t out[DRBG_BLOCK_LEN])
{
    uint8_t msg[sizeof(drbg_label) + 8];
    for (size_t j = 0; j < sizeof(drbg_label); j++)
        msg[j] = drbg_label[j];
    put64le(msg + sizeof(drbg_label), i);
    put64le(out, siphash24(key, msg, sizeof(msg)));
}

// drbg_seed64: expand a 64-bit manifest seed into the 16-byte seed key
// u64le(seed) || u64le(seed ^ DRBG_SEED_TWEAK).
void drbg_seed64(uint64_t seed, uint8_t out[DRBG_SEED_LEN])
{
    put64le(out, seed);
    put64le(out + 8, seed ^ DRBG_SEED_TWEAK);
}

// drbg_init: start g at the beginning of the stream keyed by seed.
void drbg_init(struct drbg *g, const uint8_t seed[DRBG_SEED_LEN])
{
    for (int i = 0; i < DRBG_SEED_LEN; i++)
        g->key[i] = seed[i];
    for (int i = 0; i < DRBG_BLOCK_LEN; i++)
        g->block[i] = 0;
    g->counter = 0;
    g->avail = 0;
}

// drbg_bytes: the next n bytes of g's stream into out. Successive calls continue
// the stream, so any split of a request into calls gives the same bytes.
void drbg_bytes(struct drbg *g, void *out, size_t n)
{
    uint8_t *o = out;
    while (n > 0) {
        if (g->avail == 0) {
            drbg_block(g->key, g->counter, g->block);
            g->counter++;
            g->avail = DRBG_BLOCK_LEN;
        }
        *o++ = g->block[DRBG_BLOCK_LEN - g->avail];
        g->avail--;
        n--;
    }
}

// drbg_channel_key: channel key number index (from 0) of the stream keyed by
// seed (index < 2^63), i.e. stream bytes [16*index, 16*index + 16), computed
// directly without generating the bytes before it.
void drbg_channel_key(const uint8_t seed[DRBG_SEED_LEN], uint64_t index, uint8_t key[DRBG_KEY_LEN])
{
    drbg_block(seed, 2 * index, key);
    drbg_block(seed, 2 * index + 1, key + DRBG_BLOCK_LEN);
}
