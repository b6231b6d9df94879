/*
 * ring_bench: the guests' SPSC ring (guests/lib/ring.c, the same source) between two
 * processes pinned to two CPUs, laid out as the kernel maps it for guests:
 *
 *   guard | head page | tail page | data (capacity bytes) | guard
 *
 * one such region per ring, MAP_SHARED and inherited across fork.
 *
 *   --bench ring_pingpong  the parent sends a message on ring 0, the partner checks it
 *                          and answers with a different message of the same size on
 *                          ring 1, which the parent checks. One op = one round trip.
 *   --bench ring_stream    the partner sends messages back to back on ring 0; the
 *                          parent receives and checks them. One op = one message.
 *
 * Every payload comes from a seeded pool (bench.c) and every byte is compared at the
 * receiver; the timed region includes copy-in (ring_send), copy-out (ring_recv) and the
 * comparison. Prints one JSON object (bench.c: json_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <keusim/ring.h>
#include "bench.h"

/* What the partner reports back, on its own shared page. */
struct ctl {
    volatile uint64_t verified, errors;
};

static struct opts O;
static struct ring_mem R[2];
static struct pool PA, PB;     /* request payloads, reply payloads */
static struct ctl *C;
static uint64_t total;         /* warm-up plus timed messages */

// ring_send_wait with a yield every spin_limit polls (bench.c: spin_pause).
static void
send_one(struct ring_ep *ep, const void *buf, uint32_t len)
{
    unsigned spins = 0;
    int r;

    while ((r = ring_send(ep, buf, len)) == RING_EAGAIN)
        spin_pause(&spins);
    if (r != 0)
        die(EXIT_RING, "ring_send(%u bytes) returned %d", len, r);
}

// ring_recv_wait with a yield every spin_limit polls; returns the message length.
static uint32_t
recv_one(struct ring_ep *ep, void *buf, uint32_t maxlen)
{
    unsigned spins = 0;
    uint32_t n = 0;
    int r;

    while ((r = ring_recv(ep, buf, maxlen, &n)) == RING_EAGAIN)
        spin_pause(&spins);
    if (r != 0)
        die(EXIT_RING, "ring_recv returned %d", r);
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
        uint32_t n = recv_one(&rx, buf, (uint32_t)O.capacity);
        errors += check_msg(buf, n, &PA, i, &verified);
        send_one(&tx, pool_msg(&PB, i), (uint32_t)O.size);
    }
    C->verified = verified;
    C->errors = errors;
}

static void
producer_partner(void *arg)
{
    struct ring_ep tx;
    uint64_t i;

    (void)arg;
    ring_open(&tx, &R[0], O.capacity);
    for (i = 0; i < total; i++)
        send_one(&tx, pool_msg(&PA, i), (uint32_t)O.size);
}

int
main(int argc, char **argv)
{
    struct ring_ep tx, rx;
    struct samples s;
    struct acct a;
    uint64_t nsamples, verified = 0, errors = 0, i = 0, k, j;
    int single, pingpong;
    uint8_t *buf;
    pid_t pid;

    parse_opts(&O, argc, argv);
    pingpong = strcmp(O.bench, "ring_pingpong") == 0;
    if (!pingpong && strcmp(O.bench, "ring_stream") != 0)
        die(EXIT_USAGE, "unknown --bench '%s' (ring_pingpong, ring_stream)", O.bench);
    if (O.capacity < RING_MIN_CAPACITY || O.capacity > RING_MAX_CAPACITY ||
        (O.capacity & (O.capacity - 1)) != 0)
        die(EXIT_USAGE, "--capacity %llu: must be a power of two in [%u, %u]",
            (unsigned long long)O.capacity, RING_MIN_CAPACITY, RING_MAX_CAPACITY);
    if (O.size > O.capacity - RING_ALIGN)
        die(EXIT_USAGE, "--size %llu does not fit a ring of --capacity %llu (max capacity - 8)",
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
    ring_open(&rx, pingpong ? &R[1] : &R[0], O.capacity);
    buf = aligned_alloc(64, O.capacity);
    samples_init(&s, nsamples, O.batch);
    if (pin(O.cpu[0]) != 0)
        die(EXIT_SETUP, "sched_setaffinity(CPU %d): %s", O.cpu[0], strerror(errno));
    pid = partner_start(O.cpu[1], pingpong ? echo_partner : producer_partner, 0);

    if (pingpong) {
        for (k = 0; k < O.warmup; k++, i++) {
            send_one(&tx, pool_msg(&PA, i), (uint32_t)O.size);
            errors += check_msg(buf, recv_one(&rx, buf, (uint32_t)O.capacity), &PB, i, &verified);
        }
        acct_begin(&a, pid);
        for (k = 0; k < nsamples; k++) {
            sample_begin(&s);
            for (j = 0; j < O.batch; j++, i++) {
                send_one(&tx, pool_msg(&PA, i), (uint32_t)O.size);
                errors += check_msg(buf, recv_one(&rx, buf, (uint32_t)O.capacity), &PB, i, &verified);
            }
            sample_end(&s);
        }
        acct_end(&a);
    } else {
        for (k = 0; k < O.warmup; k++, i++)
            errors += check_msg(buf, recv_one(&rx, buf, (uint32_t)O.capacity), &PA, i, &verified);
        acct_begin(&a, pid);
        for (k = 0; k < nsamples; k++) {
            sample_begin(&s);
            for (j = 0; j < O.batch; j++, i++)
                errors += check_msg(buf, recv_one(&rx, buf, (uint32_t)O.capacity), &PA, i, &verified);
            sample_end(&s);
        }
        acct_end(&a);
    }
    partner_finish(pid);
    verified += C->verified;
    errors += C->errors;

    json_begin(&O, single);
    json_u64("capacity", O.capacity);
    json_u64("warmup", O.warmup);
    json_u64("messages", pingpong ? 2 * total : total);
    json_samples(&s);
    json_acct(&a);
    json_check(verified, errors);
    json_end();
    return 0;
}
