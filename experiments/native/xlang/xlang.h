/*
 * The cross-language ring experiment (experiments/xlang.py): what every endpoint,
 * in any language, agrees on. endpoint.zig and endpoint.py restate these constants;
 * a change here must be made there too (tests/test_xlang.py runs every pair).
 *
 * Shared file (created zero-filled by the driver, mapped MAP_SHARED by both ends):
 *   page 0            control: uint32 ready flag of role 0 at byte 0, of role 1 at byte 64
 *   pages 1..6        ring 0 (role 0 -> role 1): head page, tail page, 16 KiB data
 *   pages 7..12       ring 1 (role 1 -> role 0): the same
 * The ring pages are laid out as the kernel maps them for guests (docs/ring.md) and
 * driven by guests/lib/ring.c (C, C++, Python through ctypes) or its Zig port.
 *
 * Message of SIZE bytes (a multiple of 8, >= 16): uint64 seq, uint64 send time
 * (CLOCK_MONOTONIC ns), then words w[k] = splitmix64(seq << 16 | k) for k >= 2.
 * Role 0 sends seq 0, 1, ... and waits for each echo (round trip); role 1 checks each
 * message, stamps its own send time over word 1 and echoes it. One-way latency is the
 * receiver's clock minus the stamp (both ends read the same host clock).
 */
#ifndef XLANG_H
#define XLANG_H

#include <stdint.h>

#define XL_PAGE       4096u
#define XL_CAPACITY   16384u
#define XL_RING_PAGES (2u + XL_CAPACITY / XL_PAGE)
#define XL_FILE_SIZE  (XL_PAGE * (1u + 2u * XL_RING_PAGES))
#define XL_READY_OFF(role) ((role) * 64u)
#define XL_RING_OFF(r) (XL_PAGE * (1u + (r) * XL_RING_PAGES))

/* splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014): the payload word k of message seq is xl_word(seq << 16 | k). */
static inline uint64_t xl_word(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
