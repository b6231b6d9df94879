/*
 * Experiment guest (experiments/paper_table.py): the paper's "direct function call"
 * row. It times CALLS calls of a noinline function that copies SIZE bytes with
 * guests/lib/string.c's memcpy, independent calls with alternating destinations:
 * the same function and loop as the native harness's `funccall` baseline
 * (native/ipc_bench.c), so the two numbers compare like for like.
 *
 * Prints "exp_funccall: CALLS calls of SIZE bytes, T cycles" (T: model cycles of the
 * whole timed loop, read with rdtsc/cntvct) and exits 0 if both copies are intact.
 */
#include <keusim/keusim.h>   /* memcpy: <keusim/string.h> */

#ifndef CALLS
#define CALLS 10000
#endif
#ifndef SIZE
#define SIZE 64
#endif

static uint8_t src[SIZE] __attribute__((aligned(64)));
static uint8_t d0[SIZE] __attribute__((aligned(64))), d1[SIZE] __attribute__((aligned(64)));

__attribute__((noinline)) static void copy_msg(void *dst, const void *s, uint64_t n)
{
    memcpy(dst, s, n);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    uint64_t s = 0x5eed0003ull;
    for (uint32_t i = 0; i < SIZE; i++)
        src[i] = (uint8_t)ks_rand(&s);
    for (uint32_t i = 0; i < 100; i++)    /* warm-up, as the native harness does */
        copy_msg(d0, src, SIZE);
    uint64_t t0 = ks_rdcycles();
    for (uint32_t j = 0; j < CALLS; j++)
        copy_msg((j & 1) ? d1 : d0, src, SIZE);
    uint64_t t = ks_rdcycles() - t0;
    int bad = 0;
    for (uint32_t i = 0; i < SIZE; i++)
        bad |= (d0[i] != src[i]) | (d1[i] != src[i]);
    ks_printf("exp_funccall: %lu calls of %lu bytes, %lu cycles\n", (uint64_t)CALLS,
              (uint64_t)SIZE, t);
    return bad;
}
