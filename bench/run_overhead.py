"""Fixed host cost of one short run (boot, pricing new blocks, report): what an experiment
with many small simulations pays per point, with the per-process memo of decoded blocks
(keusim/machine/machine.py ``_DECODED``) on and off, side by side in one process.

    .venv/bin/python bench/run_overhead.py [--repeat 4]

Each configuration runs ``--repeat`` times after a warm-up; the fastest is printed (the
build cache and the price memo are warm in both columns). "off" empties the memo before
every run, as each new machine found it before the memo existed. Reports are identical
either way (the memo holds what capstone would decode again); the cycles are printed to
show it.
"""

from __future__ import annotations

import argparse
import sys
import time

from keusim.machine import machine as mmod
from keusim.system import run

CASES = (
    ("pingpong 200", "pingpong", {"messages": 200}, {}),
    ("pingpong 200 verified", "pingpong", {"messages": 200, "verified": 1}, {"verified": True}),
    ("faults", "faults", None, {}),
)


def _once(system: str, params, kw, memo: bool) -> tuple[float, int]:
    if not memo:
        mmod._DECODED.clear()
    t0 = time.perf_counter()
    rep = run(system, params=params, profile="host", **kw)
    dt = time.perf_counter() - t0
    if not rep.ok:
        raise SystemExit(f"{system} did not finish: {rep.status} {rep.message}")
    return dt, sum(c.cycles for c in rep.cores)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=4)
    a = ap.parse_args(argv)
    print("host seconds per run, x86_64, profile host (fastest of "
          f"{a.repeat}; memo on / off)")
    print(f"{'run':<24}{'memo on':>10}{'memo off':>10}{'off/on':>8}  cycles (on = off)")
    for label, system, params, kw in CASES:
        best = {}
        cyc = {}
        _once(system, params, kw, True)
        for _ in range(a.repeat):
            for memo in (True, False):
                dt, c = _once(system, params, kw, memo)
                best[memo] = min(best.get(memo, dt), dt)
                cyc[memo] = c
        same = "yes" if cyc[True] == cyc[False] else "NO"
        print(f"{label:<24}{best[True]:>10.3f}{best[False]:>10.3f}"
              f"{best[False] / best[True]:>8.2f}  {cyc[True]:,} ({same})")
        if same != "yes":
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
