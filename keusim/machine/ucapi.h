/*
 * The libunicorn entry points keusim's native code calls. They are called through
 * pointers to the library the Python binding loaded (keusim/machine/fastpath.py passes
 * them once to fastpath_api), so the native code never links a second copy.
 */
#ifndef KEUSIM_UCAPI_H
#define KEUSIM_UCAPI_H

#include <stddef.h>
#include <stdint.h>

struct ucapi {
    int (*emu_start)(void *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count);
    int (*reg_read)(void *uc, int regid, void *value);
    int (*reg_write)(void *uc, int regid, const void *value);
    int (*read_batch)(void *uc, int *ids, void **vals, int count);
    int (*write_batch)(void *uc, int *ids, void *const *vals, int count);
    int (*hook_add)(void *uc, size_t *hh, int type, void *cb, void *ud, uint64_t begin,
                    uint64_t end, ...);
    int (*hook_del)(void *uc, size_t hh);
    int (*context_restore)(void *uc, void *ctx);
    int (*ctl)(void *uc, int control, ...);
};

extern struct ucapi ucapi;

/* A native trap entry (keusim/arch/<arch>_trap.c): performs architectural entry for the
 * system call the core just stopped at and sets *pc to the kernel's handler. Returns 0,
 * TRAP_TO_PYTHON when Python must deliver it instead, or a uc_err. */
typedef int (*trap_entry_fn)(void *uc, void *arg, uint64_t syndrome, uint64_t *pc);
#define TRAP_TO_PYTHON 1000

/* A native interrupt entry (keusim/arch/<arch>_trap.c) for a core the scheduler wakes or
 * finds with an interrupt pending (irq: its IRQ_* bits). It reads the core's privilege:
 * in user mode it returns TRAP_TO_PYTHON having changed nothing (Python delivers it). In
 * the kernel it returns 0, after performing the architectural entry of the interrupt
 * (pending bits say which) when `deliver` is set, with the frame written to RAM
 * ([ram, ram + ram_size) is physical memory) and *pc set to the handler. TRAP_TO_PYTHON
 * also when anything is unusual (no vectors, addresses outside RAM); a uc_err on an
 * emulator error. */
typedef int (*irq_entry_fn)(void *uc, void *arg, uint64_t irq, int deliver, uint8_t *ram,
                            uint64_t ram_size, uint64_t *pc);

#endif
