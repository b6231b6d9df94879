/*
 * The `notify-attacks` scenario: honest verified channels carry traffic while
 * attackers, one per process, send bad notifications. The kernel must kill
 * each attacker with the right reason (the manifest's `expect`) and the honest
 * channels must deliver every byte intact. One program; -DROLE picks the part.
 *
 *   R_HONEST_TX   sends MESSAGES SIZE-byte messages on its first producer
 *                 endpoint, notifying each (yields while the ring is full)
 *   R_HONEST_RX   receives them on its first consumer endpoint (waits when empty)
 *   R_SINK        drains every channel it consumes until its producer is gone
 *   attackers (each first sends PRE honest, notified messages on its channels):
 *   R_FORGE       a tag that is not the channel key's          -> bad-tag
 *   R_CROSSKEY    channel A's descriptor tagged with key B     -> bad-tag
 *   R_REPLAY      an accepted descriptor, submitted again      -> replay
 *   R_OOB         an offset past what was published            -> bad-descriptor
 *   R_HUGELEN     a valid offset with length 0xfffffff0        -> bad-descriptor
 *   R_THIEF       notify on channel TARGET, which it does not own -> no-capability
 *   R_BADPTR      a descriptor pointer into the kernel half     -> bad-pointer
 *   R_PROBE       (not in the manifest; tests/test_notify.py) calls that are refused
 *                 without a kill: wait on channel TARGET and on a channel that does
 *                 not exist, and notify on its first producer endpoint, which must be
 *                 in poll mode. Exits 0 if each returned EPERM.
 *
 * Payloads of channel ch come from the PRNG seeded SEED ^ ch, so any receiver
 * can check them. An attacker reports what it sent before it attacks; if the
 * attack is not stopped it says so and exits 99.
 */
#include <keusim/workload.h>
#include <keusim/notify.h>

#define R_HONEST_TX 0
#define R_HONEST_RX 1
#define R_SINK 2
#define R_FORGE 3
#define R_CROSSKEY 4
#define R_REPLAY 5
#define R_OOB 6
#define R_HUGELEN 7
#define R_THIEF 8
#define R_BADPTR 9
#define R_PROBE 10

#ifndef MESSAGES
#define MESSAGES 200
#endif
#ifndef SIZE
#define SIZE 64
#endif
#ifndef PRE
#define PRE 3
#endif
#ifndef TARGET
#define TARGET 0
#endif
#define SEED 0xa77ac4ull

/* A producer's side of one channel. */
struct tx {
    uint32_t ch;
    struct ring_ep ep;
    struct ks_notifier n;
    uint64_t gen;               /* payload PRNG */
    struct ks_chanstats st;
};

static uint8_t buf[SIZE + 8];

// nth_endpoint: the index of our k-th endpoint with role (EP_*), or -1.
static int nth_endpoint(uint32_t role, int k)
{
    for (uint32_t i = 0; i < ks_info->nchan; i++)
        if (ks_info->chan[i].role == role && k-- == 0)
            return (int)i;
    return -1;
}

// tx_open: t for our k-th producer endpoint; exits 2 if there is none.
static void tx_open(struct tx *t, int k)
{
    int i = nth_endpoint(EP_PRODUCER, k);
    if (i < 0 || ks_ring_open(i, &t->ep) != 0 || ks_notifier_open(&t->n, ks_info->chan[i].id)) {
        ks_printf("notify-attacks: no notify producer endpoint #%ld\n", (int64_t)k);
        ks_exit(2);
    }
    t->ch = ks_info->chan[i].id;
    t->gen = SEED ^ t->ch;
    t->st = (struct ks_chanstats){0, 0, 0, 0, KS_FNV_INIT};
}

// tx_send: send and notify the next message of t's stream; 0 or an error.
static int tx_send(struct tx *t)
{
    ks_fill(buf, SIZE, &t->gen);
    int r = ks_send_notified(&t->ep, &t->n, buf, SIZE);
    if (r == 0) {
        t->st.msgs++;
        t->st.bytes += SIZE;
        t->st.hash = ks_fnv(t->st.hash, buf, SIZE);
    }
    return r;
}

static void report_tx(const struct tx *t);

// honest_tx: the honest producer.
static int honest_tx(void)
{
    struct tx t;
    tx_open(&t, 0);
    for (uint32_t i = 0; i < MESSAGES; i++)
        if (tx_send(&t) != 0)
            return 3;
    report_tx(&t);
    return 0;
}

// drain: receive from endpoint i until max messages or its producer is gone.
// Returns 0, or 1 after reporting a channel fault or a payload mismatch.
static int drain(int i, uint64_t max)
{
    struct ring_ep ep;
    uint32_t ch = ks_info->chan[i].id, len;
    uint64_t chk = SEED ^ ch, waits = 0;
    struct ks_chanstats st = {0, 0, 0, 0, KS_FNV_INIT};
    int r = ks_ring_open(i, &ep);
    while (r == 0 && st.msgs < max) {
        r = ks_recv_notified(&ep, ch, buf, SIZE, &len, &waits);
        if (r == 0 && len != SIZE)
            r = RING_ECORRUPT_LEN;
        if (r == 0)
            ks_check(&st, buf, SIZE, &chk);
    }
    ks_report_recv(ch, &st);
    ks_report(ch, STAT_NOTIFIED, waits);
    if (r != 0 && r != KS_ENOTIFY_PEER)
        ks_chanfault(ch, r);
    return (r != 0 && r != KS_ENOTIFY_PEER) || st.mismatches ? 1 : 0;
}

// sink: drain every channel we consume until its producer is gone.
static int sink(void)
{
    int bad = 0;
    for (int k = 0, i; (i = nth_endpoint(EP_CONSUMER, k)) >= 0; k++)
        bad |= drain(i, ~0ull);
    return bad;
}

// report_tx: report what t sent (attackers do it before they attack).
static void report_tx(const struct tx *t)
{
    ks_report_sent(t->ch, &t->st);
    ks_report(t->ch, STAT_NOTIFIED, t->n.seq);
}

// warmup: PRE honest, notified messages on t, yielding the core between them.
static void warmup(struct tx *t)
{
    for (int i = 0; i < PRE; i++) {
        if (tx_send(t) != 0)
            ks_exit(3);
        ks_yield();
    }
}

// publish: one more message on t, not yet notified; its record's position.
static uint32_t publish(struct tx *t)
{
    ks_fill(buf, SIZE, &t->gen);
    if (ring_send(&t->ep, buf, SIZE) != 0)
        ks_exit(3);
    t->st.msgs++;
    t->st.bytes += SIZE;
    t->st.hash = ks_fnv(t->st.hash, buf, SIZE);
    return ks_record_pos(&t->ep, SIZE);
}

// attack: build the bad descriptor for ROLE into d (after the warm-up).
static const struct notify_desc *attack(struct notify_desc *d)
{
    struct tx a, b;
    uint64_t guess = 0x5eed;
    if (ROLE == R_THIEF || ROLE == R_BADPTR) {
        for (int i = 0; i < PRE; i++)
            ks_yield();
        if (ROLE == R_BADPTR)
            return (const struct notify_desc *)0xFFFFFFFF80100000ull; /* the kernel image */
        ks_desc_make(d, TARGET, 0, RING_HDR_SIZE + SIZE, 0, 1, 0);
        d->tag = ks_rand(&guess);   /* it has no key for TARGET */
        return d;
    }
    tx_open(&a, 0);
    warmup(&a);
    uint32_t pos = publish(&a), len = RING_HDR_SIZE + SIZE;
    uint64_t seq = a.n.seq + 1;
    switch (ROLE) {
    case R_FORGE:
        ks_desc_make(d, a.ch, pos, len, 0, seq, a.n.key);
        d->tag = ks_rand(&guess);
        break;
    case R_CROSSKEY:
        tx_open(&b, 1);
        warmup(&b);
        report_tx(&b);
        ks_desc_make(d, a.ch, pos, len, 0, seq, b.n.key); /* channel A, key B */
        break;
    case R_REPLAY:
        ks_desc_make(d, a.ch, pos, len, 0, seq, a.n.key);
        if (ks_notify(d) != 0)      /* accepted once ... */
            ks_exit(4);
        a.n.seq = seq;
        break;                      /* ... and sent again below */
    case R_OOB:
        ks_desc_make(d, a.ch, *a.ep.head + RING_ALIGN, len, 0, seq, a.n.key); /* unpublished */
        break;
    case R_HUGELEN:
        ks_desc_make(d, a.ch, pos, 0xfffffff0u, 0, seq, a.n.key);
        break;
    default:                        /* not an attacker: main() never gets here */
        break;
    }
    report_tx(&a);
    return d;
}

// probe: the refusals that do not kill; 0 if each call returned EPERM.
static int probe(void)
{
    struct notify_desc d;
    int64_t w1 = ks_wait(TARGET), w2 = ks_wait(1000), n = EPERM;
    int i = nth_endpoint(EP_PRODUCER, 0);
    if (i >= 0) {
        ks_desc_make(&d, ks_info->chan[i].id, 0, 0, 0, 1, ks_info->chan[i].key);
        n = ks_notify(&d);
    }
    ks_printf("probe: wait %ld, wait %ld, notify %ld\n", w1, w2, n);
    return w1 == EPERM && w2 == EPERM && n == EPERM ? 0 : 1;
}

int main(void)
{
    if (ROLE == R_HONEST_TX)
        return honest_tx();
    if (ROLE == R_HONEST_RX)
        return nth_endpoint(EP_CONSUMER, 0) < 0 ? 2 : drain(nth_endpoint(EP_CONSUMER, 0), MESSAGES);
    if (ROLE == R_SINK)
        return sink();
    if (ROLE == R_PROBE)
        return probe();
    struct notify_desc d;
    int64_t r = ks_notify(attack(&d));
    ks_printf("attack %ld was not stopped: notify returned %ld\n", (int64_t)ROLE, r);
    return 99;
}
