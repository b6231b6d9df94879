/*
 * The fuzzer's code area and trampoline, arm64 (keusim/fuzz, docs/fuzzing.md).
 *
 * fuzz_code is executable space the fuzzer patches into the ELF file before boot:
 * each snippet ends with `movz/movk x16, #fuzz_back; br x16`. fuzz_call(code)
 * saves the callee-saved registers and sp in fuzz_saved_sp, branches to code, and
 * fuzz_back restores them, so a snippet may clobber any register (including sp)
 * and still return to the interpreter. fuzz_call returns the snippet's final
 * x0, which the interpreter prints: a value from host entropy (rndr) then shows
 * in the report and breaks the determinism check.
 */
.section .text.fuzzcall, "ax"
.globl fuzz_call
fuzz_call:
    stp x19, x20, [sp, #-96]!
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    mov x9, sp
    adrp x10, fuzz_saved_sp
    str x9, [x10, :lo12:fuzz_saved_sp]
    br x0

.globl fuzz_back
fuzz_back:
    adrp x10, fuzz_saved_sp
    ldr x9, [x10, :lo12:fuzz_saved_sp]
    mov sp, x9
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp x19, x20, [sp], #96
    ret

.section .text.fuzzcode, "ax"
.balign 4096
.globl fuzz_code
fuzz_code:
    .fill 4096, 4, 0xd4200000   /* brk #0 until the fuzzer patches it */
.globl fuzz_code_end
fuzz_code_end:

.data
.balign 8
fuzz_saved_sp:
    .quad 0
