"""Ethernet, ARP, IPv4, ICMP, UDP and TCP frames: built and parsed in plain Python.

Builders produce valid frames (correct lengths and checksums) unless told otherwise;
tests corrupt them on purpose. :func:`parse` never raises on garbage: it returns a
:class:`Frame` whose layers are ``None`` from the first one that does not parse, and
records whether each checksum verified. Addresses are ``int`` (IPv4) and ``bytes``
(MAC); :func:`ip` and :func:`mac` convert from text.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ETH_ARP = 0x0806
ETH_IPV4 = 0x0800
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
BROADCAST = b"\xff" * 6


def ip(text: str) -> int:
    """``"10.77.0.1"`` -> ``0x0A4D0001``."""
    a, b, c, d = (int(x) for x in text.split("."))
    return a << 24 | b << 16 | c << 8 | d


def ip_text(addr: int) -> str:
    return ".".join(str(addr >> s & 0xFF) for s in (24, 16, 8, 0))


def mac(text: str) -> bytes:
    """``"02:00:00:00:00:01"`` -> 6 bytes."""
    return bytes(int(x, 16) for x in text.split(":"))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): 0 over data that carries a correct one."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _pseudo(src: int, dst: int, proto: int, length: int) -> bytes:
    return struct.pack("!IIBBH", src, dst, 0, proto, length)


def eth(dst: bytes, src: bytes, ethertype: int, payload: bytes, pad: bool = True) -> bytes:
    """An Ethernet II frame (without FCS), padded to 60 bytes unless ``pad`` is False."""
    f = dst + src + struct.pack("!H", ethertype) + payload
    return f + b"\0" * (60 - len(f)) if pad and len(f) < 60 else f


def arp(op: int, sha: bytes, spa: int, tha: bytes, tpa: int) -> bytes:
    """An ARP packet for IPv4 over Ethernet (RFC 826); op 1 request, 2 reply."""
    return struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, op) + sha + struct.pack("!I", spa) + tha + struct.pack("!I", tpa)


def ipv4(src: int, dst: int, proto: int, payload: bytes, *, ident: int = 0, df: bool = True,
         mf: bool = False, frag_offset: int = 0, ttl: int = 64) -> bytes:
    """An IPv4 packet with a 20-byte header and a correct header checksum."""
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset & 0x1FFF)
    h = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), ident, flags, ttl, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
    return h + payload


def icmp_echo(ident: int, seq: int, data: bytes, *, reply: bool = False) -> bytes:
    """An ICMP echo request (or reply) with its checksum (RFC 792)."""
    m = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + data
    return m[:2] + struct.pack("!H", checksum(m)) + m[4:]


def udp(src: int, dst: int, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP datagram with its pseudo-header checksum (RFC 768)."""
    length = 8 + len(payload)
    d = struct.pack("!HHHH", sport, dport, length, 0) + payload
    c = checksum(_pseudo(src, dst, PROTO_UDP, length) + d) or 0xFFFF
    return d[:6] + struct.pack("!H", c) + d[8:]


def tcp(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", *, window: int = 65535, mss: int | None = None) -> bytes:
    """A TCP segment with its pseudo-header checksum (RFC 9293 section 3.1)."""
    opts = struct.pack("!BBH", 2, 4, mss) if mss is not None else b""
    hl = 20 + len(opts)
    s = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (hl // 4) << 4,
                    flags, window, 0, 0) + opts + payload
    c = checksum(_pseudo(src, dst, PROTO_TCP, len(s)) + s)
    return s[:16] + struct.pack("!H", c) + s[18:]


@dataclass
class Arp:
    op: int
    sha: bytes
    spa: int
    tha: bytes
    tpa: int


@dataclass
class Icmp:
    type: int
    code: int
    ident: int
    seq: int
    data: bytes
    cksum_ok: bool


@dataclass
class Udp:
    sport: int
    dport: int
    payload: bytes
    cksum_ok: bool


@dataclass
class Tcp:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes
    cksum_ok: bool
    mss: int | None = None

    def has(self, flags: int) -> bool:
        return self.flags & flags == flags


@dataclass
class Frame:
    """A parsed frame; each layer is None from the first one that does not parse."""

    dst: bytes
    src: bytes
    ethertype: int
    arp: Arp | None = None
    ip_src: int | None = None
    ip_dst: int | None = None
    ip_proto: int | None = None
    ip_cksum_ok: bool = False
    icmp: Icmp | None = None
    udp: Udp | None = None
    tcp: Tcp | None = None


def _tcp_mss(opts: bytes) -> int | None:
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        if kind == 2 and opts[i + 1] == 4 and i + 4 <= len(opts):
            return struct.unpack_from("!H", opts, i + 2)[0]
        i += opts[i + 1]
    return None


def parse(f: bytes) -> Frame | None:
    """Parse an Ethernet frame; None when it is shorter than an Ethernet header."""
    if len(f) < 14:
        return None
    fr = Frame(dst=f[:6], src=f[6:12], ethertype=struct.unpack_from("!H", f, 12)[0])
    p = f[14:]
    if fr.ethertype == ETH_ARP and len(p) >= 28:
        op = struct.unpack_from("!H", p, 6)[0]
        fr.arp = Arp(op, p[8:14], struct.unpack_from("!I", p, 14)[0], p[18:24],
                     struct.unpack_from("!I", p, 24)[0])
    if fr.ethertype != ETH_IPV4 or len(p) < 20 or p[0] >> 4 != 4:
        return fr
    hl = (p[0] & 0xF) * 4
    tl = struct.unpack_from("!H", p, 2)[0]
    if hl < 20 or tl < hl or tl > len(p):
        return fr
    fr.ip_src, fr.ip_dst = struct.unpack_from("!II", p, 12)
    fr.ip_proto = p[9]
    fr.ip_cksum_ok = checksum(p[:hl]) == 0
    body = p[hl:tl]
    if fr.ip_proto == PROTO_ICMP and len(body) >= 8:
        t, c, _, ident, seq = struct.unpack_from("!BBHHH", body)
        fr.icmp = Icmp(t, c, ident, seq, body[8:], checksum(body) == 0)
    elif fr.ip_proto == PROTO_UDP and len(body) >= 8:
        sport, dport, ulen, uc = struct.unpack_from("!HHHH", body)
        if 8 <= ulen <= len(body):
            ok = uc == 0 or checksum(_pseudo(fr.ip_src, fr.ip_dst, PROTO_UDP, ulen) + body[:ulen]) == 0
            fr.udp = Udp(sport, dport, body[8:ulen], ok)
    elif fr.ip_proto == PROTO_TCP and len(body) >= 20:
        sport, dport, seq, ack, off, flags, win = struct.unpack_from("!HHIIBBH", body)
        thl = (off >> 4) * 4
        if 20 <= thl <= len(body):
            ok = checksum(_pseudo(fr.ip_src, fr.ip_dst, PROTO_TCP, len(body)) + body) == 0
            fr.tcp = Tcp(sport, dport, seq, ack, flags, win, body[thl:], ok, _tcp_mss(body[20:thl]))
    return fr
