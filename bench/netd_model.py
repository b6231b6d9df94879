"""NetD in the emulated machine with a software NIC: model cycles per UDP echo and per TCP
segment received, over payload sizes and profiles (keusim.net.model; docs/netd.md).

    .venv/bin/python bench/netd_model.py [--packets N] [--sizes 18,64,512,1472]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from keusim.net.model import PROFILES, tcp_rx, udp_echo


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/netd_model.py", description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=100)
    ap.add_argument("--sizes", default="18,64,512,1472")
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.sizes.split(",")]
    print(f"NetD UDP echo: model cycles per netd_poll, mean of {a.packets} packets, by UDP payload bytes")
    print(f"{'arch':<8} {'profile':<12} " + " ".join(f"{s:>8}" for s in sizes) + f" {'idle poll':>10}")
    spread = 0
    for arch, prof in PROFILES:
        cells = []
        for s in sizes:
            r = udp_echo(arch, s, a.packets, prof)
            spread = max(spread, r.max_cycles - r.min_cycles)
            cells.append(f"{r.per_packet:>8.0f}")
        print(f"{arch:<8} {r.profile:<12} " + " ".join(cells) + f" {r.idle_cycles:>10}")
    print(f"(largest difference between two packets of one run: {spread} cycles)")
    print()
    print(f"NetD TCP receive: model cycles per in-order segment, NetD / application, mean of {a.packets}")
    tcp_sizes = sorted({min(s, 1460) for s in sizes})   # 1460: the MSS
    print(f"{'arch':<8} {'profile':<12} " + " ".join(f"{s:>12}" for s in tcp_sizes))
    for arch, prof in PROFILES:
        cells = []
        for s in tcp_sizes:
            t = tcp_rx(arch, s, a.packets, prof)
            cells.append(f"{t.netd_cycles / t.packets:>7.0f} / {t.app_cycles / t.packets:<3.0f}")
        print(f"{arch:<8} {t.profile:<12} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
