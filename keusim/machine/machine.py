"""The emulated machine: physical RAM shared by all cores, one Unicorn instance per
core, the platform device, trap delivery and deterministic virtual time.

Scheduling (docs/architecture.md, "virtual time"): the machine always runs the
core whose model clock is lowest (ties: lowest id). It runs until its clock passes
the next-lowest core's clock plus the lookahead window ``lookahead`` (cycles), or
a trap, a device event, or its timer deadline. The C block hook ends slices
exactly at block boundaries, before the block runs, so where slices end depends
only on model clocks, never on host time or on ``quantum`` (which only bounds how
long one core runs alone between checks). Two runs of the same inputs execute the
same instructions in the same order and give bit-identical results.

The scheduler loop itself runs natively (fastpath.c ``sched_run``) and comes back to
Python only when Python has something to do (``step``); a core spinning on shared
memory is parked and fast-forwarded until another core writes what it polls, with
results identical to running it (``fast_forward``).
"""

from __future__ import annotations

import ctypes as C
import heapq
import mmap
import os
import struct
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from unicorn import UC_PROT_ALL, UcError

from keusim import abi
from keusim.errors import MachineError
from keusim.machine import fastpath, ucutil
from keusim.machine.devices import DEV_PA, DEV_SIZE, IRQ_IPI, IRQ_TIMER, PlatformDevice
from keusim.machine.pagetable import read_virtual, translate
from keusim.model.costmodel import FlatCost

INF = 1 << 64
DEFAULT_LOOKAHEAD = 20
"""Cycles a core may run past the next-lowest core's clock: within ~1% of lookahead 1 on
pingpong (docs/architecture.md, "virtual time"). The one default every front uses."""
DEFAULT_QUANTUM = 200_000
"""Cycles a core runs alone between returns to Python; never changes results."""
# A kernel logs a bounded number of records per process and channel (kernel/include/klog.h);
# far more than this means a kernel bug, and the run stops saying so rather than grow without end.
MAX_LOG_RECORDS = 1 << 20
# Console bytes kept per process: a process printing in a loop must not exhaust host memory.
# What is cut is counted and said at the end of that console, never dropped silently.
CONSOLE_LIMIT = 1 << 20
# The record types the machine reads, from kernel/include/klog.h.
KLOG_PROC, KLOG_EXIT, KLOG_FAULT = (abi.enums("klog.h")[n] for n in ("KLOG_PROC", "KLOG_EXIT", "KLOG_FAULT"))


_SKIP_SYNC: dict[str, int | None] = {}

# Decoded blocks, per process: (arch, address, bytes) -> capstone instructions. Bounded;
# cleared when full.
_DECODED: dict[tuple[str, int, bytes | None], list] = {}
_DECODED_MAX = 1 << 16


def _skip_sync_offset(arch) -> int | None:
    """Offset of Unicorn's skip-PC-sync field for this architecture (found once per
    process by keusim/machine/ucutil.py find_skip_sync_offset), or None: fall back."""
    if arch.name not in _SKIP_SYNC:
        probe = getattr(arch, "sync_probe", None)
        _SKIP_SYNC[arch.name] = (ucutil.find_skip_sync_offset(arch.new_uc, *probe)
                                 if probe else None)
    return _SKIP_SYNC[arch.name]


class RAM:
    """Guest physical memory: one anonymous mmap, mapped into every core."""

    def __init__(self, size: int):
        self.size = size
        self.buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.ptr = C.addressof(C.c_char.from_buffer(self.buf))

    def read(self, pa: int, n: int) -> bytes:
        if pa < 0 or pa + n > self.size:
            raise MachineError(f"physical read outside RAM: {pa:#x}+{n}")
        return self.buf[pa:pa + n]

    def write(self, pa: int, data: bytes) -> None:
        if pa < 0 or pa + len(data) > self.size:
            raise MachineError(f"physical write outside RAM: {pa:#x}+{len(data)}")
        self.buf[pa:pa + len(data)] = data

    def u64(self, pa: int) -> int:
        return struct.unpack_from("<Q", self.buf, pa)[0]


class Core:
    """One core: a Unicorn instance, its native clock, and its device view.

    The scheduler state (run/halt, pending IRQs, wake time, timer, resume pc) lives in the
    native struct (fastpath.c ``struct fastcore``) so that the native scheduler loop sees
    it; the properties below read and write it there.
    """

    def __init__(self, machine: Machine, cid: int):
        self.machine = machine
        self.id = cid
        self.uc = machine.arch.new_uc()
        self._trap = None
        self.kernel_traps = 0          # kernel-mode exceptions since the last user-mode one
        self.events: list[str] = []
        self.ready = False
        self.arch_state: dict = {}
        self.dev_console_pid = 0
        self.dev_console_addr = 0
        self.dev_panic_addr = 0

    def stop(self, why: str) -> None:
        """End the slice at the next block boundary (device events).

        emu_stop inside an MMIO callback leaves the PC on the store, which would
        run again on resume; the native block hook stops cleanly instead.
        """
        self.events.append(why)
        self.native.k.slice_end = 0
        self.native.k.need_py = 1

    def halt(self) -> None:
        self.state = "halt"
        self.stop("halt")

    @property
    def trap(self):
        """The architectural event a hook recorded in this slice (delivered after it)."""
        return self._trap

    @trap.setter
    def trap(self, t) -> None:
        self._trap = t
        if t is not None:
            self.native.k.need_py = 1

    @property
    def state(self) -> str:
        return "halt" if self.native.k.state == fastpath.ST_HALT else "run"

    @state.setter
    def state(self, v: str) -> None:
        self.native.k.state = fastpath.ST_HALT if v == "halt" else fastpath.ST_RUN

    @property
    def irq(self) -> int:
        """Pending IRQ_* bits."""
        return self.native.k.irq

    @irq.setter
    def irq(self, v: int) -> None:
        self.native.k.irq = v

    @property
    def wake_at(self) -> int:
        """The earliest model time an IPI can wake it."""
        return self.native.k.wake_at

    @wake_at.setter
    def wake_at(self, v: int) -> None:
        self.native.k.wake_at = v

    @property
    def timer(self) -> int:
        """Absolute timer deadline in model cycles, 0 = off."""
        return self.native.k.timer

    @timer.setter
    def timer(self, v: int) -> None:
        self.native.k.timer = v

    @property
    def pc(self) -> int:
        """Where the core resumes."""
        return self.native.k.pc

    @pc.setter
    def pc(self, v: int) -> None:
        self.native.k.pc = v

    @property
    def clock(self) -> int:
        return self.native.k.clock

    @property
    def idle(self) -> int:
        """Model cycles spent halted (waiting for an IPI or timer)."""
        return self.native.k.idle

    @idle.setter
    def idle(self, v: int) -> None:
        self.native.k.idle = v

    @property
    def syscalls(self) -> int:
        """System calls this core delivered to the kernel (natively or from Python)."""
        return self.native.k.syscalls

    def next_time(self) -> int:
        """When this core next does something, in model cycles (INF: never by itself)."""
        if self.state == "run":
            return self.clock
        if self.state == "halt":
            if self.irq:
                return max(self.clock, self.wake_at)
            if self.timer:
                return max(self.clock, self.timer)
        return INF


@dataclass
class MachineResult:
    """How a run ended. ``message`` names the core, the image and symbol, and the
    process (name and pid) involved, for every status but poweroff."""

    status: str                     # poweroff | panic | deadlock | timeout | error
    message: str = ""
    consoles: dict[int, bytes] = field(default_factory=dict)
    klog: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    core: int | None = None         # the core that stopped the run, if one did
    running: tuple[int, ...] = ()   # pids that had neither exited nor faulted


def _sched_flag(field: str, doc: str) -> property:
    """A Machine property for an on/off field of the native scheduler (fastpath.Sched)."""
    def get(self) -> bool:
        return bool(getattr(self._sched, field))

    def set(self, on: bool) -> None:
        setattr(self._sched, field, int(bool(on)))
    return property(get, set, doc=doc)


class Machine:
    """Cores, RAM, device and scheduler.

    Args:
        arch: a backend object from :mod:`keusim.arch`.
        ncores: number of cores.
        ram_size: bytes of physical RAM.
        cost: block cost model (``block(insns) -> BlockCost``).
        lookahead: cycles a core may run past the next-lowest core's clock (default 20:
            within ~1% of the converged result, docs/architecture.md "virtual time").
        quantum: cycles a core runs alone between returns to Python (no effect on results).
        ipi_cycles: latency of an inter-processor interrupt.
        shared: (base, size) of the physical region whose cache lines are modelled.
        coherence: (transfer, invalidate, fill) cycles for the shared-line model.
        coherence_stream: cycles per hand-off that continues a core's run of nearby lines
            (pipelined transfers; ``Profile.coherence_stream``); None charges all in full.
        coherence_posted: stores that take a line from another core retire into the store
            buffer instead of stalling; readers wait until the line is visible
            (``Profile.coherence_posted``). False: every hand-off stalls its core.
        coherence_stream_access: cycles (fractions allowed) per access to the line a core
            is streaming, on top of ``coherence_stream`` per line
            (``Profile.coherence_stream_access``); 0: a run's line costs the same however
            it is touched.
        coherence_poll_max: with ``coherence_posted``, a read of a line the core read at
            most this many cycles before is a poll, and its wait for a store not yet
            visible is rounded up to whole poll periods. None:
            ``fastpath.POLL_PERIOD_MAX``; 0: off.
        exception_cycles: hardware cost of exception/interrupt entry, charged when the
            machine delivers one (syscall/svc are costed as instructions by the model).
        fast_forward: park a core that spins on shared memory until another core writes
            what it polls (docs/architecture.md, "virtual time"); results are identical
            with it off, only slower.
    """

    def __init__(self, arch, ncores: int, ram_size: int, cost=None,
                 lookahead: int = DEFAULT_LOOKAHEAD, quantum: int = DEFAULT_QUANTUM, ipi_cycles: int = 0,
                 shared: tuple[int, int] | None = None,
                 coherence: tuple[int, int, int] = (0, 0, 0), exception_cycles: int = 0,
                 coherence_stream: int | None = None, coherence_posted: bool = False,
                 coherence_stream_access: float = 0.0,
                 coherence_poll_max: int | None = None,
                 fast_forward: bool = True):
        self.arch = arch
        self.ram = RAM(ram_size)
        self.cost = cost or FlatCost()
        self.device = PlatformDevice(self)
        self.consoles: dict[int, bytearray] = {}
        self.console_cut: dict[int, int] = {}   # pid -> console bytes past CONSOLE_LIMIT
        # Event records the kernel handed to the report device, in order (never dropped).
        self.klog: list[tuple[int, int, int, int, int]] = []
        self.result: MachineResult | None = None
        self.symbolize: Callable[[int], str] = lambda pc: f"{pc:#x}"
        # -- debugger hook (keusim/machine/gdb.py): None except under `run --gdb` ----
        self.debugger = None
        # Set by the loader: process names and images, in pid order (pid = index + 1).
        self.proc_names: list[str] = []
        self.proc_images: list = []
        self._md = arch.capstone()
        self._coh_keep = None
        coh = None
        if shared:
            coh, self._coh_keep = fastpath.make_coherence(shared[0], shared[1], *coherence,
                                                       stream=coherence_stream,
                                                       posted=coherence_posted,
                                                       stream_access=coherence_stream_access,
                                                       poll_max=coherence_poll_max)
        self._coh = coh
        if ncores > fastpath.MAX_CORES:
            raise MachineError(f"{ncores} cores requested; the machine supports at most "
                               f"{fastpath.MAX_CORES}")
        self.fast_forward = fast_forward
        # Spin loops that may store are parked only after a recorded iteration proved their
        # stores silent, which needs a store hook over all RAM for that iteration; with
        # keusim's Unicorn (fastpath.HOOKED_PAGES) adding it empties the emulated TLB, so
        # such loops spin instead. Exact either way (tests/test_fastforward.py).
        self._park_store_loops = not fastpath.HOOKED_PAGES
        # The native scheduler (fastpath.c sched_run): one per machine.
        s = self._sched = fastpath.Sched()
        s.ncores = ncores
        s.lookahead, s.quantum, s.max_cycles = lookahead, quantum, fastpath.INF
        s.yield_at = fastpath.INF
        s.ff = int(bool(fast_forward) and coh is not None)
        s.inline_ok = 1
        s.ram, s.ram_size = self.ram.ptr, ram_size
        s.device_next = fastpath.INF
        s.check_stores = 1
        s.native_traps = 1
        # The native wake-up path (fastpath.c wake_native, plat_read/plat_write);
        # KEUSIM_NATIVE_IRQS=0 turns it off (speed comparisons, bench/).
        s.native_irqs = int(os.environ.get("KEUSIM_NATIVE_IRQS", "") != "0")
        # The nested core switch (fastpath.c sched_continue): the next core's slice runs
        # inside the current core's block hook. KEUSIM_NESTED=0 turns it off (bench/).
        s.nest = int(os.environ.get("KEUSIM_NESTED", "") != "0")
        # The resident-core switch (fastpath.c fiber_wait), where the host has it:
        # every core runs on a fiber of its own and waits in its block hook while another
        # core runs. KEUSIM_RESIDENT=0 turns it off (bench/).
        s.fibers = int(fastpath.resident_cores_available()
                       and os.environ.get("KEUSIM_RESIDENT", "") != "0")
        self.ipi_cycles = ipi_cycles
        self.exception_cycles = exception_cycles
        self._sched_ref = C.byref(s)
        # The fibers' stacks (allocated by the first sched_run that uses them).
        self._free_fibers = weakref.finalize(self, fastpath.lib().sched_free, self._sched_ref)
        self._trace = bool(os.environ.get("KEUSIM_TRACE_STEPS"))
        # Devices beyond the platform device (keusim/machine/nic.py): their timed events
        # (model cycle, order added, callback) and the models the report lists.
        self._timed: list[tuple[int, int, Callable[[int], None]]] = []
        self._timed_n = 0
        self._running: Core | None = None
        self.extra_devices: dict[str, object] = {}
        self.cores = [Core(self, i) for i in range(ncores)]
        for c in self.cores:
            self._attach(c)
            s.core[c.id] = C.pointer(c.native.k)
            c.native.k.sched = C.addressof(s)
            c.native.set_spin_regs(*self.arch.spin_regs)
        # The two shortcuts in Unicorn's slow memory path (docs/unicorn.md); never change
        # results. KEUSIM_PLAIN_UNICORN=1 turns both off (speed comparisons, bench/).
        plain = os.environ.get("KEUSIM_PLAIN_UNICORN", "") not in ("", "0")
        self.skip_pc_sync = not plain
        self.cache_ram_lookup = not plain

    @property
    def lookahead(self) -> int:
        """Cycles a core may run past the next-lowest core's clock."""
        return self._sched.lookahead

    @lookahead.setter
    def lookahead(self, v: int) -> None:
        self._sched.lookahead = v

    @property
    def quantum(self) -> int:
        """Cycles a core runs alone between returns to Python; never changes results."""
        return self._sched.quantum

    @quantum.setter
    def quantum(self, v: int) -> None:
        self._sched.quantum = max(1, v)

    @property
    def next_device_event(self) -> int:
        """Model time of the next timed device event (INF: none). No slice runs past it, and
        the native loop returns to Python once the next core to run would start at or after
        it: the place for a timed device model to act (and then move it on)."""
        return self._sched.device_next

    @next_device_event.setter
    def next_device_event(self, t: int) -> None:
        self._sched.device_next = min(t, fastpath.INF)

    native_traps = _sched_flag(
        "native_traps",
        """System calls are delivered by native code (keusim/arch/<arch>_trap.c); False
        delivers them in Python. Results are identical either way.""")
    native_irqs = _sched_flag(
        "native_irqs",
        """A halted core is woken and its interrupt delivered by native code when it is in
        the kernel (fastpath.c ``wake_native``, keusim/arch/<arch>_trap.c), and the platform
        device's PLAT_IPI, PLAT_WAIT and PLAT_IRQ_CAUSE are native registers; False does all
        of it in Python. Results are identical either way.""")
    nested_switch = _sched_flag(
        "nest",
        """The nested core switch (fastpath.c ``sched_continue``): at a slice end, the next
        core's slice runs inside the current core's block hook instead of after a return
        from its ``uc_emu_start``. Host speed only: reports are byte-identical either way
        (tests/test_nested_switch.py). Default on; ``KEUSIM_NESTED=0`` turns it off.""")

    @property
    def resident_cores(self) -> bool:
        """The resident-core switch (fastpath.c ``fiber_wait``): each core's
        ``uc_emu_start`` runs on a fiber of its own, and at a slice end the core waits in
        its block hook while the next core runs, instead of leaving ``uc_emu_start``.
        Supersedes ``nested_switch`` when on. Host speed only: reports are byte-identical
        either way (tests/test_nested_switch.py). Default on where the host has it
        (``resident_cores_available``); ``KEUSIM_RESIDENT=0`` turns it off."""
        return bool(self._sched.fibers)

    @resident_cores.setter
    def resident_cores(self, on: bool) -> None:
        if on and not fastpath.resident_cores_available():
            raise MachineError("the resident-core switch needs an x86-64 host and Python "
                               "older than 3.14 (resident_cores_available()); leave "
                               "Machine.resident_cores off here")
        self._sched.fibers = int(bool(on))

    @property
    def ipi_cycles(self) -> int:
        """Latency of an inter-processor interrupt, in model cycles (held by the native
        scheduler, which charges it on the native path)."""
        return self._sched.ipi_cycles

    @ipi_cycles.setter
    def ipi_cycles(self, v: int) -> None:
        self._sched.ipi_cycles = v

    @property
    def exception_cycles(self) -> int:
        """Hardware cost of exception/interrupt entry, charged at delivery (held by the
        native scheduler)."""
        return self._sched.exception_cycles

    @exception_cycles.setter
    def exception_cycles(self, v: int) -> None:
        self._sched.exception_cycles = v

    @property
    def skip_pc_sync(self) -> bool:
        """Unicorn does not rebuild the guest PC before each memory-hook callback (the
        shared-pool coherence hook's accesses), except in blocks marked BF_SYNC
        (fastpath.c fast_block, docs/unicorn.md). False, or when the private field cannot
        be located in this Unicorn build, it does, as plain Unicorn. Results are identical
        either way; only the host time differs."""
        return bool(self.cores) and bool(self.cores[0].native.k.sync_skip)

    @skip_pc_sync.setter
    def skip_pc_sync(self, on: bool) -> None:
        off = _skip_sync_offset(self.arch) if on else None
        for c in self.cores:
            c.native.k.sync_skip = None if off is None else ucutil.uc_handle(c.uc) + off

    @property
    def cache_ram_lookup(self) -> bool:
        """Unicorn's per-access lookup of the memory region of a RAM address is answered
        from a cache (fastpath.c mm_patch, docs/unicorn.md). False, or when the private
        field cannot be located, every lookup is Unicorn's own. Results are identical
        either way; only the host time differs."""
        return bool(self.cores) and all(c.native._mm is not None for c in self.cores)

    @cache_ram_lookup.setter
    def cache_ram_lookup(self, on: bool) -> None:
        for c in self.cores:
            c.native.cache_ram_lookup(on, self.ram.size)

    @property
    def max_cycles(self) -> int:
        """Model-time budget of the run: it ends with status timeout when every core
        has reached it."""
        return self._max_cycles

    @max_cycles.setter
    def max_cycles(self, v: int) -> None:
        self._max_cycles = v
        self._sched.max_cycles = min(v, fastpath.INF)

    @property
    def park_store_loops(self) -> bool:
        """Whether spin loops that contain stores may be fast-forwarded (see __init__)."""
        return self._park_store_loops

    @park_store_loops.setter
    def park_store_loops(self, v: bool) -> None:
        self._park_store_loops = bool(v)
        for core in self.cores:
            core.native.spin_storeless(not v)

    # -- set-up ---------------------------------------------------------------
    def _attach(self, core: Core) -> None:
        uc = core.uc
        # No stop address: emu_start would translate one at every call with the
        # current privilege, and a failing translation leaves a silent #PF in QEMU's
        # exception-in-flight state (x86-64), turning the next real fault into #DF.
        # With exits enabled and an empty exit list nothing is translated; slices end
        # through the native block hook.
        uc.ctl_exits_enabled(True)
        uc.ctl_set_exits([])
        uc.mem_map_ptr(0, self.ram.size, UC_PROT_ALL, self.ram.ptr)
        core.native = fastpath.NativeCore(uc, core.id, self.arch.kernbase,
                                       lambda cid, va, size, root: self._miss(core, va, size),
                                       self._coh)
        # The platform device: its hot registers natively (native_irqs), the rest here,
        # with the offsets and values Unicorn passes (no 8-byte reassembly, as before).
        dev = self.device
        core.native.map_platform(DEV_PA, DEV_SIZE,
                                 lambda off, size: dev.read(core, off),
                                 lambda off, size, value: dev.write(core, off, value))
        if self._coh is not None:
            core.native.hook_shared(self._coh.base, self._coh.size)
            core.native.spin_storeless(not self.park_store_loops)
        self.arch.install(core)

    def watch_root_switch(self, va: int) -> None:
        """Track user MMU roots at the kernel's root-switch label (cost-table keys)."""
        for core in self.cores:
            core.native.hook_root(va, self.arch.root_reg, self.arch.root_mask)

    def _miss(self, core: Core, va: int, size: int) -> int:
        # Called from C: an exception here would be swallowed by ctypes and the block
        # charged nothing, so end the run with it instead.
        try:
            return self._block_cost(core, va, size)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            self._stop(core, "error", f"costing the block at {va:#x} failed: {e!r}")
            return fastpath.MISS_RETRANSLATE

    def _block_cost(self, core: Core, va: int, size: int) -> int:
        code = self.read_virtual(core, va, size) if size else None
        key = (self.arch.name, va, code)
        memo = _DECODED.get(key)
        if memo is None:
            # Decoding is a pure function of the address and bytes: every new machine (each
            # run of an experiment) misses on the same blocks, and capstone was most of
            # the cost of a miss.
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            memo = _DECODED[key] = list(self._md.disasm(code, va)) if code else []
        insns = memo
        if va < self.arch.kernbase and self.arch.hook_block(core, insns):
            # The backend put an instruction hook in this user block (an exception
            # Unicorn would not raise before the instruction): drop the block's
            # translation so the hook is compiled in, and stop before it runs.
            core.uc.ctl_remove_cache(va, va + max(size, 1))
            return fastpath.MISS_RETRANSLATE
        bc = self.cost.block(insns)
        if va < self.arch.kernbase and insns:
            core.native.k.miss_flags = self.arch.block_flags(insns)
        return (min(bc.fixed, 0xFFFFFFFF) << 32) | min(max(bc.insns, 0), 0xFFFFFFFF)

    # -- services for the device and the arch backends --------------------------
    def add_mmio(self, pa: int, size: int, read: Callable[[Core, int], int],
                 write: Callable[[Core, int, int], None]) -> None:
        """Map a device's 64-bit registers at physical [pa, pa+size) on every core:
        ``read(core, offset) -> value`` and ``write(core, offset, value)``.

        Unicorn splits an 8-byte access to MMIO into two 4-byte ones, low half first
        (observed on both architectures). The device sees whole registers: a read of
        the low half reads the register (side effects once) and keeps the high half for
        the read that follows; a write is passed on when its high half arrives.
        """
        half: dict[tuple[int, int], int] = {}

        def rd_whole(c: Core, off: int, sz: int) -> int:
            if sz == 8:
                return read(c, off)
            if off & 4:
                return half.pop((c.id, off), 0)
            v = read(c, off)
            half[(c.id, off + 4)] = (v >> 32) & 0xFFFFFFFF
            return v & 0xFFFFFFFF

        def wr_whole(c: Core, off: int, sz: int, v: int) -> None:
            if sz == 8:
                write(c, off, v)
            elif off & 4:
                write(c, off - 4, (v & 0xFFFFFFFF) << 32 | half.pop((c.id, off - 4), 0))
            else:
                half[(c.id, off)] = v & 0xFFFFFFFF

        # While a device acts, the core that touched it is the running one: add_timed
        # bounds its slice and raise_irq stops it.
        def rd(c: Core, off: int, sz: int) -> int:
            self._running = c
            try:
                return rd_whole(c, off, sz)
            finally:
                self._running = None

        def wr(c: Core, off: int, sz: int, v: int) -> None:
            self._running = c
            try:
                wr_whole(c, off, sz, v)
            finally:
                self._running = None

        for core in self.cores:
            core.uc.mmio_map(pa, size, lambda uc, off, sz, ud, c=core: rd(c, off, sz), None,
                             lambda uc, off, sz, v, ud, c=core: wr(c, off, sz, v), None)

    def add_timed(self, at: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(at)`` when model time reaches ``at`` (a device event), before
        any core runs past it; events at the same time fire in the order added."""
        heapq.heappush(self._timed, (at, self._timed_n, callback))
        self._timed_n += 1
        self.next_device_event = self._timed[0][0]
        run = self._running
        if run is not None and at < run.native.k.slice_end:
            run.native.k.slice_end = max(at, run.clock + 1)

    def raise_irq(self, target: int, bit: int, at: int) -> None:
        """A device raises interrupt cause ``bit`` (IRQ_*) on core ``target`` at model time ``at``."""
        if not 0 <= target < len(self.cores):
            return
        t = self.cores[target]
        t.irq |= bit
        t.wake_at = max(t.wake_at, at)
        if t is self._running:
            t.stop("irq")

    def console_out(self, pid: int, data: bytes) -> None:
        buf = self.consoles.setdefault(pid, bytearray())
        room = CONSOLE_LIMIT - len(buf)
        if len(data) > room:
            self.console_cut[pid] = self.console_cut.get(pid, 0) + len(data) - max(room, 0)
            data = data[:max(room, 0)]
        buf.extend(data)

    def send_ipi(self, src: Core, target: int) -> None:
        if not 0 <= target < len(self.cores):
            return
        t = self.cores[target]
        t.irq |= IRQ_IPI
        t.wake_at = max(t.wake_at, src.clock + self.ipi_cycles)
        src.stop("ipi")

    def log_record(self, core: Core, pa: int) -> None:
        """PLAT_LOG: copy one 32-byte event record (kernel/include/klog.h) out of RAM now."""
        try:
            rec = struct.unpack("<IIQQQ", self.ram.read(pa, 32))
        except MachineError:
            self._stop(core, "error", f"the kernel logged a record at {pa:#x}, outside RAM")
            return
        if len(self.klog) >= MAX_LOG_RECORDS:
            self._stop(core, "error", f"the kernel logged more than {MAX_LOG_RECORDS} records; "
                       f"every record type is bounded per process, so this is a kernel bug")
            return
        self.klog.append(rec)

    def power_off(self, core: Core, status: int) -> None:
        if self.result is None:
            if status == 0:
                self.result = MachineResult("poweroff", core=core.id)
            else:
                self._stop(core, "error", f"kernel power-off status {status}")
        core.stop("poweroff")

    def kernel_panic(self, core: Core, msg: str) -> None:
        self._stop(core, "panic", f"kernel panic: {msg}")
        core.stop("panic")

    def _stop(self, core: Core, status: str, what: str) -> None:
        """End the run (first cause wins), naming where core was."""
        if self.result is None:
            self.result = MachineResult(status, f"{what} ({self.describe(core)})", core=core.id)

    def _pid_of_root(self, root: int) -> int | None:
        for typ, pid, a, _b, _c in self.klog:
            if typ == KLOG_PROC and a == root:
                return pid
        return None

    def _proc_label(self, pid: int | None) -> str:
        if pid is None:
            return "no process"
        name = self.proc_names[pid - 1] if 0 < pid <= len(self.proc_names) else "?"
        return f"process {name} (pid {pid})"

    def describe(self, core: Core) -> str:
        """Where core is: core id, privilege, image and symbol of its pc, and the
        process whose address space is loaded (every image starts at 0x400000, so a
        bare pc is ambiguous)."""
        pc = self.arch.pc(core)
        user = self.arch.user_mode(core)
        root = self.arch.read_root(core.uc) if user else core.native.k.root
        pid = self._pid_of_root(root) if root else None
        if user:
            img = (self.proc_images[pid - 1] if pid and 0 < pid <= len(self.proc_images)
                   else None)
            sym = img.where(pc) if img is not None else f"{pc:#x}"
            return f"core {core.id}, user mode at {sym} (pc {pc:#x}), {self._proc_label(pid)}"
        return (f"core {core.id}, kernel at {self.symbolize(pc)} (pc {pc:#x}), "
                f"{'running ' if pid else ''}{self._proc_label(pid)}")

    def unfinished(self) -> tuple[int, ...]:
        """Pids that have neither exited nor been killed (from the kernel's records)."""
        done = {pid for typ, pid, *_ in self.klog if typ in (KLOG_EXIT, KLOG_FAULT)}
        return tuple(p for p in range(1, len(self.proc_names) + 1) if p not in done)

    def read_virtual(self, core: Core, va: int, n: int) -> bytes | None:
        """n bytes at va in the core's current address space (page-table walk in RAM)."""
        return read_virtual(self.ram, self.arch.pte, self.arch.root_for(core, va), va, n)

    def user_page_present(self, core: Core, va: int) -> bool:
        return translate(self.ram, self.arch.pte, self.arch.root_for(core, va), va) is not None

    # -- running ----------------------------------------------------------------
    def _deliver_irq(self, core: Core) -> None:
        cause = "timer" if core.irq & IRQ_TIMER else "ipi"
        core.native.k.clock += self.exception_cycles
        self.arch.deliver(core, self.arch.interrupt_trap(cause))

    def step(self) -> bool:
        """Run the machine until Python has something to do: at least one slice, of the
        lowest-clock core, and as many more as the native scheduler can run on its own
        (fastpath.c ``sched_run``). Returns False when the run is over.

        With a debugger attached or ``KEUSIM_TRACE_STEPS`` set, exactly one slice (and no
        fast-forward), so that each can be inspected.
        """
        if self.result is not None:
            return False
        s = self._sched
        single = self.debugger is not None or self._trace
        s.inline_ok = 0 if single else 1
        if single:
            s.ff = 0
        else:
            for c in self.cores:
                c.events.clear()
            rc = fastpath.lib().sched_run(self._sched_ref)
            if rc == fastpath.SCHED_YIELD:
                # The loop ran at least one slice and stopped only at the quantum's yield
                # point: nothing for Python to do (the next step goes on natively).
                return True
            if rc >= 0:
                core = self.cores[rc]
                err, s.err = s.err, 0
                return self._finish_slice(core, UcError(err) if err else None)
        return self._python_slice()

    def _python_slice(self) -> bool:
        """One slice started from Python: a core waking from halt, an interrupt to
        deliver, the run's end (deadlock, timeout), or single-slice mode."""
        times = [c.next_time() for c in self.cores]
        t = min(times)
        te = self._timed[0][0] if self._timed else INF
        if te <= t and te < self.max_cycles:    # a device event comes first
            _, _, cb = heapq.heappop(self._timed)
            self.next_device_event = self._timed[0][0] if self._timed else fastpath.INF
            cb(te)
            return self.result is None
        t = min(t, te)
        if t >= INF:
            left = self.unfinished()
            who = ", ".join(f"{self.proc_names[p - 1]} (pid {p})" for p in left) or "none"
            self.result = MachineResult("deadlock", "every core is idle and no interrupt is "
                                        f"pending: the live processes wait for each other: {who}")
            return False
        if t >= self.max_cycles:
            left = self.unfinished()
            who = ", ".join(f"{self.proc_names[p - 1]} (pid {p})" for p in left) or "none"
            where = "; ".join(self.describe(c) for c in self.cores)
            self.result = MachineResult(
                "timeout", f"model-time budget max_cycles={self.max_cycles} used up; still "
                f"running: {who} (raise max_cycles if they were making progress). Where the "
                f"cores were: {where}")
            return False
        core = self.cores[times.index(t)]
        horizon = min((x for i, x in enumerate(times) if i != core.id), default=INF)
        k = core.native.k
        woke = core.state == "halt"
        if woke:
            core.idle += max(0, t - k.clock)
            k.clock = t
            core.state = "run"
        if core.timer and k.clock >= core.timer:
            core.irq |= IRQ_TIMER
            core.timer = 0
        if core.irq and (woke or self.arch.user_mode(core)):
            self._deliver_irq(core)
        # Still pending (the core is in the kernel, interrupts masked): take it at the
        # first user instruction. Without this a process that traps into the kernel
        # at every slice end (a system call in a loop) would never see its timer.
        k.user_stop = 1 if core.irq else 0
        end = min(horizon + self.lookahead if horizon < INF else INF, k.clock + self.quantum,
                  self.max_cycles, self.next_device_event)
        if core.timer:
            end = min(end, core.timer)
        end = min(end, te)
        k.slice_end = max(end, k.clock + 1)
        core.events.clear()
        core.trap = None
        k.need_py = 0
        self._sched.yield_at = min(k.clock + self.quantum, fastpath.INF)
        err = None
        self._running = core
        try:
            core.uc.emu_start(core.pc, 0)
        except UcError as e:
            err = e
        return self._finish_slice(core, err)

    def _finish_slice(self, core: Core, err: UcError | None) -> bool:
        """After a slice of core: turn an emulator error into its trap, take the kernel's
        PLAT_READY, deliver the trap a hook recorded. Returns False when the run is over."""
        if self._sched.nparked:
            # The core parked in a slice Python started: Python sees only real cores.
            fastpath.lib().sched_wake_all(self._sched_ref)
        exc = core.uc._hook_exception
        if exc is not None:
            core.uc._hook_exception = None
            raise exc
        if core.native.k.trap_pending:
            # A system call a native hook stopped at, not delivered natively (single-slice
            # mode, or the kernel not ready for it): Python delivers it. An exception a
            # hook recorded first wins.
            core.native.k.trap_pending = 0
            if core.trap is None:
                core.trap = self.arch.pending_trap(core)
        if err is not None:
            # Unicorn reports some architectural exceptions as errors (an undefined
            # opcode: UC_ERR_INSN_INVALID); the backend turns those into the trap the
            # CPU would take. Anything else is a machine bug and ends the run.
            # A trap a hook recorded earlier in the same block came first and wins.
            if core.trap is None:
                trap = self.arch.trap_from_error(core, err)
                if trap is None:
                    self._stop(core, "error", f"emulator stopped with {err}")
                    return False
                core.trap = trap
        self._running = None
        core.pc = self.arch.pc(core)
        if "ready" in core.events:
            self.arch.kernel_ready(core)
        if core.trap is not None:
            trap, core.trap = core.trap, None
            if trap.kind == "syscall":
                core.native.k.syscalls += 1
            else:
                core.native.k.clock += self.exception_cycles
                if self.arch.user_mode(core):
                    core.kernel_traps = 0
                else:
                    # A kernel-mode exception goes to the kernel's own handler, which
                    # decides (ours panics). One that keeps faulting in its handler
                    # would loop: after three the machine stops, as a CPU would with a
                    # double and then triple fault.
                    core.kernel_traps += 1
                    if core.kernel_traps > 3:
                        self._stop(core, "panic", "kernel exception while handling a kernel "
                                   f"exception (triple fault): {self.arch.fault_summary(core, trap)}")
                        return False
            try:
                self.arch.deliver(core, trap)
            except MachineError as e:
                self._stop(core, "panic", f"exception entry failed ({e}): "
                           f"{self.arch.fault_summary(core, trap)}")
                return False
        return self.result is None

    def run(self, max_cycles: int = 10**10, progress: Callable[[int], None] | None = None
            ) -> MachineResult:
        """Run until power-off, panic, deadlock or max_cycles.

        With ``KEUSIM_TRACE_STEPS=1`` in the environment, every slice prints one line
        per core (state, symbolized pc, clock, events) to stderr: a debugging aid.
        """
        self.max_cycles = max_cycles
        n = 0
        trace = os.environ.get("KEUSIM_TRACE_STEPS")
        # -- debugger hook (keusim/machine/gdb.py): stops at boot, serves gdb between
        # slices, reports the end. Without --gdb this is one None test per slice.
        dbg = self.debugger
        if dbg is not None:
            dbg.start(self)
        while self.step():
            if dbg is not None:
                dbg.slice_ended(self)
            if trace:
                print(" | ".join(f"c{c.id} {c.state} {self.symbolize(c.pc)} t={c.clock} "
                                 f"{','.join(c.events)}" for c in self.cores), file=sys.stderr)
            n += 1
            # A step is at least one slice and at most `quantum` cycles of native loop.
            if progress and n % 64 == 0:
                progress(min(c.clock for c in self.cores))
        if dbg is not None:
            dbg.finished(self, self.result)
        return self.finish()

    def finish(self) -> MachineResult:
        """Fill the result of a finished run with consoles, records and unfinished pids."""
        res = self.result
        res.consoles = {pid: bytes(b) + (f"\n[keusim: console cut at {CONSOLE_LIMIT} bytes; "
                                         f"{self.console_cut[pid]} more not kept]\n".encode()
                                         if pid in self.console_cut else b"")
                        for pid, b in sorted(self.consoles.items())}
        res.klog = list(self.klog)
        res.running = self.unfinished()
        return res

    def close(self) -> None:
        self._free_fibers()
        for c in self.cores:
            c.native.close()
