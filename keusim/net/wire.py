"""What sits at the far end of the emulated NIC's link (keusim/machine/nic.py).

A *wire* has ``start(nic, machine)`` (schedule its first events), ``from_nic(at,
frame)`` (a frame the NIC sent arrives at the far end at model cycle ``at``) and
``report()``. It puts frames on the link with ``nic.from_wire(at, frame)``.

* :class:`ScriptWire`: :class:`keusim.net.peer.Peer` plays a script on model time. The
  peer reacts to NetD's frames the moment they arrive (ARP answers, TCP acks), and the
  script's steps happen at their ``at`` milliseconds of model time. Deterministic.
* :class:`PcapWire`: the peer's side of a capture is sent at its captured times (the
  rest of the capture is what the other side said and is not sent). Deterministic.
* ``keusim.net.tap.TapWire``: Linux's own stack over a TAP device; host time.

When the script or capture is over (plus ``drain_ms``), the wire takes the link down;
NetD sees the link go and exits, which ends the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keusim.net import NetError
from keusim.net import pcap as pcapmod
from keusim.net.host import Batch
from keusim.net.peer import Peer

ACTIONS = ("arp", "ping", "udp", "connect", "send", "close", "listen", "drop", "wait", "raw")


def check_script(script: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The script with its times checked: every step a dict with an integer ``at`` (ms,
    non-decreasing) and a known ``do``. Raises NetError naming the step."""
    out: list[dict[str, Any]] = []
    last = 0
    for i, step in enumerate(script):
        if not isinstance(step, dict) or "at" not in step or "do" not in step:
            raise NetError(f"script step {i}: needs 'at' (ms) and 'do'; got {step!r}")
        try:
            at = step["at"]
            if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
                raise TypeError
        except (TypeError, ValueError) as e:
            raise NetError(f"script step {i}: 'at' must be milliseconds, got {step['at']!r}") from e
        if at < last:
            raise NetError(f"script step {i}: at={at} ms is before the previous step ({last} ms); "
                           "steps must not go back in time")
        if step["do"] not in ACTIONS:
            raise NetError(f"script step {i}: unknown action {step['do']!r}; use one of "
                           f"{', '.join(ACTIONS)}")
        last = at
        out.append({**step, "at": at})
    return out


class ScriptWire:
    """A scripted peer on model time (see :meth:`keusim.net.peer.Peer.play` for the steps,
    plus ``raw``: send the bytes in ``frame`` as they are, for malformed input). ``at``
    may be fractional milliseconds (a burst every few microseconds).

    Args:
        script: the steps.
        drain_ms: model milliseconds after the last step before the link goes down.
        peer: options for :class:`~keusim.net.peer.Peer` (addresses, window).
    """

    def __init__(self, script: Sequence[dict[str, Any]], drain_ms: int = 50, **peer: Any):
        self.script = check_script(script)
        self.drain_ms = drain_ms
        self.peer = Peer(link=self, **peer)
        self.now = 0
        self.nic = None
        self.m = None
        self.errors: list[str] = []

    # -- the Link protocol Peer drives: its frames go on the wire now -------------------
    @property
    def now_ms(self) -> int:
        return self.now // self.nic.link.cycles_per_ms

    def frame(self, f: bytes) -> Batch:
        self.nic.from_wire(self.now, f)
        return Batch()

    def advance(self, ms: int) -> Batch:
        return Batch()

    # -- the wire ------------------------------------------------------------------------
    def start(self, nic, machine) -> None:
        self.nic, self.m = nic, machine
        cpm = nic.link.cycles_per_ms
        for i, step in enumerate(self.script):
            machine.add_timed(round(step["at"] * cpm), lambda t, i=i: self._step(t, i))
        end = (self.script[-1]["at"] if self.script else 0) + self.drain_ms
        machine.add_timed(round(end * cpm), lambda t: nic.set_link(False, t))

    def _step(self, t: int, i: int) -> None:
        self.now = t
        step = self.script[i]
        if step["do"] == "raw":
            raw = step.get("frame", b"")
            raw = bytes.fromhex(raw) if isinstance(raw, str) else bytes(raw)
            self.peer.transcript.append((self.now_ms, "peer", raw))
            self.frame(raw)
            return
        try:
            self.peer._step(i, step["do"], step)
        except NetError as e:
            self.errors.append(str(e))

    def from_nic(self, at: int, frame: bytes) -> None:
        def arrive(t: int, f: bytes = frame) -> None:
            self.now = t
            self.peer._absorb(Batch([f], []))
        self.m.add_timed(at, arrive)

    def report(self) -> dict:
        c = {k: v for k, v in ((f"{a}:{b}", conn) for (a, b), conn in sorted(self.peer.conns.items()))}
        return {"kind": "script", "steps": len(self.script),
                "peer_frames_sent": sum(1 for _t, who, _f in self.peer.transcript if who == "peer"),
                "netd_frames_received": sum(1 for _t, who, _f in self.peer.transcript if who == "netd"),
                "tcp": {k: {"state": v.state, "received": len(v.received),
                            "fin_received": v.fin_received, "reset": v.reset} for k, v in c.items()},
                "errors": list(self.errors)}


class PcapWire:
    """Replay the peer's side of a capture on model time.

    Frames whose source MAC is ``peer_mac`` are sent at their captured time relative to
    the capture's first frame, which is placed at ``start_ms`` of model time (NetD takes
    about 2 ms of model time to clear its state and fill the NIC's ring; the scripted
    peer's first step, :func:`demo_script`, is also at 5 ms, so its captures replay at
    their own times). The others are NetD's side and are not sent: the run's own
    capture is the answer to compare with them.
    """

    def __init__(self, path: str | Path, peer_mac: bytes = bytes.fromhex("020000000001"),
                 start_ms: int = 5, drain_ms: int = 50):
        self.path = Path(path)
        pkts = list(pcapmod.read(self.path))
        if not pkts:
            raise NetError(f"{self.path}: the capture holds no packets; nothing to replay")
        t0 = pkts[0].time_us
        self.frames: list[tuple[int, bytes]] = []
        for i, p in enumerate(pkts):
            if p.time_us < t0:
                raise NetError(f"{self.path}: packet {i} goes back in time; captures must be in time order")
            if p.data[6:12] == peer_mac:
                self.frames.append((p.time_us - t0 + start_ms * 1000, p.data))
        if not self.frames:
            raise NetError(f"{self.path}: no frame comes from the peer's MAC {peer_mac.hex(':')}; "
                           "pass peer_mac= the address of the side to replay")
        self.drain_ms = drain_ms
        self.received = 0

    def start(self, nic, machine) -> None:
        us = nic.link.cycles_per_us
        for t_us, f in self.frames:
            machine.add_timed(t_us * us, lambda t, f=f: nic.from_wire(t, f))
        end = self.frames[-1][0] * us + self.drain_ms * nic.link.cycles_per_ms
        machine.add_timed(end, lambda t: nic.set_link(False, t))

    def from_nic(self, at: int, frame: bytes) -> None:
        self.received += 1

    def report(self) -> dict:
        return {"kind": "pcap", "file": self.path.name, "frames_replayed": len(self.frames),
                "netd_frames_received": self.received}


def demo_script(tcp_bytes: int = 20_000) -> list[dict[str, Any]]:
    """The peer's part in ``keusim run netd``: ARP, three pings, UDP echo (port 7, NetD's
    own service) and to the echo application (port 9), then a TCP connection to the
    application's echo port 7 carrying ``tcp_bytes`` both ways, and a close."""
    data = bytes((i * 7 + 3) & 0xFF for i in range(tcp_bytes))
    s: list[dict[str, Any]] = [{"at": 5, "do": "arp"}]
    s += [{"at": 6 + i, "do": "ping", "ident": 0x4b55, "seq": i, "data": b"keusim-ping-%d" % i}
          for i in range(3)]
    s += [{"at": 9 + i, "do": "udp", "sport": 40000 + i, "dport": 7, "data": b"udp-echo-%d" % i}
          for i in range(3)]
    s += [{"at": 12 + i, "do": "udp", "sport": 41000 + i, "dport": 9, "data": b"udp-app-%d" % i}
          for i in range(3)]
    s += [{"at": 16, "do": "connect", "lport": 50000, "rport": 7, "iss": 1000},
          {"at": 18, "do": "send", "lport": 50000, "rport": 7, "data": data, "mss": 1460},
          {"at": 60, "do": "close", "lport": 50000, "rport": 7}]
    return s


def default_wire() -> ScriptWire:
    """The wire a NIC system gets when the caller names none: :func:`demo_script`."""
    return ScriptWire(demo_script())
