/*
 * arm64 entry points.
 *
 * keusim's machine performs architectural exception entry (docs/arch-arm64.md)
 * as the Arm ARM describes it: ELR_EL1 <- the preferred return address,
 * SPSR_EL1 <- PSTATE, ESR_EL1/FAR_EL1 <- syndrome and fault address, PSTATE <-
 * EL1h with DAIF masked (so SP is SP_EL1), PC <- VBAR_EL1 + vector offset.
 * Only lower-EL synchronous/IRQ and current-EL IRQ (the kernel idling in
 * plat_wait) are ever taken; everything else is a kernel bug and panics.
 *
 * From EL0, SP_EL1 is the running process's kernel stack: the eret in trapret
 * left it at the top of that stack, where the trap frame goes.
 */

/* struct trapframe (arch_types.h; arm64.c checks these with _Static_assert). */
#define TF_SP_EL0 (31 * 8)
#define TF_ELR    (32 * 8)
#define TF_ESR    (34 * 8)
#define TF_SIZE   (36 * 8)

/* Build a trap frame below SP. x21..x25 are free after their values are saved. */
.macro SAVE_FRAME
    sub sp, sp, #TF_SIZE
    stp x0, x1, [sp, #16 * 0]
    stp x2, x3, [sp, #16 * 1]
    stp x4, x5, [sp, #16 * 2]
    stp x6, x7, [sp, #16 * 3]
    stp x8, x9, [sp, #16 * 4]
    stp x10, x11, [sp, #16 * 5]
    stp x12, x13, [sp, #16 * 6]
    stp x14, x15, [sp, #16 * 7]
    stp x16, x17, [sp, #16 * 8]
    stp x18, x19, [sp, #16 * 9]
    stp x20, x21, [sp, #16 * 10]
    stp x22, x23, [sp, #16 * 11]
    stp x24, x25, [sp, #16 * 12]
    stp x26, x27, [sp, #16 * 13]
    stp x28, x29, [sp, #16 * 14]
    mrs x21, sp_el0
    stp x30, x21, [sp, #TF_SP_EL0 - 8]
    mrs x22, elr_el1
    mrs x23, spsr_el1
    stp x22, x23, [sp, #TF_ELR]
    mrs x24, esr_el1
    mrs x25, far_el1
    stp x24, x25, [sp, #TF_ESR]
    mov x29, #0                 /* end of the frame-pointer chain */
.endm

.section .text.boot, "ax"
.globl _start
/* Every core starts here at EL1h: x0 = boot-info (kernel va), x1 = core id, sp = boot stack. */
_start:
    mov x29, #0
    mov x30, #0
    bl kmain
    b .                         /* kmain does not return */

.text
/* Restore the trap frame at SP and return from the exception. */
.globl trapret
trapret:
    ldp x22, x23, [sp, #TF_ELR]
    msr elr_el1, x22
    msr spsr_el1, x23
    ldp x30, x21, [sp, #TF_SP_EL0 - 8]
    msr sp_el0, x21
    ldp x0, x1, [sp, #16 * 0]
    ldp x2, x3, [sp, #16 * 1]
    ldp x4, x5, [sp, #16 * 2]
    ldp x6, x7, [sp, #16 * 3]
    ldp x8, x9, [sp, #16 * 4]
    ldp x10, x11, [sp, #16 * 5]
    ldp x12, x13, [sp, #16 * 6]
    ldp x14, x15, [sp, #16 * 7]
    ldp x16, x17, [sp, #16 * 8]
    ldp x18, x19, [sp, #16 * 9]
    ldp x20, x21, [sp, #16 * 10]
    ldp x22, x23, [sp, #16 * 11]
    ldp x24, x25, [sp, #16 * 12]
    ldp x26, x27, [sp, #16 * 13]
    ldp x28, x29, [sp, #16 * 14]
    add sp, sp, #TF_SIZE
    eret

/* Synchronous exception from EL0: svc, aborts, undefined/trapped instructions. */
el0_sync:
    SAVE_FRAME
    mov x0, sp
    bl arm64_sync_el0
    b trapret

/* IRQ from EL0 (timer preemption, IPI). */
el0_irq:
    SAVE_FRAME
    mov x0, sp
    bl arm64_irq
    b trapret

/* IRQ at EL1 while the kernel idles in plat_wait(): same stack, back where it stopped. */
el1_irq:
    SAVE_FRAME
    mov x0, sp
    bl arm64_irq
    b trapret

/* Synchronous exception at EL1: a kernel bug. arm64_sync_el1 panics. */
el1_sync:
    SAVE_FRAME
    mov x0, sp
    bl arm64_sync_el1
    b .

/* Any other vector: a kernel or machine bug. */
bad_vector:
    SAVE_FRAME
    mov x0, sp
    mov x1, x9
    bl arm64_bad_vector
    b .

/* A new process's first return to user: swtch() lands here with sp = its trap frame. */
.globl proc_start
proc_start:
    bl usertrapret
    b trapret

/*
 * void arch_user_save(struct fpstate *f) / arch_user_restore(const struct fpstate *f):
 * q0..q31, FPCR, FPSR and TPIDR_EL0 of the process leaving / entering the core
 * (arch_types.h struct fpstate). The kernel is built without FP/SIMD, so
 * these are the user's values whenever the kernel runs.
 */
.arch_extension fp
.arch_extension simd
.globl arch_user_save
arch_user_save:
    stp q0, q1, [x0, #0]
    stp q2, q3, [x0, #32]
    stp q4, q5, [x0, #64]
    stp q6, q7, [x0, #96]
    stp q8, q9, [x0, #128]
    stp q10, q11, [x0, #160]
    stp q12, q13, [x0, #192]
    stp q14, q15, [x0, #224]
    stp q16, q17, [x0, #256]
    stp q18, q19, [x0, #288]
    stp q20, q21, [x0, #320]
    stp q22, q23, [x0, #352]
    stp q24, q25, [x0, #384]
    stp q26, q27, [x0, #416]
    stp q28, q29, [x0, #448]
    stp q30, q31, [x0, #480]
    mrs x1, fpcr
    mrs x2, fpsr
    add x3, x0, #512
    stp x1, x2, [x3]
    mrs x1, tpidr_el0
    str x1, [x0, #528]
    ret

.globl arch_user_restore
arch_user_restore:
    ldp q0, q1, [x0, #0]
    ldp q2, q3, [x0, #32]
    ldp q4, q5, [x0, #64]
    ldp q6, q7, [x0, #96]
    ldp q8, q9, [x0, #128]
    ldp q10, q11, [x0, #160]
    ldp q12, q13, [x0, #192]
    ldp q14, q15, [x0, #224]
    ldp q16, q17, [x0, #256]
    ldp q18, q19, [x0, #288]
    ldp q20, q21, [x0, #320]
    ldp q22, q23, [x0, #352]
    ldp q24, q25, [x0, #384]
    ldp q26, q27, [x0, #416]
    ldp q28, q29, [x0, #448]
    ldp q30, q31, [x0, #480]
    add x3, x0, #512
    ldp x1, x2, [x3]
    msr fpcr, x1
    msr fpsr, x2
    ldr x1, [x0, #528]
    msr tpidr_el0, x1
    ret

/*
 * void swtch(struct context *old, struct context *new)
 * Saves x19..x30 and sp in *old (AAPCS64 callee-saved set) and loads them from *new.
 */
.globl swtch
swtch:
    mov x9, sp
    stp x19, x20, [x0, #0]
    stp x21, x22, [x0, #16]
    stp x23, x24, [x0, #32]
    stp x25, x26, [x0, #48]
    stp x27, x28, [x0, #64]
    stp x29, x30, [x0, #80]
    str x9, [x0, #96]
    ldp x19, x20, [x1, #0]
    ldp x21, x22, [x1, #16]
    ldp x23, x24, [x1, #32]
    ldp x25, x26, [x1, #48]
    ldp x27, x28, [x1, #64]
    ldp x29, x30, [x1, #80]
    ldr x9, [x1, #96]
    mov sp, x9
    ret

/*
 * The vector table (Arm ARM, "Exception vectors"): 16 entries of 0x80 bytes,
 * 2 KiB aligned.
 * Each entry branches to its handler; unused ones record their offset in x9
 * (clobbering a user register is fine: the run ends with a panic).
 */
.macro VENTRY target
    .balign 0x80
    b \target
.endm
.macro VBAD off
    .balign 0x80
    mov x9, #\off
    b bad_vector
.endm

.balign 2048
.globl vectors
vectors:
    VBAD 0x000          /* current EL, SP_EL0: sync */
    VBAD 0x080          /*                     IRQ */
    VBAD 0x100          /*                     FIQ */
    VBAD 0x180          /*                     SError */
    VENTRY el1_sync     /* current EL, SP_ELx: sync */
    VENTRY el1_irq      /*                     IRQ */
    VBAD 0x300          /*                     FIQ */
    VBAD 0x380          /*                     SError */
    VENTRY el0_sync     /* lower EL, AArch64: sync */
    VENTRY el0_irq      /*                    IRQ */
    VBAD 0x500          /*                    FIQ */
    VBAD 0x580          /*                    SError */
    VBAD 0x600          /* lower EL, AArch32: sync */
    VBAD 0x680
    VBAD 0x700
    VBAD 0x780
