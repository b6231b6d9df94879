/*
 * Processes and the per-core scheduler. Every process exists from boot and is
 * pinned to one core (the manifest says which); a core runs its processes in
 * round-robin order and idles (PLAT_WAIT) when none is runnable.
 */
#include "types.h"
#include "param.h"
#include "memlayout.h"
#include "bootinfo.h"
#include "platform.h"
#include "klog.h"
#include "info.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "spinlock.h"
#include "defs.h"

struct proc procs[MAXPROC];
int nproc;
struct cpu cpus[MAXCPU];
struct spinlock bkl;
static int nlive;

struct cpu *mycpu(void)
{
    return arch_mycpu();
}

struct proc *myproc(void)
{
    return mycpu()->proc;
}

static void *kstack_alloc(void)
{
    uint8_t *base = kalloc();
    for (uint64_t i = 1; i < KSTACKSIZE / PGSIZE; i++)
        if ((uint8_t *)kalloc() != base + i * PGSIZE)
            panic("kstack_alloc: pages not contiguous");
    return base;
}

/* Create every process named in the boot-info block. */
void procinit(void)
{
    nproc = (int)bootinfo->nproc;
    for (int i = 0; i < nproc; i++) {
        struct boot_proc *bp = &bootinfo->procs[i];
        struct proc *p = &procs[i];
        p->pid = i + 1;
        p->core = (int)bp->core;
        memcpy(p->name, bp->name, MAXNAME);
        p->name[MAXNAME - 1] = 0;
        p->root = uvm_create();
        p->root_pa = V2P(p->root);
        uint64_t entry;
        if (elf_load(p, P2V(bp->image_pa), bp->image_len, &entry) != 0) {
            /* The loader validated the image; reaching this is a kernel or loader bug. */
            panic("procinit: ELF image rejected by the kernel loader");
        }
        for (int s = 0; s < USTACKPAGES; s++)
            mappages(p->root, USTACK_TOP - (uint64_t)(s + 1) * PGSIZE, PGSIZE,
                     V2P(kalloc()), PTE_U | PTE_R | PTE_W);
        struct info_page *info = kalloc();
        info->magic = INFO_MAGIC;
        info->pid = (uint32_t)p->pid;
        info->nproc = (uint32_t)nproc;
        info->core = (uint64_t)p->core;
        memcpy(info->name, p->name, MAXNAME);
        mappages(p->root, INFO_VA, PGSIZE, V2P(info), PTE_U | PTE_R);
        p->kstack = (uint64_t)kstack_alloc();
        p->tf = (struct trapframe *)(p->kstack + KSTACKSIZE - sizeof(struct trapframe));
        arch_tf_init(p->tf, entry, USTACK_TOP, INFO_VA);
        arch_fp_init(&p->fp);
        arch_context_init(&p->ctx, p->kstack + KSTACKSIZE, p->tf);
        p->state = RUNNABLE;
        nlive++;
        klog(KLOG_PROC, (uint32_t)p->pid, p->root_pa, (uint64_t)p->core, 0);
    }
}

/* The info page of process p (kernel address). */
struct info_page *proc_info(struct proc *p)
{
    pte_t *e = walk(p->root, INFO_VA, 0);
    return (struct info_page *)P2V(arch_pte_pa(*e));
}

/* Run this core's processes forever. Called with bkl held. */
void scheduler(void)
{
    struct cpu *c = mycpu();
    for (;;) {
        int ran = 0;
        for (int i = 0; i < nproc; i++) {
            struct proc *p = &procs[i];
            if (p->core != c->id || p->state != RUNNABLE)
                continue;
            p->state = RUNNING;
            c->proc = p;
            /*
             * The slice is fixed here, when p is picked: kernel entries do not
             * extend it, so system calls in a loop cannot dodge preemption.
             */
            c->slice_end = arch_cycles() + bootinfo->timeslice;
            arm_timeslice();
            arch_set_kstack(p->kstack + KSTACKSIZE);
            /*
             * The MMU still holds p's address space when p was the last process to
             * run here (a core that idled in between kept it loaded, like Linux's
             * lazy TLB mode): no switch, no flush. Page tables only ever gain entries
             * while a process lives, so no stale translation can survive this.
             */
            if (c->uvm_root != p->root_pa) {
                arch_switch_uvm(p->root_pa, (uint32_t)p->pid);
                c->uvm_root = p->root_pa;
            }
            arch_user_restore(&p->fp);
            swtch(&c->sched, &p->ctx);
            /* The kernel touches no FP/SIMD state, so p's is still live: keep it. */
            arch_user_save(&p->fp);
            c->proc = 0;
            ran = 1;
        }
        if (!ran) {
            if (nlive == 0)
                poweroff(0);
            release(&bkl);
            plat_wait();
            acquire(&bkl);
        }
    }
}

/* Give up the core: back to the scheduler. Called with bkl held, p->state set. */
static void sched(void)
{
    struct proc *p = myproc();
    swtch(&p->ctx, &mycpu()->sched);
}

/* Let the core's other processes run. */
void yield(void)
{
    myproc()->state = RUNNABLE;
    sched();
}

/* Sleep until wakeup(chan). Called with bkl held. */
void sleep_on(void *chan)
{
    struct proc *p = myproc();
    p->chan = chan;
    p->state = SLEEPING;
    sched();
    p->chan = 0;
}

/* Wake every process sleeping on chan; an IPI tells another core to look. */
void wakeup(void *chan)
{
    int me = mycpu()->id;
    for (int i = 0; i < nproc; i++) {
        struct proc *p = &procs[i];
        if (p->state == SLEEPING && p->chan == chan) {
            p->state = RUNNABLE;
            if (p->core != me)
                plat_write(PLAT_IPI, (uint64_t)p->core); /* its interrupt() arms the timer */
            else if (mycpu()->proc)
                arm_timeslice(); /* the running process now has a rival */
        }
    }
}

static _Noreturn void finish(void)
{
    struct proc *p = myproc();
    p->state = ZOMBIE;
    chan_flush_stats(p);
    notify_exit(p);
    nlive--;
    if (nlive == 0) {
        channels_report();
        poweroff(0);
    }
    sched();
    panic("finish: zombie ran");
}

/* Exit the current process with code. */
_Noreturn void proc_exit(int64_t code)
{
    struct proc *p = myproc();
    p->exit_code = code;
    klog(KLOG_EXIT, (uint32_t)p->pid, (uint64_t)code, 0, 0);
    finish();
}

/* Kill the current process for a fault of kind at addr (pc: where it happened). */
_Noreturn void proc_kill(uint32_t kind, uint64_t addr, uint64_t pc)
{
    struct proc *p = myproc();
    p->exit_code = -1;
    klog(KLOG_FAULT, (uint32_t)p->pid, kind, addr, pc);
    finish();
}

/* 1 if another process waits for this core. */
static int others_waiting(struct cpu *c)
{
    for (int i = 0; i < nproc; i++)
        if (procs[i].core == c->id && procs[i].state == RUNNABLE)
            return 1;
    return 0;
}

/*
 * Arm this core's timer for the end of the running process's slice (set when
 * it was scheduled) if another process waits for the core, else disarm it.
 * Called when the answer can change: a process is scheduled, a rival on this
 * core wakes, an interrupt arrives (another core woke one). A deadline already
 * past fires at the first user instruction. The device is written only when
 * the deadline changes.
 */
void arm_timeslice(void)
{
    struct cpu *c = mycpu();
    if (!bootinfo->timeslice)
        return;
    uint64_t when = others_waiting(c) ? c->slice_end : 0;
    if (when != c->timer) {
        c->timer = when;
        plat_write(PLAT_TIMER, when);
    }
}

/* The running process used up its slice. */
int slice_over(void)
{
    struct cpu *c = mycpu();
    return bootinfo->timeslice && arch_cycles() >= c->slice_end;
}

/*
 * Last step of every return to user: drop the kernel lock. The time slice is
 * not touched: its deadline was fixed when the process was scheduled.
 */
void usertrapret(void)
{
    release(&bkl);
}
