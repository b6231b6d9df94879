/*
 * The guest-visible memory layout and limits (docs/abi.md, "Process start").
 *
 * These are ABI: the kernel maps every process this way (its own copy of the numbers is
 * kernel/include/memlayout.h and param.h; tests/test_guest_sdk.py fails if the two
 * drift apart). A guest needs them to find its info page and channel windows without
 * the runtime, or to aim a deliberate fault at a guard page.
 *
 * User virtual address space of every process:
 *   USER_BASE   ELF image (text R-X, data RW-NX); every image starts here
 *   INFO_VA     read-only info page (<keusim/info.h>)
 *   CHAN_VA(i)  window of the i-th endpoint: guard|head|tail|guard|data...|guard
 *   USTACK_TOP  user stack, USTACK_PAGES pages growing down, one unmapped guard page below
 *   KERNBASE    start of the kernel half: any user access faults "kernel-access"
 */
#ifndef KEUSIM_LAYOUT_H
#define KEUSIM_LAYOUT_H

#define PGSIZE      4096ull
#define PGSHIFT     12

#define USER_BASE   0x00400000ull
#define INFO_VA     0x10000000ull
#define CHAN_VA_BASE 0x20000000ull
#define CHAN_STRIDE  0x00400000ull       /* 4 MiB window per channel */
#define CHAN_VA(i)  (CHAN_VA_BASE + (uint64_t)(i) * CHAN_STRIDE)
/* Offsets inside a channel window. */
#define CHAN_HEAD_OFF  0x1000ull
#define CHAN_TAIL_OFF  0x2000ull
#define CHAN_DATA_OFF  0x4000ull
#define USTACK_TOP  0x7FFFFFFF0000ull
#define USTACK_PAGES 4
#define USER_TOP    0x800000000000ull
#define KERNBASE    0xFFFFFFFF80000000ull

/* Limits (kernel/include/param.h). */
#define MAXCPU      8
#define MAXPROC     32
#define MAXCHAN     32
#define MAXNAME     32

#endif /* KEUSIM_LAYOUT_H */
