"""Run every experiment, print their tables, and time the whole reproduction.

    python experiments/run_all.py [--quick] [--out DIR] [--workers N] [--no-native]
    keusim reproduce --all [--quick] [--out DIR] [--workers N] [--no-native]   (the same)

The mission's target: every paper table reproduced within 3 minutes on a 2-core machine.
Experiments run one after another (each uses up to two simulation processes; native
measurements never overlap a simulation). Writes results/run_all/summary.{json,csv}
with each experiment's wall time and where its files are. The engine is
keusim.workflow.reproduce; every experiments/<name>.py with a NAME and a run() is found
there, the paper's five first.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._common import cli  # noqa: E402
from keusim.workflow.reproduce import TARGET_S, registry, run_experiments  # noqa: E402

EXPERIMENTS = tuple(registry().values())


def run(quick: bool = False, out: str | Path | None = None, workers: int | None = None,
        native: bool = True, echo: bool = True) -> dict:
    """Run all experiments; returns the summary (also written to <out>/run_all/)."""
    return run_experiments(EXPERIMENTS, quick=quick, out=out, workers=workers, native=native,
                           echo=echo).summary


def main(argv=None) -> int:
    a = cli(__doc__.splitlines()[0], argv)
    s = run(quick=a.quick, out=a.out, workers=a.workers, native=not a.no_native)
    for e in s["experiments"]:
        print(f"  {e['experiment']:<14}{e['seconds']:>8.1f} s")
    verdict = "within" if s["within_target"] else "OVER"
    print(f"  {'total':<14}{s['total_seconds']:>8.1f} s  ({verdict} the {TARGET_S:.0f} s target; "
          f"{s['provenance']['host_cpu']['cpus']} CPUs)")
    print(f"summary: {s['outdir']}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
