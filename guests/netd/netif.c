/*
 * Descriptor rings of the netif shape (netif.h). One producer and one consumer; each
 * writes only its own index. The peer's index is loaded once with acquire order and
 * checked before use, so a NIC (or a host backend) that writes garbage into its index
 * produces an error, not an access outside the descriptor array.
 */
#include "netif.h"

static inline uint32_t
load_acquire(volatile uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void
store_release(volatile uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

// Set up r over caller-provided indices and descriptors. size must be a power of two.
// Returns 0, or -1 for a bad size.
int
xring_init(struct xring *r, volatile uint32_t *prod, volatile uint32_t *cons,
           struct xdesc *desc, uint32_t size)
{
    if (size == 0 || (size & (size - 1)) != 0)
        return -1;
    r->prod = prod;
    r->cons = cons;
    r->desc = desc;
    r->size = size;
    r->mask = size - 1;
    return 0;
}

// Producer: append one descriptor. Returns 0, or -1 when the ring is full (or the
// consumer's index is impossible, which is treated as full: nothing is overwritten).
int
xring_put(struct xring *r, const struct xdesc *d)
{
    uint32_t prod = *r->prod;
    uint32_t cons = load_acquire(r->cons);

    if (prod - cons >= r->size)
        return -1;
    r->desc[prod & r->mask] = *d;
    store_release(r->prod, prod + 1);
    return 0;
}

// Consumer: take one descriptor. Returns 0, -1 when empty, -2 when the producer's index
// claims more entries than the ring holds.
int
xring_get(struct xring *r, struct xdesc *d)
{
    uint32_t cons = *r->cons;
    uint32_t prod = load_acquire(r->prod);

    if (prod == cons)
        return -1;
    if (prod - cons > r->size)
        return -2;
    *d = r->desc[cons & r->mask];
    store_release(r->cons, cons + 1);
    return 0;
}
