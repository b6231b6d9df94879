/*
 * x86-64 CPU helpers for guests (and for the native harness, which builds the same code).
 */
#ifndef KEUSIM_CPU_H
#define KEUSIM_CPU_H

/* Spin-wait hint for a poll loop: PAUSE. It saves power and, on a memory-order exit from
 * the loop, avoids the pipeline flush (Intel SDM vol. 2B, PAUSE). The "memory" clobber
 * makes the compiler reload polled memory on each iteration. */
static inline void cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}

#endif /* KEUSIM_CPU_H */
