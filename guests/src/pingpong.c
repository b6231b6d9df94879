/*
 * The `pingpong` scenario: MESSAGES round trips of SIZE-byte messages.
 * ROLE 0 (ping) sends on channel 0 and receives the echo on channel 1;
 * ROLE 1 (pong) echoes. Both check every byte against the seeded PRNG stream.
 * Ping times each round trip with the model cycle counter.
 *
 * On notify-mode channels (`keusim run pingpong --verified`, which also passes
 * -DVERIFIED=1), each send is followed by a notify system call carrying a
 * SipHash-tagged descriptor, and a receiver with an empty ring sleeps in
 * ks_wait() instead of spinning. STAT_NOTIFIED counts notifications sent
 * (producer side) and waits that returned one (consumer side).
 */
#include <keusim/workload.h>
#include <keusim/notify.h>

#ifndef MESSAGES
#define MESSAGES 1000
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define SEED 0x5eed0001ull

static uint8_t out[SIZE + 8], in[SIZE + 8];

/* One direction of the exchange: the ring, and its notification state if any. */
struct link {
    struct ring_ep ep;
    uint32_t ch;
    int notify;             /* the channel is in notify mode */
    struct ks_notifier n;   /* producer side, notify mode */
    uint64_t notified;      /* notifications sent, or waits that returned one */
};

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

/* Open our end of channel ch with role (EP_*), and its notifier if we produce in notify mode. */
static struct link open_link(uint32_t ch, uint32_t role)
{
    struct link l = {open_ep(ch, role), ch, ks_is_notify(ch, role), {0, 0, 0, 0}, 0};
    if (l.notify && role == EP_PRODUCER && ks_notifier_open(&l.n, ch) != 0) {
        ks_printf("pingpong: no notifier for channel %u\n", ch);
        ks_exit(2);
    }
    return l;
}

/* Send SIZE bytes from b (and notify them). Returns 0 or an error. */
static int send_msg(struct link *l, const uint8_t *b)
{
    if (!l->notify)
        return ring_send_wait(&l->ep, b, SIZE);
    int r = ks_send_notified(&l->ep, &l->n, b, SIZE);
    if (r == 0)
        l->notified++;
    return r;
}

/* Receive exactly SIZE bytes into b. Returns 0, or -1 after reporting a channel fault. */
static int recv_exact(struct link *l, uint8_t *b)
{
    uint32_t n;
    int r = l->notify ? ks_recv_notified(&l->ep, l->ch, b, SIZE, &n, &l->notified)
                      : ring_recv_wait(&l->ep, b, SIZE, &n);
    if (r != 0 || n != SIZE) {
        ks_chanfault(l->ch, r ? r : RING_ECORRUPT_LEN);
        return -1;
    }
    return 0;
}

/* Report the notification count of a notify-mode link. */
static void report_notified(const struct link *l)
{
    if (l->notify)
        ks_report(l->ch, STAT_NOTIFIED, l->notified);
}

static int ping(void)
{
    struct link tx = open_link(0, EP_PRODUCER), rx = open_link(1, EP_CONSUMER);
    struct ks_chanstats sent = {0, 0, 0, 0, KS_FNV_INIT}, got = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t gen = SEED, chk = SEED, rt = 0;
    for (uint32_t i = 0; i < MESSAGES; i++) {
        ks_fill(out, SIZE, &gen);
        sent.hash = ks_fnv(sent.hash, out, SIZE);
        uint64_t t0 = ks_rdcycles();
        if (send_msg(&tx, out) != 0)
            return 3;
        if (recv_exact(&rx, in) != 0)
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
    report_notified(&tx);
    report_notified(&rx);
    ks_printf("ping: %lu round trips of %lu bytes, %lu cycles each on average\n",
              sent.msgs, (uint64_t)SIZE, sent.msgs ? rt / sent.msgs : 0);
    return got.mismatches ? 1 : 0;
}

static int pong(void)
{
    struct link rx = open_link(0, EP_CONSUMER), tx = open_link(1, EP_PRODUCER);
    struct ks_chanstats got = {0, 0, 0, 0, KS_FNV_INIT}, sent = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t chk = SEED;
    for (uint32_t i = 0; i < MESSAGES; i++) {
        if (recv_exact(&rx, in) != 0)
            break;
        if (send_msg(&tx, in) != 0)
            return 3;
        sent.msgs++;
        sent.bytes += SIZE;
        sent.hash = ks_fnv(sent.hash, in, SIZE);
        ks_check(&got, in, SIZE, &chk);
    }
    ks_report_recv(0, &got);
    ks_report_sent(1, &sent);
    report_notified(&rx);
    report_notified(&tx);
    return got.mismatches ? 1 : 0;
}

int main(void)
{
    return ROLE == 0 ? ping() : pong();
}
