/*
 * SPSC ring produce/consume (docs/ring.md; the Z3 model in proofs/ follows this code).
 *
 * One producer and one consumer share the data pages. Each side writes only its own
 * index (head or tail, each on its own page) and reads the other's. Indices are
 * free-running uint32 byte counts, so used = head - tail is correct across 2^32.
 *
 * Ordering. A side publishes with a release store of its own index and observes the
 * peer with an acquire load of the peer's index:
 *   producer: write payload, write header, store_release(head)
 *   consumer: load_acquire(head), read header and payload, store_release(tail)
 *   producer: load_acquire(tail) before it overwrites bytes the consumer freed.
 * On arm64 these are ldar/stlr; on x86-64 (TSO) plain movs the compiler may not reorder.
 *
 * Safety. Everything the peer writes (its index, the headers, the payload) may be
 * garbage or may change while we look. Each shared word is read once into a local,
 * and only the local is validated and used, so a corrupt index or header yields
 * RING_ECORRUPT_*, never an access outside data[0, capacity).
 */
#include <keusim/ring.h>
#include <keusim/cpu.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);  /* guests/lib/string.c */

// Load the peer's index; later reads of the ring are ordered after it (ldar on arm64).
static inline uint32_t
load_acquire(volatile uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

// Publish our index; earlier reads and writes of the ring are ordered before it (stlr).
static inline void
store_release(volatile uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

// Bytes a record with a len-byte payload occupies: header + payload, rounded up to
// RING_ALIGN. Computed in 64 bits so that a corrupt header cannot wrap it to a small value.
static inline uint64_t
rec_size(uint64_t len)
{
    return (RING_HDR_SIZE + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

// The header word at data offset off (off is 8-aligned and <= capacity - 8).
static inline volatile uint32_t *
hdr_at(struct ring_ep *ep, uint32_t off)
{
    return (volatile uint32_t *)(ep->data + off);
}

// Fill ep for a ring whose head, tail and data the kernel mapped. Touches neither index.
// Returns 0, or RING_EINVAL if capacity is not a power of two in range or data is not
// 8-byte aligned.
int
ring_init(struct ring_ep *ep, volatile uint32_t *head, volatile uint32_t *tail,
          void *data, uint32_t capacity)
{
    if (capacity < RING_MIN_CAPACITY || capacity > RING_MAX_CAPACITY ||
        (capacity & (capacity - 1)) != 0 || ((uintptr_t)data & (RING_ALIGN - 1)) != 0)
        return RING_EINVAL;
    ep->head = head;
    ep->tail = tail;
    ep->data = data;
    ep->capacity = capacity;
    ep->mask = capacity - 1;
    ep->local = 0;
    ep->pending = 0;
    return 0;
}

// Producer: reserve room for a len-byte message and set *out to where its payload goes.
// Publishes nothing (except, see below, a lone WRAP marker); ring_commit publishes.
// Cancels any earlier reservation that was not committed.
// Returns 0, RING_ETOOBIG (len > capacity - 8), RING_EAGAIN (no room yet), or
// RING_ECORRUPT_INDEX (the tail the consumer wrote is past head, or head is misaligned).
int
ring_reserve(struct ring_ep *ep, uint32_t len, void **out)
{
    uint32_t h, t, used, off, contig, rec, need;

    ep->pending = 0;
    if (len > ep->capacity - RING_ALIGN)
        return RING_ETOOBIG;
    h = *ep->head;                       // our own index
    t = load_acquire(ep->tail);          // the consumer is done with everything before t
    used = h - t;
    if (used > ep->capacity || (h & (RING_ALIGN - 1)) != 0)
        return RING_ECORRUPT_INDEX;
    rec = (uint32_t)rec_size(len);       // <= capacity, since len <= capacity - 8
    off = h & ep->mask;
    contig = ep->capacity - off;         // bytes from off to the end of data; >= 8
    need = rec > contig ? contig + rec : rec;
    if (need > ep->capacity - used) {
        // Liveness (docs/ring.md, deviation 1): if only the skip fits, publish the WRAP
        // marker by itself, so the consumer can free the end of the buffer and a record
        // larger than off can later be placed at offset 0.
        if (rec > contig && contig <= ep->capacity - used) {
            *hdr_at(ep, off) = RING_WRAP;
            store_release(ep->head, h + contig);
        }
        return RING_EAGAIN;
    }
    if (rec > contig) {                  // would straddle the end: skip to offset 0
        *hdr_at(ep, off) = RING_WRAP;
        h += contig;
    }
    ep->local = h;
    ep->pending = rec;
    *out = ep->data + (h & ep->mask) + RING_HDR_SIZE;
    return 0;
}

// Producer: publish the message reserved by ring_reserve, with payload length len.
// len may be less than the reserved length (the record shrinks), never more.
// Returns 0, or RING_ETOOBIG if nothing is reserved or len does not fit the reservation.
int
ring_commit(struct ring_ep *ep, uint32_t len)
{
    uint32_t rec;

    if (len > ep->capacity - RING_ALIGN)
        return RING_ETOOBIG;
    rec = (uint32_t)rec_size(len);
    if (rec > ep->pending)               // also catches "nothing reserved" (pending == 0)
        return RING_ETOOBIG;
    *hdr_at(ep, ep->local & ep->mask) = len;
    ep->local += rec;
    ep->pending = 0;
    store_release(ep->head, ep->local);  // payload and header are visible before head
    return 0;
}

// Consumer: find the oldest message; set *out to its payload (in the ring, read-only)
// and *len to its length. It stays in the ring until ring_release; on error nothing
// is pending, so ring_release does nothing.
// Returns 0, RING_EAGAIN (empty), RING_ECORRUPT_INDEX (head - tail > capacity, or an
// index not 8-aligned) or RING_ECORRUPT_LEN (a header overruns the buffer or head).
int
ring_peek(struct ring_ep *ep, const void **out, uint32_t *len)
{
    uint32_t t, h, used, off, hdr, skip;
    uint64_t rec;

    ep->pending = 0;
    t = *ep->tail;                       // our own index
    for (;;) {
        h = load_acquire(ep->head);      // everything before h is written
        used = h - t;
        if (used == 0)
            return RING_EAGAIN;
        if (used > ep->capacity || ((h | t) & (RING_ALIGN - 1)) != 0)
            return RING_ECORRUPT_INDEX;
        off = t & ep->mask;              // 8-aligned, so off <= capacity - 8
        hdr = *hdr_at(ep, off);          // read once; validate only this copy
        if (hdr != RING_WRAP)
            break;
        skip = ep->capacity - off;       // the producer skipped to offset 0; follow
        if (skip > used)
            return RING_ECORRUPT_LEN;
        t += skip;
        store_release(ep->tail, t);
    }
    rec = rec_size(hdr);
    if (hdr > ep->capacity - RING_ALIGN || rec > ep->capacity - off || rec > used)
        return RING_ECORRUPT_LEN;
    ep->local = t;
    ep->pending = (uint32_t)rec;
    *out = ep->data + off + RING_HDR_SIZE;
    *len = hdr;
    return 0;
}

// Consumer: free the message returned by the last ring_peek. No-op if none is pending.
void
ring_release(struct ring_ep *ep)
{
    if (ep->pending == 0)
        return;
    ep->local += ep->pending;
    ep->pending = 0;
    store_release(ep->tail, ep->local);  // our reads of the record are done before tail
}

// Producer: copy a len-byte message into the ring. Returns as ring_reserve.
int
ring_send(struct ring_ep *ep, const void *buf, uint32_t len)
{
    void *dst;
    int r;

    if ((r = ring_reserve(ep, len, &dst)) != 0)
        return r;
    memcpy(dst, buf, len);
    return ring_commit(ep, len);
}

// Consumer: copy the oldest message into buf and free it; *len gets its length.
// Returns as ring_peek, or RING_EMSGSIZE if it is longer than maxlen: then *len is set
// and the message stays in place (ring_release drops it).
int
ring_recv(struct ring_ep *ep, void *buf, uint32_t maxlen, uint32_t *len)
{
    const void *src;
    uint32_t n;
    int r;

    if ((r = ring_peek(ep, &src, &n)) != 0)
        return r;
    *len = n;
    if (n > maxlen)
        return RING_EMSGSIZE;
    memcpy(buf, src, n);
    ring_release(ep);
    return 0;
}

// ring_send, polling while the ring is full. Returns 0 or the first other error.
int
ring_send_wait(struct ring_ep *ep, const void *buf, uint32_t len)
{
    int r;

    while ((r = ring_send(ep, buf, len)) == RING_EAGAIN)
        cpu_relax();
    return r;
}

// ring_recv, polling while the ring is empty. Returns 0 or the first other error.
int
ring_recv_wait(struct ring_ep *ep, void *buf, uint32_t maxlen, uint32_t *len)
{
    int r;

    while ((r = ring_recv(ep, buf, maxlen, len)) == RING_EAGAIN)
        cpu_relax();
    return r;
}
