/* User entry: rdi = INFO_VA (the info page), rsp = top of the user stack. */
.section .text.start, "ax"
.globl _start
_start:
    xor %rbp, %rbp
    and $-16, %rsp
    call ks_start
1:  jmp 1b
