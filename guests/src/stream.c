/*
 * The `stream` scenario: one-way streaming of MESSAGES messages of SIZE bytes.
 * ROLE 0 produces on channel 0, ROLE 1 consumes and checks every byte. On a
 * notify-mode channel (`--verified`) every message is notified and the consumer
 * waits in the kernel instead of spinning.
 */
#include <keusim/workload.h>
#include <keusim/notify.h>

#ifndef MESSAGES
#define MESSAGES 1000
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define SEED 0x5eed0002ull

static uint8_t buf[SIZE + 8];

int main(void)
{
    struct ring_ep ep;
    uint32_t role = ROLE == 0 ? EP_PRODUCER : EP_CONSUMER;
    int i = ks_find_endpoint(0, role);
    if (i < 0 || ks_ring_open(i, &ep) != 0)
        return 2;
    struct ks_chanstats st = {0, 0, 0, 0, KS_FNV_INIT};
    int notify = ks_is_notify(0, role);
    struct ks_notifier nt;
    uint64_t notified = 0;
    if (notify && role == EP_PRODUCER && ks_notifier_open(&nt, 0) != 0)
        return 2;
    uint64_t s = SEED, t0 = ks_rdcycles();
    for (uint32_t m = 0; m < MESSAGES; m++) {
        if (role == EP_PRODUCER) {
            ks_fill(buf, SIZE, &s);
            int r = notify ? ks_send_notified(&ep, &nt, buf, SIZE) : ring_send_wait(&ep, buf, SIZE);
            notified += notify && r == 0;
            if (r != 0) {
                ks_chanfault(0, r);
                break;
            }
            st.msgs++;
            st.bytes += SIZE;
            st.hash = ks_fnv(st.hash, buf, SIZE);
        } else {
            uint32_t n;
            int r = notify ? ks_recv_notified(&ep, 0, buf, SIZE, &n, &notified)
                           : ring_recv_wait(&ep, buf, SIZE, &n);
            if (r != 0 || n != SIZE) {
                ks_chanfault(0, r ? r : RING_ECORRUPT_LEN);
                break;
            }
            ks_check(&st, buf, n, &s);
        }
    }
    uint64_t dt = ks_rdcycles() - t0;
    if (notify)
        ks_report(0, STAT_NOTIFIED, notified);
    if (role == EP_PRODUCER) {
        ks_report_sent(0, &st);
    } else {
        ks_report_recv(0, &st);
        ks_report(0, STAT_RT_CYCLES, dt);
        ks_printf("stream: %lu messages of %lu bytes, %lu cycles per message\n", st.msgs,
                  (uint64_t)SIZE, st.msgs ? dt / st.msgs : 0);
    }
    return st.mismatches ? 1 : 0;
}
