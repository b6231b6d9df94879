/*
 * arm64 CPU helpers for guests.
 */
#ifndef KEUSIM_CPU_H
#define KEUSIM_CPU_H

/* Spin-wait hint for a poll loop: YIELD (Arm ARM C6.2, YIELD: a hint that the thread is
 * spinning). The "memory" clobber makes the compiler reload polled memory each iteration. */
static inline void cpu_relax(void)
{
    __asm__ volatile("yield" ::: "memory");
}

#endif /* KEUSIM_CPU_H */
