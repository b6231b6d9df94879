/*
 * arm64 system calls (docs/abi.md): number in x8, arguments in x0..x5; result in x0.
 * svc #0 clobbers nothing else (the kernel restores every register but x0).
 *
 * ks_syscallN(n, a0, ..., aN-1) passes N arguments; the typed wrappers in
 * <keusim/keusim.h> are built on these.
 */
#ifndef KEUSIM_SYSCALL_ARCH_H
#define KEUSIM_SYSCALL_ARCH_H
#include <stdint.h>

static inline int64_t ks_syscall6(uint64_t n, uint64_t a0, uint64_t a1, uint64_t a2,
                                  uint64_t a3, uint64_t a4, uint64_t a5)
{
    register uint64_t x8 __asm__("x8") = n;
    register uint64_t x0 __asm__("x0") = a0;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    register uint64_t x4 __asm__("x4") = a4;
    register uint64_t x5 __asm__("x5") = a5;
    __asm__ volatile("svc #0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return (int64_t)x0;
}

static inline int64_t ks_syscall0(uint64_t n) { return ks_syscall6(n, 0, 0, 0, 0, 0, 0); }

static inline int64_t ks_syscall1(uint64_t n, uint64_t a0)
{
    return ks_syscall6(n, a0, 0, 0, 0, 0, 0);
}

static inline int64_t ks_syscall2(uint64_t n, uint64_t a0, uint64_t a1)
{
    return ks_syscall6(n, a0, a1, 0, 0, 0, 0);
}

static inline int64_t ks_syscall3(uint64_t n, uint64_t a0, uint64_t a1, uint64_t a2)
{
    return ks_syscall6(n, a0, a1, a2, 0, 0, 0);
}

static inline int64_t ks_syscall4(uint64_t n, uint64_t a0, uint64_t a1, uint64_t a2,
                                  uint64_t a3)
{
    return ks_syscall6(n, a0, a1, a2, a3, 0, 0);
}

static inline int64_t ks_syscall5(uint64_t n, uint64_t a0, uint64_t a1, uint64_t a2,
                                  uint64_t a3, uint64_t a4)
{
    return ks_syscall6(n, a0, a1, a2, a3, a4, 0);
}

/* A privileged instruction, for fault tests: TTBR0_EL1 is not writable at EL0. */
static inline void ks_arch_privileged(void)
{
    __asm__ volatile("msr ttbr0_el1, %0" ::"r"(0ull) : "memory");
}

/* The model cycle counter, read without a system call (cntvct_el0 is virtualised). */
static inline uint64_t ks_rdcycles(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}

#endif /* KEUSIM_SYSCALL_ARCH_H */
