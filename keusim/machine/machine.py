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
"""

from __future__ import annotations

import ctypes as C
import mmap
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from unicorn import UC_HOOK_CODE, UC_PROT_ALL, UcError

from keusim.errors import MachineError
from keusim.machine import fastpath
from keusim.machine.devices import DEV_PA, DEV_SIZE, IRQ_IPI, IRQ_TIMER, PlatformDevice
from keusim.machine.pagetable import read_virtual, translate
from keusim.model.costmodel import FlatCost

INF = 1 << 64
DEFAULT_LOOKAHEAD = 20
"""Cycles a core may run past the next-lowest core's clock: within ~1% of lookahead 1 on
pingpong (docs/architecture.md, "virtual time"). The one default every front uses."""
DEFAULT_QUANTUM = 200_000
"""Cycles a core runs alone between returns to Python; never changes results."""
NKLOG = 256  # kernel/include/param.h: records in the kernel's event log


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
    """One core: a Unicorn instance, its native clock, and its device view."""

    def __init__(self, machine: Machine, cid: int):
        self.machine = machine
        self.id = cid
        self.uc = machine.arch.new_uc()
        self.pc = 0
        self.state = "run"            # run | halt
        self.irq = 0                  # pending IRQ_* bits
        self.wake_at = 0              # earliest model time an IPI can wake it
        self.timer = 0                # absolute deadline, 0 = off
        self.idle = 0                 # model cycles spent halted (waiting for an IPI or timer)
        self.trap = None
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

    def halt(self) -> None:
        self.state = "halt"
        self.stop("halt")

    @property
    def clock(self) -> int:
        return self.native.k.clock

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
    status: str                     # poweroff | panic | deadlock | timeout | error
    message: str = ""
    consoles: dict[int, bytes] = field(default_factory=dict)
    klog: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    klog_dropped: int = 0


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
        exception_cycles: hardware cost of exception/interrupt entry, charged when the
            machine delivers one (syscall/svc are costed as instructions by the model).
    """

    def __init__(self, arch, ncores: int, ram_size: int, cost=None,
                 lookahead: int = DEFAULT_LOOKAHEAD, quantum: int = DEFAULT_QUANTUM, ipi_cycles: int = 2000,
                 shared: tuple[int, int] | None = None,
                 coherence: tuple[int, int, int] = (100, 60, 0), exception_cycles: int = 0,
                 coherence_stream: int | None = None, coherence_posted: bool = False):
        self.arch = arch
        self.ram = RAM(ram_size)
        self.cost = cost or FlatCost()
        self.lookahead = lookahead
        self.quantum = quantum
        self.ipi_cycles = ipi_cycles
        self.exception_cycles = exception_cycles
        self.device = PlatformDevice(self)
        self.consoles: dict[int, bytearray] = {}
        self.klog_pa = 0
        self.result: MachineResult | None = None
        self.symbolize: Callable[[int], str] = lambda pc: f"{pc:#x}"
        # -- debugger hook (keusim/machine/gdb.py): None except under `run --gdb` ----
        self.debugger = None
        self._md = arch.capstone()
        self._coh_keep = None
        coh = None
        if shared:
            coh, self._coh_keep = fastpath.make_coherence(shared[0], shared[1], *coherence,
                                                       stream=coherence_stream,
                                                       posted=coherence_posted)
        self._coh = coh
        self.cores = [Core(self, i) for i in range(ncores)]
        for c in self.cores:
            self._attach(c)

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
        dev = self.device
        uc.mmio_map(DEV_PA, DEV_SIZE,
                    lambda uc, off, size, ud: dev.read(core, off), None,
                    lambda uc, off, size, value, ud: dev.write(core, off, value), None)
        core.native = fastpath.NativeCore(uc, core.id, self.arch.kernbase,
                                       lambda cid, va, size, root: self._miss(core, va, size),
                                       self._coh)
        if self._coh is not None:
            core.native.hook_shared(self._coh.base, self._coh.size)
        self.arch.install(core)

    def watch_root_switch(self, va: int) -> None:
        """Track user MMU roots at the kernel's root-switch label (cost-table keys)."""
        def on_switch(uc, addr, size, core):
            core.native.k.root = self.arch.read_root(uc)

        for core in self.cores:
            core.uc.hook_add(UC_HOOK_CODE, on_switch, core, va, va)

    def _miss(self, core: Core, va: int, size: int) -> int:
        code = self.read_virtual(core, va, size) if size else None
        insns = list(self._md.disasm(code, va)) if code else []
        bc = self.cost.block(insns)
        return (min(bc.fixed, 0xFFFFFFFF) << 32) | max(bc.insns, 0)

    # -- services for the device and the arch backends --------------------------
    def console_out(self, pid: int, data: bytes) -> None:
        self.consoles.setdefault(pid, bytearray()).extend(data)

    def send_ipi(self, src: Core, target: int) -> None:
        if not 0 <= target < len(self.cores):
            return
        t = self.cores[target]
        t.irq |= IRQ_IPI
        t.wake_at = max(t.wake_at, src.clock + self.ipi_cycles)
        src.stop("ipi")

    def power_off(self, core: Core, status: int) -> None:
        if self.result is None:
            self.result = MachineResult("poweroff" if status == 0 else "error",
                                        "" if status == 0 else f"kernel power-off status {status}")
        core.stop("poweroff")

    def kernel_panic(self, core: Core, msg: str) -> None:
        if self.result is None:
            self.result = MachineResult("panic", f"kernel panic on core {core.id}: {msg}")
        core.stop("panic")

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
        """Run one slice of the lowest-clock core. Returns False when the run is over."""
        if self.result is not None:
            return False
        times = [c.next_time() for c in self.cores]
        t = min(times)
        if t >= INF:
            self.result = MachineResult("deadlock", "every core is idle and no interrupt is "
                                        "pending: the live processes wait for each other")
            return False
        if t >= self.max_cycles:
            self.result = MachineResult("timeout", f"model time passed max_cycles="
                                        f"{self.max_cycles} (raise it, or check for a hung guest)")
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
        end = min(horizon + self.lookahead if horizon < INF else INF, k.clock + self.quantum,
                  self.max_cycles)
        if core.timer:
            end = min(end, core.timer)
        k.slice_end = max(end, k.clock + 1)
        core.events.clear()
        core.trap = None
        try:
            core.uc.emu_start(core.pc, 0)
        except UcError as e:
            pc = self.arch.pc(core)
            self.result = MachineResult("error", f"core {core.id}: emulator stopped with {e} at "
                                        f"{self.symbolize(pc)}")
            return False
        core.pc = self.arch.pc(core)
        if "ready" in core.events:
            self.arch.kernel_ready(core)
        if core.trap is not None:
            trap, core.trap = core.trap, None
            if trap.kind != "syscall" and not self.arch.user_mode(core):
                self.result = MachineResult(
                    "panic", f"kernel exception on core {core.id}: "
                    f"{self.arch.fault_summary(core, trap)} in {self.symbolize(core.pc)}")
                return False
            if trap.kind != "syscall":
                core.native.k.clock += self.exception_cycles
            self.arch.deliver(core, trap)
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
            if progress and n % 4096 == 0:
                progress(min(c.clock for c in self.cores))
        if dbg is not None:
            dbg.finished(self, self.result)
        return self.collect()

    def collect(self) -> MachineResult:
        """The result of a finished run, with consoles and the kernel log read from RAM."""
        res = self.result
        res.consoles = {pid: bytes(b) for pid, b in sorted(self.consoles.items())}
        res.klog, res.klog_dropped = self.collect_klog()
        return res

    def collect_klog(self) -> tuple[list[tuple[int, int, int, int, int]], int]:
        """The kernel's event-log records so far, and how many it dropped (klog.h)."""
        if not self.klog_pa:
            return [], 0
        count = self.ram.u64(self.klog_pa)
        nrec = min(count, NKLOG)
        raw = self.ram.read(self.klog_pa + 8, 32 * nrec)
        return [struct.unpack_from("<IIQQQ", raw, 32 * i) for i in range(nrec)], max(0, count - NKLOG)

    def close(self) -> None:
        for c in self.cores:
            c.native.close()
