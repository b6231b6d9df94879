/*
 * Physical page allocation: a bump allocator over free RAM and a second one over
 * the IPC pool. keusim systems are static (every process and channel exists from
 * boot, as in the seL4 Microkit), so pages are never freed.
 */
#include "types.h"
#include "memlayout.h"
#include "defs.h"

static uint64_t next, limit, pool_next, pool_limit;

void kinit(uint64_t start, uint64_t end, uint64_t pool_start, uint64_t pool_end)
{
    next = PGROUNDUP(start);
    limit = end;
    pool_next = pool_start;
    pool_limit = pool_end;
}

/* Return a zeroed page (kernel virtual address); panics when memory runs out. */
void *kalloc(void)
{
    uint64_t pa = __atomic_fetch_add(&next, PGSIZE, __ATOMIC_RELAXED);
    if (pa + PGSIZE > limit)
        panic("kalloc: out of memory (raise ram_mb in the manifest)");
    memset(P2V(pa), 0, PGSIZE);
    return P2V(pa);
}

/* Return a zeroed page from the IPC pool (ring pages only). */
void *kalloc_pool(void)
{
    uint64_t pa = __atomic_fetch_add(&pool_next, PGSIZE, __ATOMIC_RELAXED);
    if (pa + PGSIZE > pool_limit)
        panic("kalloc_pool: IPC pool exhausted");
    memset(P2V(pa), 0, PGSIZE);
    return P2V(pa);
}
