"""Instruction traces with their costs: a window of what one core executed.

``trace()`` boots a system as :func:`keusim.system.run` does, lets it run at full speed
up to the window, then records ``count`` instructions of one core with a Python
``UC_HOOK_CODE`` (about a microsecond an instruction: a debugging tool, not a fast path).
Each :class:`TraceRow` is one executed instruction, disassembled with capstone, symbolized
from the kernel's or the running process's ELF symbols (``function+offset``), with the
cycle model's view of it: its class and category, and on the first instruction of each
block the block's cost and the bounds that set it (``ProfileCost.breakdown``). The model
prices blocks, not instructions (docs/cycle-model.md §2), so per-instruction cycles do
not exist; the class's latency and reciprocal throughput say what each one contributes.
Shared-line (coherence) cycles are per instruction: the C memory hook charges them at
the access.

    >>> from keusim.analysis.trace import trace, format_trace
    >>> rows = trace("pingpong", start="ping:ring_send", count=40)
    >>> print(format_trace(rows))

The window starts at an instruction index of the core (``start=12345``: the core's
12,346th instruction since boot) or at the first execution of a symbol
(``start="ring_send"``, ``"ping:ring_send"`` for a process's copy, ``"kernel:syscall"``).
Tracing does not change what the guest computes or its model cycles: the hooks only read.

``python -m keusim.analysis.trace`` (or ``keusim trace``) prints a window from a shell.
:class:`Session` is the booted-machine runner trace and :mod:`keusim.analysis.attribution` share.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE

from keusim import arch as archmod
from keusim.crypto.drbg import seed_key
from keusim.errors import KeusimError
from keusim.machine import INF, Machine, MachineResult, loader
from keusim.manifest import SystemSpec, parse_params, resolve
from keusim.model.costmodel import CATEGORY, decode
from keusim.report import KLOG_PROC, RunReport
from keusim.toolchain import builds


class TraceError(KeusimError):
    """A bad trace request: unknown core or symbol, or a window that never ran."""


# --------------------------------------------------------------------------- symbols


class Symbols:
    """Function lookup for one ELF image, ignoring arm64 mapping symbols ($x, $d)."""

    def __init__(self, image: loader.ElfImage, name: str):
        self.name = name
        self.image = image
        syms = [(a, n) for a, n in image.symbols if not n.startswith("$")]
        self._addrs = [a for a, _ in syms]
        self._syms = syms

    def lookup(self, addr: int) -> tuple[str, int]:
        """(function, offset) of addr; ("?", addr) outside every symbol."""
        i = bisect_right(self._addrs, addr) - 1
        if i < 0:
            return "?", addr
        a, n = self._syms[i]
        return n, addr - a

    def symbolize(self, addr: int) -> str:
        fn, off = self.lookup(addr)
        if fn == "?":
            return f"{addr:#x}"
        return fn if off == 0 else f"{fn}+{off:#x}"

    def address(self, name: str) -> int | None:
        for a, n in self._syms:
            if n == name:
                return a
        return None


# --------------------------------------------------------------------------- session


class Session:
    """A booted machine for a system, stepped by its caller; what ``system.run`` builds.

    Args as :func:`keusim.system.run` (``profile`` defaults to ``host`` here). Use as a
    context manager, or call :meth:`close`. :attr:`idle` holds, per core, the model
    cycles it spent halted (waiting for an IPI or its timer), measured while stepping.
    """

    def __init__(self, system: str | Path | SystemSpec, arch: str | None = None,
                 params: dict | None = None, profile: str | None = "host",
                 verified: bool = False, quantum: int = 200_000, lookahead: int = 200,
                 max_cycles: int | None = None):
        from keusim import system as sysmod

        spec = system if isinstance(system, SystemSpec) else resolve(system)
        if verified:
            spec = sysmod._verified(spec)
        self.spec = spec
        self.arch = archmod.normalize(arch or spec.arch or "x86_64")
        a = archmod.get(self.arch)
        allp = dict(spec.params)
        for k, v in (params or {}).items():
            if k not in allp:
                known = ", ".join(sorted(allp)) or "none"
                raise KeusimError(f"scenario {spec.name!r} has no parameter {k!r} "
                                  f"(it has: {known})")
            allp[k] = v
        self.params = allp
        self.profile = profile or "flat"
        self.images = sysmod.build_images(spec, self.arch, allp)
        self.kernel = loader.ElfImage(builds.kernel_image(self.arch), a.elf_machine, "kernel")
        self.symbols = {"kernel": Symbols(self.kernel, "kernel")}
        for p, img in zip(spec.processes, self.images, strict=True):
            self.symbols[p.name] = Symbols(img, p.name)
        idx = {p.name: i for i, p in enumerate(spec.processes)}
        chans = [loader.BootChan(idx[c.producer], idx[c.consumer], c.capacity,
                                 0 if c.mode == "poll" else 1, c.verified)
                 for c in spec.channels]
        ram = spec.ram_mb << 20
        cost, mkw = sysmod._cost_model(profile, self.arch)
        self.cost = cost
        self.machine = Machine(a, spec.cores, ram, cost=cost, lookahead=lookahead,
                               quantum=quantum, shared=loader.pool_region(ram, chans), **mkw)
        try:
            procs = [loader.BootProc(p.name, img, p.core)
                     for p, img in zip(spec.processes, self.images, strict=True)]
            loader.boot(self.machine, self.kernel, procs, chans, seed=seed_key(spec.seed),
                        timeslice=spec.timeslice)
        except BaseException:
            self.machine.close()
            raise
        self.machine.max_cycles = max_cycles or spec.max_cycles
        self.idle = [0] * spec.cores
        self.result: MachineResult | None = None
        self._roots: dict[int, int] = {}

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.machine.close()

    # -- running ----------------------------------------------------------------
    def step(self) -> bool:
        """One machine slice; False once the run is over. Accounts halted time."""
        m = self.machine
        times = [c.next_time() for c in m.cores]
        t = min(times)
        if t < INF and m.result is None:
            c = m.cores[times.index(t)]
            if c.state == "halt":
                self.idle[c.id] += max(0, t - c.clock)
        return m.step()

    def finish(self) -> MachineResult:
        """Run to the end (if not there yet) and collect consoles and the kernel log."""
        while self.step():
            pass
        res = self.machine.finish()   # consoles, event records, unfinished pids
        self.result = res
        return res

    def klog(self) -> list[tuple[int, int, int, int, int]]:
        """The kernel's event log records so far (kernel/include/klog.h)."""
        return list(self.machine.klog)

    def report(self, attribution: bool = False) -> RunReport:
        """The RunReport of the finished run (as ``system.run`` builds it)."""
        from keusim import system as sysmod

        res = self.result or self.finish()
        rep = sysmod._report(self.spec, self.arch, self.params, self.machine, res,
                             self.profile, None)
        if attribution:
            rep = dataclasses.replace(rep, functions=sysmod._attribution(
                self.machine, self.spec, res, self.kernel, self.images))
        return rep

    # -- where am I -------------------------------------------------------------
    def process_of_root(self, root: int) -> str | None:
        """The process whose user MMU root is ``root`` (from the kernel's log)."""
        if root not in self._roots:
            self._roots = {a: pid for typ, pid, a, _b, _c in self.klog() if typ == KLOG_PROC}
        pid = self._roots.get(root)
        if pid is None or not 0 < pid <= len(self.spec.processes):
            return None
        return self.spec.processes[pid - 1].name

    def where(self, core, va: int) -> tuple[str, str]:
        """(image, function+offset) of va as the core sees it now."""
        if va >= self.machine.arch.kernbase:
            return "kernel", self.symbols["kernel"].symbolize(va)
        proc = self.process_of_root(core.native.k.root)
        if proc is None:
            return "?", f"{va:#x}"
        return proc, self.symbols[proc].symbolize(va)


# --------------------------------------------------------------------------- trace


@dataclass(frozen=True)
class TraceRow:
    """One executed instruction and the cycle model's view of it."""

    index: int
    """Instruction number on its core since boot (0 = the first)."""
    core: int
    clock: int
    """The core's model clock when the instruction ran. A block's cost is charged when
    the block starts, so every instruction of a block sees the same block charge."""
    pc: int
    image: str
    """``kernel``, a process name, or ``?``."""
    symbol: str
    """``function+offset`` in that image's ELF symbols."""
    mnemonic: str
    op_str: str
    raw: str
    """Instruction bytes, hex."""
    cls: str
    """Cost-model class (docs/cycle-model.md, instruction classes)."""
    uops: str
    """The classes whose throughput it uses: ``move+load`` for a load into a register."""
    category: str
    """``compute``, ``memory`` or ``trap``."""
    latency: float
    """Cycles from its inputs to its result (an L1 hit included for loads); for
    serializing and trap classes, the fixed cost."""
    rthroughput: float
    coherence_cycles: int
    """Shared-line cycles this instruction's memory accesses were charged."""
    block_start: bool
    block_cycles: int | None = None
    """On a block's first instruction: the block's cost in cycles."""
    block_insns: int | None = None
    block_bounds: str = ""
    """On a block's first instruction: per stretch, the throughput and chain bounds and
    fixed costs (``ProfileCost.breakdown``)."""

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["pc"] = f"{self.pc:#x}"
        return d


def _resolve_start(sess: Session, core: int, start: str) -> list[tuple[int, str]]:
    """(address, image) of a symbol: ``name`` (the kernel, then the core's processes) or
    ``image:name``."""
    img, _, name = start.rpartition(":")
    cands = [img] if img else ["kernel"] + [p.name for p in sess.spec.processes
                                            if p.core == core]
    for c in cands:
        if c not in sess.symbols:
            raise TraceError(f"start {start!r}: no image {c!r}; images are: "
                             f"{', '.join(sess.symbols)}")
        a = sess.symbols[c].address(name)
        if a is not None:
            return [(a, c)]
    raise TraceError(f"start {start!r}: no symbol {name!r} in {', '.join(cands)}")


def _first_execution(sess: Session, core: int, targets: list[tuple[int, str]]) -> int | None:
    """The core's instruction index of the first execution of a target, or None.

    A code hook limited to the target address costs nothing elsewhere; when it fires,
    the native block hook has already counted the whole block that starts there, so the
    index is the instruction count minus that block's instructions (plus the target's
    position in the block, when it does not start one).
    """
    c = sess.machine.cores[core]
    hit: list[tuple[int, int, int]] = []

    def on_entry(uc, addr, size, _ud):
        if hit:
            return
        for a, img in targets:
            if addr == a and (img == "kernel" or sess.process_of_root(c.native.k.root) == img):
                root = 0 if img == "kernel" else c.native.k.root
                hit.append((addr, c.native.k.insns, root))
                uc.emu_stop()
                return

    for a, _img in targets:
        c.uc.hook_add(UC_HOOK_CODE, on_entry, None, a, a)
    while not hit and sess.step():
        pass
    if not hit:
        return None
    addr, insns, root = hit[0]
    md = sess.machine.arch.capstone()
    best = None
    for va, r, ninsn, _cost, _count in c.native.blocks():
        if r != root or va > addr or addr - va > 4096:
            continue
        if va == addr:
            return insns - ninsn
        code = sess.machine.read_virtual(c, va, 16 * ninsn) or b""
        pos = [i.address for i in md.disasm(code, va, ninsn)]
        if addr in pos and (best is None or va > best[0]):
            best = (va, insns - ninsn + pos.index(addr))
    return best[1] if best else None


def trace(system: str | Path | SystemSpec, arch: str | None = None, start: int | str = 0,
          count: int = 100, core: int = 0, params: dict | None = None,
          profile: str | None = "host", verified: bool = False,
          max_cycles: int | None = None) -> list[TraceRow]:
    """Record ``count`` instructions that core ``core`` executes, from ``start``.

    Args:
        system: a scenario name, manifest path or SystemSpec.
        arch: ``x86_64`` or ``arm64`` (default: the manifest's, else x86_64).
        start: an instruction index on the core (int), or a symbol whose first execution
            on the core opens the window (``"ring_send"``, ``"ping:ring_send"``,
            ``"kernel:syscall"``). A symbol costs one extra run up to it (deterministic
            runs: the second run executes the same instructions).
        count: instructions to record (fewer if the run ends first).
        core: which core.
        params, profile, verified, max_cycles: as :func:`keusim.system.run`
            (``profile`` defaults to ``host``; ``None`` or ``flat`` for one cycle each).

    Raises:
        TraceError: a bad core, count or symbol.
    """
    if count < 0:
        raise TraceError(f"count must be >= 0, got {count}")
    args = (system, arch, params, profile, verified)
    if isinstance(start, str):
        with Session(*args, max_cycles=max_cycles) as s1:
            _check_core(s1, core)
            idx = _first_execution(s1, core, _resolve_start(s1, core, start))
        if idx is None:
            return []
        start = idx
    if start < 0:
        raise TraceError(f"start must be >= 0, got {start}")
    with Session(*args, max_cycles=max_cycles) as sess:
        _check_core(sess, core)
        tr = _Tracer(sess, sess.machine.cores[core], start, count)
        try:
            while not tr.done and sess.step():
                tr.between_slices()
        finally:
            tr.disarm()
        return tr.rows


def _check_core(sess: Session, core: int) -> None:
    n = len(sess.machine.cores)
    if not 0 <= core < n:
        raise TraceError(f"core {core} does not exist; the system has {n} cores")


class _Tracer:
    """The hooks of one trace window on one core.

    Far from the window the machine runs at full speed; the core's slices are kept short
    (the quantum never changes results) so that per-instruction counting can begin a few
    thousand instructions early, between two slices. Installing the hooks flushes the
    translated code so that every later block carries them. A block longer than the TCG
    op buffer allows with per-instruction hook calls may then be split, and its parts
    priced as blocks of their own: within the window only.
    """

    MARGIN = 4000

    def __init__(self, sess: Session, core, start: int, count: int):
        self.sess, self.core, self.start, self.count = sess, core, start, count
        self.uc = core.uc
        self.rows: list[TraceRow] = []
        self.done = count == 0
        self.idx = 0
        self.hooks: list[int] = []
        self.counting = False
        self.pending_block: tuple[int, int] | None = None
        self.last_coh = 0
        self.md = sess.machine.arch.capstone()
        self.prof = getattr(sess.cost, "profile", None)
        self._block_cache: dict[tuple[int, int, int], tuple] = {}
        self.between_slices()

    def between_slices(self) -> None:
        if self.counting or self.done:
            return
        k = self.core.native.k
        left = self.start - k.insns
        if left > self.MARGIN:
            self.sess.machine.quantum = max(2000, left // 8)
            return
        self.counting = True
        self.idx = k.insns
        self.sess.machine.quantum = 200_000
        self.hooks.append(self.uc.hook_add(UC_HOOK_BLOCK, self._on_block))
        self.hooks.append(self.uc.hook_add(UC_HOOK_CODE, self._on_code))
        self.uc.ctl_flush_tb()

    def disarm(self) -> None:
        for h in self.hooks:
            try:
                self.uc.hook_del(h)
            except Exception:  # noqa: BLE001 - the machine may be closing already
                pass
        self.hooks = []

    # -- hooks --------------------------------------------------------------------
    def _on_block(self, uc, addr, size, _ud) -> None:
        self.pending_block = (addr, size)

    def _on_code(self, uc, addr, size, _ud) -> None:
        if self.done:
            return
        if self.idx < self.start:
            self.idx += 1
            return
        k = self.core.native.k
        coh = k.coh_cycles
        if self.rows:
            self.rows[-1] = dataclasses.replace(self.rows[-1],
                                                coherence_cycles=coh - self.last_coh)
        self.last_coh = coh
        if len(self.rows) >= self.count:
            self.done = True
            uc.emu_stop()
            return
        self.rows.append(self._row(addr, size, k))
        self.idx += 1

    def _row(self, addr: int, size: int, k) -> TraceRow:
        sess, core = self.sess, self.core
        image, sym = sess.where(core, addr)
        code = sess.machine.read_virtual(core, addr, size) or b""
        insn = next(self.md.disasm(code, addr), None) if code else None
        block = None
        if self.pending_block is not None and self.pending_block[0] == addr:
            kernel = addr >= sess.machine.arch.kernbase
            block = self._block(*self.pending_block, 0 if kernel else k.root)
            self.pending_block = None
        tail = block or (None, None, "")
        if insn is None:
            return TraceRow(self.idx, core.id, k.clock, addr, image, sym, "(unreadable)", "",
                            code.hex(), "other", "other", "compute", 0.0, 0.0, 0,
                            block is not None,
                            *tail)
        d = decode(insn, sess.arch)
        lat, rt = self._price(d.cls)
        if d.loads and d.cls not in ("load", "atomic", "load_acquire", "string") and self.prof:
            lat += self.prof.param("memory.l1").value
        return TraceRow(self.idx, core.id, k.clock, addr, image, sym, insn.mnemonic,
                        insn.op_str, bytes(insn.bytes).hex(), d.cls, "+".join(d.uops),
                        CATEGORY.get(d.cls, "compute"), lat, rt, 0, block is not None, *tail)

    def _price(self, cls: str) -> tuple[float, float]:
        """(latency, reciprocal throughput) of a class in the profile (1, 1 when flat)."""
        if self.prof is None:
            return 1.0, 1.0
        from keusim.model.profiles import TRAP_CLASSES
        if cls in TRAP_CLASSES:
            return self.prof.param(TRAP_CLASSES[cls]).value, 0.0
        c = self.prof.classes.get(cls)
        if c is None:
            return 0.0, 0.0
        lat = self.prof.param("memory.l1").value if cls == "load" else c.latency
        return lat, c.rthroughput

    def _block(self, va: int, size: int, root: int) -> tuple[int, int, str]:
        key = (va, size, root)
        if key not in self._block_cache:
            code = self.sess.machine.read_virtual(self.core, va, size) or b""
            insns = list(self.md.disasm(code, va))
            cost = self.sess.cost
            if hasattr(cost, "breakdown"):
                b = cost.breakdown(insns)
                bounds = "; ".join(
                    f"thr {t:.2f} chain {c:.2f}" + (f" +fixed {f:g}" if f else "")
                    + (" drained" if dr else "")
                    for t, c, f, dr in b.segments)
                self._block_cache[key] = (b.cycles, b.insns, bounds)
            else:
                bc = cost.block(insns)
                self._block_cache[key] = (bc.cycles, bc.insns, "flat: 1 cycle per instruction")
        return self._block_cache[key]


# --------------------------------------------------------------------------- output


def format_trace(rows: Sequence[TraceRow]) -> str:
    """A listing: one line per instruction, block costs on each block's first line."""
    if not rows:
        return "(no instructions in the window)"
    w_sym = min(44, max(len(f"{r.image}:{r.symbol}") for r in rows))
    w_ins = min(48, max(len(f"{r.mnemonic} {r.op_str}") for r in rows))
    out = [f"{'index':>9} {'core':>4} {'clock':>12} {'pc':>18}  {'where':<{w_sym}}  "
           f"{'instruction':<{w_ins}}  {'class':<14} {'lat':>5} {'rthr':>5} {'coh':>4}  block"]
    for r in rows:
        where = f"{r.image}:{r.symbol}"
        ins = f"{r.mnemonic} {r.op_str}".strip()
        blk = ""
        if r.block_start:
            blk = f"<- {r.block_insns} insns, {r.block_cycles} cycles  [{r.block_bounds}]"
        out.append(f"{r.index:>9} {r.core:>4} {r.clock:>12} {r.pc:>#18x}  {where[:w_sym]:<{w_sym}}  "
                   f"{ins[:w_ins]:<{w_ins}}  {r.uops:<14} {r.latency:>5g} {r.rthroughput:>5g} "
                   f"{r.coherence_cycles or '':>4}  {blk}".rstrip())
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m keusim.analysis.trace`` / ``keusim trace``: print a window of instructions."""
    ap = argparse.ArgumentParser(prog="keusim trace",
                                 description="Show a window of executed instructions with "
                                             "their cycle-model costs.")
    ap.add_argument("system", help="scenario name or manifest path")
    ap.add_argument("--arch", default=None, help="x86_64 or arm64")
    ap.add_argument("--start", default="0",
                    help="instruction index on the core, or a symbol such as ring_send, "
                         "ping:ring_send, kernel:syscall (default 0)")
    ap.add_argument("--count", type=int, default=60, help="instructions to show (default 60)")
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--param", action="append", metavar="K=V", help="scenario parameter")
    ap.add_argument("--profile", default="host", help="cycle-model profile (default host)")
    ap.add_argument("--verified", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    a = ap.parse_args(argv)
    try:
        params = parse_params(a.param)
    except KeusimError as e:
        ap.error(str(e))
    start: int | str = int(a.start) if a.start.lstrip("-").isdigit() else a.start
    try:
        rows = trace(a.system, arch=a.arch, start=start, count=a.count, core=a.core,
                     params=params, profile=a.profile, verified=a.verified)
    except KeusimError as e:
        print(f"keusim: error: {e}", file=sys.stderr)
        return 2
    if a.json:
        import json
        print(json.dumps([r.as_dict() for r in rows], indent=1))
    else:
        print(format_trace(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
