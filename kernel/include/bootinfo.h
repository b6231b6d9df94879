/*
 * The boot-info block the loader (keusim/machine/loader.py) writes at BOOTINFO_PA.
 * Every field is little-endian and naturally aligned; the Python side packs the
 * same layout with struct. Bump BOOTINFO_VERSION on any change.
 */
#pragma once
#include "types.h"
#include "param.h"

#define BOOTINFO_MAGIC   0x4b4555534f4f5442ull  /* "BTOOSUEK" */
#define BOOTINFO_VERSION 2

struct boot_proc {
    char name[MAXNAME];
    uint64_t image_pa;      /* ELF file bytes, loaded by the loader as a boot module */
    uint64_t image_len;
    uint32_t core;
    uint32_t nic;           /* NIC_CAP_*: what this process may do with the NIC */
};

/* A process's NIC capability (manifest `nic`, docs/manifest.md). */
#define NIC_CAP_NONE     0
#define NIC_CAP_QUEUE    1  /* owns a queue: SYS_NIC_ATTACH maps it, DMA into its own frame region */
#define NIC_CAP_SYSCALLS 2  /* the traditional path: SYS_NET_SEND/RECV, the kernel owns the queue and copies */

#define CHAN_POLL   0
#define CHAN_NOTIFY 1

struct boot_chan {
    uint32_t producer;      /* process index */
    uint32_t consumer;
    uint32_t capacity;      /* bytes, power of two */
    uint32_t mode;          /* CHAN_POLL or CHAN_NOTIFY */
    uint32_t verified;      /* notifications carry SipHash tags */
    uint32_t _pad;
};

/* Test-only kernel options (flags): deliberately broken layouts for the proofs. */
#define BOOT_FLAG_BROKEN_LAYOUT 1ull
/* Test-only: the kernel dereferences an unmapped address at boot, so a test can see a
 * kernel-mode exception reach the kernel's own handler (which panics). */
#define BOOT_FLAG_KERNEL_FAULT 2ull

struct bootinfo {
    uint64_t magic;
    uint64_t version;
    uint64_t ram_size;
    uint64_t ncores;
    uint64_t free_pa;       /* first free physical page after modules */
    uint64_t pool_pa;       /* IPC pool [pool_pa, pool_pa + pool_size) */
    uint64_t pool_size;
    uint64_t kernel_root;   /* physical address of the boot/kernel page table root */
    uint64_t seed[2];       /* DRBG seed for channel keys */
    uint64_t flags;
    uint64_t timeslice;     /* cycles between timer ticks when a core is shared; 0 = none */
    uint32_t nproc;
    uint32_t nchan;
    struct boot_proc procs[MAXPROC];
    struct boot_chan chans[MAXCHAN];
    uint64_t nic;           /* 1: the machine has the NIC and IOMMU (keusim/machine/nic.py) */
};
