"""NetD's per-packet cost on this host, and the TAP link's round trips (docs/netd.md).

* **udp echo** -- ``netd_host --bench N --size S``: N UDP datagrams to NetD's echo
  port, each copied into the frame region by the host NIC, handled by one
  ``netd_poll`` (Ethernet, IPv4 and UDP checks, the echo built in a fresh frame) and
  taken off the tx ring; host nanoseconds per packet. Built -O2 (plain) and -O1 with
  UBSan (the build the tests use), side by side.
* **code size** -- NetD (with the ring library and string.c) compiled for each guest
  architecture with the guests' flags: bytes of machine code and instructions, beside
  the paper's "under 8,000 instructions" (docs/paper.md).
* **tap** (root only) -- Linux in a private namespace pings NetD and sends 1 MiB over
  TCP to the echo application behind NetD's socket rings (keusim.net.tap); host time.

    .venv/bin/python bench/netd_host.py [--packets N] [--no-tap]

Host time on a shared machine is noisy; the ratios between columns are what to compare.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from keusim.net import host, tap


def udp_echo(exe: str, packets: int, size: int) -> float:
    r = subprocess.run([exe, "--bench", str(packets), "--size", str(size)],
                       capture_output=True, text=True, check=True)
    out = json.loads(r.stdout)
    assert out["echoed"] == packets
    return out["ns_per_packet"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--no-tap", action="store_true")
    a = ap.parse_args(argv)
    plain, ubsan = str(host.build(sanitize=False)), str(host.build(sanitize=True))
    print(f"UDP echo through NetD, {a.packets} packets per size (host ns/packet)")
    print(f"{'payload':>8} {'-O2':>10} {'-O1+UBSan':>10} {'ratio':>7}")
    for size in (18, 64, 512, 1472):
        p, u = udp_echo(plain, a.packets, size), udp_echo(ubsan, a.packets, size)
        print(f"{size:>8} {p:>10.1f} {u:>10.1f} {u / p:>7.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("x86_64", "arm64"):
            nbytes, ninsns = host.code_size(arch, Path(tmp))
            print(f"code size, {arch} guest: {nbytes} bytes, {ninsns} instructions (paper: < 8,000)")
    why = tap.unavailable()
    if a.no_tap or why:
        print(f"tap: skipped ({'--no-tap' if a.no_tap else why})")
        return 0
    with tap.TapLink(sanitize=False) as link:
        r = link.run(["ping", "-c", "20", "-i", "0.05", "-q", tap.NETD_IP])
        rtt = next((ln for ln in r.stdout.splitlines() if "min/avg" in ln), "ping unavailable")
        r = link.run([sys.executable, "-m", "keusim.net.tap", "--pings", "1", "--udp", "1"])
        t = json.loads(r.stdout)["tcp"]
    print(f"tap: ping {rtt.split('=')[-1].strip()}")
    print(f"tap: 1 MiB TCP echo: {t['seconds']} s, every byte equal: {t['equal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
