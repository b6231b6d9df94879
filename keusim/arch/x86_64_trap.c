/*
 * x86-64 SYSCALL entry, done natively after the core stopped at a `syscall`
 * (keusim/machine/fastpath.c sched_run). It is the same sequence as the Python path,
 * keusim/arch/x86_64.py X86_64.deliver for kind "syscall" (which single-slice mode and a
 * core that is not ready yet still use); tests/test_fastforward.py compares reports with
 * native delivery on and off.
 *
 *   RCX <- RIP of the next instruction, R11 <- RFLAGS, RFLAGS &= ~FMASK, CPL0 with the
 *   kernel's CS/SS, RIP <- LSTAR, no stack switch (SDM Vol. 2B, SYSCALL).
 *
 * CPL can only be lowered by restoring a context saved at CPL0 (docs/unicorn.md): the
 * per-core template captured at PLAT_READY. The user's GPRs, CR3, FS/GS bases and its x87,
 * MXCSR and XMM state are carried across the restore. CR3, the FS/GS bases and
 * KERNEL_GS_BASE are written into the template before it is restored (offsets found at
 * start-up, keusim/arch/x86_64.py _find_entry_offsets), not with register writes after:
 * a host write of CR3 flushes the emulated TLB, which cost more than the rest of the
 * entry. No flush is needed: CR3 ends as it was, and every guest CR3 write flushes.
 *
 * struct x86_entry is mirrored by ctypes in keusim/arch/x86_64.py (X86Entry).
 */
#include <stdint.h>
#include <string.h>
#include <unicorn/unicorn.h>

#include "ucapi.h"

#define NSAVE 22    /* keusim/arch/x86_64.py _SAVE: 16 GPRs, RIP, RFLAGS, CR3, GS, FS, CS */
#define NFP 28      /* _FP_REGS: FPCW, FPSW, FPTAG, MXCSR, ST0-7, XMM0-15 */
#define I_RIP 16
#define I_RFLAGS 17
#define I_CR3 18
#define I_GS 19
#define I_FS 20

struct x86_entry {
    void *template_ctx;         /* uc_context of the CPL0 template; NULL: not ready */
    uint64_t lstar, fmask, percpu;
    uint64_t off_cr3, off_gs, off_fs, off_kgs;  /* in the template's context bytes */
    int32_t save_ids[NSAVE];
    int32_t fp_ids[NFP];
    int32_t gpr_ids[16];
    /* Added at the end: the interrupt entry (x86_irq_entry). */
    uint64_t idt, kernbase;     /* IDTR base (a kernel address) and KERNBASE */
    int32_t irq_ids[4];         /* RIP, RSP, RFLAGS, CS */
    uint64_t vec_timer, vec_ipi;
};

int x86_syscall_entry(void *uc, struct x86_entry *x, uint64_t syndrome, uint64_t *pc)
{
    uint64_t save[NSAVE], gpr[16];
    uint8_t fp[NFP][16];
    void *sp[NSAVE], *fpp[NFP], *gp[16];
    int err;
    (void)syndrome;
    if (!x->template_ctx)
        return TRAP_TO_PYTHON;
    for (int i = 0; i < NSAVE; i++)
        sp[i] = &save[i];
    for (int i = 0; i < NFP; i++)
        fpp[i] = fp[i];
    for (int i = 0; i < 16; i++)
        gp[i] = &gpr[i];
    if ((err = ucapi.read_batch(uc, x->save_ids, sp, NSAVE)) != 0)
        return err;
    if ((err = ucapi.read_batch(uc, x->fp_ids, fpp, NFP)) != 0)
        return err;
    uint8_t *t = x->template_ctx;
    memcpy(t + x->off_cr3, &save[I_CR3], 8);
    memcpy(t + x->off_gs, &save[I_GS], 8);
    memcpy(t + x->off_fs, &save[I_FS], 8);
    memcpy(t + x->off_kgs, &x->percpu, 8);     /* KERNEL_GS_BASE: the kernel's swapgs */
    if ((err = ucapi.context_restore(uc, x->template_ctx)) != 0)
        return err;
    if ((err = ucapi.write_batch(uc, x->fp_ids, fpp, NFP)) != 0)
        return err;
    memcpy(gpr, save, sizeof gpr);
    gpr[2] = save[I_RIP];       /* RCX */
    gpr[11] = save[I_RFLAGS];   /* R11 */
    if ((err = ucapi.write_batch(uc, x->gpr_ids, gp, 16)) != 0)
        return err;
    uint64_t rflags = save[I_RFLAGS] & ~x->fmask & 0xFFFFFFFFu;
    if ((err = ucapi.reg_write(uc, UC_X86_REG_RFLAGS, &rflags)) != 0)
        return err;
    *pc = x->lstar;
    return 0;
}

/*
 * Interrupt entry of a core in the kernel (CPL0: halted by PLAT_WAIT, or running kernel
 * code with an interrupt pending), done natively by the scheduler's wake-up path
 * (keusim/machine/fastpath.c wake_native). The same sequence as X86_64.deliver for kind
 * "interrupt" without a privilege change (tests/test_native_irq.py compares reports):
 *
 *   no stack switch; push SS (0x10), RSP, RFLAGS, CS (0x08), RIP at (RSP & ~0xF), no error
 *   code (vectors 32 and 33); RFLAGS <- 0x2; RIP <- the IDT gate's offset (SDM Vol. 3A,
 *   6.12.1 and 6.14.2).
 *
 * Vector 32 (timer) when IRQ_TIMER is pending, else 33 (IPI), as Machine._deliver_irq.
 * From CPL3 (the stack switch to TSS.RSP0 and the CPL0 template) Python delivers it.
 */
int x86_irq_entry(void *uc, void *arg, uint64_t irq, int deliver, uint8_t *ram,
                  uint64_t ram_size, uint64_t *pc)
{
    struct x86_entry *x = arg;
    uint64_t r[4];
    void *rp[4] = {&r[0], &r[1], &r[2], &r[3]};
    int err;
    if ((err = ucapi.read_batch(uc, x->irq_ids, rp, 4)) != 0)
        return err;
    uint64_t rip = r[0], rsp0 = r[1], rflags = r[2], cs = r[3];
    if ((cs & 3) == 3)
        return TRAP_TO_PYTHON;
    if (!deliver)
        return 0;
    uint64_t vec = irq & 1 ? x->vec_timer : x->vec_ipi;
    if (x->idt < x->kernbase)
        return TRAP_TO_PYTHON;
    uint64_t gate = x->idt - x->kernbase + 16 * vec;
    uint64_t rsp = rsp0 & ~0xFull;
    if (gate > ram_size || ram_size - gate < 16 || rsp < x->kernbase + 40)
        return TRAP_TO_PYTHON;      /* Python raises the same error as before */
    rsp -= 40;
    uint64_t at = rsp - x->kernbase;
    if (at > ram_size || ram_size - at < 40)
        return TRAP_TO_PYTHON;
    uint16_t lo, mid;
    uint32_t hi;
    memcpy(&lo, ram + gate, 2);
    memcpy(&mid, ram + gate + 6, 2);
    memcpy(&hi, ram + gate + 8, 4);
    uint64_t frame[5] = {rip, 0x08, rflags, rsp0, 0x10};
    memcpy(ram + at, frame, sizeof frame);
    uint64_t w[2] = {rsp, 0x2};
    void *wp[2] = {&w[0], &w[1]};
    if ((err = ucapi.write_batch(uc, x->irq_ids + 1, wp, 2)) != 0)
        return err;
    *pc = (uint64_t)lo | (uint64_t)mid << 16 | (uint64_t)hi << 32;
    return 0;
}
