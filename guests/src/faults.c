/*
 * The `faults` scenario: one program, five behaviours picked by -DBEHAVIOUR.
 * The kernel must kill each misbehaving process with the right fault kind and
 * let the honest one finish.
 */
#include <keusim/keusim.h>

#define HONEST 0
#define READ_KERNEL 1
#define WRITE_TEXT 2
#define EXEC_STACK 3
#define PRIVILEGED 4

static int honest(void)
{
    uint64_t s = 42, acc = 0;
    for (int i = 0; i < 1000; i++) {
        acc += ks_rand(&s) & 0xff;
        ks_nop(); /* 1,000 syscall round trips */
    }
    ks_printf("honest: done, checksum %lu\n", acc);
    return 0;
}

int main(void)
{
    switch (BEHAVIOUR) {
    case READ_KERNEL:
        /* The kernel's direct map: mapped, but supervisor-only. */
        return (int)*(volatile uint64_t *)0xFFFFFFFF80100000ull;
    case WRITE_TEXT:
        *(volatile uint32_t *)(uintptr_t)&main = 0; /* text is R-X */
        return 1;
    case EXEC_STACK: {
        /* Return instructions on the stack (x86 ret = c3; arm64 ret = d65f03c0), then jump. */
        volatile uint32_t code[4] = {0xd65f03c0u, 0xc3c3c3c3u, 0, 0};
        void (*f)(void) = (void (*)(void))(uintptr_t)code;
        f();
        return 1;
    }
    case PRIVILEGED:
        ks_arch_privileged();
        return 1;
    default:
        return honest();
    }
}
