/*
 * User register state the fuzzer's honest processes hold across the run, x86-64
 * (keusim/fuzz, docs/fuzzing.md): xmm15, which the guests' C code never uses
 * (tests/test_fuzz.py checks the images). A kernel that loses or leaks user SSE
 * state across system calls or context switches changes it.
 */
.text
.globl fuzz_state_set
fuzz_state_set:
    movq %rdi, %xmm15
    ret

.globl fuzz_state_get
fuzz_state_get:
    movq %xmm15, %rax
    ret
