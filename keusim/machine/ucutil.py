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
