"""`keusim fuzz`: the command-line face of keusim.fuzz.

    keusim fuzz --runs N --seed S [--arch A] [--save-dir DIR] [--no-minimize]
    keusim fuzz --replay CASE.json ...

Exit status 0 when every run held every invariant (or every replayed case
passes), 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keusim.errors import KeusimError


def _progress(total: int):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    bar = tqdm(total=total, desc="keusim fuzz", unit=" runs", leave=False, file=sys.stderr)

    def cb(done: int, failures: int) -> None:
        bar.set_postfix(failures=failures, refresh=False)
        bar.update(done - bar.n)
        if done == total:
            bar.close()
    return cb


def main(argv: list[str] | None = None) -> int:
    from keusim import arch as archmod
    from keusim.fuzz.campaign import fuzz, replay_case
    ap = argparse.ArgumentParser(prog="keusim fuzz", description=(
        "Run seeded attack programs beside honest processes and check that the machine "
        "contains them (docs/fuzzing.md)."))
    ap.add_argument("--runs", type=int, default=100, help="number of runs (default 100)")
    ap.add_argument("--seed", type=lambda v: int(v, 0), default=1, help="campaign seed (default 1)")
    ap.add_argument("--arch", default=None, help="x86_64 or arm64 (default: alternate both)")
    ap.add_argument("--determinism-every", type=int, default=50, metavar="K",
                    help="re-run every K-th run and compare reports byte for byte (0: never)")
    ap.add_argument("--save-dir", default="fuzz-cases",
                    help="where minimized failing cases go (default ./fuzz-cases)")
    ap.add_argument("--max-saves", type=int, default=8, help="cases to minimize and save (default 8)")
    ap.add_argument("--no-minimize", action="store_true", help="save failing programs as generated")
    ap.add_argument("--max-ops", type=int, default=40, help="operations per program, at most")
    ap.add_argument("--kernel-flags", type=lambda v: int(v, 0), default=0,
                    help="test-only kernel flags (bootinfo.h BOOT_FLAG_*), e.g. to plant a bug")
    ap.add_argument("--replay", nargs="+", metavar="CASE", help="replay saved cases instead")
    ns = ap.parse_args(argv)
    try:
        if ns.replay:
            bad = 0
            targets: dict = {}
            for c in ns.replay:
                _, vs = replay_case(Path(c), targets)
                print(f"{c}: " + ("ok" if not vs else "; ".join(f"{v.invariant}: {v.detail}"
                                                                 for v in vs)))
                bad += bool(vs)
            return 1 if bad else 0
        archs = (archmod.normalize(ns.arch),) if ns.arch else ("x86_64", "arm64")
        s = fuzz(ns.runs, ns.seed, archs, ns.determinism_every, not ns.no_minimize,
                 Path(ns.save_dir), ns.max_saves, ns.kernel_flags, ns.max_ops, _progress(ns.runs))
        print(s.render())
        return 0 if s.ok else 1
    except KeusimError as e:
        print(f"keusim: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
