/*
 * The big kernel lock. The kernel is entered from several cores; one lock taken
 * on every entry and dropped on every return to user keeps it simple (xv6's
 * first SMP kernels did the same). Cores run one at a time in keusim, and an
 * instruction never straddles two slices, so the exchange is atomic.
 */
#pragma once
#include "arch.h"

struct spinlock { volatile uint32_t locked; int cpu; };
extern struct spinlock bkl;

static inline void acquire(struct spinlock *l)
{
    while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
        arch_cpu_relax();
}

static inline void release(struct spinlock *l)
{
    __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}
