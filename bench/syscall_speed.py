"""System-call speed: empty system-call round trips per host second, and host seconds per
10^8 model cycles of a system-call loop, with native trap delivery on and off.

For each architecture, side by side in one run: the `syscalls` scenario (ks_nop in a
loop: trap entry, dispatch, return; profile `host`) with system calls entered natively
(keusim/arch/<arch>_trap.c, the default) and entered by Python (``Machine.native_traps =
False``, the path the machine used for every trap before). The rate is the difference
between a long and a short run, so boot and start-up cancel. Both give the same report
(tests/test_fastforward.py); the cycles per call are printed to show it.

    .venv/bin/python bench/syscall_speed.py [--repeat 3] [--small 2000] [--big 20000]

Absolute host times are noisy on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from keusim.system import BootedSystem

ARCHES = ("x86_64", "arm64")


def _timed(arch: str, calls: int, native: bool) -> tuple[float, int]:
    with BootedSystem("syscalls", arch, {"calls": calls}, "host") as b:
        b.machine.native_traps = native
        t0 = time.perf_counter()
        b.finish()
        dt = time.perf_counter() - t0
        rep = b.report()
    if not rep.ok:
        raise SystemExit(f"syscalls on {arch} did not finish: {rep.status} {rep.message}")
    return dt, rep.cores[0].cycles


def rate(arch: str, small: int, big: int, native: bool) -> tuple[float, float, float]:
    """(calls per host second, host seconds per 10^8 model cycles, model cycles per call)."""
    _timed(arch, small, native)          # warm up: builds and block prices
    t1, c1 = _timed(arch, small, native)
    t2, c2 = _timed(arch, big, native)
    dt, dc = max(t2 - t1, 1e-9), c2 - c1
    return (big - small) / dt, dt / dc * 1e8, dc / (big - small)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--big", type=int, default=20000)
    ap.add_argument("--arch", action="append", choices=ARCHES)
    a = ap.parse_args(argv)
    print(f"system-call loop, profile host (difference of {a.big} and {a.small} calls; "
          f"medians of {a.repeat})")
    print(f"{'arch':<8}{'calls/s native':>16}{'calls/s Python':>16}{'speed-up':>10}"
          f"{'s/1e8 cyc native':>18}{'s/1e8 cyc Python':>18}{'cycles/call':>13}")
    for arch in a.arch or ARCHES:
        nat, py, sn, sp, up = [], [], [], [], []
        cyc = 0.0
        for _ in range(a.repeat):
            r_n, s_n, cyc = rate(arch, a.small, a.big, True)
            r_p, s_p, cyc_p = rate(arch, a.small, a.big, False)
            if cyc != cyc_p:
                raise SystemExit(f"{arch}: cycles per call differ with native traps on "
                                 f"({cyc}) and off ({cyc_p})")
            nat.append(r_n)
            py.append(r_p)
            sn.append(s_n)
            sp.append(s_p)
            up.append(r_n / r_p)
        print(f"{arch:<8}{statistics.median(nat):>16,.0f}{statistics.median(py):>16,.0f}"
              f"{statistics.median(up):>10.2f}{statistics.median(sn):>18.2f}"
              f"{statistics.median(sp):>18.2f}{cyc:>13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
