/*
 * The `compute` scenario: a user-mode, register-only integer loop of ITERATIONS
 * iterations (an LCG, shifts and xors: one basic block per iteration).
 *
 * bench/machine_speed.py runs it to measure guest instructions per second with the
 * full cycle model, and runs `compute_loop` alone in a bare Unicorn instance for the
 * raw figure; so the loop touches no memory, and the function has a plain C ABI.
 */
#include <keusim/keusim.h>

#ifndef ITERATIONS
#define ITERATIONS 1000000
#endif

__attribute__((noinline)) uint64_t compute_loop(uint64_t n, uint64_t x)
{
    uint64_t a = x, b = 0x9E3779B97F4A7C15ull, c = 0;
    for (uint64_t i = 0; i < n; i++) {
        a = a * 6364136223846793005ull + 1442695040888963407ull;
        b ^= a >> 29;
        c += (b << 7) ^ (a >> 11) ^ i;
    }
    return a ^ b ^ c;
}

int main(void)
{
    uint64_t t0 = ks_rdcycles();
    uint64_t r = compute_loop(ITERATIONS, 42);
    uint64_t dt = ks_rdcycles() - t0;
    ks_printf("compute: %lu iterations, %lu cycles, result %lx\n", (uint64_t)ITERATIONS, dt, r);
    return 0;
}
