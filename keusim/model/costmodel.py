"""Block costs: what one execution of a translated block costs in model cycles.

The machine asks once per block (on a miss in the native table) and C charges the
answer on every execution, so a block's cost is a constant: the same instructions always
cost the same cycles. :class:`FlatCost` (one cycle per instruction) is the placeholder;
:class:`ProfileCost` prices a block with a microarchitecture profile
(:mod:`keusim.model.profiles`). The model, its reasons and its limits are in docs/cycle-model.md;
in short, for each stretch of the block between serializing instructions:

    cycles = max(front end  = instructions / issue width,
                 busiest execution resource = sum of reciprocal throughputs on it
                                              (loads + stores also / memory_ops),
                 loop-carried chain = longest path from a register's value on entry to
                                      the same register's value on exit)

plus a fixed cost for each serializing, trap or PAUSE instruction. Before a serializing
instruction the whole dependency chain of the stretch is exposed instead of only the
loop-carried part, because the pipeline must drain. Loads are L1 hits; the C coherence
model adds the cross-core cost of shared lines.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import capstone as cs

from keusim.arch import normalize

# Instruction classes and decoding belong to the architectures (keusim/arch/isa.py);
# re-exported here because the engine speaks in them.
from keusim.arch.isa import (
    CATEGORIES,
    CATEGORY,
    FIXED,
    MEMORY_OPS,
    OTHER_ALLOWED,
    SERIALIZING,
    Decoded,
    classify,
    decode,
    disassembler,
)
from keusim.model.profiles import TRAP_CLASSES, Profile, load_profile
from keusim.rounding import round_half_up

FRACTION = 256
"""Block costs are charged in 1/FRACTION cycles: the native hook adds them to a per-core
fractional accumulator and moves whole cycles to the clock, so a loop that costs 5.5
cycles per iteration advances the clock 5.5 cycles per iteration on average, not 6
(``fastcore.frac``)."""


@dataclass(frozen=True)
class BlockCost:
    """One execution of a block: ``cycles`` rounded (for display), ``fixed`` exact to
    1/:data:`FRACTION` cycle (what the machine charges; ``cycles * FRACTION`` when not
    given), ``insns`` instructions."""

    cycles: int
    insns: int
    fixed: int = -1
    """Fixed-point cycles: units of 1/FRACTION cycle."""

    def __post_init__(self) -> None:
        if self.fixed < 0:
            object.__setattr__(self, "fixed", self.cycles * FRACTION)


class FlatCost:
    """One cycle per instruction."""

    name = "flat"

    def block(self, insns: list) -> BlockCost:
        return BlockCost(len(insns), len(insns))



# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class Breakdown:
    """How :class:`ProfileCost` priced one block (for inspection and tests)."""

    cycles: int
    insns: int
    exact: float
    """The unrounded cost."""
    segments: tuple[tuple[float, float, float, bool], ...]
    """Per stretch: (throughput bound, chain bound used, fixed cost after it, drained)."""
    categories: Mapping[str, int]
    classes: tuple[str, ...]


class ProfileCost:
    """Prices blocks with a microarchitecture profile; deterministic and integer-valued.

    Args:
        profile: a :class:`~keusim.model.profiles.Profile` or a profile name or path.
        arch: the guest architecture of the blocks, ``x86_64`` or ``arm64``. A profile
            of the other ISA may be used: its class prices then stand in for the guest's
            instructions (an approximation, noted in docs/cycle-model.md).
    """

    def __init__(self, profile: Profile | str = "host", arch: str = "x86_64"):
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        self.arch = normalize(arch)
        self.name = f"profile:{self.profile.name}"
        p = self.profile
        self._lat = {c: k.latency for c, k in p.classes.items()}
        self._rt = {c: k.rthroughput for c, k in p.classes.items()}
        self._pipe = {c: k.pipe for c, k in p.classes.items()}
        for cls, key in TRAP_CLASSES.items():
            self._lat[cls] = p.param(key).value
            self._rt[cls] = 0.0
            self._pipe[cls] = "none"
        self._l1 = p.param("memory.l1").value
        self._width = p.issue_width
        self._memops = p.memory_ops
        # Everything a price depends on besides the instructions: the key of the memo.
        self._key = (self.arch, self._l1, self._width, self._memops,
                     tuple(sorted((c, self._lat[c], self._rt[c], self._pipe[c])
                                  for c in self._lat)))

    # -- the interface the machine uses --------------------------------------
    def block(self, insns: Sequence[cs.CsInsn]) -> BlockCost:
        """The cost of one execution of the block ``insns`` (capstone, detail on)."""
        b = self.breakdown(insns)
        fixed = 0 if not b.insns else max(1, round_half_up(b.exact * FRACTION))
        return BlockCost(b.cycles, b.insns, fixed)

    def attribute(self, insns: Sequence[cs.CsInsn]) -> dict[str, int]:
        """The block's cycles split into ``compute``, ``memory`` and ``trap``.

        The values are integers that add up to ``block(insns).cycles``.
        """
        return dict(self.breakdown(insns).categories)

    def coherence(self) -> tuple[int, int, int]:
        """(transfer, invalidate, fill) for ``Machine(coherence=...)``."""
        return self.profile.coherence()

    @property
    def ipi_cycles(self) -> int:
        return self.profile.ipi_cycles

    # -- the model --------------------------------------------------------------
    def breakdown(self, insns: Sequence[cs.CsInsn]) -> Breakdown:
        """Price the block and show the parts (see the module docstring).

        Memoized per process on the instructions (address and bytes) and the prices: a
        price is a pure function of both, and each run of a system otherwise prices
        every block again in Python."""
        key = (self._key, tuple((i.address, bytes(i.bytes)) for i in insns))
        b = _BREAKDOWNS.get(key)
        if b is None:
            b = self._breakdown(insns)
            if len(_BREAKDOWNS) >= _BREAKDOWNS_MAX:
                _BREAKDOWNS.clear()
            _BREAKDOWNS[key] = b
        return b

    def _breakdown(self, insns: Sequence[cs.CsInsn]) -> Breakdown:
        decoded = [decode(i, self.arch) for i in insns]
        segs: list[tuple[float, float, float, bool]] = []
        cat = dict.fromkeys(CATEGORIES, 0.0)
        seg: list[Decoded] = []
        for d in decoded:
            if d.cls in SERIALIZING:
                segs.append(self._segment(seg, drained=True, fixed=self._lat[d.cls], cat=cat,
                                          fixed_cls=d.cls))
                seg = []
            else:                      # PAUSE stays in the stretch: a delay, not a drain
                seg.append(d)
        if seg or not segs:
            segs.append(self._segment(seg, drained=False, fixed=0.0, cat=cat, fixed_cls=None))
        exact = sum(t_bound if t_bound >= c_bound else c_bound for t_bound, c_bound, _, _ in segs)
        exact += sum(f for _, _, f, _ in segs)
        cycles = 0 if not decoded else max(1, round_half_up(exact))
        return Breakdown(cycles, len(decoded), exact, tuple(segs),
                         MappingProxyType(apportion(cat, cycles, ("trap", "memory", "compute"),
                                                    empty="compute")),
                         tuple(d.cls for d in decoded))

    def _segment(self, seg: list[Decoded], *, drained: bool, fixed: float,
                 cat: dict[str, float], fixed_cls: str | None) -> tuple[float, float, float, bool]:
        """Bounds of one stretch; adds its cycles, by category, to ``cat``."""
        lat, rt, pipe = self._lat, self._rt, self._pipe
        # Throughput: the front end and each execution resource.
        per_pipe: dict[str, float] = {}
        per_pipe_cat: dict[str, dict[str, float]] = {}
        pause = 0.0
        for d in seg:
            if d.cls == "pause":
                pause += lat["pause"]
                continue
            for u in d.uops:
                p = pipe[u]
                if p == "none":
                    continue
                uses = [(p, rt[u])]
                # The load and store pipes share the load/store unit's address generation:
                # at most pipeline.memory_ops memory micro-ops per cycle in total.
                if p in ("load", "store"):
                    uses.append((MEMORY_OPS, 1.0 / self._memops))
                for res, c in uses:
                    per_pipe[res] = per_pipe.get(res, 0.0) + c
                    pc = per_pipe_cat.setdefault(res, dict.fromkeys(CATEGORIES, 0.0))
                    pc[CATEGORY[u]] += c
        front = len(seg) / self._width
        busiest = max(per_pipe.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0.0))
        t_bound = max(front, busiest[1])
        # Dependencies: for each register, the longest path from each register's value on
        # entry to the stretch (entry values are ready at time 0). A path is a vector
        # (length, compute part, memory part, trap part) so that the bound can be
        # attributed to the categories along the path that sets it.
        dep: dict[str, dict[str, _Path]] = {}
        full: _Path = _ZERO

        def paths(r: str) -> dict[str, _Path]:
            return dep.get(r, {r: _ZERO})

        for d in seg:
            if d.cls == "pause":
                continue
            op_lat = lat[d.cls] if d.cls not in ("load", "store", "load_acquire",
                                                 "store_release") else 0.0
            # The L1 hit is on the path from the address to the result. An atomic's and
            # an acquire load's own latency includes it; a string instruction's register
            # updates do not wait for its data.
            mem_lat = self._l1 if d.loads and d.cls not in ("atomic", "load_acquire",
                                                            "string") else 0.0
            if d.cls == "load_acquire":
                mem_lat = lat["load_acquire"]
            opcat = CATEGORY[d.cls]
            out: dict[str, _Path] = {}
            for r in d.addr:
                for src, v in paths(r).items():
                    out[src] = _longer(out.get(src), _extend(v, mem_lat, op_lat, opcat))
            for r in d.data:
                for src, v in paths(r).items():
                    out[src] = _longer(out.get(src), _extend(v, 0.0, op_lat, opcat))
            if not out:
                out = {"": _extend(_ZERO, mem_lat, op_lat, opcat)}
            done = max(out.values())
            if d.stores and not d.writes:
                done = _extend(done, lat["store"], 0.0, "memory")
            full = max(full, done)
            for w in d.writeback:      # base-register update: an ALU add of the base
                dep[w] = {s: _extend(v, 0.0, lat["alu"], "compute") for s, v in paths(w).items()}
            for w in d.writes:
                dep[w] = dict(out)
        carried = max((v[r] for r, v in dep.items() if r in v), default=_ZERO)
        chain = full if drained else carried
        c_bound = chain[0]
        # Attribution of the overlapped part: by the bound that won.
        overlap = max(t_bound, c_bound)
        if overlap > 0:
            if c_bound > t_bound:
                weights = dict(zip(CATEGORIES, chain[1:], strict=True))
            elif busiest[1] >= front and busiest[0]:
                weights = per_pipe_cat[busiest[0]]
            else:
                weights = dict.fromkeys(CATEGORIES, 0.0)
                for d in seg:
                    weights[CATEGORY[d.cls]] += 1.0
            tot = sum(weights.values())
            for k in CATEGORIES:
                cat[k] += overlap * (weights[k] / tot if tot > 0 else float(k == "compute"))
        cat["compute"] += pause
        if fixed_cls is not None:
            cat[CATEGORY[fixed_cls]] += fixed
        return (t_bound, c_bound, fixed + pause, drained)


_BREAKDOWNS: dict[tuple, Breakdown] = {}
_BREAKDOWNS_MAX = 1 << 16

_Path = tuple[float, float, float, float]
_ZERO: _Path = (0.0, 0.0, 0.0, 0.0)


def _extend(p: _Path, mem: float, op: float, opcat: str) -> _Path:
    """Path ``p`` followed by a memory access of ``mem`` and an operation of ``op``."""
    c, m, t = p[1], p[2] + mem, p[3]
    if opcat == "compute":
        c += op
    elif opcat == "memory":
        m += op
    else:
        t += op
    return (p[0] + mem + op, c, m, t)


def _longer(a: _Path | None, b: _Path) -> _Path:
    return b if a is None or b[0] > a[0] else a


def apportion(amounts: Mapping, total: int, ties: Sequence = (), empty=None) -> dict:
    """Whole numbers proportional to the non-negative ``amounts`` that add up to ``total``
    (largest remainder). Equal remainders go first to the keys in ``ties``, in that order,
    then in sorted key order; with nothing to share in proportion, ``total`` goes to
    ``empty`` (default: the first key in that order). Integer amounts are shared exactly."""
    rank = {k: (list(ties).index(k) if k in ties else len(ties), k) for k in amounts}
    keys = sorted(amounts, key=rank.__getitem__)
    out = dict.fromkeys(amounts, 0)
    s = sum(amounts.values())
    if total <= 0 or not keys:
        return out
    if s <= 0:
        out[keys[0] if empty is None else empty] = total
        return out
    if all(isinstance(v, int) for v in amounts.values()):
        out = {k: v * total // s for k, v in amounts.items()}
        rem = {k: v * total % s for k, v in amounts.items()}
    else:
        raw = {k: v * total / s for k, v in amounts.items()}
        out = {k: int(math.floor(v)) for k, v in raw.items()}
        rem = {k: raw[k] - out[k] for k in amounts}
    left = total - sum(out.values())
    for k in sorted(keys, key=lambda k: -rem[k])[:left]:    # stable: ties keep the order
        out[k] += 1
    return out


def block_from_bytes(code: bytes, arch: str, address: int = 0x1000) -> list[cs.CsInsn]:
    """Disassemble ``code`` as the machine does (helper for tests and notebooks)."""
    return list(disassembler(arch).disasm(code, address))


def census(insns: Iterable[cs.CsInsn], arch: str) -> dict[str, dict[str, int]]:
    """class -> {mnemonic: count} over ``insns`` (to check classification coverage)."""
    out: dict[str, dict[str, int]] = {}
    for i in insns:
        c = classify(i, arch)
        out.setdefault(c, {}).setdefault(i.mnemonic, 0)
        out[c][i.mnemonic] += 1
    return out


__all__ = ["BlockCost", "Breakdown", "CATEGORIES", "CATEGORY", "Decoded", "FIXED", "FRACTION",
           "FlatCost", "OTHER_ALLOWED", "apportion", "ProfileCost", "SERIALIZING", "block_from_bytes",
           "census", "classify", "decode", "disassembler"]
