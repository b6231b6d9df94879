"""NetD inside the emulated machine, before the NIC exists: cycles per packet.

``guests/netd/model/udp_echo.c`` links NetD with a software NIC in one keusim guest and
times each ``netd_poll`` that answers a UDP echo with the model's cycle counter,
checking every echo byte for byte. ``guests/netd/model/tcp_rx.c`` does the same for
in-order TCP segments taken into an application's event ring (and acknowledged), and
times the application's zero-copy read. This module builds them, runs them on the
machine and parses their one-line results. Model time: the same numbers on every run.

    .venv/bin/python bench/netd_model.py [--packets N] [--sizes 18,64,512,1472]

The cost is NetD's processing only (Ethernet, IPv4, UDP, the echo): no NIC, no DMA, no
notification. The NIC-to-application path the paper (docs/paper.md) compares (about
450 cycles against about 3,500) needs the emulated NIC.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from keusim.net import NetError
from keusim.net.host import NETD_DIR

GUEST = NETD_DIR / "model" / "udp_echo.c"
TCP_GUEST = NETD_DIR / "model" / "tcp_rx.c"
PROFILES: tuple[tuple[str, str | None], ...] = (
    ("x86_64", None), ("x86_64", "zen3"), ("x86_64", "raptorlake"),
    ("arm64", None), ("arm64", "neoverse-n1"), ("arm64", "cortex-a76"),
)
"""(architecture, cycle-model profile) pairs the table covers; None is the flat model
(one cycle per instruction)."""

_LINE = re.compile(r"netd-udp-echo: size (\d+) packets (\d+) cycles (\d+) min (\d+) max (\d+) "
                   r"per-packet (\d+) idle (\d+)")
_TCP_LINE = re.compile(r"netd-tcp-rx: size (\d+) packets (\d+) netd (\d+) app (\d+) per-packet (\d+)")


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


def _manifest(folder: Path, guest: Path) -> Path:
    srcs = [guest, *sorted(NETD_DIR.glob("*.c"))]
    m = folder / f"netd-{guest.stem}.toml"
    image = ", ".join(f'"{s}"' for s in srcs)
    m.write_text(
        "# Written by keusim.net.model: NetD and a software NIC in one process.\n"
        f'[system]\nname = "netd-{guest.stem}"\ncores = 1\n\n'
        "[params]\npackets = 100\nsize = 64\n"
        f'netd_headers = "0x{_headers_digest()}"\n\n'
        f'[[process]]\nname = "netd"\nimage = [{image}]\ncore = 0\n')
    return m


def _run(guest: Path, arch: str, size: int, packets: int, profile: str | None,
         line: re.Pattern[str], max_size: int) -> tuple[str, tuple[int, ...]]:
    from keusim.system import run

    if not 0 <= size <= max_size or packets < 1:
        raise NetError(f"size {size} must be in [0, {max_size}] and packets {packets} at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        rep = run(_manifest(Path(tmp), guest), arch=arch, profile=profile,
                  params={"packets": packets, "size": size})
    proc = rep.processes[0]
    m = line.search(proc.console)
    if proc.exit_code != 0 or not m:
        raise NetError(f"the NetD guest {guest.name} on {arch} did not finish cleanly "
                       f"(exit {proc.exit_code}): {proc.console.strip() or rep.message}")
    return rep.profile, tuple(int(x) for x in m.groups())


def udp_echo(arch: str, size: int = 64, packets: int = 100, profile: str | None = None) -> EchoCost:
    """Run the in-machine UDP echo measurement once.

    Raises:
        NetError: the guest failed (an echo was wrong, or it did not finish).
    """
    prof, (s, n, cyc, lo, hi, _, idle) = _run(GUEST, arch, size, packets, profile, _LINE, 1472)
    return EchoCost(arch, prof, s, n, cyc, lo, hi, idle)


@dataclass(frozen=True)
class TcpRxCost:
    """``packets`` in-order TCP segments of ``size`` bytes received by an application."""

    arch: str
    profile: str
    size: int
    packets: int
    netd_cycles: int
    """Total of the netd_polls that took each segment into the application's ring and
    acknowledged it."""
    app_cycles: int
    """Total of the application's ns_recv and ns_done (reading in place)."""


def tcp_rx(arch: str, size: int = 64, packets: int = 100, profile: str | None = None) -> TcpRxCost:
    """Run the in-machine TCP receive measurement once.

    Raises:
        NetError: the guest failed (a segment not delivered intact or not acknowledged).
    """
    prof, (s, n, netd, app, _) = _run(TCP_GUEST, arch, size, packets, profile, _TCP_LINE, 1460)
    return TcpRxCost(arch, prof, s, n, netd, app)
