/*
 * The `callchain` scenario: CALLS chains of DEPTH nested calls. Each layer copies a
 * SIZE-byte message into its own buffer (with string.c's memcpy, as a layered RPC
 * stack marshals a request), stamps it, and passes it down; the results fold back up.
 *
 * It is a held-out validation workload (keusim/model/validate.py): the cycle model was not
 * fitted on it. The same file runs natively, built for the host against
 * native/guest_host.c, so both sides execute the same C source. The console line is
 * the result on both sides: cycles are model cycles in the guest and TSC ticks natively.
 */
#include <keusim/keusim.h>

#ifndef CALLS
#define CALLS 2000
#endif
#ifndef SIZE
#define SIZE 64
#endif
#ifndef DEPTH
#define DEPTH 8
#endif
#define WORDS ((SIZE + 7) / 8)
#define SEED 0x5eed0003ull

static uint64_t bufs[DEPTH + 1][WORDS];
static uint64_t msg[WORDS];

/* Copy the message into this layer's buffer, stamp it, call the next layer.
 * The result is mixed non-linearly so the compiler cannot turn the recursion
 * into a loop (accumulator tail-recursion elimination). */
__attribute__((noinline)) static uint64_t layer(uint32_t level, const uint64_t *in)
{
    uint64_t *out = bufs[level];
    memcpy(out, in, SIZE);
    out[0] += level;
    if (level == DEPTH)
        return out[0] ^ out[WORDS - 1];
    uint64_t r = layer(level + 1, out);
    return (r ^ (r >> 7)) + out[WORDS - 1];
}

int main(void)
{
    uint64_t s = SEED, acc = 0;
    for (uint32_t i = 0; i < WORDS; i++)
        msg[i] = ks_rand(&s);
    uint64_t t0 = ks_rdcycles();
    for (uint32_t i = 0; i < CALLS; i++) {
        msg[0] = i;
        acc += layer(0, msg);
    }
    uint64_t dt = ks_rdcycles() - t0;
    ks_printf("callchain: %lu chains of depth %lu, %lu bytes, %lu cycles, checksum %lx\n",
              (uint64_t)CALLS, (uint64_t)DEPTH, (uint64_t)SIZE, dt, acc);
    return 0;
}
