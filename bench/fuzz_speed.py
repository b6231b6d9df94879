"""Fuzzer speed: where the host time of a fuzzing run goes.

Runs the programs of N seeds per architecture through keusim.fuzz.run_program
under cProfile and prints, per architecture, runs per host second and the share
of host time in the parts that dominate a short run:

* block-cost misses -- the first execution of every translated block asks Python
  for its cost (capstone + cost model, Machine._miss); each run starts with an
  empty table, because each run is a new Machine;
* ELF parsing -- pyelftools reading the six images (loader.ElfImage);
* boot -- the loader writing images, the boot-info block and the kernel's direct
  map of RAM (loader.boot);
* everything else -- emulation, the scheduler, the report.

cProfile slows Python-heavy parts more than emulation, so the shares are an upper
bound for those parts; the runs/s line is measured without the profiler.

    .venv/bin/python bench/fuzz_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from keusim.fuzz import Program, build_target, generate, run_program

PARTS = {"block-cost misses": ("machine.py", "_miss"), "ELF parsing": ("loader.py", "__init__"),
         "boot": ("loader.py", "boot")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="seeds per architecture (default 20)")
    ns = ap.parse_args(argv)
    print(f"{'arch':<8} {'runs/s':>7} " + " ".join(f"{k:>18}" for k in PARTS) + f" {'other':>8}")
    for arch in ("x86_64", "arm64"):
        t = build_target(arch)
        run_program(t, Program(()))                      # warm the build cache
        progs = [generate(t, s) for s in range(ns.runs)]
        t0 = time.perf_counter()
        for p in progs:
            run_program(t, p)
        rate = ns.runs / (time.perf_counter() - t0)
        pr = cProfile.Profile()
        pr.enable()
        for p in progs:
            run_program(t, p)
        pr.disable()
        st = pstats.Stats(pr).stats                      # (file, line, fn) -> (..., cumtime, ...)
        total = sum(v[2] for v in st.values())           # total internal time
        shares = {}
        for name, (file, fn) in PARTS.items():
            shares[name] = sum(v[3] for k, v in st.items() if k[0].endswith(file) and k[2] == fn)
        other = total - sum(shares.values())
        print(f"{arch:<8} {rate:>7.2f} " + " ".join(f"{100 * v / total:>17.0f}%" for v in
                                                    shares.values()) + f" {100 * other / total:>7.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
