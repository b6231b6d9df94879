"""Ring speed: simulated ping-pong round trips per host second, fast-forward on and off,
beside the same ring natively on the host.

For each architecture, side by side in one run: the `pingpong` scenario (two cores, two
SPSC rings, busy polling, 64-byte messages by default) with the `host` profile (block
pricing, shared-line coherence model, trap costs), once with spin fast-forward (the
default) and once without (``fast_forward=False``), and once more with fast-forward but
with Unicorn's slow memory path as Unicorn ships it (``KEUSIM_PLAIN_UNICORN=1``: no skipped
PC sync, no cached RAM lookup; docs/unicorn.md), and once with fast-forward but with the
native wake-up path off (``KEUSIM_NATIVE_IRQS=0``: halted cores woken, interrupts delivered
and the platform device's IPI, wait and cause registers served in Python, as before the
fourth round; column `RT/s py wake`), and once with fast-forward but the resident-core
switch off (``KEUSIM_RESIDENT=0``: the nested switch of the seventh round; column
`RT/s nested`); with keusim's libunicorn loaded (tools/unicorn,
`make unicorn`: only pages under a memory hook take Unicorn's slow path), once more in a
child process with the wheel's library (``KEUSIM_STOCK_UNICORN=1``, column `RT/s wheel`);
then the guests' ring code built for
the host and run between two pinned processes (keusim.model.harness.run_ring). The
simulated rate is the difference between a long and a short run (round trips and host
seconds), so boot and start-up cancel. It also prints model cycles per round trip (the
same with fast-forward on and off: reports are byte-identical) and how many times slower
than the host the simulation is.

    .venv/bin/python bench/ring_speed.py [--size 64] [--repeat 3] [--verified] [--no-native]
    [--arch x86_64]

Absolute host times are noisy on a shared machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from keusim.machine import fastpath
from keusim.manifest import resolve
from keusim.system import build_images, run

ARCHES = ("x86_64", "arm64")


def _timed(arch: str, messages: int, size: int, verified: bool, ff: bool, plain: bool = False,
           pywake: bool = False, nested: bool = False):
    env = {"KEUSIM_PLAIN_UNICORN": "1" if plain else "0",
           "KEUSIM_NATIVE_IRQS": "0" if pywake else "1",
           "KEUSIM_RESIDENT": "0" if nested else "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        t0 = time.perf_counter()
        rep = run("pingpong", arch=arch, params={"messages": messages, "size": size},
                  profile="host", verified=verified, fast_forward=ff)
        dt = time.perf_counter() - t0
    finally:
        for k, v in old.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
    if not rep.ok:
        raise SystemExit(f"pingpong on {arch} did not finish: {rep.status} {rep.message}")
    return rep, dt


_WARM: set[tuple] = set()


def rate(arch: str, small: int, big: int, size: int, verified: bool, ff: bool,
         plain: bool = False, pywake: bool = False, nested: bool = False
         ) -> tuple[float, float, float]:
    """(round trips per host second, model cycles per round trip, guest insns per second)."""
    spec = resolve("pingpong")
    for n in (small, big):
        p = {**spec.params, "messages": n, "size": size}
        if verified:
            p["verified"] = 1
        build_images(spec, arch, p)
    # Warm up: decoded instructions are cached per process, so the first run of a
    # configuration pays capstone for every block and later ones do not. The long run
    # reaches blocks the short one does not (the first column measured paid for them).
    if (arch, big, size, verified) not in _WARM:
        _timed(arch, big, size, verified, ff, plain, pywake, nested)
        _WARM.add((arch, big, size, verified))
    _timed(arch, small, size, verified, ff, plain, pywake, nested)
    r1, t1 = _timed(arch, small, size, verified, ff, plain, pywake, nested)
    r2, t2 = _timed(arch, big, size, verified, ff, plain, pywake, nested)
    dt = max(t2 - t1, 1e-9)
    return (big - small) / dt, cycles_per_rt(r2), (r2.instructions - r1.instructions) / dt


def cycles_per_rt(rep) -> float:
    """Model cycles per round trip, as pingpong's producer reports them."""
    st = rep.channel(0).producer_stats
    return st.get("rt_cycles", 0) / max(1, st.get("round_trips", 1))


def wheel_rate(arch: str, small: int, big: int, size: int, verified: bool
               ) -> tuple[float, float]:
    """rate() with fast-forward, in a child process that loads the wheel's libunicorn."""
    env = {k: v for k, v in os.environ.items() if k != "LIBUNICORN_PATH"}
    env["KEUSIM_STOCK_UNICORN"] = "1"
    args = [sys.executable, __file__, "--child", arch, "--small", str(small), "--big",
            str(big), "--size", str(size)] + (["--verified"] if verified else [])
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if got["hooked_pages"]:
        raise SystemExit("the child meant to run the wheel's libunicorn loaded keusim's")
    return got["rate"], got["cycles"]


def native_rate(size: int) -> float:
    """Round trips per second of the same ring code between two host processes."""
    from keusim.model.harness import run_ring
    res = run_ring("pingpong", sizes=[size], iterations=20_000, runs=1, progress=False)[0]
    return 1e9 / res.median_ns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--big", type=int, default=None,
                    help="round trips of the long run (default 20000, 2000 verified)")
    ap.add_argument("--verified", action="store_true", help="verified notify mode")
    ap.add_argument("--no-native", action="store_true", help="skip the host measurement")
    ap.add_argument("--arch", action="append", choices=ARCHES)
    ap.add_argument("--child", choices=ARCHES, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    big = a.big or (2000 if a.verified else 20000)
    if a.child:
        r, c, _ = rate(a.child, a.small, big, a.size, a.verified, True)
        print(json.dumps({"rate": r, "cycles": c, "hooked_pages": fastpath.HOOKED_PAGES}))
        return 0
    import unicorn.unicorn_py3.unicorn as ucmod
    lib = getattr(ucmod.uclib, "_name", "?")
    print(f"libunicorn: {'keusim build (hooked pages)' if fastpath.HOOKED_PAGES else 'the wheel'}"
          f" at {lib}")
    native = None if a.no_native else native_rate(a.size)
    print(f"simulated pingpong, {a.size}-byte messages{' (verified notify)' if a.verified else ''}, "
          f"profile host: round trips per host second (difference of {big} and {a.small} "
          f"round trips; medians of {a.repeat})")
    print(f"{'arch':<8}{'RT/s ff':>10}{'RT/s no ff':>12}{'ff/no ff':>10}{'RT/s plain':>12}"
          f"{'ff/plain':>10}{'RT/s py wake':>14}{'ff/py wake':>12}{'RT/s nested':>13}"
          f"{'ff/nested':>11}{'RT/s wheel':>12}"
          f"{'ff/wheel':>10}{'insns/s ff':>13}{'cycles/RT':>11}{'RT/s host':>12}"
          f"{'host/sim':>10}")
    for arch in a.arch or ARCHES:
        on, off, ratio, pl, pratio, pw, wratio, ins = [], [], [], [], [], [], [], []
        wh, hratio, ne, nratio = [], [], [], []
        c_on = c_off = c_pl = c_pw = c_ne = 0.0
        c_wh = None
        for _ in range(a.repeat):
            r_on, c_on, x_on = rate(arch, a.small, big, a.size, a.verified, True)
            r_off, c_off, _ = rate(arch, a.small, big, a.size, a.verified, False)
            r_pl, c_pl, _ = rate(arch, a.small, big, a.size, a.verified, True, plain=True)
            r_pw, c_pw, _ = rate(arch, a.small, big, a.size, a.verified, True, pywake=True)
            r_ne, c_ne, _ = rate(arch, a.small, big, a.size, a.verified, True, nested=True)
            on.append(r_on)
            off.append(r_off)
            pl.append(r_pl)
            pw.append(r_pw)
            ratio.append(r_on / r_off)
            pratio.append(r_on / r_pl)
            wratio.append(r_on / r_pw)
            ne.append(r_ne)
            nratio.append(r_on / r_ne)
            ins.append(x_on)
            if fastpath.HOOKED_PAGES:
                r_wh, c_wh = wheel_rate(arch, a.small, big, a.size, a.verified)
                wh.append(r_wh)
                hratio.append(r_on / r_wh)
        if c_wh is not None and c_wh != c_on:
            raise SystemExit(f"{arch}: cycles per round trip differ with keusim's libunicorn "
                             f"({c_on}) and the wheel's ({c_wh}): a bug")
        if not c_on == c_off == c_pl == c_pw == c_ne:
            raise SystemExit(f"{arch}: cycles per round trip differ with fast-forward on "
                             f"({c_on}), off ({c_off}), plain Unicorn ({c_pl}), the "
                             f"wake-up path in Python ({c_pw}) and the nested switch "
                             f"({c_ne}): a bug")
        m_on = statistics.median(on)
        host = f"{native:>12,.0f}{native / m_on:>10.0f}x" if native else f"{'-':>12}{'-':>11}"
        print(f"{arch:<8}{m_on:>10,.0f}{statistics.median(off):>12,.0f}"
              f"{statistics.median(ratio):>10.2f}{statistics.median(pl):>12,.0f}"
              f"{statistics.median(pratio):>10.2f}{statistics.median(pw):>14,.0f}"
              f"{statistics.median(wratio):>12.2f}{statistics.median(ne):>13,.0f}"
              f"{statistics.median(nratio):>11.2f}"
              + (f"{statistics.median(wh):>12,.0f}{statistics.median(hratio):>10.2f}"
                 if wh else f"{'-':>12}{'-':>10}")
              + f"{statistics.median(ins) / 1e6:>11.1f} M"
              f"{c_on:>11.2f}{host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
