/* x86-64 system calls: number in rax, arguments in rdi, rsi, rdx; result in rax (docs/abi.md). */
#pragma once
#include <stdint.h>

static inline int64_t ks_syscall3(uint64_t n, uint64_t a, uint64_t b, uint64_t c)
{
    int64_t r;
    asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

/* A privileged instruction, for fault tests: writing CR3 at CPL3 raises #GP. */
static inline void ks_arch_privileged(void)
{
    asm volatile("mov %0, %%cr3" ::"r"(0ull) : "memory");
}

/* The model cycle counter, read without a system call (rdtsc is virtualised). */
static inline uint64_t ks_rdcycles(void)
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return lo | (uint64_t)hi << 32;
}
