/*
 * The `cpustate` check: user-visible register state must survive kernel entries
 * and context switches, and must not flow between processes on one core.
 *
 * Two or more copies run on one core. Each first checks that it starts from the
 * power-on state (so it cannot see what another process left), then loads a
 * pattern derived from its pid into every FP/SIMD register and the other
 * user-writable state (x86: XMM0-15, MXCSR, x87 control word; arm64: Q0-31,
 * FPCR, FPSR, TPIDR_EL0), then yields, makes system calls and spins across
 * time-slice preemptions, and checks after each step that its own pattern is
 * still there. Exit code 0 if everything held; otherwise the console says what
 * differed and the exit code is the step number.
 */
#include <keusim/keusim.h>

#define NREG 32
static uint8_t want[NREG * 16], got[NREG * 16];

#if defined(__x86_64__)
#define NVEC 16
static void load(const uint8_t *b, uint32_t mxcsr, uint16_t fcw)
{
    asm volatile("movdqu 0(%0), %%xmm0\n movdqu 16(%0), %%xmm1\n movdqu 32(%0), %%xmm2\n"
                 "movdqu 48(%0), %%xmm3\n movdqu 64(%0), %%xmm4\n movdqu 80(%0), %%xmm5\n"
                 "movdqu 96(%0), %%xmm6\n movdqu 112(%0), %%xmm7\n movdqu 128(%0), %%xmm8\n"
                 "movdqu 144(%0), %%xmm9\n movdqu 160(%0), %%xmm10\n movdqu 176(%0), %%xmm11\n"
                 "movdqu 192(%0), %%xmm12\n movdqu 208(%0), %%xmm13\n movdqu 224(%0), %%xmm14\n"
                 "movdqu 240(%0), %%xmm15\n ldmxcsr %1\n fldcw %2\n"
                 :: "r"(b), "m"(mxcsr), "m"(fcw) : "memory");
}

static void store(uint8_t *b, uint64_t *ctl)
{
    uint32_t mxcsr;
    uint16_t fcw;
    asm volatile("movdqu %%xmm0, 0(%2)\n movdqu %%xmm1, 16(%2)\n movdqu %%xmm2, 32(%2)\n"
                 "movdqu %%xmm3, 48(%2)\n movdqu %%xmm4, 64(%2)\n movdqu %%xmm5, 80(%2)\n"
                 "movdqu %%xmm6, 96(%2)\n movdqu %%xmm7, 112(%2)\n movdqu %%xmm8, 128(%2)\n"
                 "movdqu %%xmm9, 144(%2)\n movdqu %%xmm10, 160(%2)\n movdqu %%xmm11, 176(%2)\n"
                 "movdqu %%xmm12, 192(%2)\n movdqu %%xmm13, 208(%2)\n movdqu %%xmm14, 224(%2)\n"
                 "movdqu %%xmm15, 240(%2)\n stmxcsr %0\n fnstcw %1\n"
                 : "=m"(mxcsr), "=m"(fcw) : "r"(b) : "memory");
    ctl[0] = mxcsr;
    ctl[1] = fcw;
    ctl[2] = 0;
}

/* Power-on values (SDM Vol. 3A, Table 10-1): MXCSR 0x1F80, FCW 0x37F. */
static const uint64_t ctl_init[3] = {0x1F80, 0x37F, 0};

static void ctl_pattern(uint64_t pid, uint64_t *ctl)
{
    ctl[0] = 0x1F80 ^ (pid & 1 ? 0x6000 : 0x2000);  /* rounding control */
    ctl[1] = 0x37F ^ (pid & 1 ? 0xC00 : 0x400);      /* x87 rounding control */
    ctl[2] = 0;
}

static void load_all(const uint8_t *b, const uint64_t *ctl)
{
    load(b, (uint32_t)ctl[0], (uint16_t)ctl[1]);
}

#elif defined(__aarch64__)
#define NVEC 32
static void load_all(const uint8_t *b, const uint64_t *ctl)
{
    asm volatile(".arch_extension fp\n .arch_extension simd\n"
                 "ldp q0, q1, [%0, #0]\n ldp q2, q3, [%0, #32]\n ldp q4, q5, [%0, #64]\n"
                 "ldp q6, q7, [%0, #96]\n ldp q8, q9, [%0, #128]\n ldp q10, q11, [%0, #160]\n"
                 "ldp q12, q13, [%0, #192]\n ldp q14, q15, [%0, #224]\n ldp q16, q17, [%0, #256]\n"
                 "ldp q18, q19, [%0, #288]\n ldp q20, q21, [%0, #320]\n ldp q22, q23, [%0, #352]\n"
                 "ldp q24, q25, [%0, #384]\n ldp q26, q27, [%0, #416]\n ldp q28, q29, [%0, #448]\n"
                 "ldp q30, q31, [%0, #480]\n msr fpcr, %1\n msr fpsr, %2\n msr tpidr_el0, %3\n"
                 :: "r"(b), "r"(ctl[0]), "r"(ctl[1]), "r"(ctl[2]) : "memory");
}

static void store(uint8_t *b, uint64_t *ctl)
{
    uint64_t fpcr, fpsr, tp;
    asm volatile(".arch_extension fp\n .arch_extension simd\n"
                 "stp q0, q1, [%3, #0]\n stp q2, q3, [%3, #32]\n stp q4, q5, [%3, #64]\n"
                 "stp q6, q7, [%3, #96]\n stp q8, q9, [%3, #128]\n stp q10, q11, [%3, #160]\n"
                 "stp q12, q13, [%3, #192]\n stp q14, q15, [%3, #224]\n stp q16, q17, [%3, #256]\n"
                 "stp q18, q19, [%3, #288]\n stp q20, q21, [%3, #320]\n stp q22, q23, [%3, #352]\n"
                 "stp q24, q25, [%3, #384]\n stp q26, q27, [%3, #416]\n stp q28, q29, [%3, #448]\n"
                 "stp q30, q31, [%3, #480]\n mrs %0, fpcr\n mrs %1, fpsr\n mrs %2, tpidr_el0\n"
                 : "=&r"(fpcr), "=&r"(fpsr), "=&r"(tp) : "r"(b) : "memory");
    ctl[0] = fpcr;
    ctl[1] = fpsr;
    ctl[2] = tp;
}

/* Power-on values: FPCR, FPSR and TPIDR_EL0 zero (the kernel's arch_fp_init). */
static const uint64_t ctl_init[3] = {0, 0, 0};

static void ctl_pattern(uint64_t pid, uint64_t *ctl)
{
    ctl[0] = pid & 1 ? 0x00C00000 : 0x00400000;  /* FPCR.RMode */
    ctl[1] = pid & 1 ? 0x1F : 0x9;               /* FPSR cumulative flags */
    ctl[2] = 0x7E57000000000000ull | pid;        /* TPIDR_EL0 */
}
#endif

static int differs(const uint64_t *ctl_want, const char *what, int step)
{
    uint64_t ctl[3];
    store(got, ctl);
    for (int i = 0; i < NVEC * 16; i++)
        if (got[i] != want[i]) {
            ks_printf("step %d (%s): vector register %d byte %d is %x, want %x\n", step, what,
                      i / 16, i % 16, got[i], want[i]);
            return 1;
        }
    for (int i = 0; i < 3; i++)
        if (ctl[i] != ctl_want[i]) {
            ks_printf("step %d (%s): control register %d is %lx, want %lx\n", step, what, i,
                      ctl[i], ctl_want[i]);
            return 1;
        }
    return 0;
}

int main(void)
{
    uint64_t pid = (uint64_t)ks_getpid();
    /* A fresh process sees the power-on state, whatever ran on this core before. */
    for (int i = 0; i < NVEC * 16; i++)
        want[i] = 0;
    if (differs(ctl_init, "initial state", 1))
        return 1;
    uint64_t s = 0x9E3779B97F4A7C15ull * pid, ctl[3];
    for (int i = 0; i < NVEC * 16; i++)
        want[i] = (uint8_t)ks_rand(&s);
    ctl_pattern(pid, ctl);
    load_all(want, ctl);
    for (int step = 2; step < 40; step++) {
        if (step % 3 == 0)
            ks_yield();
        else if (step % 3 == 1)
            ks_nop();
        else {
            /* Spin past a time-slice end (preemption by the timer). */
            uint64_t t0 = ks_rdcycles();
            while (ks_rdcycles() - t0 < 30000)
                ;
        }
        if (differs(ctl, "after a switch", step))
            return step;
    }
    ks_printf("pid %d: state held\n", (int)pid);
    return 0;
}
