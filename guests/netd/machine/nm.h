/*
 * Shared by NetD's machine main and its applications (docs/netd.md, "NetD on the
 * machine"): tell the other side, with one verified notification, that records were
 * published on a notify-mode channel since the last time.
 */
#ifndef NETD_MACHINE_NM_H
#define NETD_MACHINE_NM_H

#include <keusim/keusim.h>
#include <keusim/notify.h>
#include <keusim/ring.h>

struct nm_out {
    struct ks_notifier n;
    const struct ring_ep *ep;   /* the ring this side produces */
    uint32_t told;              /* head at the last notification */
    int on;                     /* the channel is in notify mode */
    uint64_t sent;              /* notifications sent */
};

// Set o up for the ring ep of channel ch (this process its producer).
static inline void nm_open(struct nm_out *o, uint32_t ch, const struct ring_ep *ep)
{
    o->ep = ep;
    o->told = *ep->head;
    o->on = ks_notifier_open(&o->n, ch) == 0;
    o->sent = 0;
}

// If the ring's head moved since the last call, notify the newest published bytes: the
// whole range when it does not straddle the end of the data area (the kernel refuses a
// straddling descriptor, kernel/notify.c), else the part after the wrap. One
// notification wakes the consumer, which then reads everything there is.
static inline void nm_flush(struct nm_out *o)
{
    uint32_t h = *o->ep->head, cap = o->ep->capacity;
    uint32_t len = h - o->told, start;

    if (!o->on || len == 0)
        return;
    if (len > cap)
        len = cap;
    start = h - len;
    if ((start & (cap - 1)) + len > cap) {
        len = h & (cap - 1);
        start = h - len;
    }
    ks_notify_send(&o->n, start, len, 0);
    o->told = h;
    o->sent++;
}

#endif
