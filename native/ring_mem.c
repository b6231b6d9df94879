/*
 * A ring's shared pages for the native programs that run the guests' ring (ring_bench,
 * experiments/native/exp_ipc_native.c): laid out as the kernel maps them for guests,
 * MAP_SHARED so that the forked partner inherits them. Declared in bench.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <keusim/ring.h>
#include "bench.h"

void
ring_map(struct ring_mem *m, uint64_t capacity)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t bytes = 3 * pg + capacity + pg;
    uint8_t *base = shm_alloc(bytes);

    if (mprotect(base, pg, PROT_NONE) != 0 || mprotect(base + bytes - pg, pg, PROT_NONE) != 0)
        die(EXIT_SETUP, "mprotect of a guard page: %s", strerror(errno));
    m->head = (volatile uint32_t *)(base + pg);
    m->tail = (volatile uint32_t *)(base + 2 * pg);
    m->data = base + 3 * pg;
}

void
ring_open(struct ring_ep *ep, const struct ring_mem *m, uint64_t capacity)
{
    if (ring_init(ep, m->head, m->tail, m->data, (uint32_t)capacity) != 0)
        die(EXIT_USAGE, "--capacity %llu: must be a power of two in [%u, %u]",
            (unsigned long long)capacity, RING_MIN_CAPACITY, RING_MAX_CAPACITY);
}
