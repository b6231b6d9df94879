/*
 * System calls, user faults and interrupts: what the kernel decides once the
 * architecture's entry code has built a trap frame.
 */
#include "types.h"
#include "memlayout.h"
#include "platform.h"
#include "syscall.h"
#include "klog.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "spinlock.h"
#include "defs.h"

static int64_t sys_write(uint64_t va, uint64_t len)
{
    struct proc *p = myproc();
    char buf[256];
    uint64_t done = 0;
    while (done < len) {
        uint64_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
        if (copyin(p->root, buf, va + done, n) != 0)
            return done ? (int64_t)done : EFAULT;
        console_write(p->pid, buf, n);
        done += n;
    }
    return (int64_t)done;
}


/* Dispatch the system call in tf; the result goes back in the return register. */
void syscall(struct trapframe *tf)
{
    acquire(&bkl);
    struct proc *p = myproc();
    uint64_t n = arch_tf_sysno(tf);
    uint64_t a0 = arch_tf_arg(tf, 0), a1 = arch_tf_arg(tf, 1);
    int64_t r;
    switch (n) {
    case SYS_EXIT:
        proc_exit((int64_t)a0);  /* all 64 bits reach the report */
    case SYS_WRITE:
        r = sys_write(a0, a1);
        break;
    case SYS_YIELD:
        yield();
        r = 0;
        break;
    case SYS_GETPID:
        r = p->pid;
        break;
    case SYS_CYCLES:
        r = (int64_t)arch_cycles();
        break;
    case SYS_NOTIFY:
        r = sys_notify(a0);
        break;
    case SYS_WAIT:
        r = sys_wait(a0);
        break;
    case SYS_CHANFAULT:
        r = chan_fault(p, a0, (int64_t)a1);
        break;
    case SYS_NOP:
        r = 0;
        break;
    case SYS_REPORT:
        r = chan_report(p, a0, a1, arch_tf_arg(tf, 2));
        break;
    case SYS_NIC_ATTACH:
        r = sys_nic_attach(a0, a1, arch_tf_arg(tf, 2), arch_tf_arg(tf, 3));
        break;
    case SYS_NIC_WAIT:
        r = sys_nic_wait();
        break;
    case SYS_NET_SEND:
        r = sys_net_send(a0, a1);
        break;
    case SYS_NET_RECV:
        r = sys_net_recv(a0, a1);
        break;
    default:
        proc_kill(FK_BAD_SYSCALL, n, arch_tf_pc(tf));
    }
    arch_tf_set_ret(tf, (uint64_t)r);
    usertrapret();
}

/*
 * A user access of type access (ACC_*) to addr faulted. Classify it from the
 * page tables, record it, and kill the process. hw_kind is a kind the
 * architecture already knows (privileged/undefined instruction, alignment), or 0.
 */
void user_fault(struct trapframe *tf, int access, uint64_t addr, int hw_kind)
{
    acquire(&bkl);
    struct proc *p = myproc();
    uint32_t kind = (uint32_t)hw_kind;
    if (!kind) {
        pte_t *e = addr < USER_TOP ? walk(p->root, PGROUNDDOWN(addr), 0) : 0;
        int perm = e && arch_pte_valid(*e) ? arch_pte_perm(*e) : -1;
        if (addr >= USER_TOP)
            kind = FK_KERNEL_ACCESS;  /* the kernel half: never user accessible */
        else if (perm < 0)
            kind = FK_UNMAPPED;
        else if (!(perm & PTE_U))
            kind = FK_KERNEL_ACCESS;
        else if (access == ACC_WRITE && !(perm & PTE_W))
            kind = FK_WRITE_PROTECT;
        else if (access == ACC_EXEC && !(perm & PTE_X))
            kind = FK_EXEC_NX;
        else
            kind = FK_OTHER;
    }
    proc_kill(kind, addr, arch_tf_pc(tf));
}

/*
 * An interrupt arrived, from user mode or while this core idled in the scheduler
 * (then myproc() is 0). IPIs only make the scheduler look again; a timer tick
 * preempts the running process once its slice (fixed when it was scheduled)
 * is over. Either may have changed whether a rival waits: re-arm.
 */
void interrupt(void)
{
    uint64_t cause = plat_read(PLAT_IRQ_CAUSE);
    acquire(&bkl);
    struct proc *p = myproc();
    if (cause & IRQ_DEV)
        nic_intr();
    if ((cause & IRQ_TIMER) && p && p->state == RUNNING && slice_over())
        yield();
    if (myproc())
        arm_timeslice();
    release(&bkl);
}
