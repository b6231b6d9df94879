/* Processes. */
#pragma once
#include "types.h"
#include "param.h"
#include "arch_types.h"

enum procstate { UNUSED, RUNNABLE, RUNNING, SLEEPING, ZOMBIE };

struct proc {
    enum procstate state;
    int pid;                /* = index + 1 */
    int core;               /* pinned core */
    char name[MAXNAME];
    pagetable_t root;       /* user address space */
    uint64_t root_pa;
    uint64_t kstack;        /* base of the kernel stack */
    struct trapframe *tf;   /* at the top of the kernel stack */
    struct context ctx;     /* saved by swtch */
    void *chan;             /* sleeping on */
    int64_t exit_code;
    uint64_t notify_seq[MAXCHAN]; /* last accepted sequence number, per channel */
    uint64_t pending_wakeups[MAXCHAN];
    struct fpstate fp;      /* user FP/SIMD and thread-pointer state while not running */
};

struct cpu {
    /* Fields read by arch entry code at fixed offsets: keep them first. */
    uint64_t kstack_top;    /* 0x00: kernel stack for system-call entry */
    uint64_t user_sp;       /* 0x08: scratch for the user stack pointer */
    struct proc *proc;      /* 0x10: running process, or 0 */
    struct cpu *self;       /* 0x18: this struct, for arch_mycpu() */
    int id;
    int started;
    struct context sched;   /* the scheduler's context */
    uint64_t slice_end;     /* model cycle at which the running process's time slice ends */
    uint64_t timer;         /* deadline last written to PLAT_TIMER (0: off) */
    uint64_t uvm_root;      /* user address space loaded in the MMU (0: the boot one) */
};

extern struct proc procs[MAXPROC];
extern int nproc;
extern struct cpu cpus[MAXCPU];
struct cpu *mycpu(void);
