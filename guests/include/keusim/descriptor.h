/*
 * Notification descriptors and their SipHash-2-4 tags (docs/notify.md); the kernel
 * uses this definition too (kernel/include/descriptor.h includes it).
 *
 * A sender passes a struct notify_desc to the notify system call. The kernel
 * recomputes the tag under the channel's 128-bit key and drops the descriptor
 * (and kills the sender) unless desc_tag_ok() says it matches. keusim/crypto/
 * descriptor.py is the Python mirror.
 *
 * The tag covers a canonical 24-byte encoding, not the struct's memory image,
 * so it does not depend on struct layout, padding or host byte order:
 *
 *   bytes  0..3   channel  u32 little-endian
 *   bytes  4..7   offset   u32 little-endian
 *   bytes  8..11  length   u32 little-endian
 *   bytes 12..15  flags    u32 little-endian
 *   bytes 16..23  seq      u64 little-endian
 *
 *   tag = siphash24(channel_key, encoding[0..24))
 */
#ifndef KEUSIM_DESCRIPTOR_H
#define KEUSIM_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>

#include <keusim/siphash.h>

#define DESC_ENC_LEN 24

struct notify_desc {
    uint32_t channel; // channel index in the system manifest
    uint32_t offset;  // byte offset of the message in the ring's data area
    uint32_t length;  // message length in bytes
    uint32_t flags;   // notify flags; all 32 bits are covered by the tag
    uint64_t seq;     // per-channel sequence number: makes each tag single-use
    uint64_t tag;     // siphash24(channel key, desc_encode(this))
};

// The system-call ABI passes this exact layout on both architectures.
_Static_assert(sizeof(struct notify_desc) == 32, "notify_desc must be 32 bytes");
_Static_assert(offsetof(struct notify_desc, seq) == 16, "notify_desc.seq at byte 16");
_Static_assert(offsetof(struct notify_desc, tag) == 24, "notify_desc.tag at byte 24");

// desc_put32: store x at p as 4 little-endian bytes.
static inline void desc_put32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    p[2] = (uint8_t)(x >> 16);
    p[3] = (uint8_t)(x >> 24);
}

// desc_encode: the canonical 24-byte encoding of d's tagged fields into out
// (every field but tag). Byte by byte, so it is the same on every target.
static inline void desc_encode(const struct notify_desc *d, uint8_t out[DESC_ENC_LEN])
{
    desc_put32(out + 0, d->channel);
    desc_put32(out + 4, d->offset);
    desc_put32(out + 8, d->length);
    desc_put32(out + 12, d->flags);
    desc_put32(out + 16, (uint32_t)d->seq);
    desc_put32(out + 20, (uint32_t)(d->seq >> 32));
}

// desc_tag: the tag d should carry under the 16-byte channel key; d->tag is ignored.
static inline uint64_t desc_tag(const uint8_t key[SIPHASH_KEY_LEN], const struct notify_desc *d)
{
    uint8_t enc[DESC_ENC_LEN];
    desc_encode(d, enc);
    return siphash24(key, enc, sizeof(enc));
}

// desc_tag_ok: 1 if d->tag is d's tag under key, else 0. The comparison has no
// data-dependent branch, so its timing says nothing about how many bits matched.
static inline int desc_tag_ok(const uint8_t key[SIPHASH_KEY_LEN], const struct notify_desc *d)
{
    uint64_t diff = desc_tag(key, d) ^ d->tag;
    // (diff | -diff) has its top bit set exactly when diff != 0.
    return (int)(1 ^ ((diff | (0 - diff)) >> 63));
}

#endif
