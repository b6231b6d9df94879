/*
 * The C endpoint of the cross-language ring experiment (xlang.h has the protocol):
 *   endpoint_c SHM ROLE ITERS WARMUP SIZE
 * drives guests/lib/ring.c, prints one JSON object with its samples.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <keusim/cpu.h>
#include <keusim/ring.h>
#include "xlang.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what)
{
    fprintf(stderr, "endpoint_c: %s\n", what);
    exit(2);
}

static void open_ring(struct ring_ep *ep, uint8_t *base, unsigned r)
{
    uint8_t *p = base + XL_RING_OFF(r);
    if (ring_init(ep, (volatile uint32_t *)p, (volatile uint32_t *)(p + XL_PAGE),
                  p + 2 * XL_PAGE, XL_CAPACITY) != 0)
        fail("ring_init");
}

/* 1 if every payload word of msg (seq expected) is right. */
static int check(const uint64_t *msg, uint64_t seq, uint32_t size)
{
    int ok = msg[0] == seq;
    for (uint32_t k = 2; k < size / 8; k++)
        ok &= msg[k] == xl_word(seq << 16 | k);
    return ok;
}

static void print_samples(const char *name, const uint64_t *v, long n)
{
    printf("\"%s\": [", name);
    for (long i = 0; i < n; i++)
        printf("%s%llu", i ? "," : "", (unsigned long long)v[i]);
    printf("]");
}

int main(int argc, char **argv)
{
    if (argc != 6)
        fail("usage: endpoint_c SHM ROLE ITERS WARMUP SIZE");
    int role = atoi(argv[2]);
    long iters = atol(argv[3]), warmup = atol(argv[4]);
    uint32_t size = (uint32_t)atoi(argv[5]);
    if ((role != 0 && role != 1) || iters < 1 || warmup < 0 || size < 16 || size % 8 ||
        size > 4096)
        fail("bad arguments (ROLE 0|1, ITERS >= 1, SIZE a multiple of 8 in [16, 4096])");
    int fd = open(argv[1], O_RDWR);
    if (fd < 0)
        fail("cannot open the shared file");
    uint8_t *base = mmap(0, XL_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        fail("mmap");
    struct ring_ep tx, rx;
    open_ring(&tx, base, (unsigned)role);
    open_ring(&rx, base, (unsigned)(1 - role));
    uint64_t *rt = calloc((size_t)iters, 8), *ow = calloc((size_t)iters, 8);
    uint64_t msg[512], in[512];
    long total = warmup + iters, good = 0, bad = 0;

    __atomic_store_n((uint32_t *)(base + XL_READY_OFF(role)), 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n((uint32_t *)(base + XL_READY_OFF(1 - role)), __ATOMIC_ACQUIRE))
        cpu_relax();
    for (long i = 0; i < total; i++) {
        uint32_t n = 0;
        if (role == 0) {
            msg[0] = (uint64_t)i;
            for (uint32_t k = 2; k < size / 8; k++)
                msg[k] = xl_word((uint64_t)i << 16 | k);
            uint64_t t0 = now_ns();
            msg[1] = t0;
            if (ring_send_wait(&tx, msg, size) != 0 || ring_recv_wait(&rx, in, size, &n) != 0)
                fail("ring error");
            uint64_t t1 = now_ns();
            if (i >= warmup) {
                rt[i - warmup] = t1 - t0;
                ow[i - warmup] = t1 - in[1];
            }
        } else {
            if (ring_recv_wait(&rx, in, size, &n) != 0)
                fail("ring error");
            uint64_t t1 = now_ns();
            if (i >= warmup)
                ow[i - warmup] = t1 - in[1];
            in[1] = now_ns();
            if (ring_send_wait(&tx, in, size) != 0)
                fail("ring error");
        }
        if (n == size && check(in, (uint64_t)i, size))
            good++;
        else
            bad++;
    }
    printf("{\"lang\": \"c\", \"role\": %d, \"msgs\": %ld, \"verified_bytes\": %ld, "
           "\"mismatches\": %ld, ", role, total, good * (long)size, bad);
    print_samples("rt_ns", rt, role == 0 ? iters : 0);
    printf(", ");
    print_samples("oneway_ns", ow, iters);
    printf("}\n");
    return bad ? 1 : 0;
}
