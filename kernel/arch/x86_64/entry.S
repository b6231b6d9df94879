/*
 * x86-64 entry points.
 *
 * keusim's machine performs architectural entry (docs/architecture.md): for
 * `syscall` it sets RCX/R11 and jumps to IA32_LSTAR at CPL0 without switching
 * stacks; for exceptions and interrupts it switches to TSS.RSP0 (from user
 * mode), pushes the hardware frame (and error code) and jumps to the IDT gate.
 */
#define KSEL_CODE 0x08
#define USEL_DATA 0x1b
#define USEL_CODE 0x23

.macro PUSH_GPRS
    push %r15; push %r14; push %r13; push %r12; push %r11; push %r10; push %r9; push %r8
    push %rbp; push %rdi; push %rsi; push %rdx; push %rcx; push %rbx; push %rax
.endm
.macro POP_GPRS
    pop %rax; pop %rbx; pop %rcx; pop %rdx; pop %rsi; pop %rdi; pop %rbp
    pop %r8; pop %r9; pop %r10; pop %r11; pop %r12; pop %r13; pop %r14; pop %r15
.endm

.section .text.boot, "ax"
.globl _start
/* Every core starts here: rdi = boot-info (kernel va), rsi = core id, rsp = boot stack. */
_start:
    xor %rbp, %rbp
    call kmain
1:  hlt
    jmp 1b

.text
/* syscall: rcx = user rip, r11 = user rflags, rsp = user stack. */
.globl syscall_entry
syscall_entry:
    swapgs
    mov %rsp, %gs:8             /* cpu->user_sp */
    mov %gs:0, %rsp             /* cpu->kstack_top */
    push $USEL_DATA
    push %gs:8
    push %r11
    push $USEL_CODE
    push %rcx
    push $0
    push $256                   /* T_SYSCALL */
    PUSH_GPRS
    mov %rsp, %rdi
    call syscall
.globl syscall_return
syscall_return:
    POP_GPRS
    add $16, %rsp               /* trapno, err */
    mov (%rsp), %rcx            /* rip */
    mov 16(%rsp), %r11          /* rflags */
    mov 24(%rsp), %rsp          /* user rsp */
    swapgs
    sysretq

/* Common path of every IDT vector: frame, C handler, iretq. */
alltraps:
    testb $3, 24(%rsp)          /* saved cs: from user? */
    jz 1f
    swapgs
1:  PUSH_GPRS
    mov %rsp, %rdi
    call x86_trap
.globl trapret
trapret:
    POP_GPRS
    add $16, %rsp
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:  iretq

/* A new process's first return to user: swtch() lands here with rsp = its trap frame. */
.globl proc_start
proc_start:
    call usertrapret
    jmp trapret

/* void swtch(struct context *old, struct context *new) */
.globl swtch
swtch:
    push %rbp; push %rbx; push %r12; push %r13; push %r14; push %r15
    mov %rsp, (%rdi)
    mov (%rsi), %rsp
    pop %r15; pop %r14; pop %r13; pop %r12; pop %rbx; pop %rbp
    ret

/* IDT stubs: vectors with a hardware error code push only the vector number. */
.macro VEC n, err
.globl vec\n
vec\n:
.if \err == 0
    push $0
.endif
    push $\n
    jmp alltraps
.endm
VEC 0,0;  VEC 1,0;  VEC 2,0;  VEC 3,0;  VEC 4,0;  VEC 5,0;  VEC 6,0;  VEC 7,0
VEC 8,1;  VEC 9,0;  VEC 10,1; VEC 11,1; VEC 12,1; VEC 13,1; VEC 14,1; VEC 15,0
VEC 16,0; VEC 17,1; VEC 18,0; VEC 19,0; VEC 20,0; VEC 21,1
VEC 32,0; VEC 33,0

.section .rodata
.globl vectors
vectors:
    .quad vec0, vec1, vec2, vec3, vec4, vec5, vec6, vec7, vec8, vec9, vec10
    .quad vec11, vec12, vec13, vec14, vec15, vec16, vec17, vec18, vec19, vec20, vec21
    .quad vec32, vec33
