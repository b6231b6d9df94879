"""Small, fast helpers around the Unicorn C API (through the binding's ctypes handle).

keusim does not use uc_vmem_read/uc_vmem_translate: inside a hook, translating an
unmapped address raises a real CPU exception in the guest (seen on x86-64 with Unicorn
2.1.4). keusim.machine.pagetable walks the tables in emulated RAM instead.

The binding's per-register calls cost ~3 us each; a raw batch call over a fixed
register list is ~10x cheaper (docs/unicorn.md). Trap entry uses these.
"""

from __future__ import annotations

import ctypes as C
from collections.abc import Sequence

from unicorn import UcError
from unicorn.unicorn_py3.unicorn import uclib

_read_batch = uclib.uc_reg_read_batch
_write_batch = uclib.uc_reg_write_batch
class RegBatch:
    """A fixed list of 64-bit registers read or written in one C call."""

    def __init__(self, uc, reg_ids: Sequence[int]):
        self.uc = uc
        self.n = len(reg_ids)
        self.ids = (C.c_int * self.n)(*reg_ids)
        self.vals = (C.c_uint64 * self.n)()
        self.ptrs = (C.c_void_p * self.n)(*[C.addressof(self.vals) + 8 * i for i in range(self.n)])

    def read(self) -> list[int]:
        err = _read_batch(self.uc._uch, self.ids, self.ptrs, self.n)
        if err:
            raise UcError(err)
        return list(self.vals)

    def write(self, values: Sequence[int]) -> None:
        for i, v in enumerate(values):
            self.vals[i] = v & 0xFFFFFFFFFFFFFFFF
        err = _write_batch(self.uc._uch, self.ids, self.ptrs, self.n)
        if err:
            raise UcError(err)


_ctl = uclib.uc_ctl
_UC_CTL_WRITE = 1  # UC_CTL_IO_WRITE
_UC_CTL_TLB_FLUSH = 11


def flush_tlb(uc) -> None:
    """Flush the emulated TLB (uc_ctl(UC_CTL_TLB_FLUSH)); the binding has no wrapper."""
    err = _ctl(uc._uch, C.c_int(_UC_CTL_TLB_FLUSH | (_UC_CTL_WRITE << 30)))
    if err:
        raise UcError(err)


_reg_read = uclib.uc_reg_read
_reg_read.argtypes = [C.c_void_p, C.c_int, C.c_void_p]
_reg_read.restype = C.c_int


class RegReader:
    """One 64-bit register read through the raw C call: ~3x cheaper than the binding's
    reg_read, and the machine reads the PC after every slice."""

    def __init__(self, uc, reg_id: int):
        self.h = C.c_void_p(uc._uch.value if hasattr(uc._uch, "value") else uc._uch)
        self.reg = reg_id
        self.val = C.c_uint64()
        self.ptr = C.byref(self.val)

    def __call__(self) -> int:
        err = _reg_read(self.h, self.reg, self.ptr)
        if err:
            raise UcError(err)
        return self.val.value


class RawBatch:
    """Registers up to 16 bytes wide (XMM, x87) copied out and back in two C calls.

    Used to carry user state across a context restore without converting it in
    Python: ``save()`` reads every register into fixed 16-byte slots, ``restore()``
    writes the same bytes back. Narrower registers use a prefix of their slot.
    """

    def __init__(self, uc, reg_ids: Sequence[int]):
        self.uc = uc
        self.n = len(reg_ids)
        self.ids = (C.c_int * self.n)(*reg_ids)
        self.buf = C.create_string_buffer(16 * self.n)
        base = C.addressof(self.buf)
        self.ptrs = (C.c_void_p * self.n)(*[base + 16 * i for i in range(self.n)])

    def save(self) -> None:
        err = _read_batch(self.uc._uch, self.ids, self.ptrs, self.n)
        if err:
            raise UcError(err)

    def restore(self) -> None:
        err = _write_batch(self.uc._uch, self.ids, self.ptrs, self.n)
        if err:
            raise UcError(err)


# -- skipping Unicorn's per-access PC sync ------------------------------------------------
#
# Before a UC_HOOK_MEM_READ/WRITE callback, Unicorn 2.1.4 rebuilds the guest PC of the
# access (cpu_restore_state: a search of the translated-block tree and a re-decode of the
# block) unless the private field uc_struct.skip_sync_pc_on_exit is set; uc_emu_start
# clears it. The coherence hook (fastpath.c fast_mem) never reads the PC, and the block
# hook runs after Unicorn has written the block's start PC (translator_loop: pc_sync
# before the UC_HOOK_BLOCK call, then the exit-request check), so fast_block may set the
# field for blocks whose hooks do not read the PC (docs/unicorn.md). The field is private:
# find_skip_sync_offset locates it by its behaviour, never by a hard-coded offset.

_libc = C.CDLL(None)
_usable = getattr(_libc, "malloc_usable_size", None)
if _usable is not None:
    _usable.argtypes = [C.c_void_p]
    _usable.restype = C.c_size_t


def uc_handle(uc) -> int:
    """The address of the instance's uc_struct."""
    return uc._uch.value if hasattr(uc._uch, "value") else uc._uch


def _struct_bytes(uc) -> bytes | None:
    h = uc_handle(uc)
    n = _usable(h) if _usable is not None else 0
    return C.string_at(h, n) if n else None


def find_skip_sync_offset(new_uc, code: bytes, store_at: int, pc_reg: int,
                          regs: Sequence[tuple[int, int]]) -> int | None:
    """Offset of uc_struct.skip_sync_pc_on_exit, or None when it cannot be located.

    ``new_uc()`` makes a fresh instance of the architecture; ``code`` (run at 0x1000 with
    ``regs`` set, MMU off) is a straight block whose instruction at ``0x1000 + store_at``
    stores to 0x2000. Candidates are the bytes that uc_reg_write of the PC sets to 1 and
    uc_emu_start clears (uc.c). Exactly one must then behave as the field does: with it
    set from the block hook, a write hook on 0x2000 reads the block's start PC (no sync);
    without, the store's own PC (synced); the store happens either way.
    """
    from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_WRITE
    base, data, end = 0x1000, 0x2000, 0x1000 + len(code)

    def fresh():
        uc = new_uc()
        uc.mem_map(0, 0x4000)
        uc.mem_write(base, code)
        for r, v in regs:
            uc.reg_write(r, v)
        return uc

    def run(off: int | None) -> tuple[int, bytes] | None:
        uc = fresh()
        seen = []
        h = uc_handle(uc)

        def on_block(uc_, addr, size, _ud):
            if off is not None:
                C.c_uint8.from_address(h + off).value = 1

        def on_write(uc_, access, addr, size, value, _ud):
            seen.append(uc_.reg_read(pc_reg))

        uc.hook_add(UC_HOOK_BLOCK, on_block)
        uc.hook_add(UC_HOOK_MEM_WRITE, on_write, None, data, data + 7)
        try:
            uc.emu_start(base, end)
        except UcError:
            return None
        return (seen[0] if len(seen) == 1 else -1), bytes(uc.mem_read(data, 8))

    try:
        uc = fresh()
        uc.emu_start(base, end)
        a = _struct_bytes(uc)
        uc.reg_write(pc_reg, base)
        b = _struct_bytes(uc)
        uc.emu_start(base, end)
        c = _struct_bytes(uc)
        if a is None or b is None or c is None:
            return None
        cands = [i for i in range(min(len(a), len(b), len(c)))
                 if a[i] == 0 and b[i] == 1 and c[i] == 0]
        control = run(None)
        if control is None or control[0] != base + store_at or control[1] == bytes(8):
            return None
        hits = [i for i in cands if run(i) == (base, control[1])]
    except UcError:
        return None
    return hits[0] if len(hits) == 1 else None


# Unicorn's targets: each has its own find_memory_mapping_<target> (qemu/unicorn_common.h).
_TARGETS = ("x86_64", "aarch64", "arm", "m68k", "mips", "mipsel", "mips64", "mips64el",
            "ppc", "ppc64", "riscv32", "riscv64", "s390x", "sparc", "sparc64", "tricore")


def find_memory_mapping_offset(uc) -> tuple[int, int] | None:
    """(offset of uc_struct.memory_mapping, the function it holds) in this instance, or
    None. The field holds Unicorn's find_memory_mapping for the instance's target, an
    exported symbol; exactly one pointer-sized slot of the struct must hold it
    (fastpath.c mm_patch checks the value again before replacing it)."""
    funcs = set()
    for t in _TARGETS:
        f = getattr(uclib, f"find_memory_mapping_{t}", None)
        if f is not None:
            funcs.add(C.cast(f, C.c_void_p).value)
    raw = _struct_bytes(uc)
    if raw is None or not funcs:
        return None
    hits = [(i, v) for i in range(0, len(raw) - 7, 8)
            if (v := int.from_bytes(raw[i:i + 8], "little")) in funcs]
    return hits[0] if len(hits) == 1 else None
