/*
 * x86-64 system calls (docs/abi.md): number in rax, arguments in rdi, rsi, rdx, r10, r8,
 * r9; result in rax. The syscall instruction clobbers rcx (return rip) and r11 (rflags)
 * (Intel SDM vol. 2B, SYSCALL). r10 stands in for rcx, the C ABI's fourth argument.
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
    int64_t r;
    register uint64_t r10 __asm__("r10") = a3;
    register uint64_t r8 __asm__("r8") = a4;
    register uint64_t r9 __asm__("r9") = a5;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
}

static inline int64_t ks_syscall0(uint64_t n)
{
    int64_t r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n) : "rcx", "r11", "memory");
    return r;
}

static inline int64_t ks_syscall1(uint64_t n, uint64_t a0)
{
    int64_t r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a0) : "rcx", "r11", "memory");
    return r;
}

static inline int64_t ks_syscall2(uint64_t n, uint64_t a0, uint64_t a1)
{
    int64_t r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a0), "S"(a1) : "rcx", "r11", "memory");
    return r;
}

static inline int64_t ks_syscall3(uint64_t n, uint64_t a0, uint64_t a1, uint64_t a2)
{
    int64_t r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a0), "S"(a1), "d"(a2)
                     : "rcx", "r11", "memory");
    return r;
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

/* A privileged instruction, for fault tests: writing CR3 at CPL3 raises #GP. */
static inline void ks_arch_privileged(void)
{
    __asm__ volatile("mov %0, %%cr3" ::"r"(0ull) : "memory");
}

/* The model cycle counter, read without a system call (rdtsc is virtualised). */
static inline uint64_t ks_rdcycles(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return lo | (uint64_t)hi << 32;
}

#endif /* KEUSIM_SYSCALL_ARCH_H */
