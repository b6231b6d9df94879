/*
 * client: sends MESSAGES messages of SIZE bytes to the server on channel 0.
 * The payload comes from a seeded PRNG, so the server can regenerate and check it.
 */
#include <keusim/workload.h>

#ifndef MESSAGES
#define MESSAGES 200
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define SEED 0x5eed0001ull   /* the server uses the same seed */

static uint8_t buf[SIZE];

int main(void)
{
    struct ring_ep ep;
    if (ks_ring_open(ks_find_endpoint(0, EP_PRODUCER), &ep) != 0) {
        ks_printf("client: no producer endpoint on channel 0\n");
        return 2;
    }
    struct ks_chanstats st = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t seed = SEED, t0 = ks_rdcycles();
    for (int i = 0; i < MESSAGES; i++) {
        ks_fill(buf, SIZE, &seed);
        int r = ring_send_wait(&ep, buf, SIZE);   /* polls while the ring is full */
        if (r != 0) {
            ks_chanfault(0, r);
            return 1;
        }
        st.msgs++;
        st.bytes += SIZE;
        st.hash = ks_fnv(st.hash, buf, SIZE);
    }
    uint64_t dt = ks_rdcycles() - t0;
    ks_report_sent(0, &st);
    ks_printf("client: sent %lu messages of %d bytes, %lu cycles per message\n",
              st.msgs, SIZE, dt / st.msgs);
    return 0;
}
