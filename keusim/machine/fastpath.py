"""Native hot-path hooks (``fastpath.c``), loaded with ctypes and registered
directly with libunicorn's ``uc_hook_add``.

Python decides what a block costs (once per block, on a table miss); C charges it
on every execution, keeps each core's model clock, answers ``rdtsc``/``cntvct_el0``
from that clock, and runs the shared-line coherence model.
"""

from __future__ import annotations

import ctypes as C
import sys
from functools import lru_cache
from pathlib import Path

import unicorn
from unicorn import unicorn_const as UC
from unicorn.unicorn_py3.unicorn import uclib

from keusim import toolchain

# A miss callback's answer meaning: stop before this block, it must be translated again
# (an instruction hook was added inside it). fastpath.c MISS_RETRANSLATE.
MISS_RETRANSLATE = (1 << 64) - 1
MISS_FN = C.CFUNCTYPE(C.c_uint64, C.c_uint64, C.c_uint64, C.c_uint64, C.c_uint64)


class KCoh(C.Structure):
    _fields_ = [
        ("base", C.c_uint64), ("size", C.c_uint64),
        ("xfer_cycles", C.c_uint64), ("inval_cycles", C.c_uint64), ("fill_cycles", C.c_uint64),
        ("owner", C.POINTER(C.c_uint8)), ("sharers", C.POINTER(C.c_uint64)),
        ("stream_cycles", C.c_uint64), ("stream_stride", C.c_uint64),
        ("posted", C.c_uint64), ("ready", C.POINTER(C.c_uint64)),
        ("watch", C.POINTER(C.c_uint64)),
        ("stream_access", C.c_uint64), ("poll_max", C.c_uint64), ("mlp", C.c_uint64),
    ]


class FastCore(C.Structure):
    _fields_ = [
        ("clock", C.c_uint64), ("insns", C.c_uint64), ("slice_end", C.c_uint64),
        ("root", C.c_uint64), ("kbase", C.c_uint64),
        ("kinsns", C.c_uint64), ("kcycles", C.c_uint64),
        ("coh_cycles", C.c_uint64), ("coh_xfers", C.c_uint64),
        ("shared_reads", C.c_uint64), ("shared_writes", C.c_uint64),
        ("id", C.c_uint64), ("stop_reason", C.c_uint64),
        ("table", C.c_void_p), ("tmask", C.c_uint64), ("tcount", C.c_uint64),
        ("miss", MISS_FN), ("emu_stop", C.c_void_p), ("reg_write", C.c_void_p),
        ("coh", C.POINTER(KCoh)),
        ("reg_a", C.c_uint64), ("reg_b", C.c_uint64), ("reg_c", C.c_uint64),
        ("tsc_aux", C.c_uint64), ("counter_hz", C.c_uint64), ("nblocks", C.c_uint64),
        ("coh_last", C.c_uint64), ("coh_streamed", C.c_uint64),
        ("wready", C.c_uint64), ("coh_posted", C.c_uint64), ("coh_waited", C.c_uint64),
        ("frac", C.c_uint64),
        ("user_stop", C.c_uint64),
        ("sched", C.c_void_p), ("uc", C.c_void_p),
        ("state", C.c_uint64), ("irq", C.c_uint64), ("wake_at", C.c_uint64),
        ("timer", C.c_uint64), ("pc", C.c_uint64), ("need_py", C.c_uint64),
        ("pc_reg", C.c_uint64), ("nregs", C.c_uint64), ("regs", C.c_int32 * 40),
        ("spin", C.c_void_p),
        ("trap_fn", C.c_void_p), ("trap_arg", C.c_void_p), ("trap_pending", C.c_uint64),
        ("syndrome", C.c_uint64), ("last_flags", C.c_uint64),
        ("root_reg", C.c_uint64), ("root_mask", C.c_uint64), ("py_intr", C.c_void_p),
        ("miss_flags", C.c_uint64), ("syscalls", C.c_uint64), ("coh_run", C.c_uint64),
        ("pl_line", C.c_uint64 * 8), ("pl_clock", C.c_uint64 * 8), ("pl_next", C.c_uint64),
        ("pl_fresh", C.c_uint64), ("pl_coh", C.c_uint64 * 8), ("flush_clock", C.c_uint64),
        ("pipe", C.c_uint64), ("sync_skip", C.c_void_p),
        ("idle", C.c_uint64), ("irq_fn", C.c_void_p), ("irq_arg", C.c_void_p),
        ("py_mmio_read", C.c_void_p), ("py_mmio_write", C.c_void_p),
        ("mru", C.c_void_p * 256),
    ]


MAX_CORES = 64
INF = (1 << 64) - 1


class Sched(C.Structure):
    """fastpath.c ``struct sched``: the native scheduler's view of the machine."""

    _fields_ = [
        ("ncores", C.c_uint64), ("core", C.POINTER(FastCore) * MAX_CORES),
        ("lookahead", C.c_uint64), ("quantum", C.c_uint64), ("max_cycles", C.c_uint64),
        ("ff", C.c_uint64), ("inline_ok", C.c_uint64), ("nparked", C.c_uint64),
        ("ram", C.c_void_p), ("ram_size", C.c_uint64), ("err", C.c_uint64),
        ("device_next", C.c_uint64), ("slices", C.c_uint64), ("vslices", C.c_uint64),
        ("check_stores", C.c_uint64), ("starts", C.c_uint64),
        ("native_traps", C.c_uint64), ("ntraps", C.c_uint64), ("yield_at", C.c_uint64),
        ("parked_timers", C.c_uint64),
        ("native_irqs", C.c_uint64), ("ipi_cycles", C.c_uint64),
        ("exception_cycles", C.c_uint64), ("nwakes", C.c_uint64), ("ndev", C.c_uint64),
        ("nest", C.c_uint64), ("in_run", C.c_uint64), ("depth", C.c_uint64),
        ("pending", C.c_uint64), ("pending_err", C.c_uint64), ("nested", C.c_uint64),
        ("fibers", C.c_uint64), ("switches", C.c_uint64), ("fib", C.c_void_p),
    ]


SCHED_YIELD = -2
"""sched_run's answer: stopped only at the yield point, Python has nothing to do."""
STOP_SLICE = 1
ST_RUN, ST_HALT = 0, 1   # fastcore.state


class BEntry(C.Structure):
    _fields_ = [("va", C.c_uint64), ("root", C.c_uint64), ("cost", C.c_uint32),
                ("ninsn", C.c_uint32), ("count", C.c_uint64), ("flags", C.c_uint32),
                ("skip", C.c_uint32), ("fails", C.c_uint64)]


# bentry.flags (fastpath.c BF_*), set through fastcore.miss_flags by the miss callback.
BF_SPIN = 1
"""The block may belong to a fast-forwarded spin loop."""
BF_SVC = 2
"""The block ends in a system call whose immediate is in bits 16-31 (arm64 svc)."""
BF_SYNC = 4
"""A hook in the block reads the PC: keep Unicorn's per-access PC sync (fastcore.sync_skip)."""
BF_NOSTORE = 8
"""No instruction of the block writes memory (keusim.arch.isa.may_store): a spin loop of
such blocks is recorded without the all-RAM store hook."""
INTR_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint32, C.c_void_p)


_ARCH = Path(__file__).parent.parent / "arch"
SOURCES = (Path(__file__).with_name("fastpath.c"), Path(__file__).with_name("fiber.c"),
           _ARCH / "x86_64_trap.c", _ARCH / "arm64_trap.c")
"""The native library: the machine's hooks and scheduler, the host fibers its resident-core
switch runs cores on (fiber.c), and each architecture's native trap entry
(keusim/arch/<arch>_trap.c)."""


@lru_cache(maxsize=1)
def lib() -> C.CDLL:
    """Build (cached) and load the fast-path library."""
    inc = Path(unicorn.__file__).parent / "include"
    path = toolchain.host_shared_lib(SOURCES, "fastpath", cflags=("-O2", "-Wall"),
                                     include_dirs=[inc, Path(__file__).parent])
    so = C.CDLL(str(path))
    so.fastcore_init.argtypes = [C.POINTER(FastCore), C.c_uint]
    so.fastcore_free.argtypes = [C.POINTER(FastCore)]
    so.fastcore_clear.argtypes = [C.POINTER(FastCore)]
    so.fastcore_dump.argtypes = [C.POINTER(FastCore), C.POINTER(BEntry), C.c_uint64]
    so.fastcore_dump.restype = C.c_uint64
    so.fastcore_spin_init.argtypes = [C.POINTER(FastCore)]
    so.fastcore_spin_free.argtypes = [C.POINTER(FastCore)]
    so.fastcore_spin_storeless.argtypes = [C.POINTER(FastCore), C.c_uint64]
    so.fastcore_spin_stats.argtypes = [C.POINTER(FastCore), C.POINTER(C.c_uint64)]
    so.sched_run.argtypes = [C.POINTER(Sched)]
    so.sched_run.restype = C.c_int64
    so.sched_wake_all.argtypes = [C.POINTER(Sched)]
    so.sched_free.argtypes = [C.POINTER(Sched)]
    so.sched_fibers_available.restype = C.c_int
    so.mm_patch.argtypes = [C.c_void_p, C.c_uint64, C.c_void_p, C.c_uint64]
    so.mm_patch.restype = C.c_int
    so.mm_unpatch.argtypes = [C.c_void_p, C.c_uint64]
    so.fastpath_api.argtypes = [C.c_void_p] * 9
    so.fastpath_api(*(_fn_addr(n) for n in (
        "uc_emu_start", "uc_reg_read", "uc_reg_write", "uc_reg_read_batch", "uc_reg_write_batch",
        "uc_hook_add", "uc_hook_del", "uc_context_restore", "uc_ctl")))
    return so


def resident_cores_available() -> bool:
    """Can this host run the resident-core switch (fastpath.c ``fiber_wait``,
    Machine.resident_cores)? It needs fibers (fiber.c: x86-64 hosts), and a Python that
    does not check the C stack pointer against the thread's stack: 3.14 does, and Python
    callbacks (block pricing) run on the fibers' stacks."""
    return sys.version_info < (3, 14) and bool(lib().sched_fibers_available())


HOOKED_PAGES = hasattr(uclib, "uc_keusim_hooked_pages")
"""The loaded libunicorn is keusim's build (tools/unicorn, docs/unicorn.md): translated
loads and stores keep the inline TLB path, and only pages a memory hook covers take the
slow one. Results are the same either way; only host speed differs."""


def _fn_addr(name: str) -> int:
    return C.cast(getattr(uclib, name), C.c_void_p).value


def _hook_add(uc, htype: int, cb_addr: int, user_data, begin: int = 1, end: int = 0,
              extra: int | None = None) -> int:
    h = C.c_size_t()
    f = uclib.uc_hook_add
    args = [uc._uch, C.byref(h), C.c_int(htype), C.c_void_p(cb_addr),
            C.c_void_p(C.addressof(user_data)), C.c_uint64(begin), C.c_uint64(end)]
    if extra is not None:
        args.append(C.c_int(extra))
    old = f.argtypes
    f.argtypes = None  # variadic call
    try:
        err = f(*args)
    finally:
        f.argtypes = old
    if err != UC.UC_ERR_OK:
        raise unicorn.UcError(err)
    return h.value


class NativeCore:
    """The C-side state of one core, and its hooks on one Uc instance."""

    def __init__(self, uc, core_id: int, kbase: int, miss, coh: KCoh | None):
        so = lib()
        self.uc = uc
        self.k = FastCore()
        self.k.id = core_id
        self.k.kbase = kbase
        self.k.slice_end = 2**64 - 1
        self.k.tsc_aux = core_id
        self._miss = MISS_FN(miss)  # keep alive
        self.k.miss = self._miss
        self.k.emu_stop = _fn_addr("uc_emu_stop")
        self.k.reg_write = _fn_addr("uc_reg_write")
        self._coh = coh
        if coh is not None:
            self.k.coh = C.pointer(coh)
        if so.fastcore_init(C.byref(self.k), 14) != 0 or so.fastcore_spin_init(C.byref(self.k)):
            raise MemoryError("fastcore_init")
        self.k.uc = uc._uch.value if hasattr(uc._uch, "value") else uc._uch
        self._mm: tuple[int, int] | None = None     # (offset, Unicorn's function) patched
        self.hooks = [_hook_add(uc, UC.UC_HOOK_BLOCK, _addr(so, "fast_block"), self.k)]

    def hook_rdtsc(self, ins_rdtsc: int, ins_rdtscp: int, rax: int, rdx: int, rcx: int) -> None:
        self.k.reg_a, self.k.reg_b, self.k.reg_c = rax, rdx, rcx
        so = lib()
        self.hooks.append(_hook_add(self.uc, UC.UC_HOOK_INSN, _addr(so, "fast_rdtsc"), self.k,
                                    extra=ins_rdtsc))
        self.hooks.append(_hook_add(self.uc, UC.UC_HOOK_INSN, _addr(so, "fast_rdtscp"), self.k,
                                    extra=ins_rdtscp))

    def hook_mrs(self, ins_mrs: int, counter_hz: int) -> None:
        self.k.counter_hz = counter_hz
        self.hooks.append(_hook_add(self.uc, UC.UC_HOOK_INSN, _addr(lib(), "fast_mrs"), self.k,
                                    extra=ins_mrs))

    def hook_syscall(self, ins_syscall: int) -> None:
        """x86-64 ``syscall``: stop; the trap is delivered after the stop (fastpath.c)."""
        self.hooks.append(_hook_add(self.uc, UC.UC_HOOK_INSN, _addr(lib(), "fast_syscall"),
                                    self.k, extra=ins_syscall))

    def hook_intr(self, py_intr) -> None:
        """UC_HOOK_INTR: system calls from blocks marked BF_SVC natively, the rest by
        ``py_intr(uc, intno, user_data)``."""
        self._py_intr = INTR_FN(py_intr)   # keep alive
        self.k.py_intr = C.cast(self._py_intr, C.c_void_p)
        self.hooks.append(_hook_add(self.uc, UC.UC_HOOK_INTR, _addr(lib(), "fast_intr"), self.k))

    def hook_root(self, va: int, root_reg: int, root_mask: int) -> None:
        """Track the user MMU root (``root_reg & root_mask``) at the code address va."""
        self.k.root_reg, self.k.root_mask = root_reg, root_mask
        self.hooks.append(_hook_add(self.uc, UC.UC_HOOK_CODE, _addr(lib(), "fast_root"), self.k,
                                    begin=va, end=va))

    def set_trap_entry(self, fn_name: str, arg) -> None:
        """Deliver system calls natively with ``fn_name`` (keusim/arch/<arch>_trap.c) and
        its argument struct ``arg`` (kept alive by the caller)."""
        self.k.trap_arg = C.addressof(arg)
        self.k.trap_fn = _addr(lib(), fn_name)

    def set_irq_entry(self, fn_name: str, arg) -> None:
        """Deliver interrupts to this core natively, when it is in the kernel, with
        ``fn_name`` (keusim/arch/<arch>_trap.c) and its argument struct ``arg`` (kept alive
        by the caller)."""
        self.k.irq_arg = C.addressof(arg)
        self.k.irq_fn = _addr(lib(), fn_name)

    def map_platform(self, pa: int, size: int, read, write) -> None:
        """Map the platform device at physical [pa, pa+size) with the native callbacks
        (fastpath.c ``plat_read``/``plat_write``): they take PLAT_IPI, PLAT_WAIT and the
        PLAT_IRQ_CAUSE read when the native wake-up path is on, and pass every other access
        to ``read(offset, size)`` / ``write(offset, size, value)`` as the binding's own
        ``mmio_map`` would (an exception in them is stored for the caller and stops the
        core, as with every Python hook)."""
        from unicorn.unicorn_py3.unicorn import MMIO_READ_CFUNC, MMIO_WRITE_CFUNC, uccallback
        rd = uccallback(self.uc, MMIO_READ_CFUNC)(lambda uc, off, sz, key: read(off, sz))
        wr = uccallback(self.uc, MMIO_WRITE_CFUNC)(
            lambda uc, off, sz, value, key: write(off, sz, value))
        self.k.py_mmio_read = C.cast(rd, C.c_void_p)
        self.k.py_mmio_write = C.cast(wr, C.c_void_p)
        so = lib()
        ud = C.c_void_p(C.addressof(self.k))
        err = uclib.uc_mmio_map(self.uc._uch, pa, size, C.c_void_p(_addr(so, "plat_read")), ud,
                                C.c_void_p(_addr(so, "plat_write")), ud)
        if err != UC.UC_ERR_OK:
            raise unicorn.UcError(err)
        # Keep the callbacks alive, where the binding keeps its own.
        self.uc._mmio_callbacks[(pa, pa + size)] = (rd, wr)

    def hook_shared(self, base: int, size: int) -> None:
        self.hooks.append(_hook_add(self.uc, UC.UC_HOOK_MEM_READ | UC.UC_HOOK_MEM_WRITE,
                                    _addr(lib(), "fast_mem"), self.k, begin=base,
                                    end=base + size - 1))

    def blocks(self) -> list[tuple[int, int, int, int, int]]:
        """(va, root, insns, cost, executions) for every block that ran; the cost is in
        1/256 cycles (``keusim.model.costmodel.FRACTION``)."""
        n = self.k.tcount
        buf = (BEntry * max(n, 1))()
        got = lib().fastcore_dump(C.byref(self.k), buf, n)
        return [(e.va, e.root, e.ninsn, e.cost, e.count) for e in buf[:got]]

    def clear_costs(self) -> None:
        lib().fastcore_clear(C.byref(self.k))

    def spin_storeless(self, on: bool) -> None:
        """Fast-forward only spin loops that cannot store (the default with a Unicorn with
        :data:`HOOKED_PAGES`, where adding the store hook empties the emulated TLB)."""
        lib().fastcore_spin_storeless(C.byref(self.k), int(on))

    def spin_stats(self) -> tuple[int, int, int]:
        """(parks, wakes, fast-forwarded blocks) of spin fast-forward on this core."""
        return self.spin_detail()[:3]

    def spin_detail(self) -> tuple[int, int, int, int, int]:
        """(parks, wakes, fast-forwarded blocks, loop iterations recorded, recordings that
        did not qualify) of spin fast-forward on this core."""
        out = (C.c_uint64 * 5)()
        lib().fastcore_spin_stats(C.byref(self.k), out)
        return tuple(out)

    def set_spin_regs(self, pc_reg: int, regs: list[int]) -> None:
        """The PC's register id and the registers a spin-loop snapshot holds."""
        if len(regs) > len(self.k.regs):
            raise ValueError(f"at most {len(self.k.regs)} snapshot registers")
        self.k.pc_reg = pc_reg
        self.k.nregs = len(regs)
        for i, r in enumerate(regs):
            self.k.regs[i] = r

    def cache_ram_lookup(self, on: bool, ram_size: int) -> bool:
        """Answer Unicorn's physical-address lookups for RAM [0, ram_size) from a cache
        (fastpath.c mm_patch), or (False) restore Unicorn's own. Returns whether the cache
        is in use: False when the field cannot be located or RAM is not one region."""
        from keusim.machine import ucutil
        if self._mm is not None:
            lib().mm_unpatch(self.k.uc, self._mm[0])
            self._mm = None
        if on:
            found = ucutil.find_memory_mapping_offset(self.uc)
            if found is not None and lib().mm_patch(self.k.uc, found[0], found[1],
                                                     ram_size) == 0:
                self._mm = found
        return self._mm is not None

    def close(self) -> None:
        if self._mm is not None:
            lib().mm_unpatch(self.k.uc, self._mm[0])
            self._mm = None
        if self.k.table:
            lib().fastcore_free(C.byref(self.k))
        if self.k.spin:
            lib().fastcore_spin_free(C.byref(self.k))


def _addr(so: C.CDLL, name: str) -> int:
    return C.cast(getattr(so, name), C.c_void_p).value


STREAM_STRIDE = 2
"""Lines: a hand-off this close to the same core's previous one continues its stream."""


POLL_PERIOD_MAX = 1000
"""Cycles: a core that reads a shared line again within this long of its previous read of
it is taken to poll it (fastpath.c ``poll_note``); a loop around a PAUSE is 100-200."""


def make_coherence(base: int, size: int, xfer: int, inval: int, fill: int,
                   stream: int | None = None, stride: int = STREAM_STRIDE,
                   posted: bool = False, stream_access: float = 0.0,
                   poll_max: int | None = None, overlap: bool | None = None
                   ) -> tuple[KCoh, tuple]:
    """Coherence state for a shared physical region; returns (struct, buffers to keep alive).

    ``stream``: cycles charged for a transfer or invalidation within ``stride`` lines of
    the same core's previous one (pipelined hand-offs of consecutive lines; fastpath.c
    ``handoff``). None (the default) charges every hand-off in full, the serial model.

    ``posted``: stores that take a line from another core retire into the store buffer
    instead of stalling their core; the line is visible to others once the hand-off is
    done, and a reader waits for that (fastpath.c ``fast_mem``). False (the default): every
    hand-off stalls the core that makes it.

    ``stream_access``: cycles (fractions allowed) charged for every access to the line a
    core is streaming, on top of ``stream`` per line: accesses to lines in flight hold
    load- or store-queue entries, so runs touched with narrower accesses are slower.
    Ignored without ``stream``.

    ``poll_max``: with ``posted``, a core that reads a line it read at most this many
    cycles before is polling it, and its wait for a store not yet visible is rounded up
    to whole poll periods (the read that sees the store is the loop's first at or after
    it). None: :data:`POLL_PERIOD_MAX`; 0: off.

    ``overlap``: a read that fetches a line whose previous read by the same core fetched
    a new value too, with no poll loop ended in between, is a streaming reader's: its
    load issued early, and the work since that read hides its transfer. None: on with
    ``posted``.
    """
    lines = max(1, size // 64)
    owner = (C.c_uint8 * lines)()
    sharers = (C.c_uint64 * lines)()
    ready = (C.c_uint64 * lines)()
    watch = (C.c_uint64 * lines)()
    coh = KCoh(base=base, size=size, xfer_cycles=xfer, inval_cycles=inval, fill_cycles=fill,
               owner=C.cast(owner, C.POINTER(C.c_uint8)),
               sharers=C.cast(sharers, C.POINTER(C.c_uint64)),
               stream_cycles=max(xfer, inval) if stream is None else stream,
               stream_stride=0 if stream is None else stride,
               posted=int(bool(posted)), ready=C.cast(ready, C.POINTER(C.c_uint64)),
               watch=C.cast(watch, C.POINTER(C.c_uint64)),
               stream_access=0 if stream is None else round(stream_access * 256),
               poll_max=0 if not posted else POLL_PERIOD_MAX if poll_max is None
               else poll_max, mlp=int(bool(posted) if overlap is None else overlap))
    return coh, (owner, sharers, ready, watch)
