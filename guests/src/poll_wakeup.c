/*
 * The `poll-wakeup` scenario (experiments/poll_wakeup.py): the paper's open question,
 * poll or wake up the receiver (docs/paper.md, "Multi-core wakeup"), at a chosen
 * message rate.
 *
 * ROLE 0 (sender, core 0) sends MESSAGES messages of SIZE bytes on channel 0, one
 * every INTERVAL model cycles (a fixed schedule: message k goes at start + k*INTERVAL,
 * or at once if the previous round trip ran past that), and after each send spins on
 * channel 1 for the echo. It reports STAT_ROUND_TRIPS and STAT_RT_CYCLES (send to echo
 * received) on channel 0, as pingpong does.
 *
 * ROLE 1 (receiver, core 1) echoes every message on channel 1. How it waits for one
 * is MODE:
 *   0  poll    spin on the ring (ring_recv_wait); the sender sends no notification
 *   1  wake    ks_recv_notified: while the ring is empty, sleep in ks_wait(); the
 *              sender's notify wakes it (an IPI: the receiver's core is idle)
 *   2  hybrid  spin on the ring for up to SPIN model cycles, then as wake
 * Channel 0 is a verified notify-mode channel in every mode, so modes 1 and 2 pay the
 * paper's verified notification; in mode 0 it is just not used. The receiver reports
 * STAT_NOTIFIED (waits that returned a notification) on channel 0.
 *
 * A notification the receiver did not wait for (it found the message by spinning)
 * stays pending; its next ks_wait() returns at once and the receive loop tries the
 * ring again. That costs one system call, never a lost or duplicated message.
 * Payloads come from the seeded PRNG and both ends check every byte.
 */
#include <keusim/workload.h>
#include <keusim/notify.h>
#include <keusim/cpu.h>

#ifndef MESSAGES
#define MESSAGES 100
#endif
#ifndef SIZE
#define SIZE 64
#endif
#ifndef INTERVAL
#define INTERVAL 20000
#endif
#ifndef MODE
#define MODE 1
#endif
#ifndef SPIN
#define SPIN 2000
#endif
#define SEED 0x5eed0017ull

static uint8_t out[SIZE + 8], in[SIZE + 8];

static struct ring_ep open_ep(uint32_t ch, uint32_t role)
{
    struct ring_ep ep;
    int i = ks_find_endpoint(ch, role);
    if (i < 0 || ks_ring_open(i, &ep) != 0) {
        ks_printf("poll_wakeup: no endpoint for channel %u\n", ch);
        ks_exit(2);
    }
    return ep;
}

/* Receive exactly SIZE bytes on ep (channel ch) the way MODE says; 0 or -1 after a fault. */
static int recv_msg(struct ring_ep *ep, uint32_t ch, uint8_t *b, uint64_t *waits)
{
    uint32_t n = 0;
    int r = RING_EAGAIN;
    if (MODE == 0) {
        r = ring_recv_wait(ep, b, SIZE, &n);
    } else {
        if (MODE == 2) {
            uint64_t t0 = ks_rdcycles();
            while ((r = ring_recv(ep, b, SIZE, &n)) == RING_EAGAIN && ks_rdcycles() - t0 < SPIN)
                cpu_relax();
        }
        if (r == RING_EAGAIN)
            r = ks_recv_notified(ep, ch, b, SIZE, &n, waits);
    }
    if (r != 0 || n != SIZE) {
        ks_chanfault(ch, r ? r : RING_ECORRUPT_LEN);
        return -1;
    }
    return 0;
}

static int sender(void)
{
    struct ring_ep tx = open_ep(0, EP_PRODUCER), rx = open_ep(1, EP_CONSUMER);
    struct ks_notifier nt;
    if (MODE != 0 && ks_notifier_open(&nt, 0) != 0) {
        ks_printf("poll_wakeup: channel 0 is not a notify-mode channel\n");
        return 2;
    }
    struct ks_chanstats sent = {0, 0, 0, 0, KS_FNV_INIT}, got = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t gen = SEED, chk = SEED, rt = 0;
    uint64_t next = ks_rdcycles();
    for (uint32_t i = 0; i < MESSAGES; i++) {
        while (ks_rdcycles() < next)
            cpu_relax();
        next += INTERVAL;
        ks_fill(out, SIZE, &gen);
        sent.hash = ks_fnv(sent.hash, out, SIZE);
        uint64_t t0 = ks_rdcycles();
        int r = MODE == 0 ? ring_send_wait(&tx, out, SIZE) : ks_send_notified(&tx, &nt, out, SIZE);
        if (r != 0)
            return 3;
        uint32_t n = 0;
        if (ring_recv_wait(&rx, in, SIZE, &n) != 0 || n != SIZE) {
            ks_chanfault(1, RING_ECORRUPT_LEN);
            break;
        }
        rt += ks_rdcycles() - t0;
        sent.msgs++;
        sent.bytes += SIZE;
        ks_check(&got, in, SIZE, &chk);
    }
    ks_report_sent(0, &sent);
    ks_report_recv(1, &got);
    ks_report(0, STAT_ROUND_TRIPS, sent.msgs);
    ks_report(0, STAT_RT_CYCLES, rt);
    return got.mismatches ? 1 : 0;
}

static int receiver(void)
{
    struct ring_ep rx = open_ep(0, EP_CONSUMER), tx = open_ep(1, EP_PRODUCER);
    struct ks_chanstats got = {0, 0, 0, 0, KS_FNV_INIT}, sent = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t chk = SEED, waits = 0;
    for (uint32_t i = 0; i < MESSAGES; i++) {
        if (recv_msg(&rx, 0, in, &waits) != 0)
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
    ks_report(0, STAT_NOTIFIED, waits);
    return got.mismatches ? 1 : 0;
}

int main(void)
{
    return ROLE == 0 ? sender() : receiver();
}
