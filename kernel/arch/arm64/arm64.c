/*
 * arm64 specifics: system registers, the stage-1 page-table entry format, trap
 * frames and the trap dispatcher.
 *
 * Address spaces: the kernel half (KERNBASE direct map) lives in TTBR1_EL1, set
 * up once by the loader; each process's user half lives in TTBR0_EL1, tagged
 * with an 8-bit ASID (TCR_EL1.A1 = 0, AS = 0). T0SZ = T1SZ = 16, 4 KiB granule,
 * 48-bit virtual addresses: the same four 9-bit levels as x86-64 (vm.c).
 */
#include "types.h"
#include "param.h"
#include "memlayout.h"
#include "klog.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "defs.h"

/* entry.S hard-codes these offsets. */
_Static_assert(__builtin_offsetof(struct trapframe, sp_el0) == TF_SP_EL0, "tf layout");
_Static_assert(__builtin_offsetof(struct trapframe, elr) == TF_ELR, "tf layout");
_Static_assert(__builtin_offsetof(struct trapframe, esr) == TF_ESR, "tf layout");
_Static_assert(sizeof(struct trapframe) == TF_SIZE, "tf layout");
_Static_assert(__builtin_offsetof(struct context, sp) == 96, "swtch layout");
_Static_assert(__builtin_offsetof(struct fpstate, fpcr) == 512 &&
               __builtin_offsetof(struct fpstate, tpidr_el0) == 528, "fpstate layout");
/* ASID = pid must be unique and fit in 8 bits (TCR_EL1.AS = 0): see arch_switch_uvm. */
_Static_assert(MAXPROC < 256, "ASIDs are 8 bits");

extern char vectors[], proc_start[];

#define MSR(reg, v) asm volatile("msr " #reg ", %0" ::"r"((uint64_t)(v)) : "memory")

/*
 * Per-core set-up: exception vectors, per-cpu pointer, EL0 counter access.
 * CPACR_EL1.FPEN = 0b11: FP/SIMD is enabled at EL0 and EL1. Unicorn 2.1.4 does
 * not enforce FPEN = 0 (docs/arch-arm64.md), so user code can use FP/SIMD
 * whatever this says; the kernel therefore saves and restores it per process
 * (arch_user_save) and says so architecturally. The kernel itself is built
 * without FP/SIMD (arch/arm64_facts.py) and never touches those registers.
 */
void arch_cpu_init(int cpu)
{
    MSR(cpacr_el1, 3ull << 20);
    MSR(vbar_el1, (uint64_t)vectors);
    MSR(tpidr_el1, (uint64_t)&cpus[cpu]);
    /*
     * CNTKCTL_EL1.EL0VCTEN | EL0PCTEN: user code may read cntvct_el0 and cntpct_el0
     * (the machine's MRS hook answers both from the model clock, even unenabled).
     */
    MSR(cntkctl_el1, (1ull << 1) | (1ull << 0));
    asm volatile("isb" ::: "memory");
}

/*
 * VMSAv8-64 stage-1 descriptors, 4 KiB granule (Arm ARM, descriptor formats):
 *   bits 1..0   0b11 table (levels 0-2) or page (level 3); 0b01 block; x0 invalid
 *   bits 4..2   AttrIndx: MAIR_EL1 slot (0 normal write-back, 1 Device-nGnRnE)
 *   bits 7..6   AP[2:1]: 00 EL1 rw, 01 EL1+EL0 rw, 10 EL1 ro, 11 EL1+EL0 ro
 *   bits 9..8   SH: 0b11 inner shareable
 *   bit 10      AF: access flag (set: no access-flag faults)
 *   bit 11      nG: not global, i.e. tagged with the ASID (user pages)
 *   bits 47..12 output address
 *   bit 53      PXN: no execution at EL1     bit 54  UXN: no execution at EL0
 * The loader's encoder (keusim/arch/arm64.py PteCodec) must agree.
 */
#define A_VALID   (1ull << 0)
#define A_PAGE    (3ull << 0)
#define A_ATTR_DEV (1ull << 2)
#define A_AP_EL0  (1ull << 6)
#define A_AP_RO   (1ull << 7)
#define A_SH_IS   (3ull << 8)
#define A_AF      (1ull << 10)
#define A_NG      (1ull << 11)
#define A_PXN     (1ull << 53)
#define A_UXN     (1ull << 54)
#define A_ADDR    0x0000FFFFFFFFF000ull

pte_t arch_pte_leaf(uint64_t pa, int perm)
{
    pte_t e = (pa & A_ADDR) | A_PAGE | A_AF | A_SH_IS;
    if (perm & PTE_DEV)
        e |= A_ATTR_DEV;
    if (!(perm & PTE_W))
        e |= A_AP_RO;
    if (perm & PTE_U) {
        /* The kernel never runs user code (and EL0-writable pages are PXN anyway). */
        e |= A_AP_EL0 | A_NG | A_PXN;
        if (!(perm & PTE_X))
            e |= A_UXN;
    } else {
        e |= A_UXN;
        if (!(perm & PTE_X))
            e |= A_PXN;
    }
    return e;
}

pte_t arch_pte_table(uint64_t pa)
{
    return (pa & A_ADDR) | A_PAGE; /* no APTable/XNTable limits: the leaf decides */
}

int arch_pte_valid(pte_t e) { return (int)(e & A_VALID); }
uint64_t arch_pte_pa(pte_t e) { return e & A_ADDR; }

int arch_pte_perm(pte_t e)
{
    int p = PTE_R;
    if (!(e & A_AP_RO)) p |= PTE_W;
    if (e & A_AP_EL0) {
        p |= PTE_U;
        if (!(e & A_UXN)) p |= PTE_X;
    } else if (!(e & A_PXN)) {
        p |= PTE_X;
    }
    if ((e & (7ull << 2)) == A_ATTR_DEV) p |= PTE_DEV;
    return p;
}

/* Nothing to share: the kernel half is in TTBR1, a different root. */
void arch_uvm_init(pagetable_t root)
{
    (void)root;
}

/*
 * Make root_pa the user address space: TTBR0_EL1 = ASID << 48 | root.
 * ASIDs are the pid, unique for the life of the system, and user pages are nG,
 * so no TLB invalidation is needed (Arm ARM, "Translation Lookaside Buffers":
 * entries tagged with another ASID cannot hit). The isb makes the new root
 * visible to the instructions after it.
 * The machine watches the label arch_root_switched (cost tables per address space).
 */
__attribute__((noinline)) void arch_switch_uvm(uint64_t root_pa, uint32_t asid)
{
    uint64_t ttbr = (root_pa & A_ADDR) | ((uint64_t)(asid & 0xFF) << 48);
    asm volatile("dsb ishst\n"           /* page-table stores before the walker sees them */
                 "msr ttbr0_el1, %0\n"
                 "isb\n"
                 ".globl arch_root_switched\n"
                 "arch_root_switched:\n" ::"r"(ttbr) : "memory");
}

/*
 * The trap entry uses SP_EL1 as it stands (the process's kernel stack top, left
 * there by the last eret); this records it for the per-cpu block.
 */
void arch_set_kstack(uint64_t top)
{
    mycpu()->kstack_top = top;
}

void arch_tf_init(struct trapframe *tf, uint64_t entry, uint64_t sp, uint64_t arg0)
{
    memset(tf, 0, sizeof(*tf));
    tf->elr = entry;
    tf->spsr = 0;       /* EL0t, DAIF clear (Arm ARM, SPSR_EL1) */
    tf->sp_el0 = sp;
    tf->x[0] = arg0;
}

void arch_context_init(struct context *c, uint64_t kstack_top, struct trapframe *tf)
{
    (void)kstack_top;
    memset(c, 0, sizeof(*c));
    c->lr = (uint64_t)proc_start;   /* swtch's ret */
    c->sp = (uint64_t)tf;
}

/* System-call ABI (guests/arch/arm64/include/keusim/syscall_arch.h): x8, x0..x5 -> x0. */
uint64_t arch_tf_sysno(struct trapframe *tf) { return tf->x[8]; }
uint64_t arch_tf_pc(struct trapframe *tf) { return tf->elr; }
void arch_tf_set_ret(struct trapframe *tf, uint64_t v) { tf->x[0] = v; }

uint64_t arch_tf_arg(struct trapframe *tf, int n)
{
    return n >= 0 && n < 6 ? tf->x[n] : 0;
}

/* In the kernel, TPIDR_EL1 holds &cpus[id] (arch_cpu_init); EL0 cannot read it. */
struct cpu *arch_mycpu(void)
{
    struct cpu *c;
    asm volatile("mrs %0, tpidr_el1" : "=r"(c));
    return c;
}

/* The virtual counter: the machine answers it from the core's model clock. */
uint64_t arch_cycles(void)
{
    uint64_t v;
    asm volatile("isb\n mrs %0, cntvct_el0" : "=r"(v) :: "memory");
    return v;
}

void arch_cpu_relax(void) { asm volatile("yield" ::: "memory"); }
void arch_mb(void) { asm volatile("dmb ish" ::: "memory"); }

/* ESR_EL1 exception classes (Arm ARM, ESR_EL1.EC). */
#define EC_UNKNOWN     0x00
#define EC_WFX         0x01
#define EC_FPSIMD      0x07
#define EC_ILLEGAL     0x0E
#define EC_SVC64       0x15
#define EC_SYSREG      0x18
#define EC_IABT_LOWER  0x20
#define EC_PC_ALIGN    0x22
#define EC_DABT_LOWER  0x24
#define EC_SP_ALIGN    0x26
#define EC_BRK         0x3C
#define ESR_WNR        (1u << 6)   /* data abort ISS: write, not read */
#define FSC_ALIGNMENT  0x21        /* data/instruction fault status: alignment fault */

/*
 * FK_NON_CANONICAL for an address in neither half (bits 63..48 neither all 0,
 * the TTBR0 half, nor all 1, the TTBR1 half: T0SZ = T1SZ = 16), else 0 (the
 * kernel classifies it from the page tables).
 */
static int noncanonical(uint64_t va)
{
    uint64_t top = va >> 48;
    return top != 0 && top != 0xFFFF ? FK_NON_CANONICAL : 0;
}

/*
 * An EC_UNKNOWN exception: the instruction is UNDEFINED at EL0. Accesses to EL1
 * system registers (msr ttbr0_el1, ...) and eret/hvc/smc are UNDEFINED at EL0
 * too (Arm ARM: EL1 system registers, ERET/HVC/SMC at EL0), and report the
 * same class, so the kernel tells a privileged instruction from an unknown one
 * by its encoding.
 */
static int undef_kind(struct trapframe *tf)
{
    uint32_t insn;
    if (copyin(myproc()->root, &insn, tf->elr, sizeof(insn)) != 0)
        return FK_UNDEF_INSN;
    if ((insn & 0xFFC00000u) == 0xD5000000u)    /* MSR/MRS/SYS/SYSL, MSR (immediate) */
        return FK_PRIV_INSN;
    if ((insn & 0xFFFFF000u) == 0xD69F0000u ||  /* ERET, ERETAA/AB */
        insn == 0xD6BF03E0u ||                  /* DRPS */
        (insn & 0xFFE0001Eu) == 0xD4000002u)    /* HVC, SMC */
        return FK_PRIV_INSN;
    return FK_UNDEF_INSN;
}

/* The power-on FP/SIMD state: zero registers, FPCR/FPSR 0, TPIDR_EL0 0. */
void arch_fp_init(struct fpstate *f)
{
    memset(f, 0, sizeof(*f));
}

/* Synchronous exception from EL0 (entry.S el0_sync). Returns to user unless killed. */
void arm64_sync_el0(struct trapframe *tf)
{
    uint32_t esr = (uint32_t)tf->esr;
    uint32_t ec = esr >> 26, fsc = esr & 0x3F;
    int kind = 0;
    switch (ec) {
    case EC_SVC64:
        syscall(tf);
        return;
    case EC_DABT_LOWER:
        user_fault(tf, esr & ESR_WNR ? ACC_WRITE : ACC_READ, tf->far,
                   fsc == FSC_ALIGNMENT ? FK_ALIGNMENT : noncanonical(tf->far));
        return;
    case EC_IABT_LOWER:
        user_fault(tf, ACC_EXEC, tf->far, noncanonical(tf->far));
        return;
    case EC_PC_ALIGN:
        user_fault(tf, ACC_EXEC, tf->far, FK_ALIGNMENT);
        return;
    case EC_SP_ALIGN:
        user_fault(tf, ACC_READ, tf->sp_el0, FK_ALIGNMENT);
        return;
    case EC_SYSREG:   /* trapped system register/instruction (e.g. msr daifset, SCTLR.UMA = 0) */
    case EC_WFX:      /* wfi/wfe with SCTLR_EL1.nTWI/nTWE = 0: user code may not idle the core */
        kind = FK_PRIV_INSN;
        break;
    case EC_UNKNOWN:
        kind = undef_kind(tf);
        break;
    case EC_FPSIMD:   /* not raised with CPACR_EL1.FPEN = 0b11; kept for a faithful model */
        kind = FK_UNDEF_INSN;
        break;
    case EC_BRK:      /* brk #imm, including __builtin_trap() (brk #1) */
        kind = FK_BREAKPOINT;
        break;
    default:
        kind = FK_OTHER;
    }
    user_fault(tf, ACC_EXEC, tf->elr, kind);
}

/* IRQ, from EL0 or while idle at EL1: the platform device says why. */
void arm64_irq(struct trapframe *tf)
{
    (void)tf;
    interrupt();
}

/* Synchronous exception at EL1: a kernel bug. */
void arm64_sync_el1(struct trapframe *tf)
{
    kprintf("kernel exception: esr %lx elr %lx far %lx\n", tf->esr, tf->elr, tf->far);
    panic("arm64_sync_el1: exception in kernel mode");
}

void arm64_bad_vector(struct trapframe *tf, uint64_t off)
{
    kprintf("unexpected exception vector %lx: esr %lx elr %lx\n", off, tf->esr, tf->elr);
    panic("arm64_bad_vector: unexpected exception");
}
