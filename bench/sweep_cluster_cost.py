"""What a Dask cluster costs a sweep, beside the local process pool (keusim.workflow.sweep).

The same `pingpong` sweeps of N points (message sizes, 100 round trips each) run in the
local pool of two processes and on a Dask cluster of two single-threaded workers on
127.0.0.1 (`dask scheduler` and `dask worker` started by this script as separate
processes, as a user would, and stopped at the end; their start-up is printed
separately: an existing cluster has paid it already). The cluster runs outside this
process on purpose: a LocalCluster inside it slows the local pool's forked workers. Each
sweep starts fresh; images come from the warm build cache. Host times on a shared
machine are noisy: compare the ratios within one run.

    .venv/bin/python bench/sweep_cluster_cost.py [--points 1,2,4,8] [--repeat 2]

This is the measurement behind the sweep's rule that fewer points than two per local
worker run locally (docs/experiments.md, "Reproduce and sweep").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keusim.workflow.sweep import sweep

SIZES = (64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 480, 512, 544)


def one(n: int, out: str, **kw) -> float:
    t = time.perf_counter()
    r = sweep("pingpong", {"size": list(SIZES[:n])}, fixed={"messages": 100}, out=out,
              resume=False, progress=False, figure=False, log=lambda s: None, **kw)
    secs = time.perf_counter() - t
    assert not r.errors and len(r.rows) == n
    return secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default="1,2,4,8")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    counts = [int(x) for x in a.points.split(",")]
    if max(counts) > len(SIZES):
        raise SystemExit(f"at most {len(SIZES)} points")
    dask = str(Path(sys.executable).with_name("dask"))
    port = 8791
    addr = f"tcp://127.0.0.1:{port}"
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        one(1, tmp, workers=1)                      # warm the build cache
        try:
            t = time.perf_counter()
            procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                                           str(port), "--no-dashboard"], cwd=tmp,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            procs.append(subprocess.Popen([dask, "worker", addr, "--nworkers", "2", "--nthreads",
                                           "1", "--host", "127.0.0.1", "--no-dashboard"],
                                          cwd=tmp, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            from distributed import Client

            with Client(addr, timeout="60s") as c:
                c.wait_for_workers(2, timeout=60)
            print(f"dask scheduler + 2 workers up in {time.perf_counter() - t:.2f} s")
            print(f"{'points':>6}  {'local pool s':>12}  {'dask s':>8}  {'dask / local':>12}")
            for n in counts:
                loc = statistics.median(one(n, tmp, workers=2) for _ in range(a.repeat))
                dsk = statistics.median(one(n, tmp, executor="dask", force_cluster=True,
                                            scheduler=addr) for _ in range(a.repeat))
                print(f"{n:>6}  {loc:>12.2f}  {dsk:>8.2f}  {dsk / loc:>12.2f}")
        finally:
            for p in reversed(procs):
                p.terminate()
                p.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
