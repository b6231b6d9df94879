/*
 * Property-test workload (tests/test_rings.py): the producer sends NSIZES
 * messages whose sizes are SIZES; the first BURST of them go out before the
 * consumer reads anything (it waits until BURST_BYTES are published), so a test
 * can fill the ring to exactly its capacity. Payload bytes come from a
 * xorshift64* stream the test recomputes in Python.
 */
#include <keusim/workload.h>

static const uint32_t sizes[] = SIZES;
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define SEED 0x5eed0004ull
#define STAT_FULL_AT_CAPACITY 20  /* producer: 1 = a full ring refused even 0 bytes, 0 = accepted */
#define STAT_SAW_FULL 21          /* consumer: head - tail == capacity before it read anything */

static uint8_t buf[RING_MAX_CAPACITY];

int main(void)
{
    struct ring_ep ep;
    uint32_t role = ROLE == 0 ? EP_PRODUCER : EP_CONSUMER;
    if (!ks_endpoint(0) || ks_endpoint(0)->role != role || ks_ring_open(0, &ep) != 0)
        return 2;
    struct ks_chanstats st = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t s = SEED;
    if (role == EP_PRODUCER) {
        for (uint32_t i = 0; i < NSIZES; i++) {
            ks_fill(buf, sizes[i], &s);
            int r = i < BURST ? ring_send(&ep, buf, sizes[i]) : ring_send_wait(&ep, buf, sizes[i]);
            if (r != 0) {
                ks_chanfault(0, r);
                return 3;
            }
            st.msgs++;
            st.bytes += sizes[i];
            st.hash = ks_fnv(st.hash, buf, sizes[i]);
            if (i + 1 == BURST && *ep.head - *ep.tail == ep.capacity) {
                void *p;
                /* Exactly full (if the consumer has not started): even 0 bytes must not fit. */
                ks_report(0, STAT_FULL_AT_CAPACITY, ring_reserve(&ep, 0, &p) == RING_EAGAIN);
            }
        }
        ks_report_sent(0, &st);
    } else {
        uint64_t t0 = ks_rdcycles();
        while (*ep.head - *ep.tail < BURST_BYTES) {
            if (ks_rdcycles() - t0 > 20000000ull)
                return 4;   /* the producer never filled the ring */
            ks_yield();
        }
        /* The burst is all published and nothing consumed: the ring is exactly full. */
        ks_report(0, STAT_SAW_FULL, *ep.head - *ep.tail == ep.capacity);
        for (uint32_t i = 0; i < NSIZES; i++) {
            uint32_t n;
            int r = ring_recv_wait(&ep, buf, sizeof(buf), &n);
            if (r != 0 || n != sizes[i]) {
                ks_chanfault(0, r ? r : RING_ECORRUPT_LEN);
                return 3;
            }
            ks_check(&st, buf, n, &s);
        }
        ks_report_recv(0, &st);
    }
    return 0;
}
