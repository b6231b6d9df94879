/* arm64 system calls: number in x8, arguments in x0..x2; result in x0 (docs/abi.md). */
#pragma once
#include <stdint.h>

static inline int64_t ks_syscall3(uint64_t n, uint64_t a, uint64_t b, uint64_t c)
{
    register uint64_t x8 asm("x8") = n;
    register uint64_t x0 asm("x0") = a;
    register uint64_t x1 asm("x1") = b;
    register uint64_t x2 asm("x2") = c;
    asm volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return (int64_t)x0;
}

/* A privileged instruction, for fault tests: TTBR0_EL1 is not writable at EL0. */
static inline void ks_arch_privileged(void)
{
    asm volatile("msr ttbr0_el1, %0" ::"r"(0ull) : "memory");
}

/* The model cycle counter, read without a system call (cntvct_el0 is virtualised). */
static inline uint64_t ks_rdcycles(void)
{
    uint64_t v;
    asm volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}
