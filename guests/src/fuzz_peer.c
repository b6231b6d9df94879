/*
 * The attacker's peer in the fuzzer's runs (keusim/fuzz): it consumes channel
 * RX (the attacker produces it) and produces channel TX (the attacker consumes
 * it), with non-blocking ring calls for a bounded number of ROUNDS, so that no
 * attacker behaviour can make it wait forever. A channel whose shared state the
 * ring library finds corrupt is recorded (chanfault) and dropped. It must never
 * fault and always exit 0: the ring library must not follow forged indices or
 * lengths out of bounds.
 */
#include <keusim/workload.h>

#ifndef ROUNDS
#define ROUNDS 48
#endif
#define SIZE 48

static uint8_t buf[4096 + 64];

int main(void)
{
    struct ring_ep rx, tx;
    int rxi = ks_find_endpoint(RX, EP_CONSUMER), txi = ks_find_endpoint(TX, EP_PRODUCER);
    int rx_ok = rxi >= 0 && ks_ring_open(rxi, &rx) == 0;
    int tx_ok = txi >= 0 && ks_ring_open(txi, &tx) == 0;
    uint64_t got = 0, sent = 0, s = 0x5eed00feull;
    for (int r = 0; r < ROUNDS; r++) {
        uint32_t n;
        int e;
        if (rx_ok && (e = ring_recv(&rx, buf, sizeof(buf), &n)) != RING_EAGAIN) {
            if (e == 0) {
                got++;
            } else {
                ks_chanfault(RX, e);
                rx_ok = 0;
            }
        }
        if (tx_ok) {
            ks_fill(buf, SIZE, &s);
            e = ring_send(&tx, buf, SIZE);
            if (e == 0) {
                sent++;
            } else if (e != RING_EAGAIN) {
                ks_chanfault(TX, e);
                tx_ok = 0;
            }
        }
        ks_yield();
    }
    ks_printf("peer: got %lu sent %lu\n", (unsigned long)got, (unsigned long)sent);
    return 0;
}
