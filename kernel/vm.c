/*
 * User address spaces: 4-level, 4 KiB-page tables on both architectures.
 *
 * A 48-bit virtual address splits into four 9-bit table indices and a 12-bit
 * offset:
 *   47..39 level 3 (x86 PML4 / arm64 L0)   38..30 level 2 (PDPT / L1)
 *   29..21 level 1 (PD / L2)               20..12 level 0 (PT / L3)   11..0 offset
 * Entry encodings differ per architecture and live in arch/<arch>/ (arch_pte_*).
 */
#include "types.h"
#include "memlayout.h"
#include "arch.h"
#include "defs.h"

#define PX(level, va) (((va) >> (PGSHIFT + 9 * (level))) & 0x1FF)

/* Return the level-0 entry for va in root, allocating tables if alloc; 0 if absent. */
pte_t *walk(pagetable_t root, uint64_t va, int alloc)
{
    if (va >= USER_TOP)
        panic("walk: va outside the user half");
    pagetable_t t = root;
    for (int level = 3; level > 0; level--) {
        pte_t *e = &t[PX(level, va)];
        if (arch_pte_valid(*e)) {
            t = (pagetable_t)P2V(arch_pte_pa(*e));
        } else {
            if (!alloc)
                return 0;
            t = (pagetable_t)kalloc();
            *e = arch_pte_table(V2P(t));
        }
    }
    return &t[PX(0, va)];
}

/* Map [va, va+size) to [pa, ...) with perm. Returns 0; panics on a remap. */
int mappages(pagetable_t root, uint64_t va, uint64_t size, uint64_t pa, int perm)
{
    if ((va | size | pa) & (PGSIZE - 1))
        panic("mappages: unaligned");
    if ((perm & PTE_W) && (perm & PTE_X))
        panic("mappages: W^X violation");
    for (uint64_t off = 0; off < size; off += PGSIZE) {
        pte_t *e = walk(root, va + off, 1);
        if (arch_pte_valid(*e))
            panic("mappages: remap");
        *e = arch_pte_leaf(pa + off, perm);
    }
    return 0;
}

/* A new, empty user address space. */
pagetable_t uvm_create(void)
{
    pagetable_t root = (pagetable_t)kalloc();
    arch_uvm_init(root);
    return root;
}

/* 1 if every page of [va, va+len) is mapped in root with at least perm (and PTE_U). */
int user_range_ok(pagetable_t root, uint64_t va, uint64_t len, int perm)
{
    if (len == 0)
        return 1;
    if (va >= USER_TOP || len > USER_TOP - va)
        return 0;
    for (uint64_t a = PGROUNDDOWN(va); a < va + len; a += PGSIZE) {
        pte_t *e = walk(root, a, 0);
        if (!e || !arch_pte_valid(*e))
            return 0;
        int p = arch_pte_perm(*e);
        if ((p & (perm | PTE_U)) != (perm | PTE_U))
            return 0;
    }
    return 1;
}

/* Copy len bytes from user va in root to dst. Returns 0, or -1 if not readable. */
int copyin(pagetable_t root, void *dst, uint64_t srcva, uint64_t len)
{
    if (!user_range_ok(root, srcva, len, PTE_R))
        return -1;
    uint8_t *d = dst;
    while (len) {
        uint64_t page = PGROUNDDOWN(srcva), off = srcva - page;
        uint64_t n = PGSIZE - off < len ? PGSIZE - off : len;
        pte_t *e = walk(root, page, 0);
        memcpy(d, (uint8_t *)P2V(arch_pte_pa(*e)) + off, n);
        d += n;
        srcva += n;
        len -= n;
    }
    return 0;
}

/* Copy len bytes from kernel src to user dstva in root. Returns 0, or -1 if not writable. */
int copyout(pagetable_t root, uint64_t dstva, const void *src, uint64_t len)
{
    if (!user_range_ok(root, dstva, len, PTE_W))
        return -1;
    const uint8_t *s = src;
    while (len) {
        uint64_t page = PGROUNDDOWN(dstva), off = dstva - page;
        uint64_t n = PGSIZE - off < len ? PGSIZE - off : len;
        pte_t *e = walk(root, page, 0);
        memcpy((uint8_t *)P2V(arch_pte_pa(*e)) + off, s, n);
        s += n;
        dstva += n;
        len -= n;
    }
    return 0;
}
