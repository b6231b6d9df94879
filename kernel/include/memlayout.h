/*
 * Memory layout, shared by both architectures.
 *
 * Physical:
 *   0x00001000  boot-info block (written by the loader)
 *   0x00010000  boot page tables (written by the loader; the kernel keeps them)
 *   0x00100000  kernel image, then boot modules (process ELF files)
 *   ...         free pages (kalloc)
 *   pool_base   IPC pool: ring pages only (the machine watches it for coherence)
 *   0x40000000  platform device (keusim/machine/devices.py), one page
 *
 * Kernel virtual: everything above at KERNBASE + pa (a direct map, supervisor only).
 * x86-64 shares the top PML4 entry with every process; arm64 uses TTBR1.
 *
 * User virtual (per process, TTBR0 / lower half):
 *   0x00400000  ELF image (text R-X, data RW-NX)
 *   INFO_VA     read-only info page: pid, channel endpoints
 *   CHAN_VA(i)  channel i window: guard|head|tail|guard|data...|guard
 *   USTACK_TOP  user stack grows down; one unmapped guard page below it
 */
#pragma once
#define PGSIZE      4096ull
#define PGSHIFT     12
#define PGROUNDUP(a)   (((a) + PGSIZE - 1) & ~(PGSIZE - 1))
#define PGROUNDDOWN(a) ((a) & ~(PGSIZE - 1))

#define KERNBASE    0xFFFFFFFF80000000ull
#define P2V(pa)     ((void *)((uint64_t)(pa) + KERNBASE))
#define V2P(va)     ((uint64_t)(va) - KERNBASE)

#define BOOTINFO_PA 0x1000ull
#define DEV_PA      0x40000000ull
#define DEV_VA      (KERNBASE + DEV_PA)

#define USER_BASE   0x00400000ull
#define INFO_VA     0x10000000ull
#define CHAN_VA_BASE 0x20000000ull
#define CHAN_STRIDE  0x00400000ull       /* 4 MiB window per channel */
#define CHAN_VA(i)  (CHAN_VA_BASE + (uint64_t)(i) * CHAN_STRIDE)
/* Offsets inside a channel window (docs/design.md, ring layout). */
#define CHAN_HEAD_OFF  0x1000ull
#define CHAN_TAIL_OFF  0x2000ull
#define CHAN_DATA_OFF  0x4000ull
#define USTACK_TOP  0x7FFFFFFF0000ull
#define USER_TOP    0x800000000000ull
