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

``keusim trace`` prints a window from a shell. Like every analysis, it runs on a
:class:`keusim.system.BootedSystem`, the one boot path that :func:`keusim.run` uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE

from keusim.errors import KeusimError
from keusim.manifest import SystemSpec
from keusim.model.costmodel import CATEGORY, decode
from keusim.system import BootedSystem


class TraceError(KeusimError):
    """A bad trace request: unknown core or symbol, or a window that never ran."""


# --------------------------------------------------------------------------- where


def where(booted: BootedSystem, core, va: int) -> tuple[str, str]:
    """(image, function+offset) of va as the core sees it now."""
    if va >= booted.machine.arch.kernbase:
        return "kernel", booted.kernel.symbolize(va)
    proc = booted.process_of_root(core.native.k.root)
    if proc is None:
        return "?", f"{va:#x}"
    return proc, booted.image(proc).symbolize(va)


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


def _resolve_start(sess: BootedSystem, core: int, start: str) -> list[tuple[int, str]]:
    """(address, image) of a symbol: ``name`` (the kernel, then the core's processes) or
    ``image:name``."""
    img, _, name = start.rpartition(":")
    cands = [img] if img else ["kernel"] + [p.name for p in sess.spec.processes
                                            if p.core == core]
    for c in cands:
        try:
            image = sess.image(c)
        except KeusimError as e:
            raise TraceError(f"start {start!r}: {e}") from None
        a = dict((n, v) for v, n in reversed(image.symbols)).get(name)
        if a is not None:
            return [(a, c)]
    raise TraceError(f"start {start!r}: no symbol {name!r} in {', '.join(cands)}")


def _first_execution(sess: BootedSystem, core: int, targets: list[tuple[int, str]]) -> int | None:
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
          profile: str | None = None, verified: bool = False,
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
            (``profile`` ``None`` or ``flat``: one cycle per instruction).

    Raises:
        TraceError: a bad core, count or symbol.
    """
    if count < 0:
        raise TraceError(f"count must be >= 0, got {count}")
    args = (system, arch, params, profile)
    kw = {"verified": verified, "max_cycles": max_cycles}
    if isinstance(start, str):
        with BootedSystem(*args, **kw) as s1:
            _check_core(s1, core)
            idx = _first_execution(s1, core, _resolve_start(s1, core, start))
        if idx is None:
            return []
        start = idx
    if start < 0:
        raise TraceError(f"start must be >= 0, got {start}")
    with BootedSystem(*args, **kw) as sess:
        _check_core(sess, core)
        tr = _Tracer(sess, sess.machine.cores[core], start, count)
        try:
            while not tr.done and sess.step():
                tr.between_slices()
        finally:
            tr.disarm()
        return tr.rows


def _check_core(sess: BootedSystem, core: int) -> None:
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

    def __init__(self, sess: BootedSystem, core, start: int, count: int):
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
            # A slice of left // 8 cycles runs fewer than `left` instructions while the
            # core retires at most 8 per cycle, so counting never starts past `start`.
            # (A 2000-cycle floor here overshot: boot code retires ~3 per cycle under
            # the host profile, 2000 cycles ~ 5600 instructions > MARGIN.)
            self.sess.machine.quantum = left // 8
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
        image, sym = where(sess, core, addr)
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
