"""keusim.net.packet: known checksum vectors, round trips, and a parser that never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from keusim.net import packet as P


def test_internet_checksum_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement).
    assert P.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2
    assert P.checksum(bytes.fromhex("0001f203f4f5f6f7") + (0xFFFF - 0xDDF2).to_bytes(2, "big")) == 0


def test_built_frames_parse_back_with_good_checksums():
    a, b = P.ip("10.77.0.1"), P.ip("10.77.0.2")
    m1, m2 = P.mac("02:00:00:00:00:01"), P.mac("02:00:00:00:00:02")
    f = P.parse(P.eth(m2, m1, P.ETH_IPV4, P.ipv4(a, b, P.PROTO_TCP,
                                                 P.tcp(a, b, 1, 2, 3, 4, P.SYN | P.ACK, b"hi", mss=1400))))
    assert f.ip_cksum_ok and f.tcp.cksum_ok and (f.tcp.sport, f.tcp.dport, f.tcp.seq, f.tcp.ack) == (1, 2, 3, 4)
    assert f.tcp.has(P.SYN | P.ACK) and f.tcp.payload == b"hi" and f.tcp.mss == 1400
    u = P.parse(P.eth(m2, m1, P.ETH_IPV4, P.ipv4(a, b, P.PROTO_UDP, P.udp(a, b, 5, 6, b"x" * 30))))
    assert u.udp.cksum_ok and u.udp.payload == b"x" * 30
    i = P.parse(P.eth(m2, m1, P.ETH_IPV4, P.ipv4(a, b, P.PROTO_ICMP, P.icmp_echo(7, 8, b"ping"))))
    assert (i.icmp.type, i.icmp.ident, i.icmp.seq, i.icmp.data, i.icmp.cksum_ok) == (8, 7, 8, b"ping", True)
    r = P.parse(P.eth(P.BROADCAST, m1, P.ETH_ARP, P.arp(1, m1, a, b"\0" * 6, b)))
    assert (r.arp.op, r.arp.sha, r.arp.spa, r.arp.tpa) == (1, m1, a, b)
    assert len(P.eth(m2, m1, P.ETH_ARP, b"")) == 60    # padded to the Ethernet minimum


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_parse_never_raises(data):
    f = P.parse(data)
    assert f is None or len(f.dst) == 6


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=80), st.integers(0, 2**32 - 1))
def test_parse_survives_corrupted_valid_frames(junk, pos):
    a, b = P.ip("10.77.0.1"), P.ip("10.77.0.2")
    base = bytearray(P.eth(b"\2" * 6, b"\4" * 6, P.ETH_IPV4,
                           P.ipv4(a, b, P.PROTO_TCP, P.tcp(a, b, 1, 2, 3, 4, P.ACK, b"payload", mss=536))))
    at = 14 + pos % (len(base) - 14)
    base[at:at + len(junk)] = junk
    P.parse(bytes(base))
