/*
 * What each architecture provides (kernel/arch/<arch>/). Common kernel code calls
 * only these; it never tests which architecture it runs on.
 */
#pragma once
#include "types.h"

struct trapframe;   /* arch/<arch>/trapframe.h */
struct context;     /* callee-saved registers for swtch */
struct fpstate;     /* user FP/SIMD and thread-pointer state (arch_types.h) */
struct proc;

/* Page-table entry permissions, architecture-neutral. */
#define PTE_R  1    /* readable */
#define PTE_W  2    /* writable */
#define PTE_X  4    /* executable (at the level given by PTE_U) */
#define PTE_U  8    /* user accessible; otherwise supervisor only */
#define PTE_DEV 16  /* device memory (uncached) */

/* Encode a leaf entry mapping pa with perm. */
pte_t arch_pte_leaf(uint64_t pa, int perm);
/* Encode a table (non-leaf) entry pointing at the next-level table at pa. */
pte_t arch_pte_table(uint64_t pa);
int arch_pte_valid(pte_t e);
uint64_t arch_pte_pa(pte_t e);
/* Decode a leaf entry's permissions into PTE_* bits. */
int arch_pte_perm(pte_t e);

/* Prepare a fresh user root (x86-64: share the kernel's top-level entries). */
void arch_uvm_init(pagetable_t root);
/* Make root the current user address space (and flush what must be flushed). */
void arch_switch_uvm(uint64_t root_pa, uint32_t asid);

/* Per-core set-up: trap vectors, per-cpu pointer, system-call MSRs. */
void arch_cpu_init(int cpu);
/* Fill a new process's trap frame so that returning from it enters user mode. */
void arch_tf_init(struct trapframe *tf, uint64_t entry, uint64_t sp, uint64_t arg0);
uint64_t arch_tf_sysno(struct trapframe *tf);
uint64_t arch_tf_arg(struct trapframe *tf, int n);
void arch_tf_set_ret(struct trapframe *tf, uint64_t v);
uint64_t arch_tf_pc(struct trapframe *tf);

/* Point the trap entry at p's kernel stack (x86-64: TSS.RSP0 and the syscall stack). */
void arch_set_kstack(uint64_t top);
/* Set up c so that swtch() to it starts in the return-to-user path. */
void arch_context_init(struct context *c, uint64_t kstack_top, struct trapframe *tf);
/* Save callee-saved registers in *old, load them from *new (arch/<arch>/swtch.S). */
void swtch(struct context *old, struct context *new);

/* This core's struct cpu, from the per-cpu register (x86-64 GS base, arm64 TPIDR_EL1). */
struct cpu *arch_mycpu(void);

/* Model cycle counter (rdtsc / cntvct_el0: virtual time). */
uint64_t arch_cycles(void);

/* Save / load the user-visible state the trap frame does not hold (FP/SIMD, thread pointer). */
void arch_user_save(struct fpstate *f);
void arch_user_restore(const struct fpstate *f);
void arch_fp_init(struct fpstate *f);
void arch_cpu_relax(void);
/* Memory barrier (full). */
void arch_mb(void);
