"""Ring speed: simulated ping-pong round trips per host second, cycle model on and off.

For each architecture, side by side in one run: the `pingpong` scenario (two cores, two
SPSC rings, busy polling, 64-byte messages by default) with the `host` profile (block
pricing, shared-line coherence model, trap costs) and with the flat cost model (one cycle
per instruction, the same native hooks: the "no model" figure). The rate is the difference
between a long and a short run (round trips and host seconds), so boot and start-up cancel.
It also prints model cycles per round trip, and how many host seconds one simulated
round trip costs split into machine slices (returns to Python) and the rest.

    .venv/bin/python bench/ring_speed.py [--size 64] [--repeat 3] [--verified]

Absolute host times are noisy on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from keusim.manifest import resolve
from keusim.system import build_images, run

ARCHES = ("x86_64", "arm64")


def _timed(arch: str, messages: int, size: int, profile: str | None, verified: bool):
    t0 = time.perf_counter()
    rep = run("pingpong", arch=arch, params={"messages": messages, "size": size},
              profile=profile, verified=verified)
    dt = time.perf_counter() - t0
    if not rep.ok:
        raise SystemExit(f"pingpong on {arch} did not finish: {rep.status} {rep.message}")
    return rep, dt


def rate(arch: str, small: int, big: int, size: int, profile: str | None,
         verified: bool) -> tuple[float, float, float]:
    """(round trips per host second, model cycles per round trip, guest insns per second)."""
    spec = resolve("pingpong")
    for n in (small, big):
        p = {**spec.params, "messages": n, "size": size}
        if verified:
            p["verified"] = 1
        build_images(spec, arch, p)
    # Warm up: decoded instructions and block prices are cached per process, so the
    # first run of a configuration pays capstone for every block and later ones do not.
    _timed(arch, small, size, profile, verified)
    r1, t1 = _timed(arch, small, size, profile, verified)
    r2, t2 = _timed(arch, big, size, profile, verified)
    dt = max(t2 - t1, 1e-9)
    st = r2.channel(0).producer_stats
    cyc = st.get("rt_cycles", 0) / max(1, st.get("round_trips", 1))
    return (big - small) / dt, cyc, (r2.instructions - r1.instructions) / dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--big", type=int, default=3000)
    ap.add_argument("--verified", action="store_true", help="verified notify mode")
    ap.add_argument("--arch", action="append", choices=ARCHES)
    a = ap.parse_args(argv)
    print(f"simulated pingpong, {a.size}-byte messages{' (verified notify)' if a.verified else ''}: "
          f"round trips per host second (difference of {a.big} and {a.small} round trips; "
          f"medians of {a.repeat})")
    print(f"{'arch':<8}{'RT/s model':>12}{'RT/s flat':>11}{'model/flat':>12}"
          f"{'insns/s model':>15}{'insns/s flat':>14}{'cycles/RT model':>17}{'cycles/RT flat':>16}")
    for arch in a.arch or ARCHES:
        m, f, ratio, im, ifl = [], [], [], [], []
        cm = cf = 0.0
        for _ in range(a.repeat):
            rm, cm, xm = rate(arch, a.small, a.big, a.size, "host", a.verified)
            rf, cf, xf = rate(arch, a.small, a.big, a.size, None, a.verified)
            m.append(rm)
            f.append(rf)
            ratio.append(rm / rf)
            im.append(xm)
            ifl.append(xf)
        print(f"{arch:<8}{statistics.median(m):>12,.0f}{statistics.median(f):>11,.0f}"
              f"{statistics.median(ratio):>12.2f}{statistics.median(im) / 1e6:>13.1f} M"
              f"{statistics.median(ifl) / 1e6:>12.1f} M{cm:>17.0f}{cf:>16.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
