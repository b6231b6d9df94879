/* x86-64 trap frame and switch context (layouts used by entry.S). */
#pragma once
#include "types.h"

#define ARCH_ELF_MACHINE 62 /* EM_X86_64 */

/*
 * Built on the kernel stack by entry.S. The last five words are the hardware
 * interrupt frame that iretq pops (Intel SDM Vol. 3A, 6.14.2, 64-bit mode stack
 * frame); the system-call path builds the same shape by hand.
 */
struct trapframe {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t trapno, err;
    uint64_t rip, cs, rflags, rsp, ss;
};

/* swtch() saves the callee-saved registers on the stack and keeps only rsp. */
struct context {
    uint64_t rsp;
};

#define T_SYSCALL 256

/* A process's x87/SSE state while it is not running: the FXSAVE image (SDM Vol. 1, 10.5.1). */
struct fpstate {
    uint8_t fx[512];
} __attribute__((aligned(16)));
