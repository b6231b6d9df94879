/*
 * SPSC ring: one producer, one consumer, shared pages (docs/ring.md).
 *
 * Layout (the kernel maps it; the runtime fills a struct ring_ep from the info page):
 *   head page  uint32 head: free-running count of bytes published (producer RW, consumer RO)
 *   tail page  uint32 tail: free-running count of bytes consumed  (consumer RW, producer RO)
 *   data       capacity bytes, capacity a power of two in [4096, 1 MiB]
 *
 * used = head - tail (mod 2^32) is always in [0, capacity]: empty and full are distinct.
 * A message is a record at an 8-byte-aligned offset: a uint32 length header, then the
 * payload, padded to a multiple of 8. A record never straddles the end of data: a
 * producer that would straddle writes a RING_WRAP header and continues at offset 0.
 *
 * Every function returns 0 or a negative RING_E* code. Corrupt shared state (an index or
 * length the peer wrote) is reported, never followed out of bounds.
 *
 * Freestanding: only <stdint.h>/<stddef.h>; builds for the guests and for the host.
 */
#ifndef KEUSIM_RING_H
#define KEUSIM_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_HDR_SIZE       4             /* bytes of the length header */
#define RING_ALIGN          8             /* records start at multiples of this */
#define RING_WRAP           0xFFFFFFFFu   /* header value: skip to offset 0 */
#define RING_MIN_CAPACITY   4096
#define RING_MAX_CAPACITY   (1u << 20)

#define RING_EAGAIN         (-1)  /* ring full (send) or empty (recv): try again */
#define RING_ETOOBIG        (-2)  /* len > capacity - 8, or commit beyond the reservation */
#define RING_EMSGSIZE       (-3)  /* recv: message longer than the buffer; left in place */
#define RING_ECORRUPT_INDEX (-4)  /* head - tail > capacity, or an index not 8-aligned */
#define RING_ECORRUPT_LEN   (-5)  /* a header overruns the buffer or the published bytes */
#define RING_EINVAL         (-6)  /* ring_init: bad capacity or misaligned data */

/* One side's view of a ring. The producer uses head as its own index, the consumer tail. */
struct ring_ep {
    volatile uint32_t *head;  /* producer-written; free-running byte count published */
    volatile uint32_t *tail;  /* consumer-written; free-running byte count consumed */
    uint8_t *data;            /* capacity bytes */
    uint32_t capacity;        /* power of two, 4096 <= capacity <= 1<<20 */
    uint32_t mask;            /* capacity - 1 */
    uint32_t local;           /* producer: head at reserve; consumer: tail at peek */
    uint32_t pending;         /* record size reserved / peeked; 0 when none */
};

int  ring_init(struct ring_ep *ep, volatile uint32_t *head, volatile uint32_t *tail,
               void *data, uint32_t capacity);

/* Producer. */
int  ring_reserve(struct ring_ep *ep, uint32_t len, void **out);
int  ring_commit(struct ring_ep *ep, uint32_t len);
int  ring_send(struct ring_ep *ep, const void *buf, uint32_t len);
int  ring_send_wait(struct ring_ep *ep, const void *buf, uint32_t len);

/* Consumer. */
int  ring_peek(struct ring_ep *ep, const void **out, uint32_t *len);
void ring_release(struct ring_ep *ep);
int  ring_recv(struct ring_ep *ep, void *buf, uint32_t maxlen, uint32_t *len);
int  ring_recv_wait(struct ring_ep *ep, void *buf, uint32_t maxlen, uint32_t *len);

#endif /* KEUSIM_RING_H */
