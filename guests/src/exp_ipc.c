/*
 * Experiment guest (experiments/additivity.py, experiments/paper_table.py): a ping-pong
 * over the SPSC ring with each of the paper's three "structural costs" switched on or
 * off at build time, so that their additivity can be measured.
 *
 *   TRAP=0  no system call on the data path (the KeuOS data plane)
 *   TRAP=1  one system call (ks_nop) by the sender before each send and one by the
 *           receiver after each receive: the two crossings of a traditional IPC,
 *           both on the round trip's critical path
 *   TRAP=2  a SipHash-verified notify by the sender after each send; the receiver
 *           polls (needs notify-mode, verified channels): the paper's "with proof
 *           verification" path without the sleeping receiver's IPI
 *   COPY=1  the sender copies each message into a private bounce buffer first and
 *           sends from there: one extra copy per message, as through a kernel buffer
 *   LOCK=1  a test-and-test-and-set spinlock (atomic xchg) per channel, in a page
 *           both processes map (channel 2's data page), held around every send and
 *           around every receive (the receiver first waits for data without it)
 *   RELAX   the poll loops' hint: 1 PAUSE/YIELD (as ring_recv_wait), 0 none
 *
 * ROLE 0 (ping) sends on channel 0 and receives the echo on channel 1; ROLE 1 (pong)
 * echoes. Ping times each round trip after WARMUP untimed ones (so the ring has
 * wrapped once and every line is in its steady coherence state) and reports
 * STAT_ROUND_TRIPS and STAT_RT_CYCLES on channel 0, as pingpong does. Payload words
 * are a function of the message number; both ends check every word (outside the
 * timed region) and report the usual counters, so ChannelReport.intact holds.
 */
#include <keusim/workload.h>
#include <keusim/notify.h>
#include <keusim/cpu.h>

#ifndef MESSAGES
#define MESSAGES 1000
#endif
#ifndef WARMUP
#define WARMUP 256
#endif
#ifndef SIZE
#define SIZE 64
#endif
#ifndef TRAP
#define TRAP 0
#endif
#ifndef COPY
#define COPY 0
#endif
#ifndef RELAX
#define RELAX 1
#endif
#ifndef LOCK
#define LOCK 0
#endif
#if SIZE % 8 != 0 || SIZE < 8
#error "SIZE must be a positive multiple of 8"
#endif

void *memcpy(void *restrict dst, const void *restrict src, size_t n);  /* guests/lib/string.c */

static uint64_t out[SIZE / 8], in[SIZE / 8], bounce[SIZE / 8];

struct link {
    struct ring_ep ep;
    uint32_t ch;
    volatile uint32_t *lock;  /* LOCK: this channel's lock word */
    struct ks_notifier n;     /* TRAP=2, producer side */
};

static void die(const char *what, uint32_t ch)
{
    ks_printf("exp_ipc: %s (channel %u)\n", what, ch);
    ks_exit(2);
}

static struct link open_link(uint32_t ch, uint32_t role, uint8_t *lockpage)
{
    struct link l = {{0}, ch, 0, {0, 0, 0, 0}};
    int i = ks_find_endpoint(ch, role);
    if (i < 0 || ks_ring_open(i, &l.ep) != 0)
        die("no endpoint", ch);
    /* Each lock word on its own cache line, so the two channels' locks never share one. */
    if (LOCK)
        l.lock = (volatile uint32_t *)(lockpage + 64 * ch);
    if (TRAP == 2 && role == EP_PRODUCER && ks_notifier_open(&l.n, ch) != 0)
        die("TRAP=2 needs a notify-mode channel", ch);
    return l;
}

/* The poll loops' wait hint: PAUSE/YIELD (RELAX=1, as ring_recv_wait), or a bare
 * compiler barrier (RELAX=0), so that a round trip is not quantized by the hint's
 * fixed cost (140 cycles on raptorlake). */
static inline void relax(void)
{
    if (RELAX)
        cpu_relax();
    else
        __asm__ volatile("" ::: "memory");
}

static inline void lock(volatile uint32_t *l)
{
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED))
            relax();
}

static inline void unlock(volatile uint32_t *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* Send SIZE bytes from b with the configured costs; returns 0 or a RING_E* code.
 * TRAP=1 enters the kernel before publishing, as a send system call would, so that the
 * crossing is on the round trip's critical path. TRAP=2 notifies after publishing, as
 * KeuOS does: the receiver can already see the message while the sender is in the
 * kernel. */
static int send_msg(struct link *l, const uint64_t *b)
{
    const void *src = b;
    int r;
    if (TRAP == 1)
        ks_nop();
    if (COPY) {
        memcpy(bounce, b, SIZE);
        __asm__ volatile("" ::: "memory");
        src = bounce;
    }
    for (;;) {
        if (LOCK)
            lock(l->lock);
        r = ring_send(&l->ep, src, SIZE);
        if (LOCK)
            unlock(l->lock);
        if (r != RING_EAGAIN)
            break;
        relax();
    }
    if (r != 0)
        return r;
    if (TRAP == 2)
        return (int)ks_notify_record(&l->n, &l->ep, SIZE);
    return 0;
}

/* Receive exactly SIZE bytes into b; returns 0, or -1 after recording a channel fault.
 * It first waits, without the lock, until head has moved past its tail (a lock taken
 * and dropped in a tight loop would starve the sender), then receives under the lock.
 * TRAP=1 leaves the kernel after receiving, as a receive system call would return. */
static int recv_msg(struct link *l, uint64_t *b)
{
    uint32_t n = 0;
    int r;
    for (;;) {
        while (__atomic_load_n(l->ep.head, __ATOMIC_ACQUIRE) == *l->ep.tail)
            relax();
        if (LOCK)
            lock(l->lock);
        r = ring_recv(&l->ep, b, SIZE, &n);
        if (LOCK)
            unlock(l->lock);
        if (r != RING_EAGAIN)
            break;
    }
    if (r != 0 || n != SIZE) {
        ks_chanfault(l->ch, r ? r : RING_ECORRUPT_LEN);
        return -1;
    }
    if (TRAP == 1)
        ks_nop();
    return 0;
}

static inline uint64_t word(uint32_t msg, uint32_t i)
{
    return ((uint64_t)msg << 32 | i) * 0x9E3779B97F4A7C15ull;
}

static void fill(uint64_t *b, uint32_t msg)
{
    for (uint32_t i = 0; i < SIZE / 8; i++)
        b[i] = word(msg, i);
}

/* Count mismatched bytes of message msg in b into st. */
static void check(struct ks_chanstats *st, const uint64_t *b, uint32_t msg)
{
    for (uint32_t i = 0; i < SIZE / 8; i++)
        if (b[i] != word(msg, i))
            st->mismatches += 8;
    st->msgs++;
    st->bytes += SIZE;
    st->verified += SIZE;
}

static uint8_t *lock_page(uint32_t role)
{
    if (!LOCK)
        return 0;
    struct ring_ep ep;
    int i = ks_find_endpoint(2, role);
    if (i < 0 || ks_ring_open(i, &ep) != 0)
        die("LOCK=1 needs channel 2 (its data page holds the locks)", 2);
    return ep.data;
}

static int ping(void)
{
    uint8_t *lp = lock_page(EP_PRODUCER);
    struct link tx = open_link(0, EP_PRODUCER, lp), rx = open_link(1, EP_CONSUMER, lp);
    struct ks_chanstats sent = {0, 0, 0, 0, KS_FNV_INIT}, got = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t rt = 0, timed = 0;
    for (uint32_t m = 0; m < WARMUP + MESSAGES; m++) {
        fill(out, m);
        uint64_t t0 = ks_rdcycles();
        if (send_msg(&tx, out) != 0)
            return 3;
        if (recv_msg(&rx, in) != 0)
            break;
        uint64_t t1 = ks_rdcycles();
        if (m >= WARMUP) {
            rt += t1 - t0;
            timed++;
        }
        sent.msgs++;
        sent.bytes += SIZE;
        check(&got, in, m);
    }
    ks_report(0, STAT_SENT_MSGS, sent.msgs);
    ks_report(0, STAT_SENT_BYTES, sent.bytes);
    ks_report_recv(1, &got);
    ks_report(0, STAT_ROUND_TRIPS, timed);
    ks_report(0, STAT_RT_CYCLES, rt);
    ks_printf("exp_ipc: TRAP=%lu COPY=%lu LOCK=%lu, %lu timed round trips of %lu bytes, "
              "%lu cycles each on average\n", (uint64_t)TRAP, (uint64_t)COPY, (uint64_t)LOCK,
              timed, (uint64_t)SIZE, timed ? rt / timed : 0);
    return got.mismatches ? 1 : 0;
}

static int pong(void)
{
    uint8_t *lp = lock_page(EP_CONSUMER);
    struct link rx = open_link(0, EP_CONSUMER, lp), tx = open_link(1, EP_PRODUCER, lp);
    struct ks_chanstats got = {0, 0, 0, 0, KS_FNV_INIT};
    uint64_t sent = 0;
    for (uint32_t m = 0; m < WARMUP + MESSAGES; m++) {
        if (recv_msg(&rx, in) != 0)
            break;
        if (send_msg(&tx, in) != 0)
            return 3;
        sent++;
        check(&got, in, m);
    }
    ks_report_recv(0, &got);
    ks_report(1, STAT_SENT_MSGS, sent);
    ks_report(1, STAT_SENT_BYTES, sent * SIZE);
    if (ks_find_endpoint(2, EP_CONSUMER) >= 0) {
        /* The lock channel carries no ring messages: say so, or the run report has
         * to call its integrity unknown. */
        ks_report(2, STAT_RECV_BYTES, 0);
        ks_report(2, STAT_VERIFIED_BYTES, 0);
    }
    return got.mismatches ? 1 : 0;
}

int main(void)
{
    return ROLE == 0 ? ping() : pong();
}
