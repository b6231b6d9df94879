/*
 * Spin fast-forward test guest (tests/test_fastforward.py). ROLE 0, the waiter, waits for
 * ROUNDS messages on channel 0 in three kinds of polling loop, by round:
 *   0: a pure poll (ring_peek + cpu_relax): fast-forward must park it;
 *   1: a poll that also increments a counter in memory each time round: its registers
 *      come back to the same values (the call clobbers them) but memory does not, so it
 *      must never be parked (the printed count shows it);
 *   2: a poll that counts in a register: never parked either.
 * It timestamps each arrival with the model clock and acks on channel 1. ROLE 1, the
 * sender, computes for a varying while before each message and waits for the ack.
 * ROLE 2, a hog, only computes: put on the waiter's core with a short timeslice, the
 * timer preempts the waiter while it spins (and is parked).
 * Everything printed depends on exactly how many times each loop went round.
 */
#include <keusim/keusim.h>
#include <keusim/ring.h>
#include <keusim/cpu.h>

#ifndef ROUNDS
#define ROUNDS 30
#endif
#ifndef DELAY
#define DELAY 1     /* multiplies the sender's work between messages */
#endif

static volatile uint64_t spins;     /* mode 1: a store that changes memory each time */
static volatile uint64_t work;

static struct ring_ep open_ep(uint32_t ch, uint32_t role)
{
    struct ring_ep ep;
    int i = ks_find_endpoint(ch, role);
    if (i < 0 || ks_ring_open(i, &ep) != 0)
        ks_exit(2);
    return ep;
}

static void take(struct ring_ep *ep)
{
    const void *p;
    uint32_t len;
    if (ring_peek(ep, &p, &len) != 0)
        ks_exit(3);
    ring_release(ep);
}

static int waiter(void)
{
    struct ring_ep rx = open_ep(0, EP_CONSUMER), tx = open_ep(1, EP_PRODUCER);
    uint64_t arrivals = 0, counted = 0;
    const void *p;
    uint32_t len;
    for (uint32_t i = 0; i < ROUNDS; i++) {
        if (i % 3 == 0) {
            while (ring_peek(&rx, &p, &len) == RING_EAGAIN)
                cpu_relax();
        } else if (i % 3 == 1) {
            do
                spins++;
            while (ring_peek(&rx, &p, &len) == RING_EAGAIN);
        } else {
            uint64_t n = 0;
            while (ring_peek(&rx, &p, &len) == RING_EAGAIN)
                n++;
            counted += n;
        }
        take(&rx);
        arrivals = arrivals * 31 + ks_rdcycles();
        if (ring_send_wait(&tx, &i, sizeof i) != 0)
            return 4;
    }
    ks_printf("waiter: arrivals %lu, memory count %lu, register count %lu\n",
              arrivals, (uint64_t)spins, counted);
    return 0;
}

static int sender(void)
{
    struct ring_ep tx = open_ep(0, EP_PRODUCER), rx = open_ep(1, EP_CONSUMER);
    const void *p;
    uint32_t len;
    for (uint32_t i = 0; i < ROUNDS; i++) {
        for (uint32_t j = 0; j < (50 + (i * 37) % 400) * DELAY; j++)
            work += j * j;
        if (ring_send_wait(&tx, &i, sizeof i) != 0)
            return 4;
        while (ring_peek(&rx, &p, &len) == RING_EAGAIN)
            cpu_relax();
        take(&rx);
    }
    ks_printf("sender: done at %lu\n", ks_rdcycles());
    return 0;
}

static int hog(void)
{
    for (uint32_t j = 0; j < 100000 * DELAY; j++)
        work += j;
    ks_printf("hog: done at %lu\n", ks_rdcycles());
    return 0;
}

int main(void)
{
    return ROLE == 0 ? waiter() : ROLE == 1 ? sender() : hog();
}
