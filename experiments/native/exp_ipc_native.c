/*
 * exp_ipc_native: the host counterpart of guests/src/exp_ipc.c (experiments/additivity.py).
 * A ring ping-pong between two processes pinned to two CPUs, through the guests' ring
 * (guests/lib/ring.c, the same source, laid out as native/ring_bench.c lays it out),
 * with the paper's three costs switched on per batch of round trips (--bench ipc_all):
 *
 *   T=1  syscall(SYS_getppid) by the sender before each send and by the receiver after
 *        each receive (the two user/kernel crossings of a traditional IPC)
 *   C=1  the sender copies each message into a private bounce buffer and sends from it
 *   L=1  a test-and-test-and-set spinlock (xchg) per ring, on its own line of a shared
 *        page, held around each send and each receive (the receiver first waits for
 *        data without it)
 *
 * Batch k of round trips (warm-up included) runs combination k % 8, whose bits are
 * T (4), C (2) and L (1); both processes derive it from the message number. The eight
 * combinations therefore share one placement of the two processes and alternate every
 * --batch round trips, so drift and placement, which move cross-CPU figures by up to 3x
 * between runs on this machine type, hit them alike. Sample k is combination k % 8
 * (the warm-up is rounded up to a multiple of 8 batches).
 *
 * One op = one round trip; the timed region covers send, receive and the check, as in
 * ring_bench. Prints one JSON object (native/bench.c: json_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <keusim/ring.h>
#include "bench.h"

void *memcpy(void *restrict dst, const void *restrict src, size_t n);  /* guests/lib/string.c */

struct ctl {
    volatile uint64_t verified, errors;
    uint8_t pad[48];
    volatile uint32_t lock[2][16];  /* one lock word per ring, each on its own line */
};

static struct opts O;
static struct ring_mem R[2];
static struct pool PA, PB;
static struct ctl *C;
static uint64_t total;
static int T, CP, L;
static uint8_t *bounce;

// Switch to the combination of the batch that message i belongs to.
static inline void
set_combo(uint64_t i)
{
    unsigned c = (unsigned)((i / O.batch) % 8);
    T = (c >> 2) & 1;
    CP = (c >> 1) & 1;
    L = c & 1;
}

static inline void
lock(volatile uint32_t *l)
{
    unsigned spins = 0;

    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED))
            spin_pause(&spins);
}

static inline void
unlock(volatile uint32_t *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static void
send_one(struct ring_ep *ep, volatile uint32_t *l, const void *buf, uint32_t len)
{
    unsigned spins = 0;
    int r;

    if (T)
        syscall(SYS_getppid);
    if (CP) {
        memcpy(bounce, buf, len);
        __asm__ volatile("" ::: "memory");
        buf = bounce;
    }
    for (;;) {
        if (L)
            lock(l);
        r = ring_send(ep, buf, len);
        if (L)
            unlock(l);
        if (r != RING_EAGAIN)
            break;
        spin_pause(&spins);
    }
    if (r != 0)
        die(EXIT_RING, "ring_send(%u bytes) returned %d", len, r);
}

static uint32_t
recv_one(struct ring_ep *ep, volatile uint32_t *l, void *buf, uint32_t maxlen)
{
    unsigned spins = 0;
    uint32_t n = 0;
    int r;

    for (;;) {
        while (__atomic_load_n(ep->head, __ATOMIC_ACQUIRE) == *ep->tail)
            spin_pause(&spins);
        if (L)
            lock(l);
        r = ring_recv(ep, buf, maxlen, &n);
        if (L)
            unlock(l);
        if (r != RING_EAGAIN)
            break;
    }
    if (r != 0)
        die(EXIT_RING, "ring_recv returned %d", r);
    if (T)
        syscall(SYS_getppid);
    return n;
}

static void
echo_partner(void *arg)
{
    struct ring_ep rx, tx;
    uint8_t *buf = aligned_alloc(64, O.capacity);
    uint64_t verified = 0, errors = 0, i;

    (void)arg;
    ring_open(&rx, &R[0], O.capacity);
    ring_open(&tx, &R[1], O.capacity);
    for (i = 0; i < total; i++) {
        set_combo(i);
        uint32_t n = recv_one(&rx, C->lock[0], buf, (uint32_t)O.capacity);
        errors += check_msg(buf, n, &PA, i, &verified);
        send_one(&tx, C->lock[1], pool_msg(&PB, i), (uint32_t)O.size);
    }
    C->verified = verified;
    C->errors = errors;
}

int
main(int argc, char **argv)
{
    struct ring_ep tx, rx;
    struct samples s;
    struct acct a;
    uint64_t nsamples, verified = 0, errors = 0, i = 0, k, j;
    int single;
    uint8_t *buf;
    pid_t pid;

    parse_opts(&O, argc, argv);
    if (strcmp(O.bench, "ipc_all") != 0)
        die(EXIT_USAGE, "unknown --bench '%s' (ipc_all)", O.bench);
    O.warmup = (O.warmup + 8 * O.batch - 1) / (8 * O.batch) * (8 * O.batch);
    if (O.size > O.capacity - RING_ALIGN)
        die(EXIT_USAGE, "--size %llu does not fit a ring of --capacity %llu",
            (unsigned long long)O.size, (unsigned long long)O.capacity);
    single = pick_cpus(&O);
    nsamples = O.iters / O.batch;
    total = O.warmup + nsamples * O.batch;
    ring_map(&R[0], O.capacity);
    ring_map(&R[1], O.capacity);
    C = shm_alloc(sizeof *C);
    pool_init(&PA, O.size, O.seed);
    pool_init(&PB, O.size, O.seed ^ 0x5eed5eed5eedull);
    ring_open(&tx, &R[0], O.capacity);
    ring_open(&rx, &R[1], O.capacity);
    buf = aligned_alloc(64, O.capacity);
    bounce = aligned_alloc(64, O.capacity);
    samples_init(&s, nsamples, O.batch);
    if (pin(O.cpu[0]) != 0)
        die(EXIT_SETUP, "sched_setaffinity(CPU %d): %s", O.cpu[0], strerror(errno));
    pid = partner_start(O.cpu[1], echo_partner, 0);
    for (k = 0; k < O.warmup; k++, i++) {
        set_combo(i);
        send_one(&tx, C->lock[0], pool_msg(&PA, i), (uint32_t)O.size);
        errors += check_msg(buf, recv_one(&rx, C->lock[1], buf, (uint32_t)O.capacity), &PB, i,
                        &verified);
    }
    acct_begin(&a, pid);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        for (j = 0; j < O.batch; j++, i++) {
            set_combo(i);
            send_one(&tx, C->lock[0], pool_msg(&PA, i), (uint32_t)O.size);
            errors += check_msg(buf, recv_one(&rx, C->lock[1], buf, (uint32_t)O.capacity), &PB,
                            i, &verified);
        }
        sample_end(&s);
    }
    acct_end(&a);
    partner_finish(pid);
    verified += C->verified;
    errors += C->errors;

    json_begin(&O, single);
    json_u64("capacity", O.capacity);
    json_u64("warmup", O.warmup);
    json_u64("messages", 2 * total);
    json_u64("combinations", 8);
    json_samples(&s);
    json_acct(&a);
    json_check(verified, errors);
    json_end();
    return 0;
}
