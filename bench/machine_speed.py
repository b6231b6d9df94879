"""Machine speed: guest instructions per second with the cycle model on, beside raw Unicorn.

For each architecture, measured side by side in one run (absolute host times are noisy on
a shared machine; the ratios are what to compare):

* **compute, full model** -- the `compute` scenario (a register-only loop,
  guests/src/compute.c) run through `keusim.system.run(..., profile="host")`: the native
  block hook charging per-block costs, the shared-line memory hook, trap delivery, the
  scheduler. The loop's rate is the *difference* between a long and a short run
  (instructions and host seconds), so boot, build-cache lookups and Python start-up cancel.
* **compute, flat** -- the same with the flat cost model (1 cycle per instruction): the
  same native hooks, no profile pricing.
* **compute, raw Unicorn** -- the same guest function `compute_loop`, taken from the
  same ELF image, run by a bare `Uc` with no hooks: the image's segments mapped at their
  addresses, MMU off (the loop touches no memory, so flat mode costs it nothing), a stack,
  and `emu_start` from the function to its return address. Its instruction count is the
  model run's instructions per iteration times the iterations.
* **syscalls** -- empty system-call round trips (`syscalls` scenario, ks_nop) per host
  second, model on and flat.

    .venv/bin/python bench/machine_speed.py [--quick] [--repeat N]

Target (docs/design.md, speed): >= 200 M guest instructions/s with the full
cycle model on, for compute-bound code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from unicorn import UC_PROT_ALL, Uc

from keusim import arch as archmod
from keusim.machine import loader
from keusim.manifest import resolve
from keusim.system import build_images, run

ARCHES = ("x86_64", "arm64")
STOP = 0x3FF000          # the raw run returns here: a mapped page below the image


def _timed_run(name: str, arch: str, params: dict, profile: str | None):
    t0 = time.perf_counter()
    rep = run(name, arch=arch, params=params, profile=profile)
    dt = time.perf_counter() - t0
    if not rep.ok:
        raise SystemExit(f"{name} on {arch} did not finish: {rep.status} {rep.message}")
    return rep, dt


def delta_rate(name: str, arch: str, key: str, small: int, big: int, profile: str | None,
               what: str = "instructions") -> tuple[float, float]:
    """(units per host second, units per op) of the difference between two runs."""
    spec = resolve(name)
    for n in (small, big):               # build (or find in the cache) before timing
        build_images(spec, arch, {**spec.params, key: n})
    # Warm up: decoded instructions and block prices are cached per process, so the
    # first run of a configuration pays capstone for every block and later ones do not.
    _timed_run(name, arch, {key: small}, profile)
    r1, t1 = _timed_run(name, arch, {key: small}, profile)
    r2, t2 = _timed_run(name, arch, {key: big}, profile)
    n = r2.instructions - r1.instructions
    dt = max(t2 - t1, 1e-9)
    if what == "instructions":
        return n / dt, n / (big - small)
    return (big - small) / dt, n / (big - small)


def raw_compute(arch: str, iterations: int) -> float:
    """Host seconds a bare Unicorn takes to run compute_loop(iterations)."""
    spec = resolve("compute")
    img = build_images(spec, arch, {**spec.params, "iterations": iterations})[0]
    a = archmod.get(arch)
    uc: Uc = a.new_uc()
    lo = min(s.vaddr for s in img.segments) & ~0xFFF
    hi = max(s.vaddr + s.memsz for s in img.segments)
    size = ((hi - STOP) + 0xFFFF) & ~0xFFFF
    uc.mem_map(STOP, size + 0x10000, UC_PROT_ALL)
    assert lo >= STOP + 0x1000
    for s in img.segments:
        uc.mem_write(s.vaddr, s.data)
    stack = STOP + size + 0x10000 - 0x100
    fn = loader.ElfImage(img.path, a.elf_machine).symbol("compute_loop")
    a.setup_call(uc, (iterations, 42), stack, STOP, uc.mem_write)   # returns to STOP
    t0 = time.perf_counter()
    uc.emu_start(fn, STOP)
    return time.perf_counter() - t0


def measure(arch: str, small: int, big: int, repeat: int) -> dict:
    full, flat, raw, ratios = [], [], [], []
    per_iter = None
    for _ in range(repeat):
        ips_full, per_iter = delta_rate("compute", arch, "iterations", small, big, "host")
        ips_flat, _ = delta_rate("compute", arch, "iterations", small, big, None)
        raw_ips = big * per_iter / raw_compute(arch, big)
        full.append(ips_full)
        flat.append(ips_flat)
        raw.append(raw_ips)
        ratios.append(ips_full / raw_ips)
    sc_small, sc_big = 2000, 20000
    sys_full, _ = delta_rate("syscalls", arch, "calls", sc_small, sc_big, "host", what="ops")
    sys_flat, _ = delta_rate("syscalls", arch, "calls", sc_small, sc_big, None, what="ops")
    return {"arch": arch, "full": statistics.median(full), "flat": statistics.median(flat),
            "raw": statistics.median(raw), "ratio": statistics.median(ratios),
            "ratio_flat": statistics.median(f / r for f, r in zip(flat, raw, strict=True)),
            "per_iter": per_iter, "sys_full": sys_full, "sys_flat": sys_flat}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (medians are shown)")
    ap.add_argument("--arch", action="append", choices=ARCHES)
    a = ap.parse_args(argv)
    small, big = (1_000_000, 50_000_000) if a.quick else (1_000_000, 200_000_000)
    rows = [measure(arch, small, big, a.repeat) for arch in (a.arch or ARCHES)]
    print(f"machine speed (compute loop: {big - small:,} iterations more in the long run; "
          f"medians of {a.repeat}; M = 10^6 guest instructions per host second)")
    print(f"{'arch':<8}{'insns/iter':>11}{'full model':>13}{'flat cost':>12}{'raw Unicorn':>13}"
          f"{'full/raw':>10}{'flat/raw':>10}{'syscalls/s model':>18}{'syscalls/s flat':>17}")
    for r in rows:
        print(f"{r['arch']:<8}{r['per_iter']:>11.1f}{r['full'] / 1e6:>11.0f} M{r['flat'] / 1e6:>10.0f} M"
              f"{r['raw'] / 1e6:>11.0f} M{r['ratio']:>10.2f}{r['ratio_flat']:>10.2f}"
              f"{r['sys_full']:>18,.0f}{r['sys_flat']:>17,.0f}")
    target = 200e6
    worst = min(r["full"] for r in rows)
    print(f"\ntarget >= 200 M instructions/s with the model on: "
          f"{'met' if worst >= target else 'NOT met'} (slowest arch {worst / 1e6:.0f} M/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
