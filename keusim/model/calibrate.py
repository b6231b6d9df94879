"""keusim calibrate: measure this host and fit the ``host`` profile from the measurements.

It runs the native calibration microbenchmarks (:func:`keusim.model.harness.
run_calibration_micro`): the timer pair, a dependent ADD chain, a pointer chase at four
working-set sizes, a cache line bounced between two CPUs, a buffer of consecutive lines
handed between two CPUs (4 and 16 KiB), a mix of independent loads and stores, and
``getppid`` round trips.
These are *not* the validation workloads (ring ping-pong and streaming, the function-call
chain): the model is fitted on the microbenchmarks and validated on those.

What is fitted (docs/cycle-model.md, "Calibration"); every per-op figure first loses the
timer pair's share (``timer_pair`` ticks / ops per sample):

========================  =================================================================
``clock.ghz``             ``classes.alu.latency`` (1) / TSC ticks per dependent ADD x TSC Hz
``memory.l1|l2|l3|dram``  ns per load of the 4 KiB / 128 KiB / 4 MiB / 128 MiB chase
``coherence.core_to_core`` ns per cache-line round trip / 2 (one hand-off)
``pipeline.memory_ops``  16 / cycles per mem_mix iteration (8 loads + 8 stores)
``coherence.stream_line`` (bulk hand-off round - line round trip - one transfer - the
                          model's cycles for the fill and sum loops) / (2 x (lines - 1)),
                          mean over the buffer sizes
``trap.syscall_entry``    (getppid round trip in cycles - calibration.linux_getppid_kernel_cycles)
``trap.syscall_exit``     split by calibration.syscall_entry_share
========================  =================================================================

The fitted profile records the machine it ran on ([profile.machine]: CPU model, kernel,
date, TSC Hz) and each number's measurement in its ``source``::

    profile, report = calibrate()                        # measure and fit; writes nothing
    profile, report = calibrate(out_path=HOST_PROFILE)   # ... and rewrite profiles/host.toml
    print(report.table())
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keusim.model import harness
from keusim.model.costmodel import FRACTION, ProfileCost, block_from_bytes
from keusim.model.harness import NativeResult
from keusim.model.profiles import (
    PROFILE_DIR,
    Param,
    Profile,
    ProfileError,
    load_profile,
    parse_profile,
)

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


def _round(x: float) -> int:
    """Round half up, as the profiles do (Python's round() rounds half to even)."""
    return int(math.floor(x + 0.5 + 1e-9))


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

    @property
    def busy(self) -> bool:
        """Other tasks used the CPUs during some measurement (see the warnings)."""
        return any(r.busy for r in self.results)

    def table(self) -> str:
        """The fit as a fixed-width text table, with the machine and any warnings."""
        m = self.machine
        out = [f"keusim calibrate: {m.get('cpu', '?')}, kernel {m.get('kernel', '?')}, "
               f"{m.get('date', '?')}, TSC {self.tsc_hz / 1e6:.1f} MHz"]
        rows = [("parameter", "previous", "fitted", "unit", "measured", "method")]
        for f in self.fits:
            unit = "GHz" if f.key == "clock.ghz" else "cycles"
            rows.append((f.key, f"{f.previous:.2f}", f"{f.cycles:.2f}", unit, f.measured,
                         f.method))
        w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
        if self.checks:
            out.append("")
            out += [f"model check {c.name}: measured {c.measured_cycles:.2f} cycles/op, "
                    f"model {c.model_cycles:.2f}" for c in self.checks]
        if self.warnings:
            out.append("")
            out += [f"WARNING: {w}" for w in self.warnings]
        if self.out_path:
            out += ["", f"wrote {self.out_path}"]
        return "\n".join(out)


# --------------------------------------------------------------------------- machine


def machine_info(tsc_hz: float) -> dict[str, str]:
    """The machine a calibration ran on: CPU model, kernel, date (UTC), TSC Hz, CPUs."""
    cpu, family, model, hyper = "unknown", "", "", False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k == "model name" and cpu == "unknown":
                cpu = v
            elif k == "cpu family" and not family:
                family = v
            elif k == "model" and not model:
                model = v
            elif k == "flags":
                hyper = hyper or "hypervisor" in v.split()
    except OSError:
        pass
    desc = cpu + (f" (family {family} model {model})" if family else "")
    if hyper:
        desc += ", virtual machine"
    return {"cpu": desc, "kernel": platform.release(),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tsc_hz": f"{tsc_hz:.0f}", "cpus": str(os.cpu_count() or 0),
            "python": platform.python_version()}


# --------------------------------------------------------------------------- fitting


def _per_op_ticks(r: NativeResult, timer_ticks: float) -> float:
    """Median ticks per op less the timer pair's share of each sample (at least 1e-9)."""
    return max(r.median_ticks - timer_ticks / max(1, r.ops_per_sample), 1e-9)


def _find(results: Sequence[NativeResult], name: str, size: int | None = None
          ) -> NativeResult | None:
    for r in results:
        if r.name == name and (size is None or r.size == size):
            return r
    return None


def fit_profile(results: Sequence[NativeResult], tsc_hz: float,
                base: Profile | str = "host", machine: Mapping[str, str] | None = None,
                *, command: str = "keusim calibrate", allow_busy: bool = False
                ) -> tuple[Profile, tuple[Fit, ...], tuple[str, ...]]:
    """Fit the host profile from calibration microbenchmark results (no measuring).

    Args:
        results: from :func:`keusim.model.harness.run_calibration_micro`.
        tsc_hz: the TSC frequency the results were taken at.
        base: the profile that provides everything not measured and the fit constants
            ([calibration]); the result is named ``host`` and inherits from it (or from
            what it inherits, if it is itself ``host``).
        machine: recorded in [profile.machine].
        command: named in each fitted number's source.
        allow_busy: also fit from results taken while other tasks used the CPUs. By
            default such a parameter keeps the base value (the clock is always fitted).

    Returns:
        (profile, fits, warnings). Parameters with no result keep the base's value.

    Raises:
        ProfileError: the results are unusable (no ALU chain to find the clock, or a
            clock outside 0.3-8 GHz).
    """
    base = base if isinstance(base, Profile) else load_profile(base)
    warnings: list[str] = []
    busy = [f"{r.name} {r.size or ''}".strip() for r in results if r.busy]
    if busy:
        warnings.append("other tasks used the CPUs during " + ", ".join(busy) + "; " +
                        ("those figures are inflated, re-run on a quiet machine" if allow_busy
                         else "the parameters they measure keep the base profile's values "
                         "(allow_busy=True fits them anyway); re-run on a quiet machine"))
    if not allow_busy:
        results = [r for r in results if not r.busy or r.name == "alu_chain"]
    tp = _find(results, "timer_pair")
    timer = tp.median_ticks if tp is not None else 0.0
    if tp is None:
        warnings.append("no timer_pair result: per-op figures keep the timer's share")
    fits: list[Fit] = []
    updates: dict[str, Param] = {}

    def put(key: str, param: Param, cycles: float, previous: float, measured: str,
            method: str) -> None:
        updates[key] = param
        fits.append(Fit(key, param, cycles, previous, measured, method))

    # Clock: one dependent ADD per alu.latency cycles.
    alu = _find(results, "alu_chain")
    if alu is None:
        raise ProfileError("calibration needs an alu_chain result to find the core clock")
    tpa = _per_op_ticks(alu, timer)
    alu_lat = base.classes["alu"].latency or 1.0
    ghz = alu_lat / tpa * tsc_hz / 1e9
    if not _GHZ_RANGE[0] <= ghz <= _GHZ_RANGE[1]:
        raise ProfileError(f"alu_chain gives a {ghz:.2f} GHz core clock, outside "
                           f"{_GHZ_RANGE[0]}-{_GHZ_RANGE[1]} GHz; the measurement is broken")
    put("clock.ghz", Param(round(ghz, 4), f"measured ({command}): micro_bench alu_chain, "
                           f"{tpa:.4f} TSC ticks per dependent 64-bit ADD "
                           f"(latency {alu_lat:g} cycle) x TSC {tsc_hz / 1e6:.1f} MHz",
                           unit="value", given=round(ghz, 4), origin="host"),
        ghz, base.ghz, f"alu_chain {tpa:.4f} ticks/add", "alu.latency / ticks x TSC Hz")

    def ns_of(r: NativeResult, per_op_div: float = 1.0) -> float:
        return _per_op_ticks(r, timer) * 1e9 / tsc_hz / per_op_div

    # Memory hierarchy: ns per load of each pointer chase.
    levels: dict[str, float] = {}
    for r in results:
        if r.name != "load_chain":
            continue
        key = LOAD_LEVELS.get(r.size)
        if key is None:
            warnings.append(f"load_chain size {r.size} is not one of the fitted levels "
                            f"({', '.join(str(s) for s in LOAD_LEVELS)}); ignored")
            continue
        ns = ns_of(r)
        levels[key] = ns
        put(key, Param(round(ns * ghz, 4), f"measured ({command}): micro_bench load_chain "
                       f"--size {r.size} (random pointer chase, 4 KiB pages), "
                       f"median {ns:.3f} ns per load", unit="ns", given=round(ns, 4),
                       origin="host"),
            ns * ghz, base.param(key).value, f"load_chain {r.size} B {ns:.2f} ns/load",
            "ns x GHz")
    order = [k for k in ("memory.l1", "memory.l2", "memory.l3", "memory.dram") if k in levels]
    if any(levels[a] >= levels[b] for a, b in zip(order, order[1:], strict=False)):
        warnings.append("load latencies do not grow with the working set: "
                        + ", ".join(f"{k} {levels[k]:.2f} ns" for k in order))

    # Cross-core hand-off: half a cache-line round trip.
    pp = _find(results, "cacheline_pingpong")
    if pp is not None and pp.single_cpu:
        warnings.append("cacheline_pingpong ran on one CPU (both sides share it): "
                        "coherence.core_to_core keeps the base value")
    elif pp is not None:
        ns = ns_of(pp, 2.0)
        prev_c2c = base.param("coherence.core_to_core").value
        spread = [m for m in pp.run_medians_ns if m > 0]
        if ns * ghz > PLACEMENT_FACTOR * prev_c2c or (
                spread and max(spread) > PLACEMENT_FACTOR * min(spread)):
            warnings.append(
                f"cacheline_pingpong: one hand-off took {ns:.1f} ns ({ns * ghz:.0f} cycles; "
                f"previous profile {prev_c2c:.0f}; run medians "
                f"{', '.join(f'{m:.0f}' for m in spread)} ns per round trip). The two vCPUs "
                "are probably placed far apart right now (docs/host-baselines.md): "
                "ring predictions scale with this number, so re-run keusim calibrate and compare")
        put("coherence.core_to_core",
            Param(round(ns * ghz, 4), f"measured ({command}): micro_bench cacheline_pingpong "
                  f"on CPUs {pp.cpus[0]},{pp.cpus[1]}, median round trip {2 * ns:.2f} ns / 2 "
                  "hand-offs (placement moves it 2-3x between runs)", unit="ns",
                  given=round(ns, 4), origin="host"),
            ns * ghz, base.param("coherence.core_to_core").value,
            f"pingpong {2 * ns:.1f} ns/round trip", "ns / 2 x GHz")

    # Memory operations per cycle: mem_mix's 16 independent L1 loads and stores per
    # iteration. Zen 3's separate load (3/cycle) and store (2/cycle) limits allow 4
    # cycles; what it takes beyond that is the shared limit.
    mix = _find(results, "mem_mix")
    if mix is not None:
        cyc = ns_of(mix) * ghz
        ops = _MEM_MIX_OPS / cyc
        key = "pipeline.memory_ops"
        put(key, Param(round(ops, 4), f"measured ({command}): micro_bench mem_mix, 8 "
                       f"independent L1 loads + 8 stores per iteration in {cyc:.3f} cycles: "
                       f"{_MEM_MIX_OPS} / cycles", unit="value", given=round(ops, 4),
                       origin="host"),
            ops, base.param(key).value, f"mem_mix {cyc:.2f} cycles/iteration",
            "16 memory ops / cycles")

    # Pipelined hand-offs: a buffer of consecutive lines written by one CPU, read by the
    # other, then a flag round trip. With posted writes the model charges such a round
    # the flag's round trip (a cacheline_pingpong op), one full transfer (the reader's
    # first line; the writer's first invalidation is posted), stream_line for each of
    # the other 2 x (lines - 1) line events, and the fill and sum loops' instructions
    # (priced by the model being fitted: the block costs charge them separately).
    # Inverted here.
    bulk = [r for r in results if r.name == "bulk_handoff"]
    if bulk and (pp is None or pp.single_cpu):
        warnings.append("bulk_handoff needs a two-CPU cacheline_pingpong result: "
                        "coherence.stream_line keeps the base value")
    elif bulk:
        pp_ns = ns_of(pp)
        fitted = base.with_params(updates, path=None)
        loop_cyc = bulk_loop_cycles(fitted)      # model cycles per line, fill + sum
        xfer_ns = fitted.coherence()[0] / ghz    # the reader's first line, in full
        per: list[tuple[int, float]] = []
        for r in bulk:
            lines = r.size // 64
            if r.single_cpu or lines < 2:
                warnings.append(f"bulk_handoff {r.size} B ran on one CPU or has one line; "
                                "ignored")
                continue
            ns = (ns_of(r) - pp_ns - xfer_ns - lines * loop_cyc / ghz) / (2 * (lines - 1))
            per.append((r.size, ns))
        if per:
            ns = sum(v for _, v in per) / len(per)
            if ns <= 0:
                warnings.append("bulk_handoff is no slower than a line round trip: "
                                "coherence.stream_line keeps the base value")
            else:
                each = ", ".join(f"{sz} B {v:.2f} ns" for sz, v in per)
                key = "coherence.stream_line"
                prev = base.param(key).value if key in base.params else \
                    float(base.coherence()[0])   # serial model: a full transfer
                put(key, Param(round(ns * ghz, 4), f"measured ({command}): micro_bench "
                               f"bulk_handoff (one CPU writes the buffer's lines, the other "
                               f"reads them, then a flag round trip) minus "
                               f"cacheline_pingpong {pp_ns:.1f} ns, one transfer "
                               f"{xfer_ns:.1f} ns and the model's {loop_cyc:.2f} cycles "
                               f"per line of the fill and sum loops, per each of the other "
                               f"2 x (lines - 1) line events: {each}; mean",
                               unit="ns", given=round(ns, 4), origin="host"),
                    ns * ghz, prev, f"bulk {each}",
                    "(round - pp - xfer - lines x loops) / (2 (lines-1)) x GHz")

    # System call: the round trip less Linux's own work, split entry/exit.
    sc = _find(results, "syscall_getppid")
    if sc is not None:
        ns = ns_of(sc)
        rt = ns * ghz
        kwork = base.param("calibration.linux_getppid_kernel_cycles").value
        share = base.param("calibration.syscall_entry_share").value
        pair = max(2.0, rt - kwork)
        if rt - kwork < 2.0:
            warnings.append(f"getppid round trip ({rt:.0f} cycles) is below the assumed Linux "
                            f"kernel work ({kwork:.0f}); trap costs clamped")
        entry = _round(pair * share)
        exit_ = _round(pair) - entry
        how = (f"fitted ({command}): micro_bench syscall_getppid median {ns:.1f} ns = "
               f"{rt:.0f} cycles round trip, less calibration.linux_getppid_kernel_cycles "
               f"{kwork:.0f}, x calibration.syscall_entry_share {share:g}")
        put("trap.syscall_entry", Param(float(entry), how, unit="cycles", given=float(entry),
                                        origin="host"),
            entry, base.param("trap.syscall_entry").value, f"getppid {ns:.1f} ns",
            "(rt - kernel) x share")
        put("trap.syscall_exit", Param(float(exit_), how.replace(
            f"x calibration.syscall_entry_share {share:g}",
            f"x (1 - calibration.syscall_entry_share {share:g})"), unit="cycles",
            given=float(exit_), origin="host"),
            exit_, base.param("trap.syscall_exit").value, f"getppid {ns:.1f} ns",
            "(rt - kernel) x (1 - share)")

    inherits = base.inherits if base.name == "host" else base.name
    desc = base.description if base.name == "host" else \
        f"this host: {base.name} class tables with measured clock, memory, line hand-off " \
        "and system call"
    # Keep what the base host profile itself defined but this run did not measure.
    keep = {k: p for k, p in base.params.items() if p.origin == "host" and k not in updates}
    prof = base.with_params({**keep, **updates}, name="host", inherits=inherits,
                            description=desc, machine=dict(machine or {}), path=None)
    return prof, tuple(fits), tuple(warnings)


# --------------------------------------------------------------------------- checks

# The microbenchmarks' own inner loops, as the compiler emits them for the host.
_ADD_CHAIN = bytes.fromhex("4883c001") * 100          # add rax, 1  (x100, dependent)
_CHASE = bytes.fromhex("488b00" "4883e901" "75f6")    # mov rax,[rax]; sub rcx,1; jne


# micro_bench.c's bulk_fill and bulk_sum loops (one 64-byte line per iteration) and its
# mem_mix loop, byte for byte (tests/test_profiles.py finds them in the built binary).
_BULK_FILL = bytes.fromhex(
    "488917488957084889571048895718488957204889572848895730488957384883c7404839f772d8")
_BULK_SUM = bytes.fromhex(
    "4c8b074c0347084c8b4f104c034f184c8b57204c0357284c8b5f304c035f384d01c84d01da4d01d0"
    "4c01c04883c7404839f772cc")
_MEM_MIX = bytes.fromhex(
    "488b0748899700020000488b470848899708020000488b471048899710020000488b4718488997180200"
    "00488b472048899720020000488b472848899728020000488b473048899730020000488b473848899738"
    "0200004883e90175a3")
_MEM_MIX_OPS = 16


def bulk_loop_cycles(profile: Profile) -> float:
    """Model cycles per 64-byte line of bulk_handoff's fill loop plus its sum loop."""
    pc = ProfileCost(profile, "x86_64")
    return (pc.block(block_from_bytes(_BULK_FILL, "x86_64")).fixed
            + pc.block(block_from_bytes(_BULK_SUM, "x86_64")).fixed) / FRACTION


def model_checks(profile: Profile, results: Sequence[NativeResult], tsc_hz: float
                 ) -> tuple[ModelCheck, ...]:
    """Run the fitted model on the ADD chain and the L1 pointer chase and compare."""
    pc = ProfileCost(profile, "x86_64")
    tp = _find(results, "timer_pair")
    timer = tp.median_ticks if tp is not None else 0.0
    cyc_per_tick = profile.ghz * 1e9 / tsc_hz
    out = []
    alu = _find(results, "alu_chain")
    if alu is not None:
        model = pc.block(block_from_bytes(_ADD_CHAIN, "x86_64")).fixed / FRACTION / 100
        out.append(ModelCheck("alu_chain (cycles per add)",
                              _per_op_ticks(alu, timer) * cyc_per_tick, model))
    l1 = _find(results, "load_chain", 4 << 10)
    if l1 is not None:
        code = _CHASE[:-1] + struct.pack("b", -len(_CHASE))
        model = pc.block(block_from_bytes(code, "x86_64")).fixed / FRACTION
        out.append(ModelCheck("load_chain 4 KiB (cycles per load)",
                              _per_op_ticks(l1, timer) * cyc_per_tick, model))
    mix = _find(results, "mem_mix")
    if mix is not None:
        model = pc.block(block_from_bytes(_MEM_MIX, "x86_64")).fixed / FRACTION
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
              base: Profile | str = "host", runs: int = 5, scale: float = 1.0,
              cpus: tuple[int, int] | None = None, allow_busy: bool = False
              ) -> tuple[Profile, CalibrationReport]:
    """Measure this host with the native microbenchmarks and fit the host profile.

    Args:
        out_path: where to write the fitted profile TOML (``HOST_PROFILE`` rewrites the
            packaged one); None writes nothing (the text is in ``report.toml``).
        progress: show the harness's progress bar (default: when stderr is a terminal).
        base: profile for everything not measured and for the fit constants.
        runs: rounds over the whole set of microbenchmarks; each benchmark is fitted
            from its fastest (one CPU) or median (two CPUs) round (:func:`pick_rounds`).
        scale: multiplies the harness's default iteration counts.
        cpus: the two CPUs for the ping-pong (default: the first two allowed).
        allow_busy: fit from measurements during which other tasks used the CPUs (by
            default those parameters keep the base profile's values; see the warnings).

    Returns:
        (profile, report). The profile is the fitted one, as loaded back from its TOML.

    Raises:
        NativeHarnessError: a benchmark could not be built or run.
        ProfileError: the measurements cannot be fitted.
    """
    hz = harness.tsc_hz()
    # Rounds over the whole set, spread in time, then the fastest (one CPU) or median (two
    # CPUs) round of each benchmark: a neighbour sharing the physical core or a vCPU move
    # for a few seconds shifts every sample of a run, which no statistic within a run
    # can undo.
    rounds = [harness.run_calibration_micro(runs=1, scale=scale, cpus=cpus, seed=1 + k,
                                            progress=progress)
              for k in range(max(1, runs))]
    results, spread = pick_rounds(rounds)
    machine = machine_info(hz)
    busy = any(r.busy for r in results)
    machine["busy"] = "yes: other tasks used the CPUs during some measurements" if busy \
        else "no"
    cmd = f"keusim calibrate, {machine['date']}, rounds={runs}"
    prof, fits, warnings = fit_profile(results, hz, base, machine, command=cmd,
                                       allow_busy=allow_busy)
    warnings = tuple(spread) + tuple(warnings)
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
    report = CalibrationReport(machine=machine, tsc_hz=hz, results=tuple(results),
                               fits=fits, checks=model_checks(prof, results, hz),
                               warnings=warnings, toml=text, out_path=written)
    return prof, report


__all__ = ["CalibrationReport", "Fit", "HOST_PROFILE", "LOAD_LEVELS", "ModelCheck",
           "calibrate", "pick_rounds", "fit_profile", "machine_info", "main",
           "model_checks"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m keusim.model.calibrate``: measure, fit, print the report (and maybe write)."""
    import argparse
    import sys

    from keusim.errors import KeusimError

    ap = argparse.ArgumentParser(prog="keusim calibrate",
                                 description="Measure this host and fit the host profile.")
    ap.add_argument("--write", nargs="?", const=str(HOST_PROFILE), metavar="PATH",
                    help=f"write the fitted profile (default path: {HOST_PROFILE})")
    ap.add_argument("--base", default="host", help="profile for what is not measured")
    ap.add_argument("--runs", type=int, default=5,
                    help="rounds over the microbenchmarks (fastest or median round fitted)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply iteration counts")
    ap.add_argument("--allow-busy", action="store_true",
                    help="also fit measurements taken while other tasks used the CPUs")
    a = ap.parse_args(argv)
    try:
        _, report = calibrate(a.write, base=a.base, runs=a.runs, scale=a.scale,
                              allow_busy=a.allow_busy)
    except KeusimError as e:
        print(f"keusim: error: {e}", file=sys.stderr)
        return 2
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

