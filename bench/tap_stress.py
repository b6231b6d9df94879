"""NetD against Linux over a TAP link, repeated under CPU load: how often the exchange stalls.

Each round runs the check of tests/test_netd_tap.py (5 pings, 20 + 20 UDP echoes, 1 MiB
of TCP echoed back and compared byte for byte) in a fresh namespace, while ``--busy N``
processes spin beside it so that NetD, Linux's stack and the client fight for the CPUs
(on the 2-vCPU machines this project runs on, two busy loops are what `make test -n 2`
does to the TAP test). Prints one line per round (seconds, whether it passed, NetD's
flow-control counters) and a summary. A round whose TCP exchange makes no progress for
``--stall`` seconds fails; a passing round takes about 1.3 s here (AMD EPYC, 2 vCPUs).

    sudo .venv/bin/python bench/tap_stress.py [--rounds 30] [--busy 2] [--stall 15]

Host time and Linux's stack are real: rounds differ, this is a measurement, not a test.
Needs root, `ip` and /dev/net/tun (the same as the TAP tests).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time

from keusim.net import tap


def _spin() -> None:
    while True:
        pass


def one_round(stall: float) -> tuple[bool, float, dict[str, int], str]:
    t0 = time.monotonic()
    # As the test does: NetD writes a capture of the link, which slows it the same way.
    with tempfile.TemporaryDirectory() as d, \
            tap.TapLink(("--tcp-echo", "7", "--udp-app", "9", "--pcap", f"{d}/tap.pcap")) as link:
        r = link.run([sys.executable, "-m", "keusim.net.tap", "--tcp-bytes", str(1 << 20),
                      "--stall", f"{stall:g}"], timeout=600)
        link.stop()
    ok = False
    why = r.stderr.strip().splitlines()[-1] if r.returncode else ""
    if r.returncode == 0:
        out = json.loads(r.stdout)
        t = out["tcp"]
        ok = (out["ping_replies"] == 5 and out["udp_echo_ok"] == 20 and out["udp_app_ok"] == 20
              and t["equal"] and t["received"] == 1 << 20)
        why = "" if ok else f"wrong result: {out}"
    return ok, time.monotonic() - t0, link.stats, why


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--busy", type=int, default=2, help="spinning processes beside NetD")
    ap.add_argument("--stall", type=float, default=15.0,
                    help="seconds without TCP progress that fail a round")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.busy < 0 or a.stall <= 0:
        ap.error("--rounds must be >= 1, --busy >= 0 and --stall > 0")
    why = tap.unavailable()
    if why:
        print(f"tap_stress: {why}", file=sys.stderr)
        return 2
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{a.busy} busy loops; a round fails after {a.stall:g} s without TCP progress")
    spinners = [mp.Process(target=_spin, daemon=True) for _ in range(a.busy)]
    for p in spinners:
        p.start()
    passed, times = 0, []
    try:
        for i in range(a.rounds):
            ok, sec, st, msg = one_round(a.stall)
            passed += ok
            times.append(sec)
            keys = ("tcp_app_full", "tcp_beyond_wnd", "tcp_out_of_order", "tcp_retransmit")
            counters = " ".join(f"{k}={st.get(k, 0)}" for k in keys)
            print(f"round {i + 1:3d}: {'pass' if ok else 'FAIL'} {sec:6.1f} s  {counters}"
                  + (f"  ({msg})" if msg else ""), flush=True)
    finally:
        for p in spinners:
            p.terminate()
    print(f"passed {passed} of {a.rounds}; seconds per round min {min(times):.1f} "
          f"max {max(times):.1f}")
    return 0 if passed == a.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
