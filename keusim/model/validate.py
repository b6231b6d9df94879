"""Validation of the cycle model against native runs of the same C source.

``validate()`` puts the simulated run (x86-64, a profile, default ``host``) beside native
runs on the host, on workloads the model was **not** fitted on (calibration uses only the
microbenchmarks of ``native/micro_bench.c``; docs/cycle-model.md §5):

* ``pingpong`` -- ring round trips between two cores at each message size
  (``guests/src/pingpong.c``: ping times ``send + receive of the echo`` with the cycle
  counter and reports the sum over its round trips);
* ``stream`` -- one-way streaming at each size (``guests/src/stream.c``: the consumer
  times its whole receive-and-check loop; the figure is per message);
* ``callchain`` -- a chain of nested calls that each copy the message
  (``guests/src/callchain.c``; per chain).

**Same source on both sides.** The native twin of a scenario is the scenario's own guest
program, built for the host with the native harness's flags (``HOST_CFLAGS``: the x86-64
guests' ISA) against ``native/guest_host.c``, a Linux implementation of the guest runtime
(endpoints in a shared file laid out like the kernel's ring mappings, ``ks_report`` to
stdout). One Linux process per guest process, pinned to its own CPU as the guest is to
its core. ``ks_rdcycles`` is ``rdtsc`` on both sides: model cycles in the emulator, TSC
ticks natively; ticks become core cycles with the profile's clock
(``cycles = ticks / TSC Hz * clock.ghz``), the same conversion ``keusim calibrate`` used
to fit the profile.

**Statistics.** The simulated figure is deterministic: the difference between a run of
n ops and one of n/5 (steady state, without the cold start). Natively, every
configuration runs ``runs`` times, in rounds over all configurations, so that each
configuration's runs are spread over the whole measurement: on this VM the CPU placement
of the two vCPUs changes over minutes and moves these figures by up to 2-3x
(docs/host-baselines.md), and spreading turns that into visible p10-p90
spread instead of a silent shift of one configuration. Each run gives one per-op figure
(its own average over thousands of ops); the report shows their median and p10-p90. Runs
during which other tasks used more than 5 % of the CPU time are re-run (up to twice) and
flagged ``busy``. The core clock is measured (dependent IMULs checked by dependent ADDs:
:func:`keusim.model.calibrate.measure_clock`) before and after, for the
record; ticks are converted with the profile's clock, the one the prediction assumes.

    >>> from keusim.model.validate import validate
    >>> rep = validate()            # ~1-2 minutes on a 2-CPU machine
    >>> print(rep.table()); rep.save("results/validation")

``keusim validate`` does the same from a shell.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import platform
import re
import resource
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from keusim import arch as archmod
from keusim.errors import KeusimError
from keusim.manifest import SystemSpec, resolve
from keusim.model.harness import HOST_CFLAGS, percentile, run_calibration_micro, tsc_hz
from keusim.model.harness import boost as harness_boost
from keusim.progress import progress_bar
from keusim.toolchain import ROOT, host_executable

SIZES: tuple[int, ...] = (8, 64, 256, 1024, 4096)
WORKLOADS: tuple[str, ...] = ("pingpong", "stream", "callchain")
GOAL_MEDIAN_PCT = 10.0
"""Goal: median |error| at most this (the issue's target)."""
GOAL_WORST_PCT = 25.0
"""Goal: every |error| at most this."""
BUSY_FRACTION = 0.05
"""A native run is busy when other tasks used more than this share of the CPU time
(the native harness's threshold, keusim/model/harness.py)."""
NATIVE_TARGET_S = 0.03
"""Host time one native run aims at (its op count is sized from a rough per-op guess)."""
NATIVE_TIMEOUT_S = 60.0
STATE_LINE_TOLERANCE = 0.35
"""A native run is in the profile's host state when the cache line round trip measured
just before it is within this fraction of the profile's (``2 x coherence.core_to_core``).
The vCPU placement of a VM moves that round trip between ~75 and ~330 ns
(docs/host-baselines.md); 35 % separates those modes and tolerates run-to-run noise."""
STATE_MIX_TOLERANCE = 0.10
"""... and when mem_mix (16 L1 memory operations, one CPU) takes at most this much more
than the profile predicts: more means the CPU is shared with another tenant's thread
(an SMT sibling or a co-scheduled vCPU), which slows every single-core workload."""

_HOST_MAGIC = 0x74736F684B45554B      # native/guest_host.c HOST_MAGIC
_MAXCHAN = 32
_PAGE = 4096
_STAT_ROUND_TRIPS, _STAT_RT_CYCLES, _STAT_RECV_MSGS = 8, 9, 3   # guests/include/keusim/keusim.h
_CALLCHAIN_RE = re.compile(r"callchain: (\d+) chains of depth \d+, \d+ bytes, (\d+) cycles")
_UNITS = {"pingpong": "round trip", "stream": "message", "callchain": "chain"}


class ValidationError(KeusimError):
    """A validation run failed: a simulated run that was not ok, or a native twin that
    could not be built or run."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ValidationRow:
    """One workload at one size: the model's prediction beside the native measurement.

    Cycles are core cycles per op (``unit``); native cycles are TSC ticks converted with
    the profile's clock. ``error_pct`` = (predicted - native median) / native median.
    """

    workload: str
    size: int
    unit: str
    predicted_cycles: float
    native_median_cycles: float
    native_p10_cycles: float
    native_p90_cycles: float
    native_median_ns: float
    error_pct: float
    native_runs: int
    native_ops: int
    """Ops per native run (round trips, messages or chains)."""
    sim_ops: int
    """Ops of the long simulated run (the prediction is the difference between it and a
    run of a fifth as many ops: steady state, without the cold start)."""
    busy: bool
    """A kept native run was busy even after re-runs (other tasks used the CPUs)."""
    busy_share: float
    native_run_cycles: tuple[float, ...] = ()
    """The per-op figure of every native run, in core cycles."""
    sim_host_s: float = 0.0
    """Host seconds the simulated run took (boot included); for the speed picture only."""
    run_states: tuple[str, ...] = ()
    """Per native run: "" when the host was in the profile's state just before it, else
    why not (:func:`state_problem`). Empty when the state check was off."""
    all_median_cycles: float = math.nan
    """The median over every native run, in the profile's state or not."""

    @property
    def state_runs(self) -> int:
        """Native runs measured in the profile's host state (all of them with the check off)."""
        if not self.run_states:
            return len(self.native_run_cycles)
        return sum(1 for x in self.run_states if not x)

    @property
    def within_spread(self) -> bool:
        """The prediction lies inside the native p10-p90 range."""
        return self.native_p10_cycles <= self.predicted_cycles <= self.native_p90_cycles


@dataclass(frozen=True)
class ValidationReport:
    """Every row, what they were measured with, and the summary against the goal."""

    profile: str
    profile_path: str
    ghz: float
    tsc_hz: float
    cpus: tuple[int, ...]
    rows: tuple[ValidationRow, ...]
    machine: dict = field(default_factory=dict)
    """Host facts: CPU model, kernel, date, Python, whether the profile is calibrated."""
    command: str = ""
    elapsed_s: float = 0.0

    @property
    def abs_errors(self) -> list[float]:
        return [abs(r.error_pct) for r in self.rows if not math.isnan(r.error_pct)]

    @property
    def median_abs_error(self) -> float:
        e = sorted(self.abs_errors)
        return percentile(e, 0.5) if e else math.nan

    @property
    def worst(self) -> ValidationRow | None:
        rows = [r for r in self.rows if not math.isnan(r.error_pct)]
        return max(rows, key=lambda r: abs(r.error_pct)) if rows else None

    @property
    def rows_without_state(self) -> list[ValidationRow]:
        """Rows none of whose native runs found the host in the profile's state; their
        error compares the model with a host it does not describe."""
        return [r for r in self.rows if r.run_states and r.state_runs == 0]

    @property
    def goal_met(self) -> bool:
        w = self.worst
        return (w is not None and self.median_abs_error <= GOAL_MEDIAN_PCT
                and abs(w.error_pct) <= GOAL_WORST_PCT and not self.rows_without_state)

    def row(self, workload: str, size: int) -> ValidationRow:
        for r in self.rows:
            if r.workload == workload and r.size == size:
                return r
        raise KeyError(f"no validation row {workload!r} at {size} bytes")

    # -- rendering ------------------------------------------------------------
    def table(self) -> str:
        """A fixed-width table with a header of context and the summary line."""
        head = (f"cycle-model validation: profile {self.profile} ({self.ghz:g} GHz), "
                f"x86-64 guest vs native on {self.machine.get('cpu', '?')}, "
                f"TSC {self.tsc_hz / 1e6:.1f} MHz, CPUs {','.join(map(str, self.cpus))}")
        pm = self.machine.get("profile_machine") or {}
        if self.machine.get("profile_calibrated_here"):
            head += (f"\nprofile {self.profile}: calibrated here ({pm.get('cpu', '?')}, "
                     f"{pm.get('date', '?')})")
        elif pm:
            head += f"\nprofile {self.profile}: NOT calibrated here: " + \
                (self.machine.get("profile_mismatch") or "it records another machine")
        else:
            head += (f"\nprofile {self.profile}: published figures, not calibrated on any "
                     "host (keusim calibrate fits this host's)")
        if self.machine.get("load_average"):
            head += (f"\nload average at the end {self.machine['load_average']}; native "
                     f"twins at {self.machine.get('native_priority', 'normal')} priority")
        core = self.machine.get("core")
        if core:
            head += f"\nhost core family: {core} (profile {self.machine.get('core_profile')})"
        est = self.machine.get("profile_estimates")
        if est:
            head += f"\nprofile numbers that are estimates, not measured: {', '.join(est)}"
        ghz_now = self.machine.get("measured_core_ghz")
        if ghz_now:
            head += ("\n(core clock measured before/after the native runs: "
                     + "/".join(f"{g:.2f}" for g in ghz_now) + " GHz)")
        line_now = [v for v in self.machine.get("line_round_trip_ns", []) if v == v]
        if line_now:
            prof_rt = self.machine.get("profile_line_round_trip_ns")
            head += ("\n(one cache line's round trip between the two CPUs before/after the "
                     "native runs: " + "/".join(f"{v:.0f}" for v in line_now) + " ns"
                     + (f"; the profile assumes {prof_rt:.0f} ns. Ring rows scale with it: "
                        "if they differ by much, the vCPU placement moved since "
                        "`keusim calibrate`" if prof_rt else "") + ")")
        exp = self.machine.get("expected_state")
        if exp:
            head += (f"\nhost state check: a native run counts when, just before it, the line "
                     f"round trip was within {100 * STATE_LINE_TOLERANCE:.0f}% of "
                     f"{exp['line_rt_ns']:.0f} ns and mem_mix at most "
                     f"{100 * STATE_MIX_TOLERANCE:.0f}% above {exp['mix_cycles']:.2f} cycles "
                     "(the profile's); 'all med' is the median over every run")
        cols = ("workload", "size", "per", "predicted", "native med", "native p10-p90",
                "med ns", "error", "in p10-p90", "state", "all med", "busy")
        rows = []
        for r in self.rows:
            rows.append((r.workload, str(r.size), r.unit, f"{r.predicted_cycles:.0f}",
                         f"{r.native_median_cycles:.0f}",
                         f"{r.native_p10_cycles:.0f}-{r.native_p90_cycles:.0f}",
                         f"{r.native_median_ns:.0f}", f"{r.error_pct:+.1f}%",
                         "yes" if r.within_spread else "no",
                         f"{r.state_runs}/{r.native_runs}", f"{r.all_median_cycles:.0f}",
                         f"yes {100 * r.busy_share:.0f}%" if r.busy else "no"))
        widths = [max(len(c), *(len(x[i]) for x in rows)) if rows else len(c)
                  for i, c in enumerate(cols)]
        left = {0, 2}

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        out = [head, "(cycles are core cycles per op; native = TSC ticks x clock / TSC rate)",
               line(cols), line(["-" * w for w in widths])]
        out += [line(x) for x in rows]
        w = self.worst
        if w is not None:
            out.append("")
            out.append(f"median |error| {self.median_abs_error:.1f}% (goal <= {GOAL_MEDIAN_PCT:g}%), "
                       f"worst {w.error_pct:+.1f}% at {w.workload} {w.size} B (goal <= "
                       f"{GOAL_WORST_PCT:g}%): goal {'MET' if self.goal_met else 'NOT met'}")
        lost = self.rows_without_state
        if lost:
            out.append(f"{len(lost)} row(s) had no native run in the profile's host state "
                       f"({', '.join(f'{r.workload} {r.size} B' for r in lost)}): the goal "
                       "cannot be met; run `keusim calibrate` again or re-run when the "
                       "placement is back")
        busy = [r for r in self.rows if r.busy]
        if busy:
            out.append(f"WARNING: {len(busy)} of {len(self.rows)} native figures were measured "
                       "while other tasks used the CPUs; re-run on a quiet machine.")
        return "\n".join(out)

    def as_dict(self) -> dict:
        d = {
            "profile": self.profile, "profile_path": self.profile_path, "ghz": self.ghz,
            "tsc_hz": self.tsc_hz, "cpus": list(self.cpus), "machine": self.machine,
            "command": self.command, "elapsed_s": round(self.elapsed_s, 2),
            "goal": {"median_abs_error_pct": GOAL_MEDIAN_PCT, "worst_abs_error_pct": GOAL_WORST_PCT},
            "median_abs_error_pct": self.median_abs_error,
            "worst_error_pct": self.worst.error_pct if self.worst else None,
            "goal_met": self.goal_met,
            "rows_without_state": [f"{r.workload} {r.size}" for r in self.rows_without_state],
            "rows": [],
        }
        for r in self.rows:
            x = asdict(r)
            x["native_run_cycles"] = list(r.native_run_cycles)
            x["run_states"] = list(r.run_states)
            x["state_runs"] = r.state_runs
            x["within_spread"] = r.within_spread
            d["rows"].append(x)
        return d

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.as_dict(), indent=indent)

    def to_csv(self) -> str:
        buf = io.StringIO()
        cols = ("workload", "size", "unit", "predicted_cycles", "native_median_cycles",
                "native_p10_cycles", "native_p90_cycles", "native_median_ns", "error_pct",
                "within_spread", "native_runs", "state_runs", "all_median_cycles", "native_ops", "sim_ops",
                "busy", "busy_share")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in self.rows:
            w.writerow([_csv_cell(getattr(r, c)) for c in cols])
        return buf.getvalue()

    def plot(self, path: str | Path) -> Path:
        """Predicted vs native cycles per op for each workload, and the errors; PNG or SVG
        by the suffix of ``path``."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        workloads = [w for w in WORKLOADS if any(r.workload == w for r in self.rows)]
        workloads += sorted({r.workload for r in self.rows} - set(workloads))
        fig, axes = plt.subplots(2, len(workloads), figsize=(4.2 * len(workloads), 6.4),
                                 squeeze=False, gridspec_kw={"height_ratios": [3, 1.3]})
        for i, wl in enumerate(workloads):
            rows = sorted((r for r in self.rows if r.workload == wl), key=lambda r: r.size)
            xs = [r.size for r in rows]
            ax = axes[0][i]
            med = [r.native_median_cycles for r in rows]
            lo = [r.native_median_cycles - r.native_p10_cycles for r in rows]
            hi = [r.native_p90_cycles - r.native_median_cycles for r in rows]
            ax.errorbar(xs, med, yerr=[lo, hi], fmt="o-", color="tab:blue", capsize=3,
                        label="native median (p10-p90)")
            ax.plot(xs, [r.predicted_cycles for r in rows], "s--", color="tab:red",
                    label=f"model ({self.profile})")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{wl}: cycles per {_UNITS.get(wl, 'op')}")
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.grid(True, which="both", alpha=0.3)
            if i == 0:
                ax.legend(fontsize=8)
            ex = axes[1][i]
            errs = [r.error_pct for r in rows]
            ex.bar(range(len(xs)), errs, color=["tab:green" if abs(e) <= GOAL_MEDIAN_PCT else
                                                "tab:orange" if abs(e) <= GOAL_WORST_PCT else
                                                "tab:red" for e in errs])
            ex.axhline(0, color="black", lw=0.8)
            for g in (GOAL_WORST_PCT, -GOAL_WORST_PCT):
                ex.axhline(g, color="gray", lw=0.6, ls=":")
            ex.set_xticks(range(len(xs)), [str(x) for x in xs])
            ex.set_xlabel("message bytes")
            ex.set_ylabel("error %")
        fig.suptitle(f"keusim cycle model vs native ({self.machine.get('cpu', 'host')}): "
                     f"median |error| {self.median_abs_error:.1f}%", fontsize=10)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path

    def save(self, folder: str | Path = "results/validation", plot: bool = True) -> list[Path]:
        """Write validation.json, validation.csv, validation.txt and (plot) .png/.svg."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "validation.json", out / "validation.csv", out / "validation.txt"]
        paths[0].write_text(self.to_json())
        paths[1].write_text(self.to_csv())
        paths[2].write_text(self.table() + "\n")
        if plot:
            paths.append(self.plot(out / "validation.png"))
            paths.append(self.plot(out / "validation.svg"))
        return paths


def _csv_cell(v):
    if isinstance(v, float):
        return f"{v:.3f}"
    return v


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class _Workload:
    scenario: str
    unit: str
    count_param: str                       # the scenario parameter that sets the op count
    sim_ops: Callable[[int], int]          # default simulated ops at a size
    guess_ns: Callable[[int], float]       # rough native ns per op, to size native runs


def _sim_ops_ring(size: int) -> int:
    # ~1000-2000 simulated round trips per host second at small sizes, fewer at 4 KiB.
    return 1000 if size <= 256 else 600 if size <= 1024 else 300


_WORKLOADS: dict[str, _Workload] = {
    "pingpong": _Workload("pingpong", "round trip", "messages", _sim_ops_ring,
                          lambda s: 300 + 3.0 * s),
    "stream": _Workload("stream", "message", "messages", _sim_ops_ring,
                        lambda s: 80 + 4.0 * s),
    "callchain": _Workload("callchain", "chain", "calls",
                           lambda s: 2000 if s <= 256 else 500, lambda s: 60 + 3.0 * s),
}


def _metric_sim(workload: str, rep) -> tuple[int, int]:
    """(total cycles of the measured ops, ops) from a simulated RunReport."""
    if not rep.ok:
        raise ValidationError(f"simulated {rep.scenario} {rep.params} did not finish as "
                              f"expected ({rep.status}: {rep.message})")
    if workload == "pingpong":
        st = rep.channel(0).producer_stats
        return st.get("rt_cycles", 0), st.get("round_trips", 0)
    if workload == "stream":
        st = rep.channel(0).consumer_stats
        return st.get("rt_cycles", 0), st.get("recv_msgs", 0)
    return _callchain_totals(rep.processes[0].console, f"simulated {rep.scenario}")


def _callchain_totals(console: str, what: str) -> tuple[int, int]:
    """(cycles, chains) from the callchain program's console line."""
    m = _CALLCHAIN_RE.search(console)
    if not m:
        raise ValidationError(f"{what}: no callchain result line in its output: {console!r}")
    return int(m[2]), int(m[1])


def _metric_native(workload: str, stats: dict, consoles: dict[int, str]) -> tuple[float, int]:
    """(ticks per op, ops) from a native run's #stat lines and consoles."""
    if workload == "pingpong":
        n = stats.get((1, 0, _STAT_ROUND_TRIPS), 0)
        return (stats.get((1, 0, _STAT_RT_CYCLES), 0) / n if n else math.nan), n
    if workload == "stream":
        n = stats.get((2, 0, _STAT_RECV_MSGS), 0)
        return (stats.get((2, 0, _STAT_RT_CYCLES), 0) / n if n else math.nan), n
    cyc, n = _callchain_totals(consoles.get(1, ""), "native callchain")
    return (cyc / n if n else math.nan), n


# --------------------------------------------------------------------------- native twin


def _native_include_dirs() -> tuple[Path, ...]:
    g = ROOT / "guests"
    return (g / "include", g / "arch" / "x86_64" / "include", ROOT / "kernel" / "include",
            ROOT / "native")


def native_twin(spec: SystemSpec, params: dict) -> list[Path]:
    """Build each process of ``spec`` for the host (same C source, native/guest_host.c as
    its runtime); returns one executable per process (cached by content hash)."""

    defines = tuple(f"-D{k.upper()}={v}" for k, v in sorted(params.items()))
    g = ROOT / "guests"
    runtime = (ROOT / "native" / "guest_host.c", g / "lib" / "ring.c", g / "lib" / "string.c")
    exes = []
    for p in spec.processes:
        if p.is_elf:
            raise ValidationError(f"process {p.name!r} of {spec.name!r} is a prebuilt ELF; a "
                                  "native twin needs its C source")
        name = f"native-{spec.name}-{p.name}-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
        try:
            exes.append(host_executable(tuple(p.sources) + runtime, name,
                                        cflags=HOST_CFLAGS + defines + p.cflags,
                                        include_dirs=_native_include_dirs()))
        except KeusimError as e:
            raise ValidationError(f"cannot build the native twin of {spec.name}/{p.name}: {e}") from e
    return exes


def _channel_file(spec: SystemSpec, folder: str) -> str:
    """Lay out the shared channel file for native/guest_host.c; returns its path."""
    idx = {p.name: i + 1 for i, p in enumerate(spec.processes)}
    if len(spec.channels) > _MAXCHAN:
        raise ValidationError(f"{spec.name}: more than {_MAXCHAN} channels")
    off = _PAGE
    table = b""
    for c in spec.channels:
        if c.mode != "poll":
            raise ValidationError(f"{spec.name}: channel {c.name!r} is in {c.mode} mode; native "
                                  "twins support poll-mode channels only")
        head, tail, data = off, off + _PAGE, off + 2 * _PAGE
        off = data + ((c.capacity + _PAGE - 1) & ~(_PAGE - 1))
        table += struct.pack("<IIIIQQQ", idx[c.producer], idx[c.consumer], c.capacity, 0,
                             head, tail, data)
    ctl = struct.pack("<QIIII", _HOST_MAGIC, len(spec.processes), len(spec.channels), 0, 0)
    ctl += table
    path = os.path.join(folder, "channels")
    with open(path, "wb") as f:
        f.write(ctl + bytes(_PAGE - len(ctl) % _PAGE))
        f.truncate(off)
    return path


def _cpu_ticks() -> int:
    """Busy clock ticks of the whole system (/proc/stat, first line; steal counts as busy)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def _children_ticks() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * os.sysconf("SC_CLK_TCK")


def others_share(window_s: float = 0.3) -> float:
    """Share of the machine's CPU time that other tasks used over ``window_s`` (we sleep)."""
    b0, t0 = _cpu_ticks(), time.monotonic()
    time.sleep(window_s)
    used = _cpu_ticks() - b0
    avail = (time.monotonic() - t0) * os.sysconf("SC_CLK_TCK") * max(1, os.cpu_count() or 1)
    return min(1.0, used / avail) if avail > 0 else 0.0


def wait_quiet(max_s: float, threshold: float = BUSY_FRACTION) -> bool:
    """Wait up to ``max_s`` seconds for other tasks to use under ``threshold`` of the CPUs;
    returns whether the machine is quiet."""
    deadline = time.monotonic() + max_s
    while True:
        if others_share() <= threshold:
            return True
        if time.monotonic() >= deadline:
            return False


def allowed_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on, sorted."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return (0,)


def _pin(cpu: int, boost: bool) -> None:
    """Child set-up: pin to ``cpu``; with ``boost``, the highest CPU priority allowed."""
    os.sched_setaffinity(0, {cpu})
    if boost:
        harness_boost()


def run_on_host(spec: SystemSpec, exes: Sequence[Path], cpus: Sequence[int],
               timeout: float = NATIVE_TIMEOUT_S, boost: bool = False
               ) -> tuple[dict, dict[int, str], float]:
    """Run a native twin once: one pinned Linux process per guest process.

    Returns (stats {(pid, channel, key): value}, consoles {pid: text}, busy share).
    """
    with tempfile.TemporaryDirectory(prefix="keusim-twin-", dir="/dev/shm"
                                     if os.path.isdir("/dev/shm") else None) as tmp:
        shm = _channel_file(spec, tmp) if spec.channels else None
        procs = []
        busy0, own0, t0 = _cpu_ticks(), _children_ticks(), time.monotonic()
        for i, (p, exe) in enumerate(zip(spec.processes, exes, strict=True)):
            env = dict(os.environ, KEUSIM_PID=str(i + 1))
            if shm:
                env["KEUSIM_SHM"] = shm
            cpu = cpus[p.core % len(cpus)]
            procs.append(subprocess.Popen(
                [str(exe)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                text=True, preexec_fn=lambda c=cpu: _pin(c, boost)))
        outs = []
        try:
            for pr in procs:
                out, err = pr.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
                outs.append((pr.returncode, out, err))
        except subprocess.TimeoutExpired:
            for pr in procs:
                pr.kill()
                pr.communicate()
            raise ValidationError(f"native twin of {spec.name} did not finish within "
                                  f"{timeout:.0f} s; is the machine overloaded?") from None
        wall = time.monotonic() - t0
        other = (_cpu_ticks() - busy0) - (_children_ticks() - own0)
    stats: dict = {}
    consoles: dict[int, str] = {}
    for i, (rc, out, err) in enumerate(outs):
        if rc != 0:
            detail = (err.strip().splitlines() or ["no message"])[-1]
            raise ValidationError(f"native twin of {spec.name}/{spec.processes[i].name} exited "
                                  f"with status {rc}: {detail}")
        text = []
        for ln in out.splitlines():
            if ln.startswith("#stat "):
                ch, key, v = (int(x) for x in ln.split()[1:4])
                stats[(i + 1, ch, key)] = v
            elif ln.startswith("#chanfault "):
                raise ValidationError(f"native twin of {spec.name}: {spec.processes[i].name} "
                                      f"found channel {ln.split()[1]} corrupt ({ln.split()[2]})")
            else:
                text.append(ln)
        consoles[i + 1] = "\n".join(text)
    available = wall * os.sysconf("SC_CLK_TCK") * max(1, os.cpu_count() or 1)
    share = min(1.0, other / available) if other > 3 and available > 0 else 0.0
    return stats, consoles, share


# --------------------------------------------------------------------------- validate


def machine_facts(profile) -> dict:
    """Host facts for the report: the CPU (:mod:`keusim.model.hostcpu`), kernel, date, and
    whether ``profile`` was calibrated on this CPU (``profile_calibrated_here``: it records
    a machine, and that machine's vendor, family and model are this host's)."""
    from keusim.model import hostcpu
    from keusim.model.profiles import host_mismatch

    cpu = hostcpu.detect()
    match = hostcpu.core_family(cpu)
    mismatch = host_mismatch(profile, cpu)
    return {"cpu": cpu.describe(), "core": match.core, "core_profile": match.profile,
            "kernel": platform.release(), "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "ncpu": os.cpu_count(),
            "profile_machine": dict(profile.machine),
            "profile_calibrated_here": bool(profile.machine) and mismatch is None,
            "profile_mismatch": mismatch or ""}


def _loadavg() -> str:
    """The 1/5/15-minute load averages now (/proc/loadavg), for the report."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def _check_args(sizes: tuple[int, ...], workloads: tuple[str, ...], runs: int) -> None:
    for w in workloads:
        if w not in _WORKLOADS:
            raise ValidationError(f"unknown workload {w!r}; choose from: {', '.join(_WORKLOADS)}")
    for s in sizes:
        if not 4 <= s <= 4096:
            raise ValidationError(f"message size {s} must be in 4..4096 bytes")
    if runs < 1:
        raise ValidationError(f"runs must be at least 1, got {runs}")


def _simulate(configs: Sequence[tuple[str, int]], profile: str, messages: int | None,
              native_messages: int | None, bar) -> tuple[dict, dict]:
    """Step 1, the model: deterministic, once per configuration. Returns (predictions
    {config: (cycles per op, ops, host s)}, native twins {config: (spec, exes, ops)})."""
    from keusim.system import run

    sim: dict[tuple[str, int], tuple[float, int, float]] = {}
    twins: dict[tuple[str, int], tuple[SystemSpec, list[Path], int]] = {}
    for wl, size in configs:
        w = _WORKLOADS[wl]
        spec = resolve(w.scenario)
        if bar is not None:
            bar.set_postfix_str(f"simulating {wl} {size} B")
        # Steady state: the difference between a run of n and one of n/5 ops, so that
        # cold starts (first touches of lines, the stream's pipeline fill) cancel as they
        # do in the native runs' thousands of ops.
        n_sim = messages or w.sim_ops(size)
        n_warm = max(1, n_sim // 5)
        t0 = time.monotonic()
        cyc, ops = _metric_sim(wl, run(spec, arch="x86_64", params={
            w.count_param: n_sim, "size": size}, profile=profile))
        cyc0, ops0 = _metric_sim(wl, run(spec, arch="x86_64", params={
            w.count_param: n_warm, "size": size}, profile=profile))
        pred = (cyc - cyc0) / (ops - ops0) if ops > ops0 else math.nan
        sim[(wl, size)] = (pred, ops, time.monotonic() - t0)
        n_nat = native_messages or int(min(200_000, max(
            2000, NATIVE_TARGET_S * 1e9 / w.guess_ns(size))))
        params = {w.count_param: n_nat, "size": size}
        twins[(wl, size)] = (spec, native_twin(spec, {**spec.params, **params}), n_nat)
        if bar is not None:
            bar.update(1)
    return sim, twins


@dataclass(frozen=True)
class HostState:
    """What the host looks like to the two workloads' sensitive parts, right now."""

    line_rt_ns: float
    """One cache line's round trip between the two CPUs (cacheline_pingpong)."""
    mix_cycles: float
    """Core cycles per mem_mix iteration (8 independent L1 loads and 8 stores) on the
    first CPU, converted with the profile's clock."""


def expected_state(prof) -> HostState:
    """The host state a profile describes: its line round trip (2 x core_to_core) and
    the model's own cycles for mem_mix's loop (what calibration measured, when it fitted
    ``pipeline.memory_ops``)."""
    from keusim.model.calibrate import mem_mix_model_cycles
    return HostState(line_rt_ns=2 * prof.param("coherence.core_to_core").value / prof.ghz,
                     mix_cycles=mem_mix_model_cycles(prof))


def host_state(cpus: Sequence[int], ghz: float, boost: bool = False) -> HostState:
    """Measure the host state now: short cacheline_pingpong and mem_mix runs (about 50 ms
    in all). NaN where a benchmark could not run (one CPU: no line round trip)."""
    try:
        res = run_calibration_micro(["cacheline_pingpong", "mem_mix"], scale=0.05,
                                    progress=False, max_reruns=0,
                                    cpus=tuple(cpus[:2]) if len(cpus) >= 2 else None,
                                    boost_priority=boost)
    except KeusimError:
        return HostState(math.nan, math.nan)
    by = {r.name: r for r in res}
    pp, mix = by.get("cacheline_pingpong"), by.get("mem_mix")
    line = math.nan if pp is None or pp.single_cpu else float(pp.median_ns)
    return HostState(line_rt_ns=line,
                     mix_cycles=float(mix.median_ns) * ghz if mix is not None else math.nan)


def state_problem(state: HostState, expected: HostState, *, two_cpus: bool) -> str:
    """Why a native run measured in ``state`` does not describe the profile's host ("" if
    it does). ``two_cpus``: the workload uses both CPUs, so the line round trip matters;
    every workload needs the memory pipeline uncontended."""
    why = []
    if two_cpus and not math.isnan(state.line_rt_ns) and expected.line_rt_ns > 0:
        dev = state.line_rt_ns / expected.line_rt_ns - 1
        if abs(dev) > STATE_LINE_TOLERANCE:
            why.append(f"line round trip {state.line_rt_ns:.0f} ns vs "
                       f"{expected.line_rt_ns:.0f} ns")
    if not math.isnan(state.mix_cycles) and expected.mix_cycles > 0:
        if state.mix_cycles > expected.mix_cycles * (1 + STATE_MIX_TOLERANCE):
            why.append(f"mem_mix {state.mix_cycles:.2f} vs {expected.mix_cycles:.2f} "
                       "cycles (the CPU is shared)")
    return "; ".join(why)


def _measure(configs: Sequence[tuple[str, int]], twins: dict, cpus: tuple[int, ...],
             runs: int, ghz: float, hz: float, max_reruns: int, wait_quiet_s: float,
             bar, boost: bool = False, expected: HostState | None = None
             ) -> tuple[dict, dict, dict, dict]:
    """Step 2, native: rounds over every configuration, so that the runs of one
    configuration are spread over the whole measurement and CPU placement changes (which
    move these figures by up to 2-3x on a VM) show up as spread, not as a shift of one
    configuration. With ``expected``, the host state is measured just before every run
    and compared with it (:func:`state_problem`). Returns ({config: per-run core cycles
    per op}, {config: busy shares}, {config: ops per run}, {config: per-run state
    problems})."""
    per_run: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    states: dict[tuple[str, int], list[str]] = {c: [] for c in configs}
    shares: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    nat_ops: dict[tuple[str, int], int] = {}
    for r in range(runs):
        if wait_quiet_s > 0:
            if bar is not None:
                bar.set_postfix_str(f"round {r + 1}: waiting for a quiet machine")
            wait_quiet(wait_quiet_s)
        for key in configs:
            wl, size = key
            spec, exes, _n = twins[key]
            if bar is not None:
                bar.set_postfix_str(f"native {wl} {size} B, round {r + 1}/{runs}")
            best = None
            for _attempt in range(max_reruns + 1):
                why = ""
                if expected is not None:
                    why = state_problem(host_state(cpus, ghz, boost), expected,
                                        two_cpus=spec.cores > 1)
                stats, consoles, share = run_on_host(spec, exes, cpus, boost=boost)
                if best is None or share < best[2]:
                    best = (stats, consoles, share, why)
                if share <= BUSY_FRACTION:
                    break
            ticks, nat_ops[key] = _metric_native(wl, best[0], best[1])
            per_run[key].append(ticks / hz * 1e9 * ghz)
            shares[key].append(best[2])
            if expected is not None:
                states[key].append(best[3])
            if bar is not None:
                bar.update(1)
    return per_run, shares, nat_ops, states


def _rows(configs: Sequence[tuple[str, int]], sim: dict, per_run: dict, shares: dict,
          nat_ops: dict, runs: int, ghz: float, states: dict | None = None
          ) -> tuple[ValidationRow, ...]:
    """Step 3: one row per configuration, prediction beside the native median (over the
    runs in the profile's host state when the state was checked and any run was)."""
    rows: list[ValidationRow] = []
    states = states or {}
    for key in configs:
        wl, size = key
        pred, ops, sim_s = sim[key]
        st = tuple(states.get(key, ()))
        every = sorted(per_run[key])
        kept = [c for c, why in zip(per_run[key], st, strict=True) if not why] if st else every
        srt = sorted(kept) or every
        med = percentile(srt, 0.5)
        rows.append(ValidationRow(
            workload=wl, size=size, unit=_WORKLOADS[wl].unit, predicted_cycles=pred,
            native_median_cycles=med, native_p10_cycles=percentile(srt, 0.1),
            native_p90_cycles=percentile(srt, 0.9), native_median_ns=med / ghz,
            error_pct=100.0 * (pred - med) / med if med else math.nan,
            native_runs=runs, native_ops=nat_ops[key], sim_ops=ops,
            busy=max(shares[key]) > BUSY_FRACTION, busy_share=max(shares[key]),
            native_run_cycles=tuple(per_run[key]), sim_host_s=sim_s, run_states=st,
            all_median_cycles=percentile(every, 0.5)))
    return tuple(rows)


def validate(profile: str = "host", sizes: Iterable[int] = SIZES,
             messages: int | None = None, progress: bool | None = None, *,
             workloads: Iterable[str] = WORKLOADS, runs: int = 7,
             native_messages: int | None = None, cpus: Sequence[int] | None = None,
             max_reruns: int = 2, wait_quiet_s: float = 0.0,
             command: str = "", boost: bool = False,
             state_check: bool = True) -> ValidationReport:
    """Simulate each held-out workload on x86-64 with ``profile`` and measure its native twin.

    Args:
        profile: the cycle-model profile (name or path); its clock converts native ticks.
        sizes: message sizes in bytes (4..4096; each workload runs at every size).
        messages: simulated ops per run (round trips, messages, chains); default by size
            (1000 up to 256 B, fewer above: about a minute of simulation in all).
        progress: a tqdm bar on stderr (default: when stderr is a terminal).
        workloads: any of ``pingpong``, ``stream``, ``callchain``.
        runs: native runs per configuration (new processes each; median and p10-p90).
        native_messages: native ops per run (default: sized to ~30 ms a run).
        cpus: CPUs for the native processes (default: the first two allowed).
        max_reruns: re-runs of a native run during which the machine was busy.
        wait_quiet_s: before each native round, wait up to this long for other tasks to
            leave the CPUs (a shared machine); 0: do not wait.
        command: how the caller invoked this, recorded in the report.
        boost: run the native twins at the highest CPU priority allowed
            (:func:`keusim.model.harness.boost`: SCHED_FIFO as root), so that other
            tenants of a shared machine preempt them less; recorded in the report.
        state_check: measure the host state (line round trip, mem_mix) before every native
            run and compare each row with its runs in the profile's state only
            (:func:`state_problem`); the median over every run is reported beside it. A
            row none of whose runs was in that state fails the goal.

    Raises:
        ValidationError: a simulated run failed or a native twin could not run.
    """
    from keusim.model.profiles import load_profile

    t_start = time.monotonic()
    sizes, workloads = tuple(sizes), tuple(workloads)
    _check_args(sizes, workloads, runs)
    prof = load_profile(profile)
    if prof.isa != archmod.host():
        raise ValidationError(f"profile {prof.name!r} describes {prof.isa}; only "
                              f"{archmod.host()} profiles can be validated on this host")
    cpus = tuple(cpus) if cpus else allowed_cpus()[:2]
    two_core = [w for w in workloads if resolve(_WORKLOADS[w].scenario).cores > 1]
    if two_core and len(set(cpus)) < 2:
        # The guests busy-poll without yielding: on one CPU each hand-off waits for a
        # Linux time slice, and the figure would measure the Linux scheduler.
        raise ValidationError(f"{', '.join(two_core)} need two CPUs for the native twin; "
                              f"this process may use only CPU {cpus[0]}")
    hz = tsc_hz()
    ghz = prof.ghz
    configs = [(wl, size) for wl in workloads for size in sizes]
    bar = progress_bar(len(configs) * (1 + runs), "validate", "step", progress)
    clocks: list[float] = []
    lines: list[float] = []
    try:
        sim, twins = _simulate(configs, profile, messages, native_messages, bar)
        clocks.append(measure_core_ghz())
        lines.append(measure_line_round_trip_ns(cpus))
        expected = expected_state(prof) if state_check else None
        per_run, shares, nat_ops, states = _measure(configs, twins, cpus, runs, ghz, hz,
                                                    max_reruns, wait_quiet_s, bar, boost,
                                                    expected)
        clocks.append(measure_core_ghz())
        lines.append(measure_line_round_trip_ns(cpus))
    finally:
        if bar is not None:
            bar.close()
    facts = machine_facts(prof)
    facts["measured_core_ghz"] = [round(c, 3) for c in clocks]
    facts["native_priority"] = "boosted (SCHED_FIFO where allowed)" if boost else "normal"
    facts["load_average"] = _loadavg()
    facts["line_round_trip_ns"] = [round(v, 1) for v in lines]
    facts["profile_line_round_trip_ns"] = round(
        2 * prof.param("coherence.core_to_core").value / ghz, 1)
    from keusim.model.calibrate import not_measured
    facts["profile_estimates"] = not_measured(prof)
    if expected is not None:
        facts["expected_state"] = {"line_rt_ns": round(expected.line_rt_ns, 1),
                                   "mix_cycles": round(expected.mix_cycles, 3)}
    return ValidationReport(profile=prof.name, profile_path=str(prof.path or ""), ghz=ghz,
                            tsc_hz=hz, cpus=cpus,
                            rows=_rows(configs, sim, per_run, shares, nat_ops, runs, ghz,
                                       states),
                            machine=facts, command=command,
                            elapsed_s=time.monotonic() - t_start)


def _quick_micro(name: str, scale: float, cpus: Sequence[int] | None = None):
    """One short run of a calibration microbenchmark, or None if it cannot run."""
    try:
        return run_calibration_micro([name], scale=scale, progress=False, max_reruns=0,
                                     cpus=tuple(cpus[:2]) if cpus and len(cpus) >= 2
                                     else None)[0]
    except KeusimError:
        return None


def measure_line_round_trip_ns(cpus: Sequence[int] | None) -> float:
    """One cache line's round trip between the two CPUs now (the calibration's
    cacheline_pingpong), for the record: the vCPU placement it reflects moves the ring
    rows' native figures."""
    r = _quick_micro("cacheline_pingpong", 0.1, cpus)
    return math.nan if r is None or r.single_cpu else float(r.median_ns)


def measure_core_ghz() -> float:
    """The core clock now (:func:`keusim.model.calibrate.measure_clock`: the IMUL chain,
    checked by the ADD chain), for the record: native ticks are converted with the
    profile's clock, not this. NaN when it cannot be measured."""
    from keusim.model.calibrate import measure_clock
    try:
        return measure_clock(scale=0.1, runs=1).ghz
    except KeusimError:
        return math.nan
