/* Boot: every core enters kmain() from arch/<arch>/entry.S with paging on. */
#include "types.h"
#include "memlayout.h"
#include "bootinfo.h"
#include "platform.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "spinlock.h"
#include "defs.h"

struct bootinfo *bootinfo;

static volatile int booted;

/* Core 0 builds the system; the others wait for it, then all schedule. */
void kmain(uint64_t bootinfo_va, uint64_t core)
{
    bootinfo = (struct bootinfo *)bootinfo_va;
    if (bootinfo->magic != BOOTINFO_MAGIC || bootinfo->version != BOOTINFO_VERSION)
        panic("kmain: bad boot-info block (loader and kernel disagree)");
    struct cpu *c = &cpus[core];
    c->id = (int)core;
    c->self = c;
    arch_cpu_init((int)core);
    plat_write(PLAT_READY, 1);
    if (core == 0) {
        kinit(bootinfo->free_pa, bootinfo->pool_pa, bootinfo->pool_pa,
              bootinfo->pool_pa + bootinfo->pool_size);
        procinit();
        channels_init();
        nic_init();
        if (bootinfo->flags & BOOT_FLAG_KERNEL_FAULT)
            (void)*(volatile uint64_t *)0x10; /* unmapped in the boot address space */
        __atomic_store_n(&booted, 1, __ATOMIC_RELEASE);
        for (uint64_t i = 1; i < bootinfo->ncores; i++)
            plat_write(PLAT_IPI, i);
    } else {
        while (!__atomic_load_n(&booted, __ATOMIC_ACQUIRE))
            plat_wait();
    }
    acquire(&bkl);
    scheduler();
}
