/*
 * The `syscalls` scenario: CALLS empty system-call round trips (ks_nop: trap entry,
 * dispatch, return), timed with the model cycle counter. bench/machine_speed.py
 * uses it for simulated system calls per second of host time.
 */
#include <keusim/keusim.h>

#ifndef CALLS
#define CALLS 1000
#endif

int main(void)
{
    uint64_t t0 = ks_rdcycles();
    for (uint32_t i = 0; i < CALLS; i++)
        ks_nop();
    uint64_t dt = ks_rdcycles() - t0;
    ks_printf("syscalls: %lu round trips, %lu cycles each\n", (uint64_t)CALLS,
              CALLS ? dt / CALLS : 0);
    return 0;
}
