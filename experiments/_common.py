"""What every experiment shares: provenance, output files, the comparison table, a
process pool for simulations, and the host clock used to turn native ns into cycles.

An experiment is a short script over the public API (``keusim.system.run``,
``keusim.model.harness``, ``keusim.analysis.notifycost``). It returns an :class:`Experiment`:
comparison rows (claim, paper, keusim, native, why they differ), long-format
measurements, and files written to ``results/<experiment>/`` (git-ignored):

    <name>.json   provenance + comparison + measurements + details
    <name>.csv    the comparison table
    measurements.csv  one row per number (source, profile, arch, size, value, unit)
    <name>.png / .svg  the figure
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keusim
from keusim.machine.machine import DEFAULT_LOOKAHEAD
from keusim.toolchain import ROOT

RESULTS = ROOT / "results"
SYSTEMS = ROOT / "experiments" / "systems"
EXP_PROFILES = ROOT / "experiments" / "profiles"
NATIVE_SRC = ROOT / "experiments" / "native"

LOOKAHEAD = DEFAULT_LOOKAHEAD   # the one default (keusim.machine.machine)
"""Cross-core window (cycles) for every simulation here: the one default that keusim.run
uses too (within about 1% of lookahead 1 on pingpong; docs/architecture.md, "virtual
time"). A window of 200 cycles, about one line hand-off, lets two cores observe each
other's accesses up to a window early or late and was 6-13% off."""

PAPER = "docs/paper.md (KeuOS, 'Microkernel IPC Without the Performance Tax')"


def log(msg: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- provenance


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, text=True,
                             capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def host_cpu() -> dict:
    """The host's CPU (keusim.model.hostcpu: model, vendor, family, model number, the core
    it is recognised as), CPU count and whether it is a virtual machine."""
    from keusim.model import hostcpu

    cpu = hostcpu.detect()
    match = hostcpu.core_family(cpu)
    return {"model": cpu.model_name, "cpus": os.cpu_count(), "virtual_machine": cpu.hypervisor,
            "kernel": platform.release(), "machine": platform.machine(),
            "vendor": cpu.vendor, "family": cpu.family, "model_number": cpu.model,
            "core": match.core, "core_profile": match.profile}


def profile_info(names: Iterable[str]) -> dict:
    """For each profile: where it was loaded from, its clock, the machine it was
    calibrated on (if any) and whether that is this host."""
    from keusim.model.profiles import load_profile

    out = {}
    for n in names:
        if not n or n == "flat":
            out["flat"] = {"note": "one cycle per instruction, no coherence or trap costs"}
            continue
        p = load_profile(n)
        from keusim.model.profiles import host_mismatch
        out[p.name] = {"path": str(p.path), "ghz": p.ghz, "isa": p.isa,
                       "machine": dict(p.machine),
                       "calibrated_here": bool(p.machine) and host_mismatch(p) is None}
    return out


def provenance(experiment: str, *, profiles: Iterable[str] = (), arches: Iterable[str] = (),
               parameters: dict | None = None, quick: bool = False) -> dict:
    """Everything needed to tell where a result came from."""
    import unicorn

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "experiment": experiment,
        "keusim_version": keusim.__version__,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host_cpu": host_cpu(),
        "python": platform.python_version(),
        "unicorn": unicorn.__version__,
        "profiles": profile_info(profiles),
        "arches": list(arches),
        "lookahead_cycles": LOOKAHEAD,
        "quick": quick,
        "parameters": parameters or {},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
    }


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of an experiment's comparison table (cells are short text)."""

    claim: str
    paper: str
    keusim: str
    native: str
    why: str


@dataclass
class Measurement:
    """One number, in long format (measurements.csv)."""

    quantity: str
    source: str                 # "paper", "keusim" or "native"
    value: float
    unit: str
    profile: str = ""
    arch: str = ""
    size: int | None = None
    note: str = ""


@dataclass
class Experiment:
    name: str
    title: str
    rows: list[Row]
    measurements: list[Measurement]
    provenance: dict
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    appendix: str = ""          # more tables, printed after the comparison table
    outdir: Path | None = None
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def value(self, quantity: str, source: str, **match) -> float:
        """The one measurement with this quantity and source (and fields in ``match``)."""
        hits = [m for m in self.measurements if m.quantity == quantity and m.source == source
                and all(getattr(m, k) == v for k, v in match.items())]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} measurements match {quantity!r} {source!r} {match}")
        return hits[0].value

    def table(self, width: int = 46) -> str:
        t = render_table(self.title, self.rows, self.notes, width=width)
        return t + ("\n" + self.appendix if self.appendix else "")

    def markdown(self) -> str:
        return render_markdown(self.rows)

    def as_dict(self) -> dict:
        return {"provenance": self.provenance, "title": self.title,
                "comparison": [asdict(r) for r in self.rows],
                "measurements": [asdict(m) for m in self.measurements],
                "details": self.details, "notes": self.notes, "appendix": self.appendix,
                "seconds": self.seconds}


COLUMNS = ("claim", "paper", "keusim (simulated)", "native (host)", "why they differ")


def render_table(title: str, rows: Sequence[Row], notes: Sequence[str] = (),
                 width: int = 46) -> str:
    """A fixed-width table; long cells wrap within their column."""
    cols = [("claim", 30), ("paper", 16), ("keusim", 30), ("native", 24), ("why", width)]
    cells = [[textwrap.wrap(str(getattr(r, k)), w) or [""] for k, w in cols] for r in rows]
    widths = [max([len(h)] + [len(ln) for c in cells for ln in c[i]])
              for i, h in enumerate(COLUMNS)]
    widths = [min(w, cw) if i < 4 else w for i, (w, (_, cw)) in enumerate(zip(widths, cols, strict=True))]
    sep = "  "

    def line(parts: Sequence[str]) -> str:
        return sep.join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()

    out = [title, line(COLUMNS), line(["-" * w for w in widths])]
    for c in cells:
        for k in range(max(len(x) for x in c)):
            out.append(line([x[k] if k < len(x) else "" for x in c]))
        out.append("")
    out += [f"note: {n}" for n in notes]
    return "\n".join(out).rstrip() + "\n"


def render_markdown(rows: Sequence[Row]) -> str:
    """The comparison table as Markdown (docs/experiments.md)."""
    def esc(s) -> str:
        return str(s).replace("|", "\\|")

    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        out.append("| " + " | ".join(esc(x) for x in (r.claim, r.paper, r.keusim, r.native,
                                                       r.why)) + " |")
    return "\n".join(out) + "\n"


def output_dir(name: str, out: str | Path | None) -> Path:
    d = Path(out) if out else RESULTS / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def save(exp: Experiment, out: str | Path | None, figure: Callable | None = None) -> Experiment:
    """Write the JSON, the CSVs and the figure; sets ``exp.outdir`` and ``exp.files``."""
    d = output_dir(exp.name, out)
    files = []
    p = d / f"{exp.name}.json"
    p.write_text(json.dumps(exp.as_dict(), indent=1, default=str) + "\n")
    files.append(p)
    p = d / f"{exp.name}.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["claim", "paper", "keusim", "native", "why"])
        for r in exp.rows:
            w.writerow([r.claim, r.paper, r.keusim, r.native, r.why])
    files.append(p)
    p = d / "measurements.csv"
    with p.open("w", newline="") as f:
        fields = list(Measurement.__dataclass_fields__)
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for m in exp.measurements:
            w.writerow(asdict(m))
    files.append(p)
    p = d / "provenance.json"
    p.write_text(json.dumps(exp.provenance, indent=1, default=str) + "\n")
    files.append(p)
    if figure is not None:
        import matplotlib

        if "ipykernel" not in sys.modules:   # a notebook keeps its inline backend
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = figure(exp)
        prov = exp.provenance
        stamp = (f"keusim {prov['keusim_version']} @ {str(prov['git_commit'])[:10]}"
                 f"{'+dirty' if prov['git_dirty'] else ''} | {prov['date_utc']} | "
                 f"{prov['host_cpu']['model']} ({prov['host_cpu']['cpus']} CPUs)"
                 f"{' | quick' if prov['quick'] else ''}")
        fig.text(0.01, 0.005, stamp, fontsize=6, color="0.4", ha="left", va="bottom")
        for ext in ("png", "svg"):
            p = d / f"{exp.name}.{ext}"
            fig.savefig(p, dpi=130, metadata={"Date": None} if ext == "svg" else None)
            files.append(p)
        plt.close(fig)
    exp.outdir, exp.files = d, files
    return exp


# --------------------------------------------------------------------------- running


def workers_default() -> int:
    env = os.environ.get("KEUSIM_EXP_WORKERS")
    if env:
        return max(1, int(env))
    return max(1, min(2, os.cpu_count() or 1))


def _call(job: tuple[Callable, dict]):
    fn, kw = job
    return fn(**kw)


def parallel(fn: Callable, jobs: Sequence[dict], workers: int | None = None) -> list:
    """``[fn(**kw) for kw in jobs]``, in a process pool of ``workers`` (deterministic:
    keusim runs depend only on their inputs)."""
    workers = workers or workers_default()
    if workers <= 1 or len(jobs) <= 1:
        return [fn(**kw) for kw in jobs]
    import multiprocessing as mp

    # fork is instant; inside a Jupyter kernel (threads) a fork server is the safe choice.
    method = "forkserver" if "ipykernel" in sys.modules else "fork"
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                             mp_context=mp.get_context(method)) as ex:
        return list(ex.map(_call, [(fn, kw) for kw in jobs]))


def sim(system: str, *, arch: str = "x86_64", profile: str | None = None,
        params: dict | None = None, verified: bool = False, attribution: bool = False,
        lookahead: int = LOOKAHEAD):
    """One keusim run (a built-in scenario name or a manifest under experiments/systems),
    which must finish cleanly."""
    from keusim.system import run

    path = SYSTEMS / f"{system}.toml"
    target = str(path) if path.exists() else system
    if profile and "/" not in profile and (EXP_PROFILES / f"{profile}.toml").exists():
        profile = str(EXP_PROFILES / f"{profile}.toml")
    r = run(target, arch=arch, profile=profile, params=params or {}, verified=verified,
            attribution=attribution, lookahead=lookahead)
    if not r.ok or any(not c.intact for c in r.channels):
        raise RuntimeError(f"{system} ({arch}, {profile}, {params}) did not run cleanly:\n"
                           f"{r.summary()}")
    return r


def rt_cycles(report) -> float:
    """Model cycles per timed round trip that ping reported on channel 0."""
    s = report.channel(0).producer_stats
    return s["rt_cycles"] / s["round_trips"]


# --------------------------------------------------------------------------- native


@dataclass(frozen=True)
class HostClock:
    """The host's core clock, to turn native ns into the paper's unit (core cycles)."""

    ghz: float
    tsc_ghz: float
    source: str


def host_clock(measure: bool = True) -> HostClock:
    """Core GHz measured now (``measure``: keusim.model.calibrate.measure_clock, a chain of
    dependent IMULs checked against one of register ADDs), else the calibrated ``host``
    profile's clock; also the TSC rate."""
    from keusim.model import harness
    from keusim.model.calibrate import measure_clock
    from keusim.model.profiles import load_profile

    tsc = harness.tsc_hz() / 1e9
    if measure:
        try:
            c = measure_clock(boost=True)
            return HostClock(c.ghz, tsc, "measured now: native mul_chain (dependent IMULs at "
                             f"{c.mul_latency:g} cycles), cross-checked by alu_chain "
                             f"({c.ghz_alu:.2f} GHz)")
        except keusim.KeusimError as e:
            log(f"host clock not measured ({e}); using the host profile's")
    p = load_profile("host")
    return HostClock(p.ghz, tsc, f"host profile clock.ghz ({p.param('clock.ghz').source})")


def native_program(name: str, sources: Sequence[Path], extra_includes: Sequence[Path] = ()):
    """Build a native helper from experiments/native with the harness's flags (cached)."""
    from keusim.model.harness import HOST_CFLAGS, HOST_INCLUDE_DIRS
    from keusim.toolchain import host_executable

    return host_executable(tuple(sources), name, cflags=HOST_CFLAGS,
                           include_dirs=(*HOST_INCLUDE_DIRS, *extra_includes))


def native_bench(exe: Path, bench: str, *, size: int = 64, iters: int, batch: int = 100,
               warmup: int | None = None, timeout: float = 120.0) -> dict:
    """Run one native helper benchmark; returns its JSON plus ``median_ticks`` per op."""
    args = [str(exe), "--bench", bench, "--size", str(size), "--iters", str(iters),
            "--batch", str(batch), "--warmup", str(warmup if warmup is not None else iters // 10),
            "--timeout", str(int(timeout) - 2)]
    from keusim.model.harness import boost

    # At the highest CPU priority allowed: on a shared machine other tenants' tasks would
    # otherwise preempt the benchmark (keusim.model.harness.boost; a no-op without it).
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       start_new_session=True, preexec_fn=boost)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()[-300:]}")
    d = json.loads(p.stdout)
    per = sorted(t / d["ops_per_sample"] for t in d["samples_ticks"])
    d["median_ticks"] = per[len(per) // 2]
    d.pop("samples_ns", None)
    return d


# --------------------------------------------------------------------------- formatting


def fmt(v: float | None, unit: str = "") -> str:
    """A number for a table cell: thousands separators, few decimals."""
    if v is None:
        return "n/a"
    if isinstance(v, int) or abs(v) >= 100:
        s = f"{v:,.0f}"
    else:
        s = f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}"
    return f"{s} {unit}".rstrip()


def cli(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true",
                    help="small counts, fewer configurations (seconds; for tests)")
    ap.add_argument("--out", default=None, help="output folder (default results/<experiment>)")
    ap.add_argument("--workers", type=int, default=None,
                    help="simulation processes (default min(2, CPUs); $KEUSIM_EXP_WORKERS)")
    ap.add_argument("--no-native", action="store_true", help="skip the native host measurements")
    return ap.parse_args(argv)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def script_main(description: str, run: Callable, argv: Sequence[str] | None = None) -> int:
    """The command line of every experiment script: parse, run, print the table."""
    a = cli(description, argv)
    exp = run(quick=a.quick, out=a.out, workers=a.workers, native=not a.no_native)
    print(exp.table())
    print(f"wrote {', '.join(str(p) for p in exp.files)} ({exp.seconds:.1f} s)")
    return 0
