/* arm64 trap frame and switch context (layouts used by entry.S). */
#pragma once
#include "types.h"

#define ARCH_ELF_MACHINE 183 /* EM_AARCH64 */

/*
 * Built on SP_EL1 by entry.S on every exception (Arm ARM, AArch64 exception
 * entry). The machine enters at EL1h, so SP is already the running process's kernel stack: the
 * last eret to EL0 left SP_EL1 at the top of that stack. Offsets are fixed:
 * entry.S uses TF_* below.
 */
struct trapframe {
    uint64_t x[31];     /* x0..x30 */
    uint64_t sp_el0;    /* user stack pointer */
    uint64_t elr;       /* ELR_EL1: return address (svc: the next instruction) */
    uint64_t spsr;      /* SPSR_EL1: saved PSTATE (EL0t for user) */
    uint64_t esr;       /* ESR_EL1: syndrome (EC in bits 31..26) */
    uint64_t far;       /* FAR_EL1: fault address (aborts only) */
};

#define TF_SP_EL0 (31 * 8)
#define TF_ELR    (32 * 8)
#define TF_ESR    (34 * 8)
#define TF_SIZE   (36 * 8)  /* a multiple of 16: SP stays 16-byte aligned */

/*
 * A process's FP/SIMD registers and EL0 thread pointer while it is not running
 * (entry.S arch_user_save/arch_user_restore hard-code this layout).
 */
struct fpstate {
    uint64_t q[64];     /* q0..q31, 16 bytes each */
    uint64_t fpcr, fpsr;
    uint64_t tpidr_el0;
    uint64_t pad;
};

/* swtch() saves the AAPCS64 callee-saved registers, the return address and sp. */
struct context {
    uint64_t x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
    uint64_t fp;        /* x29 */
    uint64_t lr;        /* x30: where swtch returns */
    uint64_t sp;
};
