"""A deterministic scripted peer for NetD: ARP, ICMP echo, UDP and TCP from a script.

:class:`Peer` stands on the wire opposite NetD. It sends frames through a *link*
(anything with ``frame(bytes) -> Batch`` and ``advance(ms) -> Batch``, such as
:class:`keusim.net.host.NetdHost`; the emulated NIC's model-time replay will be another)
and reacts to what comes back the way a host stack does: it answers ARP for its
address, acknowledges in-order TCP data and FINs, and answers a SYN on a listening
port. It has no clock of its own: time is the link's, moved only by the script.

A script is a list of steps, each a dict with an ``"at"`` time in milliseconds and a
``"do"`` action (see :meth:`Peer.play`). The same script on the same link gives the same
:attr:`Peer.transcript`, frame for frame, which is what the replay tests compare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from keusim.net import NetError
from keusim.net import packet as P


class Link(Protocol):
    now_ms: int

    def frame(self, f: bytes) -> Any: ...

    def advance(self, ms: int) -> Any: ...


@dataclass
class TcpConn:
    """The peer's end of one TCP connection (RFC 9293 names)."""

    lport: int
    rport: int
    iss: int
    snd_nxt: int = 0
    snd_una: int = 0
    rcv_nxt: int = 0
    state: str = "CLOSED"
    received: bytearray = field(default_factory=bytearray)
    fin_received: bool = False
    reset: bool = False
    peer_mss: int | None = None
    peer_window: int = 0


@dataclass
class Peer:
    """The peer at ``ip``/``mac`` on a link whose other end is NetD at ``netd_ip``/``netd_mac``."""

    link: Link
    ip: int = P.ip("10.77.0.1")
    mac: bytes = bytes.fromhex("020000000001")
    netd_ip: int = P.ip("10.77.0.2")
    netd_mac: bytes = bytes.fromhex("020000000002")
    drop_next: int = 0
    window: int = 65535
    transcript: list[tuple[int, str, bytes]] = field(default_factory=list)
    received: list[P.Frame] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    conns: dict[tuple[int, int], TcpConn] = field(default_factory=dict)
    listening: set[int] = field(default_factory=set)

    # ------------------------------------------------------------------ plumbing
    def _absorb(self, batch: Any) -> list[P.Frame]:
        """Take NetD's output: drop what the script said to drop, react to the rest."""
        self.events.extend(batch.events)
        pending = list(batch.frames)
        seen: list[P.Frame] = []
        while pending:
            raw = pending.pop(0)
            if self.drop_next > 0:
                self.drop_next -= 1
                self.transcript.append((self.link.now_ms, "dropped", raw))
                continue
            self.transcript.append((self.link.now_ms, "netd", raw))
            fr = P.parse(raw)
            if fr is None:
                continue
            self.received.append(fr)
            seen.append(fr)
            for reply in self._react(fr):
                self.transcript.append((self.link.now_ms, "peer", reply))
                out = self.link.frame(reply)
                self.events.extend(out.events)
                pending.extend(out.frames)
        return seen

    def send(self, raw: bytes) -> list[P.Frame]:
        """Put one frame on the wire; return the frames NetD answered with."""
        self.transcript.append((self.link.now_ms, "peer", raw))
        return self._absorb(self.link.frame(raw))

    def wait(self, ms: int) -> list[P.Frame]:
        """Let ``ms`` milliseconds of link time pass (NetD's timers may fire)."""
        return self._absorb(self.link.advance(ms))

    def _ip(self, proto: int, payload: bytes, **kw: Any) -> bytes:
        return P.eth(self.netd_mac, self.mac, P.ETH_IPV4, P.ipv4(self.ip, self.netd_ip, proto, payload, **kw))

    def _react(self, fr: P.Frame) -> Iterable[bytes]:
        if fr.arp and fr.arp.op == 1 and fr.arp.tpa == self.ip:
            yield P.eth(fr.src, self.mac, P.ETH_ARP, P.arp(2, self.mac, self.ip, fr.src, fr.arp.spa))
        if fr.tcp and fr.tcp.cksum_ok and fr.ip_dst == self.ip:
            yield from self._tcp_react(fr.tcp)

    # ------------------------------------------------------------------ ARP, ICMP, UDP
    def arp_request(self) -> list[P.Frame]:
        """Ask who has NetD's address."""
        return self.send(P.eth(P.BROADCAST, self.mac, P.ETH_ARP,
                               P.arp(1, self.mac, self.ip, b"\0" * 6, self.netd_ip)))

    def ping(self, ident: int, seq: int, data: bytes) -> list[P.Frame]:
        return self.send(self._ip(P.PROTO_ICMP, P.icmp_echo(ident, seq, data)))

    def udp(self, sport: int, dport: int, payload: bytes) -> list[P.Frame]:
        return self.send(self._ip(P.PROTO_UDP, P.udp(self.ip, self.netd_ip, sport, dport, payload)))

    # ------------------------------------------------------------------ TCP
    def _seg(self, c: TcpConn, flags: int, payload: bytes = b"", seq: int | None = None,
             mss: int | None = None) -> bytes:
        s = c.snd_nxt if seq is None else seq
        return self._ip(P.PROTO_TCP, P.tcp(self.ip, self.netd_ip, c.lport, c.rport, s, c.rcv_nxt,
                                           flags, payload, window=self.window, mss=mss))

    def connect(self, lport: int, rport: int, iss: int) -> TcpConn:
        """Active open to NetD's rport; returns the connection (ESTABLISHED if answered)."""
        c = TcpConn(lport, rport, iss, snd_nxt=iss, snd_una=iss, state="SYN_SENT")
        self.conns[(lport, rport)] = c
        raw = self._seg(c, P.SYN, mss=1460)
        c.snd_nxt = iss + 1
        self.send(raw)
        return c

    def listen(self, port: int) -> None:
        """Answer SYNs to ``port`` (NetD's active open)."""
        self.listening.add(port)

    def tcp_send(self, c: TcpConn, data: bytes, mss: int = 1000) -> None:
        """Send data in segments of at most mss bytes (no window of its own to respect)."""
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            raw = self._seg(c, P.ACK | P.PSH, chunk)
            c.snd_nxt = (c.snd_nxt + len(chunk)) & 0xFFFFFFFF
            self.send(raw)

    def tcp_resend(self, c: TcpConn, seq: int, data: bytes) -> None:
        """Send data at an explicit sequence number (a retransmission or a duplicate)."""
        self.send(self._seg(c, P.ACK | P.PSH, data, seq=seq))

    def tcp_close(self, c: TcpConn) -> None:
        raw = self._seg(c, P.FIN | P.ACK)
        c.snd_nxt = (c.snd_nxt + 1) & 0xFFFFFFFF
        c.state = "FIN_WAIT" if c.state == "ESTABLISHED" else "LAST_ACK"
        self.send(raw)

    def _tcp_react(self, t: P.Tcp) -> Iterable[bytes]:
        c = self.conns.get((t.dport, t.sport))
        if c is None:
            if t.has(P.SYN) and not t.flags & P.ACK and t.dport in self.listening:
                c = TcpConn(t.dport, t.sport, iss=0x1000_0000 + t.dport, state="SYN_RCVD")
                c.snd_nxt = c.iss + 1
                c.snd_una = c.iss
                c.rcv_nxt = (t.seq + 1) & 0xFFFFFFFF
                c.peer_mss = t.mss
                self.conns[(t.dport, t.sport)] = c
                yield self._seg(c, P.SYN | P.ACK, seq=c.iss, mss=1460)
            return
        if t.flags & P.RST:
            c.reset = True
            c.state = "CLOSED"
            return
        c.peer_window = t.window
        if c.state == "SYN_SENT":
            if t.has(P.SYN | P.ACK) and t.ack == c.snd_nxt:
                c.rcv_nxt = (t.seq + 1) & 0xFFFFFFFF
                c.snd_una = t.ack
                c.peer_mss = t.mss
                c.state = "ESTABLISHED"
                yield self._seg(c, P.ACK)
            return
        if t.flags & P.ACK:
            if c.state == "SYN_RCVD" and t.ack == c.snd_nxt:
                c.state = "ESTABLISHED"
            if ((t.ack - c.snd_una) & 0xFFFFFFFF) <= ((c.snd_nxt - c.snd_una) & 0xFFFFFFFF):
                c.snd_una = t.ack
        ack = False
        if t.payload:
            if t.seq == c.rcv_nxt:
                c.received += t.payload
                c.rcv_nxt = (c.rcv_nxt + len(t.payload)) & 0xFFFFFFFF
            ack = True     # in order or not: say what we expect next
        if t.flags & P.FIN and ((t.seq + len(t.payload)) & 0xFFFFFFFF) == c.rcv_nxt:
            c.rcv_nxt = (c.rcv_nxt + 1) & 0xFFFFFFFF
            c.fin_received = True
            ack = True
        if ack:
            yield self._seg(c, P.ACK)

    # ------------------------------------------------------------------ scripts
    def play(self, script: Sequence[dict[str, Any]]) -> list[tuple[int, str, bytes]]:
        """Run a script; return the transcript (time ms, who, frame) of the whole run.

        Steps, each ``{"at": ms, "do": action, ...}`` with non-decreasing ``at``:
        ``arp``; ``ping`` (ident, seq, data); ``udp`` (sport, dport, data); ``connect``
        (lport, rport, iss); ``send`` (lport, rport, data, optional mss); ``close``
        (lport, rport); ``listen`` (port); ``drop`` (count: NetD's next frames are lost);
        ``wait`` (nothing but time). ``data`` is bytes or text.

        Raises:
            NetError: an unknown action, a missing field, time going backwards, or a
                connection the script never opened.
        """
        for i, step in enumerate(script):
            try:
                at, do = int(step["at"]), step["do"]
            except (KeyError, TypeError, ValueError) as e:
                raise NetError(f"script step {i}: needs 'at' (ms) and 'do'; got {step!r}") from e
            if at < self.link.now_ms:
                raise NetError(f"script step {i}: at={at} ms is before the link's time "
                               f"{self.link.now_ms} ms; steps must not go back in time")
            if at > self.link.now_ms:
                self.wait(at - self.link.now_ms)
            self._step(i, do, step)
        return self.transcript

    def _step(self, i: int, do: str, s: dict[str, Any]) -> None:
        def data() -> bytes:
            d = s.get("data", b"")
            return d.encode() if isinstance(d, str) else bytes(d)

        def conn() -> TcpConn:
            key = (int(s["lport"]), int(s["rport"]))
            if key not in self.conns:
                raise NetError(f"script step {i}: no connection {key[0]}->{key[1]}; 'connect' it first")
            return self.conns[key]

        try:
            if do == "arp":
                self.arp_request()
            elif do == "ping":
                self.ping(int(s.get("ident", 1)), int(s["seq"]), data())
            elif do == "udp":
                self.udp(int(s["sport"]), int(s["dport"]), data())
            elif do == "connect":
                self.connect(int(s["lport"]), int(s["rport"]), int(s.get("iss", 1000)))
            elif do == "send":
                self.tcp_send(conn(), data(), int(s.get("mss", 1000)))
            elif do == "close":
                self.tcp_close(conn())
            elif do == "listen":
                self.listen(int(s["port"]))
            elif do == "drop":
                self.drop_next += int(s.get("count", 1))
            elif do == "wait":
                pass
            else:
                raise NetError(f"script step {i}: unknown action {do!r}; use arp, ping, udp, "
                               "connect, send, close, listen, drop or wait")
        except KeyError as e:
            raise NetError(f"script step {i} ({do}): missing field {e.args[0]!r}") from e


def replay(capture: Sequence[Any], link: Link, peer_mac: bytes) -> list[tuple[int, bytes]]:
    """Feed the peer's side of a capture to ``link`` at the captured times.

    ``capture`` is a sequence of :class:`keusim.net.pcap.Packet` (``pcap.read(path)``);
    frames whose source MAC is ``peer_mac`` are sent at their time (microseconds,
    rounded down to the link's milliseconds), everything else in the capture is what
    the other side said then and is not sent. Returns what the link sent back, as
    (time in microseconds, frame), to compare with the capture's other side: a
    deterministic NetD answers a replayed capture with the same bytes.

    Raises:
        NetError: the capture goes back in time.
    """
    out: list[tuple[int, bytes]] = []
    for i, pkt in enumerate(capture):
        if pkt.data[6:12] != peer_mac:
            continue
        ms = pkt.time_us // 1000
        if ms < link.now_ms:
            raise NetError(f"capture packet {i} at {pkt.time_us} us is earlier than the "
                           f"replay's time {link.now_ms} ms; captures must be in time order")
        if ms > link.now_ms:
            out.extend((link.now_ms * 1000, f) for f in link.advance(ms - link.now_ms).frames)
        out.extend((link.now_ms * 1000, f) for f in link.frame(pkt.data).frames)
    return out
