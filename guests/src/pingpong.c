/*
 * The `pingpong` scenario: MESSAGES round trips of SIZE-byte messages.
 * ROLE 0 (ping) sends on channel 0 and receives the echo on channel 1;
 * ROLE 1 (pong) echoes. Both check every byte against the seeded PRNG stream.
 * Ping times each round trip with the model cycle counter.
 */
#include <keusim/workload.h>

#ifndef MESSAGES
#define MESSAGES 1000
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define SEED 0x5eed0001ull

static uint8_t out[SIZE + 8], in[SIZE + 8];

static struct ring_ep open_ep(uint32_t ch, uint32_t role)
{
    struct ring_ep ep;
    int i = ks_find_endpoint(ch, role);
    if (i < 0 || ks_ring_open(i, &ep) != 0) {
        ks_printf("pingpong: no endpoint for channel %u\n", ch);
        ks_exit(2);
    }
    return ep;
}

static int recv_exact(struct ring_ep *ep, uint32_t ch, uint8_t *b)
{
    uint32_t n;
    int r = ring_recv_wait(ep, b, SIZE, &n);
    if (r != 0 || n != SIZE) {
        ks_chanfault(ch, r ? r : RING_ECORRUPT_LEN);
        return -1;
    }
    return 0;
}

static int ping(void)
{
    struct ring_ep tx = open_ep(0, EP_PRODUCER), rx = open_ep(1, EP_CONSUMER);
    struct ks_chanstats sent = {0, 0, 0, 0, KS_FNV_INIT}, got = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t gen = SEED, chk = SEED, rt = 0;
    for (uint32_t i = 0; i < MESSAGES; i++) {
        ks_fill(out, SIZE, &gen);
        sent.hash = ks_fnv(sent.hash, out, SIZE);
        uint64_t t0 = ks_rdcycles();
        if (ring_send_wait(&tx, out, SIZE) != 0)
            return 3;
        if (recv_exact(&rx, 1, in) != 0)
            break;
        rt += ks_rdcycles() - t0;
        sent.msgs++;
        sent.bytes += SIZE;
        ks_check(&got, in, SIZE, &chk);
    }
    ks_report_sent(0, &sent);
    ks_report_recv(1, &got);
    ks_report(0, STAT_ROUND_TRIPS, sent.msgs);
    ks_report(0, STAT_RT_CYCLES, rt);
    ks_printf("ping: %u round trips of %u bytes, %u cycles each on average\n",
              sent.msgs, (uint64_t)SIZE, sent.msgs ? rt / sent.msgs : 0);
    return got.mismatches ? 1 : 0;
}

static int pong(void)
{
    struct ring_ep rx = open_ep(0, EP_CONSUMER), tx = open_ep(1, EP_PRODUCER);
    struct ks_chanstats got = {0, 0, 0, 0, KS_FNV_INIT}, sent = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t chk = SEED;
    for (uint32_t i = 0; i < MESSAGES; i++) {
        if (recv_exact(&rx, 0, in) != 0)
            break;
        if (ring_send_wait(&tx, in, SIZE) != 0)
            return 3;
        sent.msgs++;
        sent.bytes += SIZE;
        sent.hash = ks_fnv(sent.hash, in, SIZE);
        ks_check(&got, in, SIZE, &chk);
    }
    ks_report_recv(0, &got);
    ks_report_sent(1, &sent);
    return got.mismatches ? 1 : 0;
}

int main(void)
{
    return ROLE == 0 ? ping() : pong();
}
