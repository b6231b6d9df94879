"""NetD inside the emulated machine, before the NIC exists: cycles per UDP echo.

``guests/netd/model/udp_echo.c`` links NetD with a software NIC in one keusim guest and
times each ``netd_poll`` that answers a UDP echo with the model's cycle counter,
checking every echo byte for byte. This module builds it, runs it on the machine and
parses its one-line result. Model time, so the numbers are the same on every run.

    .venv/bin/python -m keusim.net.model [--packets N] [--sizes 18,64,512,1472]

The cost is NetD's processing only (Ethernet, IPv4, UDP, the echo): no NIC, no DMA, no
notification. The NIC-to-application path the paper (docs/paper.md) compares (about
450 cycles against about 3,500) needs the emulated NIC.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from keusim.net import NetError
from keusim.net.host import NETD_DIR

GUEST = NETD_DIR / "model" / "udp_echo.c"
PROFILES: tuple[tuple[str, str | None], ...] = (
    ("x86_64", None), ("x86_64", "zen3"), ("x86_64", "raptorlake"),
    ("arm64", None), ("arm64", "neoverse-n1"), ("arm64", "cortex-a76"),
)
"""(architecture, cycle-model profile) pairs the table covers; None is the flat model
(one cycle per instruction)."""

_LINE = re.compile(r"netd-udp-echo: size (\d+) packets (\d+) cycles (\d+) min (\d+) max (\d+) "
                   r"per-packet (\d+) idle (\d+)")


@dataclass(frozen=True)
class EchoCost:
    """One run: ``packets`` echoes of ``size`` payload bytes on ``arch`` under ``profile``."""

    arch: str
    profile: str
    size: int
    packets: int
    cycles: int
    min_cycles: int
    max_cycles: int
    idle_cycles: int
    """One netd_poll with nothing to do: the fixed cost of a turn of the loop."""

    @property
    def per_packet(self) -> float:
        return self.cycles / self.packets


def _headers_digest() -> str:
    # The build cache hashes the headers of include folders only; NetD's headers sit
    # beside its sources, so their digest goes into the build as a define instead.
    h = hashlib.sha256()
    for p in sorted(NETD_DIR.glob("*.h")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def _manifest(folder: Path) -> Path:
    srcs = [GUEST, *sorted(NETD_DIR.glob("*.c"))]
    m = folder / "netd-udp-echo.toml"
    image = ", ".join(f'"{s}"' for s in srcs)
    m.write_text(
        "# Written by keusim.net.model: NetD and a software NIC in one process.\n"
        '[system]\nname = "netd-udp-echo"\ncores = 1\n\n'
        "[params]\npackets = 100\nsize = 64\n"
        f'netd_headers = "0x{_headers_digest()}"\n\n'
        f'[[process]]\nname = "netd"\nimage = [{image}]\ncore = 0\n')
    return m


def udp_echo(arch: str, size: int = 64, packets: int = 100, profile: str | None = None) -> EchoCost:
    """Run the in-machine UDP echo measurement once.

    Raises:
        NetError: the guest failed (an echo was wrong, or it did not finish).
    """
    from keusim.system import run

    if not 0 <= size <= 1472 or packets < 1:
        raise NetError(f"size {size} must be in [0, 1472] and packets {packets} at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        rep = run(_manifest(Path(tmp)), arch=arch, profile=profile,
                  params={"packets": packets, "size": size})
    proc = rep.processes[0]
    m = _LINE.search(proc.console)
    if proc.exit_code != 0 or not m:
        raise NetError(f"the NetD echo guest on {arch} did not finish cleanly "
                       f"(exit {proc.exit_code}): {proc.console.strip() or rep.message}")
    s, n, cyc, lo, hi, _, idle = (int(x) for x in m.groups())
    return EchoCost(arch, rep.profile, s, n, cyc, lo, hi, idle)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m keusim.net.model", description=__doc__.splitlines()[0])
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
