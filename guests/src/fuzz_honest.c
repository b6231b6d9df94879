/*
 * An honest process for the fuzzer's runs (keusim/fuzz): ROLE 0 produces
 * MESSAGES seeded messages of SIZE bytes on channel CHAN, ROLE 1 consumes them
 * and checks every byte. Notify-mode channels are notified and waited on.
 *
 * Each prints its own verdict last: the producer "honest: ch C producer ok|BAD
 * sent N", the consumer "honest: ch C ok|BAD msgs N mismatches M hash H", which
 * the fuzzer compares with the run report. The consumer exits 0 only if it
 * received all MESSAGES messages and every byte matched.
 *
 * Each also holds a value of its own in a user register (fuzz_state_<arch>.S) and
 * checks it after every message: "state ok" or "state CHANGED" ends the line. A
 * kernel that leaks or loses user register state between processes changes it.
 */
#include <keusim/workload.h>
#include <keusim/notify.h>

#ifndef MESSAGES
#define MESSAGES 16
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define SEED (0x5eed00f0ull + CHAN)

static uint8_t buf[SIZE + 8];

void fuzz_state_set(uint64_t v);
uint64_t fuzz_state_get(void);

int main(void)
{
    struct ring_ep ep;
    uint32_t role = ROLE == 0 ? EP_PRODUCER : EP_CONSUMER;
    int i = ks_find_endpoint(CHAN, role);
    if (i < 0 || ks_ring_open(i, &ep) != 0)
        return 2;
    int notify = ks_is_notify(CHAN, role);
    struct ks_notifier nt;
    if (notify && role == EP_PRODUCER && ks_notifier_open(&nt, CHAN) != 0)
        return 2;
    struct ks_chanstats st = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t s = SEED;
    int err = 0, state_ok = 1;
    uint64_t mine = 0x57a7e000ull + 16 * CHAN + ROLE;
    fuzz_state_set(mine);
    for (uint32_t m = 0; m < MESSAGES && !err; m++) {
        if (role == EP_PRODUCER) {
            ks_fill(buf, SIZE, &s);
            err = notify ? ks_send_notified(&ep, &nt, buf, SIZE) : ring_send_wait(&ep, buf, SIZE);
            if (!err) {
                st.msgs++;
                st.bytes += SIZE;
                st.hash = ks_fnv(st.hash, buf, SIZE);
            }
        } else {
            uint32_t n = 0;
            err = notify ? ks_recv_notified(&ep, CHAN, buf, SIZE, &n, 0)
                         : ring_recv_wait(&ep, buf, SIZE, &n);
            if (!err && n != SIZE)
                err = RING_ECORRUPT_LEN;
            if (!err)
                ks_check(&st, buf, n, &s);
        }
        state_ok &= fuzz_state_get() == mine;
    }
    if (err)
        ks_chanfault(CHAN, err);
    if (role == EP_PRODUCER) {
        ks_report_sent(CHAN, &st);
        ks_printf("honest: ch %lu producer %s sent %lu state %s\n", (unsigned long)CHAN,
                  err ? "BAD" : "ok", (unsigned long)st.msgs, state_ok ? "ok" : "CHANGED");
        return err ? 3 : 0;
    }
    ks_report_recv(CHAN, &st);
    int ok = !err && st.msgs == MESSAGES && st.mismatches == 0;
    ks_printf("honest: ch %lu %s msgs %lu mismatches %lu hash %lx state %s\n",
              (unsigned long)CHAN, ok ? "ok" : "BAD", (unsigned long)st.msgs,
              (unsigned long)st.mismatches, (unsigned long)st.hash, state_ok ? "ok" : "CHANGED");
    return ok ? 0 : 1;
}
