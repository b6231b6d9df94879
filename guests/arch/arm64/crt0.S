/* User entry: x0 = INFO_VA (the info page), sp = top of the user stack. */
.section .text.start, "ax"
.globl _start
_start:
    mov x29, #0
    mov x30, #0
    bl ks_start
1:  b 1b
