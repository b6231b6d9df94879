/*
 * User register state the fuzzer's honest processes hold across the run, arm64
 * (keusim/fuzz, docs/fuzzing.md): TPIDR_EL0, the EL0-writable thread register,
 * which freestanding guests without TLS never touch. A kernel that does not switch
 * it per process leaks it from one process to the next on a core.
 */
.text
.globl fuzz_state_set
fuzz_state_set:
    msr tpidr_el0, x0
    ret

.globl fuzz_state_get
fuzz_state_get:
    mrs x0, tpidr_el0
    ret
