"""Cycles and system calls per packet on the emulated NIC: NetD's path against the
kernel-mediated one (experiments/netd_table.py, docs/experiments.md "NetD table").

A scripted peer (:class:`keusim.net.wire.ScriptWire`) sends UDP datagrams in bursts on
model time and checks every echo byte for byte, down one of three paths:

  ``netd+app``  scenario ``netd``, port 9: NIC DMA into NetD's frames, NetD's stack, the
                payload into the echo application's event ring, the answer back
                through its request ring; one verified notification per burst each way;
  ``netd``      scenario ``netd``, port 7: NetD's own echo service, no application hop;
  ``kernel``    scenario ``netd-trad``, port 7: the kernel owns the NIC queue and copies
                every frame (one SYS_NET_RECV and one SYS_NET_SEND per packet).

A per-packet figure is the difference of a 5N- and an N-packet run over 4N, so boot,
start-up and exit cancel: busy cycles (every core's clock minus its halted cycles,
kernel included) and system calls (kernel entries for a system call, every core).
Model time: the same inputs give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from keusim.errors import KeusimError

PATHS = {"netd+app": ("netd", 9), "netd": ("netd", 7), "kernel": ("netd-trad", 7)}
BURST, GAP_US = 16, 50


def burst_script(n: int, size: int, port: int, burst: int = BURST, gap_us: int = GAP_US) -> list[dict]:
    """ARP, then n datagrams of ``size`` bytes to ``port``, ``burst`` at a time every
    ``gap_us`` microseconds of model time (the wire serialises each burst at line rate)."""
    s: list[dict] = [{"at": 5, "do": "arp"}]
    for i in range(n):
        s.append({"at": 6 + (i // burst) * gap_us / 1000, "do": "udp", "sport": 40000 + i % burst,
                  "dport": port, "data": bytes((i * 7 + j) & 0xFF for j in range(size))})
    return s


def _one(arch: str, profile: str | None, path: str, size: int, n: int) -> tuple[int, int]:
    from keusim.net.wire import ScriptWire
    from keusim.system import BootedSystem

    system, port = PATHS[path]
    wire = ScriptWire(burst_script(n, size, port), drain_ms=2)
    # NetD's timer tick at 100 ms: no tick falls inside the measured difference.
    params = {"netd_tick_ms": 100} if system == "netd" else None
    with BootedSystem(system, arch=arch, profile=profile, wire=wire, params=params) as b:
        b.finish()
        rep = b.report()
        busy = sum(c.clock - c.idle for c in b.machine.cores)
        calls = sum(c.syscalls for c in b.machine.cores)
    sent = {(40000 + i % BURST, bytes((i * 7 + j) & 0xFF for j in range(size))) for i in range(n)}
    got = [(f.udp.dport, f.udp.payload) for f in wire.peer.received if f.udp]
    if not rep.ok or len(got) != n or set(got) != sent:
        raise KeusimError(f"{system} on {arch} ({profile or 'flat'}), {size} B: {len(got)} of "
                          f"{n} echoes came back intact:\n{rep.summary()}")
    return busy, calls


@dataclass(frozen=True)
class PathCost:
    arch: str
    profile: str
    path: str
    size: int
    packets: int
    cycles: float
    """Busy cycles per packet, all cores, kernel included."""
    calls_per_1000: float
    """System calls per 1,000 packets, all processes."""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def measure(arch: str, profile: str | None, path: str, size: int = 64, n: int = 64) -> PathCost:
    """Per-packet cost of ``path`` (a key of :data:`PATHS`) for ``size``-byte datagrams.

    Raises:
        KeusimError: an echo did not come back intact (or the run failed).
    """
    if path not in PATHS:
        raise KeusimError(f"unknown path {path!r}; use one of {', '.join(PATHS)}")
    b1, c1 = _one(arch, profile, path, size, n)
    b2, c2 = _one(arch, profile, path, size, 5 * n)
    return PathCost(arch, profile or "flat", path, size, n, (b2 - b1) / (4 * n),
                    1000 * (c2 - c1) / (4 * n))
