/*
 * The fuzzer's code area and trampoline, x86-64 (keusim/fuzz, docs/fuzzing.md).
 *
 * fuzz_code is executable space the fuzzer patches into the ELF file before boot:
 * each snippet ends with `movabs $fuzz_back, %r11; jmp *%r11`. fuzz_call(code)
 * saves the callee-saved registers and the stack pointer in fuzz_saved_sp, jumps
 * to code, and fuzz_back restores them, so a snippet may clobber any register
 * (including rsp) and still return to the interpreter. fuzz_call returns the
 * snippet's final rax, which the interpreter prints: a value from host entropy
 * (rdrand) then shows in the report and breaks the determinism check.
 */
.section .text.fuzzcall, "ax"
.globl fuzz_call
fuzz_call:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, fuzz_saved_sp(%rip)
    jmp *%rdi

.globl fuzz_back
fuzz_back:
    mov fuzz_saved_sp(%rip), %rsp
    cld                         /* the C code assumes DF = 0 (SysV ABI) */
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

.section .text.fuzzcode, "ax"
.balign 4096
.globl fuzz_code
fuzz_code:
    .fill 16384, 1, 0xcc        /* int3 until the fuzzer patches it */
.globl fuzz_code_end
fuzz_code_end:

.data
.balign 8
fuzz_saved_sp:
    .quad 0
