/*
 * arm64 exception entry for an `svc` from EL0, done natively after the core stopped at it
 * (keusim/machine/fastpath.c sched_run). It is the same sequence as the Python path,
 * keusim/arch/arm64.py Arm64.deliver (which single-slice mode, exceptions from EL1 and a
 * kernel without VBAR_EL1 still use); tests/test_fastforward.py compares reports with
 * native delivery on and off.
 *
 *   ELR_EL1 <- PC (already past the svc), SPSR_EL1 <- PSTATE, ESR_EL1 <- the syndrome;
 *   SP_EL0 <- the user SP, SP <- SP_EL1; PSTATE <- EL1h with DAIF masked;
 *   PC <- VBAR_EL1 + 0x400 (lower EL, synchronous) (Arm ARM, "Exception entry").
 *
 * ESR_EL1 is written last, as a system register: that write rebuilds QEMU's cached EL state
 * (docs/unicorn.md). struct arm64_entry is mirrored by ctypes in keusim/arch/arm64.py.
 */
#include <stdint.h>
#include <unicorn/unicorn.h>

#include "ucapi.h"

struct arm64_entry {
    int32_t read_ids[7];    /* PC, PSTATE, SP, SP_EL0, SP_EL1, FAR_EL1, VBAR_EL1 */
    int32_t write_ids[7];   /* ELR_EL1, SP_EL0, SP, FAR_EL1, PSTATE, CP_REG, CP_REG */
    uint32_t spsr_enc[5], esr_enc[5];   /* (op0, op1, CRn, CRm, op2) */
    uint64_t pstate_el1h, el_mask, vec_lower_sync;
    /* Added at the end: the interrupt entry (arm64_irq_entry). */
    uint32_t elr_enc[5];        /* ELR_EL1 as a CP register: the last write */
    uint64_t vec_cur_irq;
};

int arm64_svc_entry(void *uc, struct arm64_entry *a, uint64_t syndrome, uint64_t *pc)
{
    uint64_t r[7];
    void *rp[7];
    int err;
    for (int i = 0; i < 7; i++)
        rp[i] = &r[i];
    if ((err = ucapi.read_batch(uc, a->read_ids, rp, 7)) != 0)
        return err;
    uint64_t cur = r[0], pstate = r[1], sp = r[2], sp_el1 = r[4], far = r[5], vbar = r[6];
    if (vbar == 0 || (pstate & a->el_mask) != 0)
        return TRAP_TO_PYTHON;      /* no vectors yet, or not from EL0: Python decides */
    uint64_t w[5] = {cur, sp, sp_el1, far, a->pstate_el1h};
    uc_arm64_cp_reg spsr = {a->spsr_enc[2], a->spsr_enc[3], a->spsr_enc[0], a->spsr_enc[1],
                            a->spsr_enc[4], pstate};
    uc_arm64_cp_reg esr = {a->esr_enc[2], a->esr_enc[3], a->esr_enc[0], a->esr_enc[1],
                           a->esr_enc[4], syndrome};
    void *wp[7] = {&w[0], &w[1], &w[2], &w[3], &w[4], &spsr, &esr};
    if ((err = ucapi.write_batch(uc, a->write_ids, wp, 7)) != 0)
        return err;
    *pc = vbar + a->vec_lower_sync;
    return 0;
}

/*
 * Interrupt entry of a core at EL1 (halted by PLAT_WAIT, or running kernel code with an
 * interrupt pending), done natively by the scheduler's wake-up path
 * (keusim/machine/fastpath.c wake_native). The same register writes, in the same order, as
 * Arm64.deliver for kind "interrupt" from EL1 (tests/test_native_irq.py compares reports):
 *
 *   ELR_EL1 <- PC, SP_EL0 and SP as they are (no EL change, no banking), FAR_EL1 as it is,
 *   PSTATE <- EL1h with DAIF masked, SPSR_EL1 <- PSTATE, and last ELR_EL1 again as a
 *   system register (that write rebuilds QEMU's cached EL state); PC <- VBAR_EL1 + 0x280
 *   (current EL with SP_ELx, IRQ).
 *
 * From EL0 (SP banking, the lower-EL vector) and before VBAR_EL1 is set, Python does it.
 */
int arm64_irq_entry(void *uc, void *arg, uint64_t irq, int deliver, uint8_t *ram,
                    uint64_t ram_size, uint64_t *pc)
{
    struct arm64_entry *a = arg;
    uint64_t r[7];
    void *rp[7];
    int err;
    (void)irq; (void)ram; (void)ram_size;
    for (int i = 0; i < 7; i++)
        rp[i] = &r[i];
    if ((err = ucapi.read_batch(uc, a->read_ids, rp, 7)) != 0)
        return err;
    uint64_t cur = r[0], pstate = r[1], sp = r[2], sp_el0 = r[3], far = r[5], vbar = r[6];
    if ((pstate & a->el_mask) == 0 || vbar == 0)
        return TRAP_TO_PYTHON;
    if (!deliver)
        return 0;
    uint64_t w[5] = {cur, sp_el0, sp, far, a->pstate_el1h};
    uc_arm64_cp_reg spsr = {a->spsr_enc[2], a->spsr_enc[3], a->spsr_enc[0], a->spsr_enc[1],
                            a->spsr_enc[4], pstate};
    uc_arm64_cp_reg elr = {a->elr_enc[2], a->elr_enc[3], a->elr_enc[0], a->elr_enc[1],
                           a->elr_enc[4], cur};
    void *wp[7] = {&w[0], &w[1], &w[2], &w[3], &w[4], &spsr, &elr};
    if ((err = ucapi.write_batch(uc, a->write_ids, wp, 7)) != 0)
        return err;
    *pc = vbar + a->vec_cur_irq;
    return 0;
}
