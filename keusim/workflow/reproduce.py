"""The paper reproductions (``experiments/``) from the library and the CLI.

    keusim reproduce [NAME ...|--all] [--quick] [--out DIR] [--workers N] [--no-native]

    >>> import keusim
    >>> r = keusim.reproduce(["tag_check"], quick=True)
    >>> r.experiments["tag_check"].table()

The experiments live in the source tree beside the package (``experiments/<name>.py``,
one script per table or claim, each runnable as ``python experiments/<name>.py``), not
inside it: they are research scripts over the public API, not the API. This module finds
them under :data:`keusim.toolchain.ROOT` and runs them one after another, exactly as
``python experiments/run_all.py`` does (that script calls :func:`run_experiments`), so
both write the same files: ``<out>/<name>/`` per experiment (JSON, CSVs, provenance,
figure) and ``<out>/run_all/summary.{json,csv}`` with each experiment's wall time.
"""

from __future__ import annotations

import csv
import importlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from keusim.errors import KeusimError
from keusim.toolchain import ROOT

ORDER = ("paper_table", "additivity", "tag_check", "coherence", "claim_56ns")
"""The paper's experiments in the order they run (others found in experiments/ follow,
alphabetically)."""

TARGET_S = 180.0
"""Every paper table reproduced within 3 minutes on a 2-core machine (quick or not)."""


class ExperimentError(KeusimError):
    """An experiment was named that experiments/ does not have, or experiments/ is missing."""


def experiments_package() -> ModuleType:
    """The ``experiments`` package of the source tree keusim runs from.

    Raises ExperimentError when keusim is not run from a source tree (a wheel install
    has no experiments/) or when another package called ``experiments`` shadows it.
    """
    pkg_dir = ROOT / "experiments"
    if not (pkg_dir / "__init__.py").is_file():
        raise ExperimentError(f"{pkg_dir} not found: the experiments live in keusim's source "
                              "tree; install keusim from a clone with `pip install -e .`")
    if str(ROOT) not in sys.path:
        # Appended, not prepended: nothing of the user's is shadowed by the source tree.
        sys.path.append(str(ROOT))
    pkg = importlib.import_module("experiments")
    where = Path(getattr(pkg, "__file__", "") or "").resolve().parent
    if where != pkg_dir.resolve():
        raise ExperimentError(f"the module `experiments` was imported from {where}, not "
                              f"{pkg_dir}; rename or uninstall the other one")
    return pkg


def registry() -> dict[str, ModuleType]:
    """Every experiment: name -> module with ``NAME`` and ``run(quick, out, workers,
    native)``, the paper's (:data:`ORDER`) first."""
    experiments_package()
    found = {}
    for path in sorted((ROOT / "experiments").glob("*.py")):
        if path.stem.startswith("_") or path.stem == "run_all":
            continue
        mod = importlib.import_module(f"experiments.{path.stem}")
        if isinstance(getattr(mod, "NAME", None), str) and callable(getattr(mod, "run", None)):
            found[mod.NAME] = mod
    return {**{n: found[n] for n in ORDER if n in found},
            **{n: m for n, m in sorted(found.items()) if n not in ORDER}}


def select(names: Iterable[str] | None) -> list[ModuleType]:
    """The modules for ``names`` (all when None or empty), in the order given."""
    reg = registry()
    names = list(names or [])
    if not names:
        return list(reg.values())
    unknown = [n for n in names if n not in reg]
    if unknown:
        raise ExperimentError(f"unknown experiment {unknown[0]!r}; choose from: "
                              f"{', '.join(reg)} (or --all)")
    return [reg[n] for n in dict.fromkeys(names)]


@dataclass
class Reproduction:
    """What :func:`reproduce` ran: the summary written to ``<out>/run_all/`` and each
    experiment's :class:`experiments._common.Experiment` (rows, measurements, files)."""

    summary: dict
    experiments: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def outdir(self) -> Path:
        return Path(self.summary["outdir"])

    def figures(self) -> list[Path]:
        """Every PNG the experiments wrote."""
        return [p for e in self.experiments.values() for p in e.files if p.suffix == ".png"]


def run_experiments(modules: Sequence, *, quick: bool = False, out: str | Path | None = None,
                    workers: int | None = None, native: bool = True, echo: bool = True,
                    progress: Callable[[str], None] | None = None) -> Reproduction:
    """Run ``modules`` one after another (each uses up to ``workers`` simulation
    processes; native measurements never overlap a simulation) and write the summary.

    ``echo`` prints each comparison table on stdout; ``progress`` (default: stderr) gets
    one line as each experiment starts and ends.
    """
    common = importlib.import_module("experiments._common")
    say = progress or common.log
    base = Path(out) if out else None
    t0 = time.perf_counter()
    done, exps, secs = [], {}, {}
    for i, mod in enumerate(modules, 1):
        say(f"[{i}/{len(modules)}] {mod.NAME} ...")
        t = time.perf_counter()
        exp = mod.run(quick=quick, out=(base / mod.NAME) if base else None, workers=workers,
                      native=native)
        s = time.perf_counter() - t
        say(f"[{i}/{len(modules)}] {mod.NAME}: {s:.1f} s, files in {exp.outdir}")
        done.append({"experiment": mod.NAME, "seconds": round(s, 2),
                     "outdir": str(exp.outdir), "files": [p.name for p in exp.files]})
        exps[mod.NAME], secs[mod.NAME] = exp, s
        if echo:
            print(exp.table())
            print(f"[{mod.NAME}: {s:.1f} s, files in {exp.outdir}]\n", flush=True)
    total = time.perf_counter() - t0
    summary = {"provenance": common.provenance("run_all", quick=quick, parameters={
                   "native": native, "workers": workers,
                   "experiments": [m.NAME for m in modules]}),
               "experiments": done, "total_seconds": round(total, 2),
               "target_seconds": TARGET_S, "within_target": total <= TARGET_S}
    d = common.output_dir("run_all", (base / "run_all") if base else None)
    (d / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    with (d / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "seconds", "outdir"])
        for e in done:
            w.writerow([e["experiment"], e["seconds"], e["outdir"]])
        w.writerow(["total", round(total, 2), str(d)])
    summary["outdir"] = str(d)
    return Reproduction(summary, exps, secs)


def reproduce(names: Iterable[str] | str | None = None, *, quick: bool = False,
              out: str | Path | None = None, workers: int | None = None, native: bool = True,
              echo: bool = False, progress: Callable[[str], None] | None = None
              ) -> Reproduction:
    """Run the named experiments (all when ``names`` is None or empty).

    Args:
        names: experiment names (see :func:`registry`), or one name.
        quick: small counts and fewer configurations (seconds each; the demo's mode).
        out: output folder; each experiment writes ``<out>/<name>/`` and the summary goes
            to ``<out>/run_all/`` (default: ``results/`` in the source tree).
        workers: simulation processes (default min(2, CPUs); ``$KEUSIM_EXP_WORKERS``).
        native: also measure the native counterparts on this host.
        echo: print each comparison table on stdout.
        progress: called with one line per experiment started and finished (default:
            stderr).

    Raises:
        ExperimentError: an unknown name, or no experiments/ beside the package.
    """
    if isinstance(names, str):
        names = [names]
    return run_experiments(select(names), quick=quick, out=out, workers=workers,
                           native=native, echo=echo, progress=progress)


def add_arguments(ap) -> None:
    """The options of ``keusim reproduce`` (shared with keusim.cli)."""
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help="experiments to run (default with --all: every one)")
    ap.add_argument("--all", action="store_true", help="run every experiment")
    ap.add_argument("--list", action="store_true", help="list the experiments and exit")
    ap.add_argument("--quick", action="store_true", help="small counts (seconds each)")
    ap.add_argument("--out", default=None, help="output folder (default results/)")
    ap.add_argument("--workers", type=int, default=None,
                    help="simulation processes (default min(2, CPUs))")
    ap.add_argument("--no-native", action="store_true", help="skip the native host measurements")


def command(ns) -> int:
    """Run parsed ``keusim reproduce`` arguments; prints tables and the summary."""
    if ns.list:
        for name, mod in registry().items():
            first = (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else ""
            print(f"{name:<14} {first}")
        return 0
    if not ns.names and not ns.all:
        raise ExperimentError("name the experiments to run, or give --all "
                              "(`keusim reproduce --list` shows them)")
    r = reproduce(None if ns.all else ns.names, quick=ns.quick, out=ns.out,
                  workers=ns.workers, native=not ns.no_native, echo=True)
    s = r.summary
    for e in s["experiments"]:
        print(f"  {e['experiment']:<14}{e['seconds']:>8.1f} s")
    verdict = "within" if s["within_target"] else "OVER"
    print(f"  {'total':<14}{s['total_seconds']:>8.1f} s  ({verdict} the {TARGET_S:.0f} s "
          f"target; {s['provenance']['host_cpu']['cpus']} CPUs)")
    print(f"summary: {s['outdir']}/summary.json")
    return 0
