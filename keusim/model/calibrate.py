"""keusim calibrate: measure this host and fit the ``host`` profile from the measurements.

It runs the native calibration microbenchmarks (:func:`keusim.model.harness.
run_calibration_micro`): the timer pair, dependent IMUL and ADD chains, a pointer chase at four
working-set sizes, a cache line bounced between two CPUs, a buffer of consecutive lines
handed between two CPUs (4 and 16 KiB), a mix of independent loads and stores, and
``getppid`` round trips.
These are *not* the validation workloads (ring ping-pong and streaming, the function-call
chain): the model is fitted on the microbenchmarks and validated on those.

What is fitted (docs/cycle-model.md, "Calibration"); every per-op figure first loses the
timer pair's share (``timer_pair`` ticks / ops per sample):

========================  =================================================================
``clock.ghz``             ``classes.mul.latency`` (3) / TSC ticks per dependent IMUL x TSC Hz,
                          checked against ``classes.alu.latency`` / ticks per register ADD
                          (they must agree within 25 %: :func:`fit_clock`)
``memory.l1|l2|l3|dram``  ns per load of the 4 KiB / 128 KiB / 4 MiB / 128 MiB chase
``coherence.core_to_core`` ns per cache-line round trip / 2 (one hand-off)
``pipeline.memory_ops``  16 / cycles per mem_mix iteration (8 loads + 8 stores)
``coherence.stream_line`` (bulk hand-off round - line round trip - one transfer - the
                          model's cycles for the fill and sum loops) / (2 x (lines - 1)),
                          mean over the buffer sizes, less 8 x stream_access
``coherence.stream_access`` the same per line event with 4-byte words (16 accesses per
                          line, bulk_handoff_narrow) minus with 8-byte words, / 8
``trap.syscall_entry``    (getppid round trip in cycles - calibration.linux_getppid_kernel_cycles)
``trap.syscall_exit``     split by calibration.syscall_entry_share
========================  =================================================================

The fit starts from the published profile of the host's core family
(:mod:`keusim.model.hostcpu`: ``zen3``, ``goldencove-server``, ...; the nearest one, with a
warning, for a core keusim has none for). The fitted profile records the machine it ran
on ([profile.machine]: CPU vendor, family, model, kernel, date, TSC Hz) and each number's
measurement in its ``source``; what it did not measure stays marked ``estimate``::

    profile, report = calibrate()                        # measure and fit; writes nothing
    profile, report = calibrate(out_path=HOST_PROFILE)   # ... and rewrite profiles/host.toml
    print(report.table())
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from keusim.model import harness, hostcpu
from keusim.model.costmodel import FRACTION, ProfileCost, block_from_bytes
from keusim.model.harness import NativeResult
from keusim.model.hostcpu import HostCPU
from keusim.model.profiles import (
    PROFILE_DIR,
    Param,
    Profile,
    ProfileError,
    load_profile,
    parse_profile,
)
from keusim.rounding import round_half_up

HOST_PROFILE = PROFILE_DIR / "host.toml"
"""The packaged host profile; pass it as ``out_path`` to rewrite it."""

LOAD_LEVELS: Mapping[int, str] = {4 << 10: "memory.l1", 128 << 10: "memory.l2",
                                  4 << 20: "memory.l3", 128 << 20: "memory.dram"}
"""Pointer-chase working set -> the memory level it measures (harness.LOAD_CHAIN_SIZES:
inside L1 (32 KiB), L2 (512 KiB), L3 (32 MiB) and beyond L3 on Zen 3)."""

_GHZ_RANGE = (0.3, 8.0)
PLACEMENT_FACTOR = 2.0
"""A line hand-off this many times the previous profile's (or run medians this far apart)
draws a warning: vCPU placement moves it 2-5x on shared machines."""


@dataclass(frozen=True)
class Fit:
    """One fitted parameter: what was measured, how it became the number, what it was."""

    key: str
    param: Param
    cycles: float
    """The fitted value in core cycles (GHz for ``clock.ghz``)."""
    previous: float
    """The base profile's value, same unit."""
    measured: str
    method: str


@dataclass(frozen=True)
class ModelCheck:
    """The fitted model run on a microbenchmark's own loop: it should reproduce it."""

    name: str
    measured_cycles: float
    model_cycles: float


@dataclass(frozen=True)
class CalibrationReport:
    """What ``calibrate`` measured, fitted and wrote."""

    machine: Mapping[str, str]
    tsc_hz: float
    results: tuple[NativeResult, ...] = field(repr=False)
    fits: tuple[Fit, ...]
    checks: tuple[ModelCheck, ...]
    warnings: tuple[str, ...]
    toml: str = field(repr=False)
    out_path: Path | None = None
    base: str = ""
    """The published profile the fit started from (what ``host`` inherits)."""
    estimates: tuple[str, ...] = ()
    """Parameters of the fitted profile no measurement produced (``estimate = true``)."""

    @property
    def busy(self) -> bool:
        """Other tasks used the CPUs during some measurement (see the warnings)."""
        return any(r.busy for r in self.results)

    def table(self) -> str:
        """The fit as a fixed-width text table, with the machine and any warnings."""
        m = self.machine
        out = [f"keusim calibrate: {m.get('cpu', '?')}, kernel {m.get('kernel', '?')}, "
               f"{m.get('date', '?')}, TSC {self.tsc_hz / 1e6:.1f} MHz",
               f"core family: {m.get('core', '?')}; fit started from profile "
               f"{self.base or '?'}"]
        rows = [("parameter", "previous", "fitted", "unit", "measured", "method")]
        for f in self.fits:
            unit = {"clock.ghz": "GHz", "pipeline.memory_ops": "per cycle"}.get(f.key,
                                                                                 "cycles")
            rows.append((f.key, f"{f.previous:.2f}", f"{f.cycles:.2f}", unit, f.measured,
                         f.method))
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
        if self.checks:
            out.append("")
            out += [f"model check {c.name}: measured {c.measured_cycles:.2f} cycles/op, "
                    f"model {c.model_cycles:.2f}" for c in self.checks]
        if self.estimates:
            out += ["", "not measured (estimates, kept from the base profile or carried "
                    "through): " + ", ".join(self.estimates)]
        if self.warnings:
            out.append("")
            out += [f"WARNING: {w}" for w in self.warnings]
        if self.out_path:
            out += ["", f"wrote {self.out_path}"]
        return "\n".join(out)


# --------------------------------------------------------------------------- machine


def machine_info(tsc_hz: float, cpu: HostCPU | None = None) -> dict[str, str]:
    """The machine a calibration ran on: its CPU (as :mod:`keusim.model.hostcpu` reads it:
    description, vendor, family, model, the core it was recognised as), kernel, date
    (UTC), TSC Hz, CPUs. ``vendor``/``family``/``model`` are what
    :func:`keusim.model.profiles.host_mismatch` compares with the host a profile is used on.
    """
    cpu = cpu or hostcpu.detect()
    match = hostcpu.core_family(cpu)
    return {"cpu": cpu.describe(), **cpu.fingerprint(),
            "core": match.core + ("" if match.exact else f" (nearest profile {match.profile})"),
            "kernel": platform.release(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tsc_hz": f"{tsc_hz:.0f}", "cpus": str(os.cpu_count() or 0),
            "python": platform.python_version()}


def base_profile(cpu: HostCPU | None = None) -> tuple[str, tuple[str, ...]]:
    """The published profile a calibration of this host starts from, and a warning when
    it is only the nearest one (:func:`keusim.model.hostcpu.core_family`)."""
    match = hostcpu.core_family(cpu or hostcpu.detect())
    return match.profile, ((match.warning,) if match.warning else ())


# --------------------------------------------------------------------------- clock

CLOCK_AGREEMENT = 0.25
"""The two clock estimates (IMUL chain, register ADD chain) may differ by this share.
A renamer or fusion trick that defeats one of them makes it 2x-20x off (Golden Cove runs
an ADD-immediate chain at 0.05 ns an add, a "21 GHz" clock); a busy neighbour slows both
alike, so noise stays well inside it."""


@dataclass(frozen=True)
class ClockEstimate:
    """The core clock from the IMUL chain, with its cross-check (see micro_bench.c)."""

    ghz: float
    """From mul_chain: ``classes.mul.latency`` cycles per dependent IMUL."""
    ghz_alu: float | None
    """From alu_chain: ``classes.alu.latency`` cycles per dependent register ADD."""
    mul_ticks: float
    alu_ticks: float | None
    mul_latency: float
    alu_latency: float

    @property
    def disagreement(self) -> float:
        """|ghz_alu / ghz - 1| (0 without an alu_chain result)."""
        return abs(self.ghz_alu / self.ghz - 1.0) if self.ghz_alu else 0.0


def fit_clock(results: Sequence[NativeResult], tsc_hz: float, base: Profile,
              timer_ticks: float = 0.0) -> ClockEstimate:
    """The core clock from ``mul_chain``, checked against ``alu_chain``.

    Raises:
        ProfileError: no mul_chain result, a clock outside 0.3-8 GHz, or the two chains
            disagreeing by more than :data:`CLOCK_AGREEMENT` (one of them is executed
            faster than ``base``'s latency for it says: a core the profile does not
            describe, or a rename-time trick).
    """
    mul = _find(results, "mul_chain")
    if mul is None:
        raise ProfileError("calibration needs a mul_chain result to find the core clock; "
                           "run keusim calibrate (it measures one)")
    mul_lat = base.classes["mul"].latency
    alu_lat = base.classes["alu"].latency
    # The 10th percentile of the samples: a neighbour on the physical core or a vCPU
    # preemption only ever slows a dependent chain, and both chains alike.
    mt = _per_op_ticks(mul, timer_ticks, low=True)
    ghz = mul_lat / mt * tsc_hz / 1e9
    if not _GHZ_RANGE[0] <= ghz <= _GHZ_RANGE[1]:
        raise ProfileError(f"mul_chain gives a {ghz:.2f} GHz core clock ({mt:.4f} TSC ticks "
                           f"per IMUL of latency {mul_lat:g}), outside {_GHZ_RANGE[0]}-"
                           f"{_GHZ_RANGE[1]} GHz; the measurement is broken")
    alu = _find(results, "alu_chain")
    at = _per_op_ticks(alu, timer_ticks, low=True) if alu is not None else None
    est = ClockEstimate(ghz, alu_lat / at * tsc_hz / 1e9 if at else None, mt, at, mul_lat,
                        alu_lat)
    if est.disagreement > CLOCK_AGREEMENT:
        raise ProfileError(
            f"the two clock measurements disagree: mul_chain gives {ghz:.2f} GHz "
            f"({mt:.4f} ticks per IMUL, latency {mul_lat:g} in profile {base.name!r}), "
            f"alu_chain {est.ghz_alu:.2f} GHz ({at:.4f} ticks per ADD, latency "
            f"{alu_lat:g}); this core runs one chain faster than {base.name!r} says it "
            "can, so its class table does not describe this CPU: start from a profile "
            "that does (keusim calibrate --base NAME)")
    return est


def measure_clock(base: Profile | str | None = None, *, scale: float = 0.2,
                  runs: int = 3, boost: bool = False) -> ClockEstimate:
    """The core clock now (mul_chain and alu_chain, ``runs`` short rounds, the fastest
    kept), priced with ``base`` (default: the profile of this host's core family);
    ``boost``: at the highest CPU priority allowed (:func:`keusim.model.harness.boost`).

    For a record of the clock during other measurements (validation, experiments);
    :func:`calibrate` measures it with the rest. Raises NativeHarnessError or
    ProfileError as :func:`fit_clock`.
    """
    prof = load_profile(base or base_profile()[0]) if not isinstance(base, Profile) else base
    rounds = [harness.run_calibration_micro(["timer_pair", "mul_chain", "alu_chain"],
                                            scale=scale, progress=False, max_reruns=1,
                                            seed=1 + k, boost_priority=boost)
              for k in range(max(1, runs))]
    results, _ = pick_rounds(rounds)
    tp = _find(results, "timer_pair")
    return fit_clock(results, harness.tsc_hz(), prof, tp.median_ticks if tp else 0.0)


# --------------------------------------------------------------------------- fitting


def _per_op_ticks(r: NativeResult, timer_ticks: float, low: bool = False) -> float:
    """Median (``low``: 10th-percentile) ticks per op less the timer pair's share of each
    sample (at least 1e-9)."""
    t = r.p10_ticks if low else r.median_ticks
    return max(t - timer_ticks / max(1, r.ops_per_sample), 1e-9)


def _find(results: Sequence[NativeResult], name: str, size: int | None = None
          ) -> NativeResult | None:
    for r in results:
        if r.name == name and (size is None or r.size == size):
            return r
    return None


class _Fitter:
    """The state of one fit: the base, the results, what has been fitted so far.

    Each step (``clock``, ``memory``, ...) reads results and adds fitted parameters; the
    order matters only in that every step after ``clock`` uses the fitted clock and
    ``stream_line`` uses the fitted hand-off.
    """

    def __init__(self, results: Sequence[NativeResult], tsc_hz: float, base: Profile,
                 command: str, allow_busy: bool):
        self.base, self.tsc_hz, self.command = base, tsc_hz, command
        self.warnings: list[str] = []
        self.fits: list[Fit] = []
        self.updates: dict[str, Param] = {}
        busy = [f"{r.name} {r.size or ''}".strip() for r in results if r.busy]
        if busy:
            self.warnings.append(
                "other tasks used the CPUs during " + ", ".join(busy) + "; " +
                ("those figures are inflated, re-run on a quiet machine" if allow_busy
                 else "the parameters they measure keep the base profile's values "
                 "(allow_busy=True fits them anyway); re-run on a quiet machine"))
        self.results = list(results) if allow_busy else \
            [r for r in results if not r.busy or r.name in ("mul_chain", "alu_chain")]
        tp = _find(self.results, "timer_pair")
        self.timer = tp.median_ticks if tp is not None else 0.0
        if tp is None:
            self.warnings.append("no timer_pair result: per-op figures keep the timer's share")
        self.ghz = base.ghz

    def put(self, key: str, value: float, source: str, unit: str, given: float,
            previous: float, measured: str, method: str) -> None:
        p = Param(round(value, 4), source, unit=unit, given=round(given, 4), origin="host")
        self.updates[key] = p
        self.fits.append(Fit(key, p, value, previous, measured, method))

    def ns_of(self, r: NativeResult, per_op_div: float = 1.0) -> float:
        return _per_op_ticks(r, self.timer) * 1e9 / self.tsc_hz / per_op_div

    def clock(self) -> None:
        """clock.ghz: the IMUL chain, cross-checked by the ADD chain (:func:`fit_clock`)."""
        c = fit_clock(self.results, self.tsc_hz, self.base, self.timer)
        self.ghz = c.ghz
        check = (f"; cross-check alu_chain {c.alu_ticks:.4f} ticks per register ADD "
                 f"(latency {c.alu_latency:g}) gives {c.ghz_alu:.3f} GHz" if c.ghz_alu else
                 "; no alu_chain cross-check")
        self.put("clock.ghz", c.ghz,
                 f"measured ({self.command}): micro_bench mul_chain, {c.mul_ticks:.4f} TSC "
                 f"ticks per dependent 64-bit IMUL (latency {c.mul_latency:g} cycles) x TSC "
                 f"{self.tsc_hz / 1e6:.1f} MHz{check}", "value", c.ghz, self.base.ghz,
                 f"mul_chain {c.mul_ticks:.4f} ticks/imul",
                 "mul.latency / ticks x TSC Hz")

    def memory(self) -> None:
        """memory.l1|l2|l3|dram: ns per load of each pointer chase."""
        levels: dict[str, float] = {}
        for r in self.results:
            if r.name != "load_chain":
                continue
            key = LOAD_LEVELS.get(r.size)
            if key is None:
                self.warnings.append(f"load_chain size {r.size} is not one of the fitted "
                                     f"levels ({', '.join(str(s) for s in LOAD_LEVELS)}); "
                                     "ignored")
                continue
            ns = self.ns_of(r)
            levels[key] = ns
            self.put(key, ns * self.ghz, f"measured ({self.command}): micro_bench load_chain "
                     f"--size {r.size} (random pointer chase, 4 KiB pages), median "
                     f"{ns:.3f} ns per load", "ns", ns, self.base.param(key).value,
                     f"load_chain {r.size} B {ns:.2f} ns/load", "ns x GHz")
        order = [k for k in LOAD_LEVELS.values() if k in levels]
        if any(levels[a] >= levels[b] for a, b in zip(order, order[1:], strict=False)):
            self.warnings.append("load latencies do not grow with the working set: "
                                 + ", ".join(f"{k} {levels[k]:.2f} ns" for k in order))

    def handoff(self) -> NativeResult | None:
        """coherence.core_to_core: half a cache-line round trip. Returns the result used."""
        pp = _find(self.results, "cacheline_pingpong")
        if pp is not None and pp.single_cpu:
            self.warnings.append("cacheline_pingpong ran on one CPU (both sides share it): "
                                 "coherence.core_to_core keeps the base value")
            return None
        if pp is None:
            return None
        ns = self.ns_of(pp, 2.0)
        ghz = self.ghz
        prev = self.base.param("coherence.core_to_core").value
        spread = [m for m in pp.run_medians_ns if m > 0]
        # Against the previous hand-off only when the base was itself measured: a
        # published one-CCX figure (zen3: 18 ns) is always far below a VM's.
        if (self.base.machine and ns * ghz > PLACEMENT_FACTOR * prev) or (
                spread and max(spread) > PLACEMENT_FACTOR * min(spread)):
            self.warnings.append(
                f"cacheline_pingpong: one hand-off took {ns:.1f} ns ({ns * ghz:.0f} cycles; "
                f"previous profile {prev:.0f}; run medians "
                f"{', '.join(f'{m:.0f}' for m in spread)} ns per round trip). The two vCPUs "
                "are probably placed far apart right now (docs/host-baselines.md): "
                "ring predictions scale with this number, so re-run keusim calibrate and "
                "compare")
        self.put("coherence.core_to_core", ns * ghz,
                 f"measured ({self.command}): micro_bench cacheline_pingpong on CPUs "
                 f"{pp.cpus[0]},{pp.cpus[1]}, median round trip {2 * ns:.2f} ns / 2 hand-offs "
                 "(placement moves it 2-3x between runs)", "ns", ns, prev,
                 f"pingpong {2 * ns:.1f} ns/round trip", "ns / 2 x GHz")
        return pp

    def memory_ops(self) -> None:
        """pipeline.memory_ops: mem_mix's 16 independent L1 loads and stores an iteration.

        A core with separate load (3/cycle) and store (2/cycle) limits needs 4 cycles;
        what it takes beyond that is the shared limit (Zen 3: three memory operations a
        cycle in all)."""
        mix = _find(self.results, "mem_mix")
        if mix is None:
            return
        cyc = self.ns_of(mix) * self.ghz
        ops = _MEM_MIX_OPS / cyc
        key = "pipeline.memory_ops"
        self.put(key, ops, f"measured ({self.command}): micro_bench mem_mix, 8 independent "
                 f"L1 loads + 8 stores per iteration in {cyc:.3f} cycles: {_MEM_MIX_OPS} / "
                 "cycles", "value", ops, self.base.param(key).value,
                 f"mem_mix {cyc:.2f} cycles/iteration", "16 memory ops / cycles")

    def stream_line(self, pp: NativeResult | None) -> None:
        """coherence.stream_line and coherence.stream_access from the bulk hand-offs.

        A buffer of consecutive lines written by one CPU, read by the other, then a flag
        round trip. With posted writes the model charges such a round the flag's round
        trip (a cacheline_pingpong op), one full transfer (the reader's first line; the
        writer's first invalidation is posted), the first line's fill and sum loop
        instructions (priced by the model being fitted), and for each of the other
        2 x (lines - 1) line events the larger of the loop's instructions for a line and
        the run's throughput per line, ``stream_line`` plus ``stream_access`` per access
        to the line (8 with 8-byte words, 16 with 4-byte words): the loops overlap with
        the fetches (fastpath.c ``fast_mem``, the pipe). Inverted here: each variant gives
        the cost of one line event at its access count; bulk_handoff alone gives
        ``stream_line`` (the base profile's ``stream_access`` kept), both give the two.
        """
        wide = [r for r in self.results if r.name == "bulk_handoff"]
        narrow = [r for r in self.results if r.name == "bulk_handoff_narrow"]
        if not wide:
            return
        if pp is None:
            self.warnings.append("bulk_handoff needs a two-CPU cacheline_pingpong result: "
                                 "coherence.stream_line keeps the base value")
            return
        ghz = self.ghz
        pp_ns = self.ns_of(pp)
        fitted = self.base.with_params(self.updates, path=None)
        xfer_ns = fitted.coherence()[0] / ghz    # the reader's first line, in full

        def per_event(results, narrow_loops: bool) -> list[tuple[int, float]]:
            fill, add = bulk_loop_parts(fitted, narrow=narrow_loops)
            per = []
            for r in results:
                lines = r.size // 64
                if r.single_cpu or lines < 2:
                    self.warnings.append(f"{r.name} {r.size} B ran on one CPU or has one "
                                         "line; ignored")
                    continue
                ev = (self.ns_of(r) - pp_ns - xfer_ns - (fill + add) / ghz) / (2 * (lines - 1))
                if ev * ghz < max(fill, add):
                    self.warnings.append(
                        f"{r.name} {r.size} B: {ev * ghz:.1f} cycles per line event is less "
                        f"than its loops' {max(fill, add):.1f}: the loops, not the hand-off, "
                        "bound it; ignored")
                    continue
                per.append((r.size, ev))
            return per

        per8, per16 = per_event(wide, False), per_event(narrow, True)
        if not per8:
            return
        e8 = sum(v for _, v in per8) / len(per8)
        e16 = sum(v for _, v in per16) / len(per16) if per16 else None
        each8 = ", ".join(f"{sz} B {v:.2f} ns" for sz, v in per8)
        how = (f"measured ({self.command}): micro_bench bulk_handoff (one CPU writes the "
               "buffer's lines, the other reads them, then a flag round trip) minus "
               f"cacheline_pingpong {pp_ns:.1f} ns, one transfer {xfer_ns:.1f} ns and the "
               "model's cycles for the first line's fill and sum loops, per each of the "
               "other 2 x (lines - 1) line events (the loops overlap with them)")
        key, akey = "coherence.stream_line", "coherence.stream_access"
        prev = self.base.param(key).value if key in self.base.params else \
            float(self.base.coherence()[0])   # serial model: a full transfer
        prev_a = self.base.param(akey).value if akey in self.base.params else 0.0
        if e16 is not None and e16 > e8:
            each16 = ", ".join(f"{sz} B {v:.2f} ns" for sz, v in per16)
            access = (e16 - e8) / 8
            line = e8 - 8 * access
            if line < 0:
                self.warnings.append(f"bulk_handoff_narrow per line ({e16:.2f} ns) is more "
                                     f"than twice bulk_handoff's ({e8:.2f} ns): "
                                     "coherence.stream_line set to 0, all of it per access")
                line, access = 0.0, e8 / 8
            self.put(akey, access * ghz, f"{how}: bulk_handoff, 8-byte words (8 accesses "
                     f"per line) {each8}; bulk_handoff_narrow, 4-byte words (16 accesses) "
                     f"{each16}; the difference / 8",
                     "ns", access, prev_a, f"narrow {each16}",
                     "(narrow - bulk per line event) / 8 x GHz")
            self.put(key, line * ghz, f"{how}: 8-byte words {each8}, less 8 x "
                     f"coherence.stream_access ({access:.3f} ns)", "ns", line, prev,
                     f"bulk {each8}", "(round - pp - xfer - loop) / (2 (lines-1)) - 8 x access")
            return
        if e16 is not None:
            self.warnings.append(f"bulk_handoff_narrow ({e16:.2f} ns per line event) is no "
                                 f"slower than bulk_handoff ({e8:.2f} ns): "
                                 f"{akey} keeps the base value")
        base_access_ns = prev_a / ghz
        line = e8 - 8 * base_access_ns
        if line <= 0:
            self.warnings.append("bulk_handoff is no slower than a line round trip: "
                                 "coherence.stream_line keeps the base value")
            return
        self.put(key, line * ghz, f"{how}: {each8}; mean" + (
            f", less 8 x the base {akey}" if base_access_ns else ""), "ns", line, prev,
            f"bulk {each8}", "(round - pp - xfer - loop) / (2 (lines-1)) x GHz")

    def syscall(self) -> None:
        """trap.syscall_entry/exit: the getppid round trip less Linux's own work, split."""
        sc = _find(self.results, "syscall_getppid")
        if sc is None:
            return
        ns = self.ns_of(sc)
        rt = ns * self.ghz
        kwork = self.base.param("calibration.linux_getppid_kernel_cycles").value
        share = self.base.param("calibration.syscall_entry_share").value
        pair = max(2.0, rt - kwork)
        if rt - kwork < 2.0:
            self.warnings.append(f"getppid round trip ({rt:.0f} cycles) is below the assumed "
                                 f"Linux kernel work ({kwork:.0f}); trap costs clamped")
        entry = round_half_up(pair * share)
        exit_ = round_half_up(pair) - entry
        how = (f"fitted ({self.command}): micro_bench syscall_getppid median {ns:.1f} ns = "
               f"{rt:.0f} cycles round trip, less calibration.linux_getppid_kernel_cycles "
               f"{kwork:.0f} (an estimate)")
        self.put("trap.syscall_entry", entry,
                 how + f", x calibration.syscall_entry_share {share:g}", "cycles", entry,
                 self.base.param("trap.syscall_entry").value, f"getppid {ns:.1f} ns",
                 "(rt - kernel) x share")
        self.put("trap.syscall_exit", exit_,
                 how + f", x (1 - calibration.syscall_entry_share {share:g})", "cycles",
                 exit_, self.base.param("trap.syscall_exit").value, f"getppid {ns:.1f} ns",
                 "(rt - kernel) x (1 - share)")

    def profile(self, machine: Mapping[str, str]) -> Profile:
        """The fitted ``host`` profile: the base's numbers, the fitted ones over them.

        What the base itself took from an earlier calibration (a ``host`` base) and this
        run did not measure is carried through, marked ``estimate`` with a note: it was
        not measured on this run (``trap.ipi`` of a hand-written host profile, a parameter
        whose benchmark was busy).
        """
        base = self.base
        inherits = base.inherits if base.name == "host" else base.name
        desc = base.description if base.name == "host" else \
            f"this host: {base.name} class tables with measured clock, memory, line " \
            "hand-off and system call"
        carried = {k: replace(p, estimate=True, note=CARRIED_NOTE)
                   for k, p in base.params.items()
                   if p.origin == "host" and k not in self.updates}
        return base.with_params({**carried, **self.updates}, name="host", inherits=inherits,
                                description=desc, machine=dict(machine), path=None)


CARRIED_NOTE = "not measured by this calibration: carried from the previous host profile"


def not_measured(profile: Profile) -> list[str]:
    """The parameters of ``profile`` marked ``estimate``: reasoned figures no measurement
    or published table gives, including numbers carried through a calibration without
    being measured (:data:`CARRIED_NOTE`). Reports list them beside the fitted ones."""
    return sorted(k for k, p in profile.params.items() if p.estimate)


def fit_profile(results: Sequence[NativeResult], tsc_hz: float,
                base: Profile | str | None = None, machine: Mapping[str, str] | None = None,
                *, command: str = "keusim calibrate", allow_busy: bool = False
                ) -> tuple[Profile, tuple[Fit, ...], tuple[str, ...]]:
    """Fit the host profile from calibration microbenchmark results (no measuring).

    Args:
        results: from :func:`keusim.model.harness.run_calibration_micro`.
        tsc_hz: the TSC frequency the results were taken at.
        base: the profile that provides everything not measured and the fit constants
            ([calibration]); the result is named ``host`` and inherits from it (or from
            what it inherits, if it is itself ``host``). Default: the published profile
            of this host's core family (:func:`base_profile`).
        machine: recorded in [profile.machine].
        command: named in each fitted number's source.
        allow_busy: also fit from results taken while other tasks used the CPUs. By
            default such a parameter keeps the base value (the clock is always fitted).

    Returns:
        (profile, fits, warnings). Parameters with no result keep the base's value.

    Raises:
        ProfileError: the results are unusable (no mul_chain to find the clock, a clock
            outside 0.3-8 GHz, or clock estimates that disagree: :func:`fit_clock`).
    """
    pre: tuple[str, ...] = ()
    if base is None:
        base, pre = base_profile()
    base = base if isinstance(base, Profile) else load_profile(base)
    f = _Fitter(results, tsc_hz, base, command, allow_busy)
    f.clock()
    f.memory()
    pp = f.handoff()
    f.memory_ops()
    f.stream_line(pp)
    f.syscall()
    return f.profile(machine or {}), tuple(f.fits), pre + tuple(f.warnings)


# --------------------------------------------------------------------------- checks

# The microbenchmarks' own inner loops, as the compiler emits them for the host.
_MUL_CHAIN = bytes.fromhex("480fafc2") * 100          # imul rax, rdx  (x100, dependent)
_ADD_CHAIN = bytes.fromhex("4801d0") * 100            # add rax, rdx   (x100, dependent)
_CHASE = bytes.fromhex("488b00" "4883e901" "75f6")    # mov rax,[rax]; sub rcx,1; jne


# micro_bench.c's bulk_fill and bulk_sum loops (one 64-byte line per iteration) and its
# mem_mix loop, byte for byte (tests/test_profiles.py finds them in the built binary).
_BULK_FILL = bytes.fromhex(
    "488917488957084889571048895718488957204889572848895730488957384883c7404839f772d8")
_BULK_SUM = bytes.fromhex(
    "4c8b074c0347084c8b4f104c034f184c8b57204c0357284c8b5f304c035f384d01c84d01da4d01d0"
    "4c01c04883c7404839f772cc")
# bulk_handoff_narrow's bulk_fill4 and bulk_sum4: sixteen 4-byte accesses per line.
_BULK_FILL4 = bytes.fromhex(
    "891789570489570889570c89571089571489571889571c89572089572489572889572c895730895734"
    "89573889573c4883c7404839f772c8")
_BULK_SUM4 = bytes.fromhex(
    "448b0744034704448b4f0844034f0c448b571044035714448b5f1844035f1c44034720440347244403"
    "4f2844034f2c440357304403573444035f3844035f3c4501c84501da4501d04401c04883c7404839f7"
    "72ac")
_MEM_MIX = bytes.fromhex(
    "488b0748899700020000488b470848899708020000488b471048899710020000488b4718488997180200"
    "00488b472048899720020000488b472848899728020000488b473048899730020000488b473848899738"
    "0200004883e90175a3")
_MEM_MIX_OPS = 16


def mem_mix_model_cycles(profile: Profile) -> float:
    """Model cycles per iteration of micro_bench's mem_mix loop (8 loads + 8 stores)."""
    pc = ProfileCost(profile, "x86_64")
    return pc.block(block_from_bytes(_MEM_MIX, "x86_64")).fixed / FRACTION


def bulk_loop_parts(profile: Profile, narrow: bool = False) -> tuple[float, float]:
    """Model cycles per 64-byte line of bulk_handoff's fill loop and of its sum loop
    (``narrow``: bulk_handoff_narrow's 4-byte loops)."""
    pc = ProfileCost(profile, "x86_64")
    fill, add = (_BULK_FILL4, _BULK_SUM4) if narrow else (_BULK_FILL, _BULK_SUM)
    return (pc.block(block_from_bytes(fill, "x86_64")).fixed / FRACTION,
            pc.block(block_from_bytes(add, "x86_64")).fixed / FRACTION)


def bulk_loop_cycles(profile: Profile, narrow: bool = False) -> float:
    """Model cycles per 64-byte line of bulk_handoff's fill loop plus its sum loop."""
    return sum(bulk_loop_parts(profile, narrow))


def model_checks(profile: Profile, results: Sequence[NativeResult], tsc_hz: float
                 ) -> tuple[ModelCheck, ...]:
    """Run the fitted model on the benchmarks' own loops (the IMUL and ADD chains, the L1
    pointer chase, the load/store mix) and compare with what they measured.

    The clock is fitted from the IMUL chain and the L1 latency and memory-op rate from
    the chase and the mix, so those reproduce by construction; the ADD chain is priced by
    the class table alone, so it checks ``classes.alu`` (and the clock) independently."""
    pc = ProfileCost(profile, "x86_64")
    tp = _find(results, "timer_pair")
    timer = tp.median_ticks if tp is not None else 0.0
    cyc_per_tick = profile.ghz * 1e9 / tsc_hz
    out = []
    for name, code, unit in (("mul_chain", _MUL_CHAIN, "imul"), ("alu_chain", _ADD_CHAIN,
                                                                  "add")):
        r = _find(results, name)
        if r is not None:
            model = pc.block(block_from_bytes(code, "x86_64")).fixed / FRACTION / 100
            out.append(ModelCheck(f"{name} (cycles per {unit})",
                                  _per_op_ticks(r, timer) * cyc_per_tick, model))
    l1 = _find(results, "load_chain", 4 << 10)
    if l1 is not None:
        code = _CHASE[:-1] + struct.pack("b", -len(_CHASE))
        model = pc.block(block_from_bytes(code, "x86_64")).fixed / FRACTION
        out.append(ModelCheck("load_chain 4 KiB (cycles per load)",
                              _per_op_ticks(l1, timer) * cyc_per_tick, model))
    mix = _find(results, "mem_mix")
    if mix is not None:
        model = mem_mix_model_cycles(profile)
        out.append(ModelCheck("mem_mix (cycles per 8 loads + 8 stores)",
                              _per_op_ticks(mix, timer) * cyc_per_tick, model))
    return tuple(out)


# --------------------------------------------------------------------------- calibrate


def pick_rounds(rounds: Sequence[Sequence[NativeResult]], factor: float = 1.5
                   ) -> tuple[tuple[NativeResult, ...], tuple[str, ...]]:
    """One result per (benchmark, size) from several rounds, and a warning for each
    benchmark whose rounds differ by more than ``factor``.

    A one-CPU benchmark keeps its *fastest* round: a neighbour sharing the physical core
    only ever slows it. A two-CPU benchmark keeps its *median* round: where the
    hypervisor places the two vCPUs moves a line hand-off both ways (two SMT siblings are
    faster than the usual placement, two CCXs slower), and the validation's native runs
    see the usual placement.
    """
    seen: dict[tuple[str, int], list[NativeResult]] = {}
    for rnd in rounds:
        for r in rnd:
            seen.setdefault((r.name, r.size), []).append(r)
    out, notes = [], []
    for key, rs in seen.items():
        ordered = sorted(rs, key=lambda r: r.median_ticks)
        two_cpu = harness.uses_two_cpus(key[0]) and not any(r.single_cpu for r in rs)
        pick = ordered[(len(ordered) - 1) // 2] if two_cpu else ordered[0]
        out.append(pick)
        v = [r.median_ticks for r in ordered]
        if len(v) > 1 and v[0] > 0 and v[-1] > factor * v[0]:
            notes.append(f"{key[0]}{f' {key[1]} B' if key[1] else ''} varied "
                         f"{v[-1] / v[0]:.1f}x between the {len(v)} rounds (another tenant "
                         "or a vCPU move): the "
                         f"{'median' if two_cpu else 'fastest'} round is fitted")
    return tuple(out), tuple(notes)


def calibrate(out_path: str | Path | None = None, progress: bool | None = None, *,
              base: Profile | str | None = None, runs: int = 5, scale: float = 1.0,
              cpus: tuple[int, int] | None = None, allow_busy: bool = False,
              boost: bool = False) -> tuple[Profile, CalibrationReport]:
    """Measure this host with the native microbenchmarks and fit the host profile.

    Args:
        out_path: where to write the fitted profile TOML (``HOST_PROFILE`` rewrites the
            packaged one); None writes nothing (the text is in ``report.toml``).
        progress: show the harness's progress bar (default: when stderr is a terminal).
        base: profile for everything not measured and for the fit constants; default the
            published profile of this host's core family (:func:`base_profile`; a CPU
            without one starts from the nearest, with a warning).
        runs: rounds over the whole set of microbenchmarks; each benchmark is fitted
            from its fastest (one CPU) or median (two CPUs) round (:func:`pick_rounds`).
        scale: multiplies the harness's default iteration counts.
        cpus: the two CPUs for the ping-pong (default: the first two allowed).
        allow_busy: fit from measurements during which other tasks used the CPUs (by
            default those parameters keep the base profile's values; see the warnings).
        boost: run the benchmarks at the highest CPU priority allowed
            (:func:`keusim.model.harness.boost`), for a shared machine; recorded in
            [profile.machine].

    Returns:
        (profile, report). The profile is the fitted one, as loaded back from its TOML.

    Raises:
        NativeHarnessError: a benchmark could not be built or run.
        ProfileError: the measurements cannot be fitted.
    """
    hz = harness.tsc_hz()
    cpu = hostcpu.detect()
    pre: tuple[str, ...] = ()
    if base is None:
        base, pre = base_profile(cpu)
    # Rounds over the whole set, spread in time, then the fastest (one CPU) or median (two
    # CPUs) round of each benchmark: a neighbour sharing the physical core or a vCPU move
    # for a few seconds shifts every sample of a run, which no statistic within a run
    # can undo.
    rounds = [harness.run_calibration_micro(runs=1, scale=scale, cpus=cpus, seed=1 + k,
                                            progress=progress, boost_priority=boost)
              for k in range(max(1, runs))]
    results, spread = pick_rounds(rounds)
    machine = machine_info(hz, cpu)
    busy = any(r.busy for r in results)
    machine["busy"] = "yes: other tasks used the CPUs during some measurements" if busy \
        else "no"
    if boost:
        machine["priority"] = "benchmarks boosted (SCHED_FIFO where allowed)"
    cmd = f"keusim calibrate, {machine['date']}, rounds={runs}"
    prof, fits, warnings = fit_profile(results, hz, base, machine, command=cmd,
                                       allow_busy=allow_busy)
    warnings = pre + tuple(spread) + tuple(warnings)
    text = prof.to_toml(flatten=False)
    written: Path | None = None
    if out_path is not None:
        written = Path(out_path)
        written.parent.mkdir(parents=True, exist_ok=True)
        tmp = written.with_suffix(written.suffix + f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, written)
        prof = load_profile(written)
    else:
        prof = parse_profile(text, where="calibrated host profile")
    checks = model_checks(prof, results, hz)
    report = CalibrationReport(machine=machine, tsc_hz=hz, results=tuple(results),
                               fits=fits, checks=checks,
                               warnings=warnings + check_warnings(checks), toml=text,
                               out_path=written, base=prof.inherits or "",
                               estimates=tuple(not_measured(prof)))
    return prof, report


CHECK_TOLERANCE = 0.15
"""A model check off by more than this share is reported: the class table misprices
the benchmark's own loop on this core."""


def check_warnings(checks: Sequence[ModelCheck]) -> tuple[str, ...]:
    """A warning for each model check the fitted profile misses by more than
    :data:`CHECK_TOLERANCE` (the class table does not describe this core there)."""
    return tuple(
        f"model check {c.name}: the profile prices the loop at {c.model_cycles:.2f} cycles, "
        f"it measured {c.measured_cycles:.2f}; the class table does not describe this core "
        "for it (docs/cycle-model.md, 'Class-table checks')"
        for c in checks if c.measured_cycles > 0
        and abs(c.model_cycles / c.measured_cycles - 1) > CHECK_TOLERANCE)


__all__ = ["CARRIED_NOTE", "CLOCK_AGREEMENT", "CalibrationReport", "ClockEstimate", "Fit",
           "HOST_PROFILE", "LOAD_LEVELS", "ModelCheck", "base_profile", "calibrate",
           "check_warnings", "fit_clock", "fit_profile", "machine_info", "measure_clock",
           "model_checks", "not_measured", "pick_rounds"]
