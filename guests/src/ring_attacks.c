/*
 * The `ring-attacks` scenario. Each channel pairs an attacker with an honest
 * peer (ROLE 0 producer, ROLE 1 consumer); ATTACK selects the misbehaviour:
 *   1 consumer writes the producer's head page      -> killed: write-protect
 *   2 producer writes the kernel's channel table      -> killed: kernel-access
 *   3 consumer jumps into the ring's data page        -> killed: exec-nx
 *   4 consumer reads the guard page below the data    -> killed: unmapped
 *   5 producer publishes head > tail + capacity       -> consumer records corrupt-index
 *   6 consumer moves tail past head                   -> producer records corrupt-index
 * The honest side checks every byte it receives; it gives up on a silent peer
 * after IDLE_LIMIT model cycles (deterministic: model time, not host time).
 */
#include <keusim/workload.h>

#define MESSAGES 16
#define SIZE 2000
#define BEFORE 4                 /* honest messages before the attack */
#define IDLE_LIMIT 3000000ull
#define SEED 0x5eed0003ull

static uint8_t buf[SIZE + 8];

static int attacker(void)
{
    return (ATTACK == 2 || ATTACK == 5) ? ROLE == 0 : ROLE == 1;
}

static void attack(struct ring_ep *ep)
{
    switch (ATTACK) {
    case 1:
        *(volatile uint32_t *)ep->head = 0;
        break;
    case 2:
        *(volatile uint64_t *)ks_info->ctl_va = 0;
        break;
    case 3:
        ((void (*)(void))(uintptr_t)ep->data)();
        break;
    case 4:
        (void)*(volatile uint8_t *)(ep->data - 4096);
        break;
    case 5: {
        /* Let the victim drain the honest messages first, then forge head. */
        uint64_t t0 = ks_rdcycles();
        while (*ep->tail != *ep->head && ks_rdcycles() - t0 < IDLE_LIMIT)
            ks_yield();
        *ep->head = *ep->tail + ep->capacity + 64;
        break;
    }
    case 6:
        /* Past any head the producer can have published (it is <= tail + capacity). */
        *ep->tail = *ep->head + ep->capacity + 64;
        break;
    }
}

int main(void)
{
    struct ring_ep ep;
    uint32_t role = ROLE == 0 ? EP_PRODUCER : EP_CONSUMER;
    int i = 0; /* each process has exactly one endpoint */
    if (!ks_endpoint(i) || ks_endpoint(i)->role != role || ks_ring_open(i, &ep) != 0)
        return 2;
    uint32_t ch = ks_endpoint(i)->id;
    struct ks_chanstats st = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t s = SEED, last = ks_rdcycles();
    uint32_t limit = attacker() ? BEFORE : MESSAGES;
    while (st.msgs < limit && ks_rdcycles() - last < IDLE_LIMIT) {
        int r;
        if (role == EP_PRODUCER) {
            void *p;
            r = ring_reserve(&ep, SIZE, &p);
            if (r == 0) {
                ks_fill(p, SIZE, &s);
                st.hash = ks_fnv(st.hash, p, SIZE);
                ring_commit(&ep, SIZE);
                st.msgs++;
                st.bytes += SIZE;
            }
        } else {
            uint32_t n;
            r = ring_recv(&ep, buf, SIZE, &n);
            if (r == 0)
                ks_check(&st, buf, n, &s);
        }
        if (r == 0) {
            last = ks_rdcycles();
        } else if (r == RING_EAGAIN) {
            ks_yield();
        } else {
            ks_chanfault(ch, r);  /* the honest side saw a corrupt channel: stop using it */
            break;
        }
    }
    if (role == EP_PRODUCER)
        ks_report_sent(ch, &st);
    else
        ks_report_recv(ch, &st);
    if (attacker())
        attack(&ep);
    return st.mismatches ? 1 : 0;
}
