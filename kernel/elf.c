/*
 * ELF64 loading into a process's address space. The loader has already checked
 * the image with pyelftools for a clear host-side error; this code trusts nothing
 * and refuses what it cannot load safely.
 */
#include "types.h"
#include "memlayout.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "defs.h"

#define PT_LOAD 1
#define PF_X 1
#define PF_W 2

struct elf64_ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/*
 * Map every PT_LOAD segment of image into p: text R-X, writable data RW-NX,
 * everything else R. Returns 0 and sets *entry, or -1 if the image is malformed,
 * for another machine, outside the user range or asks for a W+X segment.
 */
int elf_load(struct proc *p, const void *image, uint64_t len, uint64_t *entry)
{
    const struct elf64_ehdr *eh = image;
    if (len < sizeof(*eh) || memcmp(eh->ident, "\x7f" "ELF", 4) != 0 || eh->ident[4] != 2)
        return -1;
    if (eh->machine != ARCH_ELF_MACHINE || eh->phentsize != sizeof(struct elf64_phdr))
        return -1;
    if (eh->phoff > len || (uint64_t)eh->phnum * sizeof(struct elf64_phdr) > len - eh->phoff)
        return -1;
    const struct elf64_phdr *ph = (const void *)((const uint8_t *)image + eh->phoff);
    for (int i = 0; i < eh->phnum; i++) {
        const struct elf64_phdr *s = &ph[i];
        if (s->type != PT_LOAD || s->memsz == 0)
            continue;
        if ((s->flags & PF_W) && (s->flags & PF_X))
            return -1;
        if (s->filesz > s->memsz || s->offset > len || s->filesz > len - s->offset)
            return -1;
        if (s->vaddr < USER_BASE || s->vaddr >= INFO_VA || s->memsz > INFO_VA - s->vaddr)
            return -1;
        int perm = PTE_U | PTE_R | (s->flags & PF_W ? PTE_W : 0) | (s->flags & PF_X ? PTE_X : 0);
        uint64_t start = PGROUNDDOWN(s->vaddr), end = PGROUNDUP(s->vaddr + s->memsz);
        for (uint64_t va = start; va < end; va += PGSIZE) {
            pte_t *e = walk(p->root, va, 1);
            if (arch_pte_valid(*e))
                return -1; /* two segments share a page: permissions would be ambiguous */
            uint8_t *page = kalloc();
            /* Copy the part of the file that falls in this page. */
            uint64_t lo = va > s->vaddr ? va : s->vaddr;
            uint64_t hi = va + PGSIZE < s->vaddr + s->filesz ? va + PGSIZE : s->vaddr + s->filesz;
            if (hi > lo)
                memcpy(page + (lo - va), (const uint8_t *)image + s->offset + (lo - s->vaddr), hi - lo);
            *e = arch_pte_leaf(V2P(page), perm);
        }
    }
    *entry = eh->entry;
    return 0;
}
