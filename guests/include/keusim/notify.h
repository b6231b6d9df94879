/*
 * Notify-mode channels, guest side (docs/notify.md, "The notify path").
 *
 * Producer: publish a record with the ring library, then tell the kernel with a
 * descriptor {channel, offset, length, flags, seq, tag}. On a verified channel
 * the tag is SipHash-2-4 under the channel key, which the kernel put on this
 * process's read-only info page (producers of verified channels only).
 *
 *   struct ks_notifier n;
 *   ks_notifier_open(&n, ch);
 *   ks_send_notified(&ep, &n, buf, len);          // ring_send + notify
 *
 * Consumer: receive; when the ring is empty, ks_wait() instead of spinning.
 *
 *   ks_recv_notified(&ep, ch, buf, max, &len, &waits);
 *
 * Descriptor coordinates: offset is the free-running byte position (the same
 * coordinate as the ring's head and tail, mod 2^32) of the first byte named;
 * length counts bytes. ks_notify_record names a whole record: its 4-byte
 * header and its payload, without the padding. flags must be 0 (all reserved).
 * Sequence numbers start at 1 and must strictly increase per channel.
 */
#ifndef KEUSIM_NOTIFY_H
#define KEUSIM_NOTIFY_H
#include <keusim/keusim.h>
#include <keusim/ring.h>
#include <keusim/descriptor.h>

/* What the kernel's sys_wait returns when the producer is gone (EPIPE, kernel/notify.c). */
#define KS_EPIPE EPIPE

/* ks_recv_notified errors, apart from the RING_E* codes. */
#define KS_ENOTIFY_PERM (-20) /* wait refused: not the consumer of a notify-mode channel */
#define KS_ENOTIFY_PEER (-21) /* the producer is gone and the ring is drained */

/* A producer's notification state for one channel. */
struct ks_notifier {
    uint32_t channel;     /* global channel index (the descriptor's channel) */
    uint32_t verified;    /* sign descriptors */
    uint64_t seq;         /* last sequence number sent; the next is seq + 1 */
    const uint8_t *key;   /* the channel key on the info page (verified only) */
};

/* Set n up for channel ch. Returns 0, or -1 unless this process is the producer
 * of notify-mode channel ch. */
int ks_notifier_open(struct ks_notifier *n, uint32_t ch);

/* Fill d and tag it under key (key 0: tag 0, for unverified channels). */
void ks_desc_make(struct notify_desc *d, uint32_t ch, uint32_t offset, uint32_t length,
                  uint32_t flags, uint64_t seq, const uint8_t *key);

/* Notify [offset, offset+length) with the next sequence number. Returns the
 * kernel's answer (0, or EPERM on a poll-mode channel); a bad descriptor kills. */
int64_t ks_notify_send(struct ks_notifier *n, uint32_t offset, uint32_t length, uint32_t flags);

/* Bytes a record with a len-byte payload occupies in the ring (header + padding). */
static inline uint32_t ks_record_size(uint32_t len)
{
    return (RING_HDR_SIZE + len + RING_ALIGN - 1) & ~(uint32_t)(RING_ALIGN - 1);
}

/* Free-running position of the record with a len-byte payload that ep just committed. */
static inline uint32_t ks_record_pos(const struct ring_ep *ep, uint32_t len)
{
    return ep->local - ks_record_size(len);
}

/* Notify the record with a len-byte payload that ep just committed. */
int64_t ks_notify_record(struct ks_notifier *n, const struct ring_ep *ep, uint32_t len);

/* ring_send (yielding the core while the ring is full), then notify the record.
 * Returns 0, a RING_E* error, or the kernel's notify answer. */
int ks_send_notified(struct ring_ep *ep, struct ks_notifier *n, const void *buf, uint32_t len);

/* ring_recv; while the ring is empty, ks_wait(ch). *waits (if not 0) counts the
 * waits that returned a notification. Returns 0, a RING_E* error (as ring_recv),
 * KS_ENOTIFY_PERM, or KS_ENOTIFY_PEER once the producer is gone and the ring empty. */
int ks_recv_notified(struct ring_ep *ep, uint32_t ch, void *buf, uint32_t maxlen,
                     uint32_t *len, uint64_t *waits);

/* 1 if this process's endpoint on channel ch (role EP_*) is in notify mode. */
int ks_is_notify(uint32_t ch, uint32_t role);

#endif /* KEUSIM_NOTIFY_H */
