"""Run every experiment, print their tables, and time the whole reproduction.

    python experiments/run_all.py [--quick] [--out DIR] [--workers N] [--no-native]

The mission's target: every paper table reproduced within 3 minutes on a 2-core machine.
Experiments run one after another (each uses up to two simulation processes; native
measurements never overlap a simulation). Writes results/run_all/summary.{json,csv}
with each experiment's wall time and where its files are.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments import additivity, claim_56ns, coherence, paper_table, tag_check  # noqa: E402
from experiments._common import cli, log, output_dir, provenance  # noqa: E402

EXPERIMENTS = (paper_table, additivity, tag_check, coherence, claim_56ns)
TARGET_S = 180.0


def run(quick: bool = False, out: str | Path | None = None, workers: int | None = None,
        native: bool = True, echo: bool = True) -> dict:
    """Run all experiments; returns the summary (also written to <out>/run_all/)."""
    base = Path(out) if out else None
    t0 = time.perf_counter()
    done = []
    for mod in EXPERIMENTS:
        log(f"[run_all] {mod.NAME} ...")
        t = time.perf_counter()
        exp = mod.run(quick=quick, out=(base / mod.NAME) if base else None, workers=workers,
                      native=native)
        secs = time.perf_counter() - t
        done.append({"experiment": mod.NAME, "seconds": round(secs, 2),
                     "outdir": str(exp.outdir), "files": [p.name for p in exp.files]})
        if echo:
            print(exp.table())
            print(f"[{mod.NAME}: {secs:.1f} s, files in {exp.outdir}]\n", flush=True)
    total = time.perf_counter() - t0
    summary = {"provenance": provenance("run_all", quick=quick,
                                        parameters={"native": native, "workers": workers}),
               "experiments": done, "total_seconds": round(total, 2),
               "target_seconds": TARGET_S, "within_target": total <= TARGET_S}
    d = output_dir("run_all", (base / "run_all") if base else None)
    (d / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    with (d / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "seconds", "outdir"])
        for e in done:
            w.writerow([e["experiment"], e["seconds"], e["outdir"]])
        w.writerow(["total", round(total, 2), str(d)])
    summary["outdir"] = str(d)
    return summary


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
