/*
 * x86-64 specifics: descriptor tables, system-call MSRs, page-table entry
 * format, trap frames and the trap dispatcher.
 */
#include "types.h"
#include "param.h"
#include "memlayout.h"
#include "bootinfo.h"
#include "klog.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "defs.h"

/* Segment selectors (docs/unicorn.md; Intel SDM Vol. 3A, 3.4.5). */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE 0x23
#define SEL_TSS   0x28

#define MSR_EFER   0xC0000080u
#define MSR_STAR   0xC0000081u
#define MSR_LSTAR  0xC0000082u
#define MSR_FMASK  0xC0000084u
#define MSR_GSBASE 0xC0000101u
#define MSR_KGSBASE 0xC0000102u

struct tss {
    uint32_t rsvd0;
    uint64_t rsp0, rsp1, rsp2, rsvd1, ist[7], rsvd2;
    uint16_t rsvd3, iomap;
} __attribute__((packed));

struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t ist, type;
    uint16_t off_mid;
    uint32_t off_hi, zero;
};

static uint64_t gdt[MAXCPU][7] __attribute__((aligned(16)));
static struct tss tss[MAXCPU] __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
extern uint64_t vectors[];
extern char syscall_entry[], proc_start[];
static const uint8_t vecnum[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                 16, 17, 18, 19, 20, 21, 32, 33};

static void wrmsr(uint32_t msr, uint64_t v)
{
    asm volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return lo | (uint64_t)hi << 32;
}

struct __attribute__((packed)) dtr {
    uint16_t limit;
    uint64_t base;
};

/* Load this core's GDT (with its TSS), the shared IDT and the syscall MSRs. */
void arch_cpu_init(int cpu)
{
    uint64_t *g = gdt[cpu];
    g[0] = 0;
    g[1] = 0x00AF9A000000FFFFull; /* kernel code, 64-bit, DPL0 */
    g[2] = 0x00CF92000000FFFFull; /* kernel data */
    g[3] = 0x00CFF2000000FFFFull; /* user data, DPL3 */
    g[4] = 0x00AFFA000000FFFFull; /* user code, 64-bit, DPL3 */
    uint64_t base = (uint64_t)&tss[cpu], limit = sizeof(struct tss) - 1;
    /* 64-bit TSS descriptor, type 9 (available), present (SDM Vol. 3A, 8.2.3). */
    g[5] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) |
           (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    g[6] = base >> 32;
    tss[cpu].iomap = sizeof(struct tss);
    struct dtr gd = {sizeof(gdt[0]) - 1, (uint64_t)g};
    asm volatile("lgdt %0\n"
                 "mov %1, %%ds\n mov %1, %%es\n mov %1, %%ss\n"
                 "pushq %2\n lea 1f(%%rip), %%rax\n pushq %%rax\n lretq\n1:\n"
                 :: "m"(gd), "r"((uint64_t)SEL_KDATA), "i"(SEL_KCODE) : "rax", "memory");
    asm volatile("ltr %0" ::"r"((uint16_t)SEL_TSS));
    if (cpu == 0) {
        for (unsigned i = 0; i < sizeof(vecnum); i++) {
            uint64_t h = vectors[i];
            /*
             * Interrupt gates, DPL 0: `int N` from user code gets #GP (SDM Vol. 3A,
             * 6.12.1.1). Only #BP (int3) is DPL 3, as in most kernels, so a
             * breakpoint reaches its own handler. Vectors not listed are not
             * present: `int N` on them gets #NP.
             */
            uint8_t type = vecnum[i] == 3 ? 0xEE : 0x8E;
            idt[vecnum[i]] = (struct idt_gate){(uint16_t)h, SEL_KCODE, 0, type,
                                               (uint16_t)(h >> 16), (uint32_t)(h >> 32), 0};
        }
    }
    struct dtr id = {sizeof(idt) - 1, (uint64_t)idt};
    asm volatile("lidt %0" ::"m"(id));
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | 1); /* SCE */
    wrmsr(MSR_STAR, ((uint64_t)SEL_KDATA << 48) | ((uint64_t)SEL_KCODE << 32));
    wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
    wrmsr(MSR_FMASK, 0x47700); /* clear TF, IF, DF, IOPL, NT, AC on entry */
    wrmsr(MSR_GSBASE, (uint64_t)&cpus[cpu]);
    wrmsr(MSR_KGSBASE, 0);
}

/* x86-64 4-level entries (SDM Vol. 3A, 4.5): P=0, RW=1, US=2, A=5, D=6, PCD=4, XD=63. */
#define X_P  (1ull << 0)
#define X_RW (1ull << 1)
#define X_US (1ull << 2)
#define X_PCD (1ull << 4)
#define X_A  (1ull << 5)
#define X_D  (1ull << 6)
#define X_NX (1ull << 63)
#define X_ADDR 0x000FFFFFFFFFF000ull

pte_t arch_pte_leaf(uint64_t pa, int perm)
{
    pte_t e = (pa & X_ADDR) | X_P | X_A | X_D;
    if (perm & PTE_W)
        e |= X_RW;
    if (perm & PTE_U)
        e |= X_US;
    if (!(perm & PTE_X))
        e |= X_NX;
    if (perm & PTE_DEV)
        e |= X_PCD;
    return e;
}

pte_t arch_pte_table(uint64_t pa)
{
    return (pa & X_ADDR) | X_P | X_RW | X_US; /* the leaf decides */
}

int arch_pte_valid(pte_t e) { return (int)(e & X_P); }
uint64_t arch_pte_pa(pte_t e) { return e & X_ADDR; }

int arch_pte_perm(pte_t e)
{
    int p = PTE_R;
    if (e & X_RW) p |= PTE_W;
    if (e & X_US) p |= PTE_U;
    if (!(e & X_NX)) p |= PTE_X;
    return p;
}

/* Share the kernel half (PML4 entries 256..511) with the new address space. */
void arch_uvm_init(pagetable_t root)
{
    pagetable_t k = (pagetable_t)P2V(bootinfo->kernel_root);
    for (int i = 256; i < 512; i++)
        root[i] = k[i];
}

/*
 * Load CR3 (flushes non-global TLB entries). The machine watches the label
 * arch_root_switched to know which address space the core runs (cost tables).
 */
__attribute__((noinline)) void arch_switch_uvm(uint64_t root_pa, uint32_t asid)
{
    (void)asid;
    asm volatile("mov %0, %%cr3\n"
                 ".globl arch_root_switched\n"
                 "arch_root_switched:\n" ::"r"(root_pa) : "memory");
}

void arch_set_kstack(uint64_t top)
{
    struct cpu *c = mycpu();
    tss[c->id].rsp0 = top;
    c->kstack_top = top;
}

void arch_tf_init(struct trapframe *tf, uint64_t entry, uint64_t sp, uint64_t arg0)
{
    memset(tf, 0, sizeof(*tf));
    tf->rip = entry;
    tf->cs = SEL_UCODE;
    tf->ss = SEL_UDATA;
    tf->rsp = sp;
    tf->rflags = 0x202;
    tf->rdi = arg0;
}

void arch_context_init(struct context *c, uint64_t kstack_top, struct trapframe *tf)
{
    (void)kstack_top;
    uint64_t *sp = (uint64_t *)tf;
    *--sp = (uint64_t)proc_start; /* swtch's ret */
    for (int i = 0; i < 6; i++)
        *--sp = 0;                /* rbp rbx r12..r15 */
    c->rsp = (uint64_t)sp;
}

uint64_t arch_tf_sysno(struct trapframe *tf) { return tf->rax; }
uint64_t arch_tf_pc(struct trapframe *tf) { return tf->rip; }
void arch_tf_set_ret(struct trapframe *tf, uint64_t v) { tf->rax = v; }

uint64_t arch_tf_arg(struct trapframe *tf, int n)
{
    switch (n) {
    case 0: return tf->rdi;
    case 1: return tf->rsi;
    case 2: return tf->rdx;
    case 3: return tf->r10;
    case 4: return tf->r8;
    default: return tf->r9;
    }
}

/* In the kernel, GS_BASE holds &cpus[id] (entry paths swapgs; see entry.S). */
struct cpu *arch_mycpu(void)
{
    struct cpu *c;
    asm volatile("mov %%gs:0x18, %0" : "=r"(c));
    return c;
}

uint64_t arch_cycles(void)
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return lo | (uint64_t)hi << 32;
}

void arch_cpu_relax(void) { asm volatile("pause"); }
void arch_mb(void) { asm volatile("mfence" ::: "memory"); }

/*
 * x87/SSE state of a process across switches (the kernel is built without
 * SSE, so the user's state stays live in the registers while it runs).
 */
void arch_user_save(struct fpstate *f)
{
    asm volatile("fxsave64 %0" : "=m"(*f));
}

void arch_user_restore(const struct fpstate *f)
{
    asm volatile("fxrstor64 %0" ::"m"(*f));
}

/* The power-on x87/SSE state (SDM Vol. 3A, 10.1, Table 10-1): FCW 0x37F, MXCSR 0x1F80. */
void arch_fp_init(struct fpstate *f)
{
    memset(f, 0, sizeof(*f));
    f->fx[0] = 0x7F;
    f->fx[1] = 0x03;
    f->fx[24] = 0x80;
    f->fx[25] = 0x1F;
}

/*
 * #GP(0) at CPL3: a privileged or I/O instruction (privileged-instruction), or
 * anything else (general-protection: a non-canonical address, a bad selector,
 * a misaligned SSE operand). The error code does not say which (SDM Vol. 3A,
 * 6.15, #GP), so look at the opcode, after legacy and REX prefixes.
 */
static int gp_kind(struct trapframe *tf)
{
    uint8_t b[16];
    if (copyin(myproc()->root, b, tf->rip, sizeof(b)) != 0)
        return FK_GENERAL_PROTECTION;
    int i = 0;
    while (i < 14 && (b[i] == 0x66 || b[i] == 0x67 || b[i] == 0xF0 || b[i] == 0xF2 ||
                      b[i] == 0xF3 || b[i] == 0x2E || b[i] == 0x36 || b[i] == 0x3E ||
                      b[i] == 0x26 || b[i] == 0x64 || b[i] == 0x65 || (b[i] & 0xF0) == 0x40))
        i++;
    uint8_t op = b[i];
    if (op == 0xF4 || op == 0xFA || op == 0xFB ||      /* hlt, cli, sti */
        (op >= 0xE4 && op <= 0xE7) || (op >= 0xEC && op <= 0xEF) ||
        (op >= 0x6C && op <= 0x6F))                    /* in, out, ins, outs */
        return FK_PRIV_INSN;
    if (op == 0x0F) {
        uint8_t op2 = b[i + 1];
        if (op2 == 0x00 || op2 == 0x01 ||              /* lldt/ltr, lgdt/lidt/swapgs/... */
            op2 == 0x06 || op2 == 0x07 || op2 == 0x08 || op2 == 0x09 || /* clts sysret invd wbinvd */
            (op2 >= 0x20 && op2 <= 0x23) ||           /* mov to/from CR, DR */
            op2 == 0x30 || op2 == 0x32 || op2 == 0x33 || /* wrmsr rdmsr rdpmc */
            op2 == 0x34 || op2 == 0x35)                /* sysenter sysexit */
            return FK_PRIV_INSN;
    }
    return FK_GENERAL_PROTECTION;
}

/* Every IDT vector lands here (entry.S alltraps). */
void x86_trap(struct trapframe *tf)
{
    if (tf->trapno == 32 || tf->trapno == 33) {
        interrupt();
        return; /* back to user, or to the idle loop, through trapret */
    }
    if (!(tf->cs & 3)) {
        uint64_t cr2;
        asm volatile("mov %%cr2, %0" : "=r"(cr2));
        kprintf("kernel trap %lu err %lx at rip %lx cr2 %lx\n", tf->trapno, tf->err, tf->rip, cr2);
        panic("x86_trap: exception in kernel mode");
    }
    uint64_t cr2;
    switch (tf->trapno) {
    case 14: /* #PF: error code bit 1 = write, bit 4 = instruction fetch (SDM 4.7) */
        asm volatile("mov %%cr2, %0" : "=r"(cr2));
        user_fault(tf, tf->err & 0x10 ? ACC_EXEC : tf->err & 2 ? ACC_WRITE : ACC_READ, cr2, 0);
        break;
    case 11: /* #NP */
    case 13: /* #GP */
        /* Error code bit 1 (IDT): `int N` through a gate the process may not use. */
        if (tf->err & 2)
            user_fault(tf, ACC_EXEC, tf->err >> 3, FK_SOFT_INTERRUPT);
        else if (tf->trapno == 13)
            user_fault(tf, ACC_EXEC, tf->rip, gp_kind(tf));
        else
            user_fault(tf, ACC_EXEC, tf->rip, FK_OTHER);
        break;
    case 6:
        user_fault(tf, ACC_EXEC, tf->rip, FK_UNDEF_INSN);
        break;
    case 0: /* #DE */
        user_fault(tf, ACC_EXEC, tf->rip, FK_DIVIDE);
        break;
    case 12: /* #SS: a non-canonical stack reference (SDM Vol. 3A, 6.15) */
        user_fault(tf, ACC_READ, tf->rip, FK_GENERAL_PROTECTION);
        break;
    case 16: /* #MF */
    case 19: /* #XM */
        user_fault(tf, ACC_EXEC, tf->rip, FK_FP_EXCEPTION);
        break;
    case 1: /* #DB: int1 (icebp) */
    case 3: /* #BP: int3 (rip is after it) */
        user_fault(tf, ACC_EXEC, tf->rip, FK_BREAKPOINT);
        break;
    case 17:
        user_fault(tf, ACC_READ, tf->rip, FK_ALIGNMENT);
        break;
    default:
        user_fault(tf, ACC_READ, tf->rip, FK_OTHER);
    }
}
