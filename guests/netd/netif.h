/*
 * netif: the shape through which NetD meets a NIC (docs/netd.md).
 *
 * It is AF_XDP's shape: a frame region (UMEM) cut into fixed-size frames, and four
 * single-producer single-consumer rings of frame descriptors:
 *
 *   fill        NetD -> NIC   empty frames the NIC may receive into
 *   rx          NIC  -> NetD  frames received (address and length)
 *   tx          NetD -> NIC   frames to transmit
 *   completion  NIC  -> NetD  frames transmitted, free again
 *
 * A frame is owned by exactly one side at a time; NetD tracks which, so a descriptor
 * for a frame the NIC does not hold is refused and counted, never followed. The NIC
 * may place received bytes at any offset inside a frame (AF_XDP's headroom), so an rx
 * descriptor is valid when [addr, addr+len) lies inside the writable part of one frame.
 *
 * Indices are free-running uint32 counts, as in guests/lib/ring.c: used = prod - cons.
 * Freestanding: only <stdint.h>/<stddef.h>; the same file builds for guests and host.
 */
#ifndef NETD_NETIF_H
#define NETD_NETIF_H

#include <stddef.h>
#include <stdint.h>

struct xdesc {
    uint64_t addr;      /* byte offset into the frame region */
    uint32_t len;       /* bytes of frame (rx, tx); 0 on fill and completion */
    uint32_t options;   /* reserved, 0 */
};

struct xring {
    volatile uint32_t *prod;    /* producer's free-running count */
    volatile uint32_t *cons;    /* consumer's free-running count */
    struct xdesc *desc;         /* size entries */
    uint32_t size;              /* power of two */
    uint32_t mask;
};

#define NETIF_MAX_FRAMES 1024

struct netif {
    uint8_t *umem;          /* frame region */
    uint32_t nframes;       /* frames in the region, <= NETIF_MAX_FRAMES */
    uint32_t frame_stride;  /* bytes between frame starts, a power of two >= 2048 */
    uint32_t frame_room;    /* writable bytes from a frame's start, <= frame_stride */
    struct xring fill, rx, tx, comp;
    uint8_t mac[6];
};

int  xring_init(struct xring *r, volatile uint32_t *prod, volatile uint32_t *cons,
                struct xdesc *desc, uint32_t size);
int  xring_put(struct xring *r, const struct xdesc *d);   /* 0, or -1 when full */
int  xring_get(struct xring *r, struct xdesc *d);         /* 0, -1 empty, -2 corrupt */

#endif /* NETD_NETIF_H */
