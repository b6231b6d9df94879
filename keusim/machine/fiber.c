/*
 * Host fibers for the resident-core switch (fastpath.c, fiber_wait).
 *
 * Each core's uc_emu_start runs on a stack of its own, so a core can wait inside its
 * block hook while another core runs, and be resumed there with a stack switch instead of
 * leaving uc_emu_start and entering it again. A switch is an ordinary call as far as the
 * compiler is concerned: it saves what the SysV x86-64 ABI says a callee must preserve
 * (rbx, rbp, r12-r15, the stack pointer, the MXCSR and x87 control words) on the old
 * stack, and restores the same from the new one. No signal mask is switched (glibc's
 * swapcontext makes a system call for that; nothing here changes the mask).
 *
 * This is host code, not guest code: it depends on the machine keusim runs on. Hosts
 * other than x86-64 ELF report fiber_available() == 0, and the scheduler keeps the nested
 * switch there (keusim/machine/machine.py, Machine.resident_cores).
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber.h"

#if defined(__x86_64__) && defined(__ELF__)

__asm__(
    ".text\n"
    ".globl keusim_fiber_switch\n"
    ".hidden keusim_fiber_switch\n"
    ".type keusim_fiber_switch, @function\n"
    "keusim_fiber_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size keusim_fiber_switch, .-keusim_fiber_switch\n"
    /* A new fiber's first switch returns here, with fn in r13 and arg in r12. */
    ".globl keusim_fiber_entry\n"
    ".hidden keusim_fiber_entry\n"
    ".type keusim_fiber_entry, @function\n"
    "keusim_fiber_entry:\n"
    "    movq %r12, %rdi\n"
    "    callq *%r13\n"
    "    ud2\n"
    ".size keusim_fiber_entry, .-keusim_fiber_entry\n");

void keusim_fiber_entry(void);

int fiber_available(void)
{
    return 1;
}

void *fiber_prepare(void *base, size_t size, void (*fn)(void *), void *arg)
{
    /* What keusim_fiber_switch pops, lowest address first: MXCSR and the x87 control
     * word, r15, r14, r13, r12, rbx, rbp, the return address. After its ret the stack
     * pointer is 16-byte aligned, so the call in keusim_fiber_entry enters fn as the ABI
     * requires. */
    uintptr_t top = ((uintptr_t)base + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 16 - 8 * 8);
    sp[0] = 0x1f80u | (uint64_t)0x037fu << 32;     /* the ABI's initial MXCSR, x87 CW */
    sp[1] = 0;                                      /* r15 */
    sp[2] = 0;                                      /* r14 */
    sp[3] = (uint64_t)(uintptr_t)fn;                /* r13 */
    sp[4] = (uint64_t)(uintptr_t)arg;               /* r12 */
    sp[5] = 0;                                      /* rbx */
    sp[6] = 0;                                      /* rbp: the end of frame chains */
    sp[7] = (uint64_t)(uintptr_t)keusim_fiber_entry;
    return sp;
}

#else

int fiber_available(void)
{
    return 0;
}

void keusim_fiber_switch(void **from, void *to)
{
    (void)from; (void)to;
    abort();
}

void *fiber_prepare(void *base, size_t size, void (*fn)(void *), void *arg)
{
    (void)base; (void)size; (void)fn; (void)arg;
    return NULL;
}

#endif

int fiber_stack_new(void **base, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, size + (size_t)page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    if (mprotect(p, (size_t)page, PROT_NONE) != 0) {    /* the guard page: overflow faults */
        munmap(p, size + (size_t)page);
        return -1;
    }
    *base = (char *)p + page;
    return 0;
}

void fiber_stack_free(void *base, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    munmap((char *)base - page, size + (size_t)page);
}
