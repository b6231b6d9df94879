/*
 * The `traps` attack set: one program, one hostile behaviour per -DBEHAVIOUR
 * (numbers below; tests/test_traps.py says which fault each must end in).
 * Behaviour 0 is honest: it counts to a checksum through system calls and exits 0.
 * Every other behaviour must kill only this process, with the architectural
 * fault the instruction raises (docs/security.md lists them).
 */
#include <keusim/keusim.h>

#define HONEST        0
#define UD            1   /* an undefined opcode (x86 ud2 / arm64 udf #0) */
#define BUILTIN_TRAP  2   /* __builtin_trap(): ud2 / brk #1 */
#define INT80         3   /* x86 int $0x80 (no gate) / arm64 hvc #0 */
#define INT_TIMER     4   /* x86 int $32: a DPL0 gate / arm64 smc #0 */
#define INT_GP        5   /* x86 int $13 / arm64 mrs sctlr_el1 */
#define INT_PF        6   /* x86 int $14 / arm64 msr daifset */
#define INT3          7   /* x86 int3 / arm64 brk #0 */
#define INT1          8   /* x86 int1 (icebp) / arm64 hlt #0 */
#define INTO          9   /* x86 into (#UD in 64-bit mode) / arm64 eret */
#define PORT_IO      10   /* x86 out %al, $0x80 / arm64 mrs cntpct_el0 */
#define SYSENTER     11   /* x86 sysenter / arm64 mrs pmccntr_el0 */
#define NONCANON     12   /* x86 load from a non-canonical address / arm64 load from a tagged-high one */
#define PUSH_RO      13   /* push onto a read-only page (x86) / stp onto text (arm64) */
#define RDRAND       14   /* x86 rdrand / arm64 mrs rndr */
#define RDSEED       15   /* x86 rdseed / arm64 mrs rndrrs */
#define WRFSBASE     16   /* x86 wrfsbase (CR4.FSGSBASE off) / arm64 msr tpidr_el1 */
#define HLT          17   /* x86 hlt / arm64 wfi */
#define BAD_SYSCALL  18   /* an unknown system-call number */
#define BIG_EXIT     19   /* exit code that needs 64 bits */
#define SPIN         20   /* spin forever without system calls */
#define SPIN_SYSCALL 21   /* spin forever making system calls */
#define REPORT_FLOOD 22   /* thousands of report and chanfault calls on a channel it does not own */
#define OUT_THEN_UD  24   /* x86: out, then ud2 in the same block: the first trap wins / arm64: nothing */
#define OUT_THEN_STORE 25 /* x86: out, then a store to channel 0's data page in the same block */
#define PEEK_RING    26   /* consumer of channel 0: wait, then exit with the first data byte */
#define RDPMC        27   /* x86 rdpmc (CR4.PCE off) / arm64 mrs pmevcntr0_el0 */
#define XGETBV       28   /* x86 xgetbv (CR4.OSXSAVE off) / arm64 mrs cntvct_el0: model clock, allowed */
#define RMW_RO       29   /* a read-modify-write of the read-only info page (x86 rol [mem]) */
#define DIVIDE       30   /* integer division by zero (x86 #DE; arm64 udiv gives 0) */
#define CPUID_BITS   23   /* x86: exit code = CPUID RDRAND | RDSEED << 1 | FSGSBASE << 2 (want 0) */

static int honest(void)
{
    uint64_t s = 42, acc = 0;
    for (int i = 0; i < 200; i++) {
        acc += ks_rand(&s) & 0xff;
        ks_nop();
    }
    ks_printf("honest: done, checksum %lu\n", acc);
    return 0;
}

static void hostile(void)
{
#if defined(__x86_64__)
    switch (BEHAVIOUR) {
    case UD:           asm volatile(".byte 0x0f, 0xff, 0xc0"); break;   /* ud0 */
    case BUILTIN_TRAP: __builtin_trap();
    case INT80:        asm volatile("int $0x80"); break;
    case INT_TIMER:    asm volatile("int $32"); break;
    case INT_GP:       asm volatile("int $13"); break;
    case INT_PF:       asm volatile("int $14"); break;
    case INT3:         asm volatile("int3"); break;
    case INT1:         asm volatile(".byte 0xf1"); break;
    case INTO:         asm volatile(".byte 0xce"); break;
    case PORT_IO:      asm volatile("outb %%al, $0x80" ::"a"(0)); break;
    case SYSENTER:     asm volatile("sysenter"); break;
    case NONCANON:     (void)*(volatile uint64_t *)0x0000800000001000ull; break;
    case PUSH_RO:
        asm volatile("mov %%rsp, %%rbx\n mov %0, %%rsp\n push %%rax\n mov %%rbx, %%rsp"
                     :: "r"((uint64_t)(uintptr_t)&honest + 64) : "rbx", "memory");
        break;
    case RDRAND: { uint64_t v; asm volatile("rdrand %0" : "=r"(v)); ks_printf("rdrand %lx\n", v); break; }
    case RDSEED: { uint64_t v; asm volatile("rdseed %0" : "=r"(v)); ks_printf("rdseed %lx\n", v); break; }
    case WRFSBASE:     asm volatile("wrfsbase %0" ::"r"(0x1234ull)); break;
    case HLT:          asm volatile("hlt"); break;
    case OUT_THEN_UD:  asm volatile("outb %%al, $0x80\n ud2" ::"a"(0)); break;
    case RDPMC: { uint32_t lo, hi; asm volatile("rdpmc" : "=a"(lo), "=d"(hi) : "c"(0)); break; }
    case RMW_RO:       asm volatile("roll $0x6d, (%0)" :: "r"(ks_info) : "memory"); break;
    case XGETBV: { uint32_t lo, hi; asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); break; }
    case OUT_THEN_STORE:
        /* The #GP must be taken before the store: a peer must never see 0x5a. */
        asm volatile("outb %%al, $0x80\n movb $0x5a, (%0)"
                     :: "r"(ks_endpoint(0)->data_va), "a"(0) : "memory");
        break;
    }
#elif defined(__aarch64__)
    switch (BEHAVIOUR) {
    case UD:           asm volatile("udf #0"); break;
    case BUILTIN_TRAP: __builtin_trap();
    case INT80:        asm volatile("hvc #0"); break;
    case INT_TIMER:    asm volatile(".inst 0xd4000003"); break;   /* smc #0 */
    case INT_GP: { uint64_t v; asm volatile("mrs %0, sctlr_el1" : "=r"(v)); break; }
    case INT_PF:       asm volatile("msr daifset, #2"); break;
    case INT3:         asm volatile("brk #0"); break;
    case INT1:         asm volatile("hlt #0"); break;
    case INTO:         asm volatile("eret"); break;
    case PORT_IO: { uint64_t v; asm volatile("mrs %0, cntpct_el0" : "=r"(v)); ks_printf("cntpct %lx\n", v); break; }
    case SYSENTER: { uint64_t v; asm volatile("mrs %0, pmccntr_el0" : "=r"(v)); ks_printf("pmccntr %lx\n", v); break; }
    case NONCANON:     (void)*(volatile uint64_t *)0x0080000000001000ull; break;
    case PUSH_RO:
        asm volatile("stp x0, x1, [%0]" :: "r"((uint64_t)(uintptr_t)&honest + 64) : "memory");
        break;
    case RDRAND: { uint64_t v; asm volatile("mrs %0, s3_3_c2_c4_0" : "=r"(v)); ks_printf("rndr %lx\n", v); break; }
    case RDSEED: { uint64_t v; asm volatile("mrs %0, s3_3_c2_c4_1" : "=r"(v)); ks_printf("rndrrs %lx\n", v); break; }
    case WRFSBASE:     asm volatile("msr tpidr_el1, %0" ::"r"(0x1234ull)); break;
    case RDPMC: { uint64_t v; asm volatile("mrs %0, pmevcntr0_el0" : "=r"(v)); break; }
    case RMW_RO:       asm volatile("ldr x9, [%0]\n add x9, x9, #1\n str x9, [%0]" :: "r"(ks_info) : "x9", "memory"); break;
    case XGETBV: { uint64_t v; asm volatile("mrs %0, cntvct_el0" : "=r"(v)); break; }
    case HLT:          asm volatile("wfi"); break;
    }
#endif
    switch (BEHAVIOUR) {
    case DIVIDE: {
        volatile uint64_t zero = 0, q = 7;
        q = q / zero;
        ks_exit((int)q);  /* arm64: 7 / 0 = 0 */
    }
    case BAD_SYSCALL:
        ks_syscall3(0x1234567, 0, 0, 0);
        break;
    case BIG_EXIT:
        ks_syscall3(SYS_EXIT, 0x123456789ull, 0, 0);
        break;
    case SPIN:
        for (volatile uint64_t i = 0;; i++)
            ;
    case SPIN_SYSCALL:
        for (;;)
            ks_nop();
    case REPORT_FLOOD: {
        int64_t r = 0, f = 0;
        for (int i = 0; i < 3000; i++) {
            r = ks_report(0, STAT_MISMATCHES, 0);
            f = ks_chanfault(0, -4);
        }
        ks_printf("report %s chanfault %s\n", r == EPERM ? "EPERM" : "accepted",
                  f == EPERM ? "EPERM" : "accepted");
        return;
    }
    case PEEK_RING: {
        uint64_t t0 = ks_rdcycles();
        while (ks_rdcycles() - t0 < 2000000)
            ks_yield();
        ks_exit(*(volatile uint8_t *)ks_endpoint(0)->data_va);
    }
    case CPUID_BITS: {
        uint32_t a = 1, b = 0, c = 0, d = 0, bits = 0;
#if defined(__x86_64__)
        asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
        bits |= (c >> 30) & 1;                       /* CPUID.1:ECX.RDRAND */
        a = 7, c = 0;
        asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
        bits |= ((b >> 18) & 1) << 1 | (b & 1) << 2; /* CPUID.7.0:EBX.RDSEED, FSGSBASE */
#endif
        ks_exit((int)bits);
    }
    }
}

int main(void)
{
    if (BEHAVIOUR == HONEST)
        return honest();
    hostile();
    ks_printf("behaviour %d: still alive\n", BEHAVIOUR);
    return 99;
}
