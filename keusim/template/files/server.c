/*
 * server: receives MESSAGES messages on channel 0 and checks every byte against the
 * client's seeded payload. Exits 0 only if all of them arrived intact.
 */
#include <keusim/workload.h>

#ifndef MESSAGES
#define MESSAGES 200
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define SEED 0x5eed0001ull   /* the client's seed */

static uint8_t buf[SIZE];

int main(void)
{
    struct ring_ep ep;
    if (ks_ring_open(ks_find_endpoint(0, EP_CONSUMER), &ep) != 0) {
        ks_printf("server: no consumer endpoint on channel 0\n");
        return 2;
    }
    struct ks_chanstats st = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t seed = SEED;
    for (int i = 0; i < MESSAGES; i++) {
        uint32_t len;
        int r = ring_recv_wait(&ep, buf, sizeof(buf), &len);   /* polls while empty */
        if (r != 0 || len != SIZE) {
            ks_chanfault(0, r != 0 ? r : RING_ECORRUPT_LEN);
            return 1;
        }
        ks_check(&st, buf, len, &seed);
    }
    ks_report_recv(0, &st);
    ks_printf("server: received %lu messages, %lu bytes, %lu mismatched\n",
              st.msgs, st.bytes, st.mismatches);
    return st.mismatches ? 1 : 0;
}
