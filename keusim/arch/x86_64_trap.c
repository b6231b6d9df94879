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
