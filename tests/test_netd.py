"""NetD's host build against scripted frames: every protocol, loss, attacks (docs/netd.md).

Each test drives the real C NetD (guests/netd/, built with UBSan) over the pipe of
keusim.net.host: frames in, frames and application events out, time moved by the test.
"""

from __future__ import annotations

import random

import pytest

from keusim.net import NetError
from keusim.net import packet as P
from keusim.net.host import (
    NS_BIND,
    NS_CLOSE,
    NS_CONNECT,
    NS_EBADF,
    NS_EINVAL,
    NS_ETIMEDOUT,
    NS_EV_ACCEPT,
    NS_EV_DATA,
    NS_EV_EOF,
    NS_EV_RESET,
    NS_OPEN,
    NS_RESP,
    NS_SEND,
    NS_TCP,
    NS_UDP,
    NetdHost,
    NsMsg,
)
from keusim.net.peer import Peer

PEER_IP = P.ip("10.77.0.1")
NETD_IP = P.ip("10.77.0.2")


def stream(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def resp(events, op):
    got = [e for e in events if e.op == op | NS_RESP]
    assert got, f"no response to op {op} in {events}"
    return got[-1]


def open_sock(h: NetdHost, proto: int, ident: int = 1) -> int:
    r = resp(h.request(NsMsg(NS_OPEN, proto=proto, id=ident)).events, NS_OPEN)
    assert r.status == 0
    return r.sock


def data_of(events, sock: int) -> bytes:
    return b"".join(e.payload for e in events if e.op == NS_EV_DATA and e.sock == sock)


@pytest.fixture
def host():
    h = NetdHost(["--rto", "200"])
    yield h
    assert h.close() == 0, "NetD exited abnormally"


def test_arp_request_answered_and_sender_learned(host):
    peer = Peer(host)
    replies = [f for f in peer.arp_request() if f.arp]
    assert len(replies) == 1
    a = replies[0].arp
    assert (a.op, a.sha, a.spa, a.tha, a.tpa) == (2, peer.netd_mac, NETD_IP, peer.mac, PEER_IP)
    assert replies[0].dst == peer.mac
    st = host.stats()
    assert st["arp_replied"] == 1 and st["arp_learned"] == 1
    # Learned: the echo reply goes out at once, with no ARP request first.
    out = peer.ping(7, 1, b"x")
    assert [f.icmp.type for f in out if f.icmp] == [0] and not [f for f in out if f.arp]


def test_ping_reply_carries_identifier_sequence_and_data(host):
    peer = Peer(host)
    peer.arp_request()
    payload = bytes(range(256)) * 4
    out = [f for f in peer.ping(0x1234, 9, payload) if f.icmp]
    assert len(out) == 1
    e = out[0].icmp
    assert (e.type, e.code, e.ident, e.seq, e.data, e.cksum_ok) == (0, 0, 0x1234, 9, payload, True)
    assert out[0].ip_cksum_ok and out[0].ip_src == NETD_IP and out[0].ip_dst == PEER_IP


def test_unknown_peer_is_resolved_by_arp_before_replying(host):
    peer = Peer(host)  # NetD has never heard of the peer: it must ask, then answer the ping
    peer.ping(1, 1, b"first")
    assert host.stats()["arp_miss"] >= 1
    assert any(f.arp and f.arp.op == 1 and f.arp.tpa == PEER_IP for f in peer.received)
    out = [f.icmp for f in peer.ping(1, 2, b"second") if f.icmp]
    assert out and out[0].data == b"second"


def test_udp_echo_service_and_udp_socket(host):
    peer = Peer(host)
    peer.arp_request()
    echo = [f.udp for f in peer.udp(40000, 7, b"echo me") if f.udp]
    assert echo[0].payload == b"echo me" and echo[0].cksum_ok
    assert (echo[0].sport, echo[0].dport) == (7, 40000)

    s = open_sock(host, NS_UDP)
    assert resp(host.request(NsMsg(NS_BIND, sock=s, lport=9000)).events, NS_BIND).status == 0
    peer.udp(40001, 9000, b"to the application")
    ev = [e for e in peer.events if e.op == NS_EV_DATA]
    assert ev[-1].payload == b"to the application"
    assert (ev[-1].addr, ev[-1].port, ev[-1].lport) == (PEER_IP, 40001, 9000)
    out = host.request(NsMsg(NS_SEND, sock=s, addr=PEER_IP, port=40001, payload=b"reply"))
    got = [P.parse(f).udp for f in out.frames]
    assert got[0].payload == b"reply" and got[0].cksum_ok and got[0].sport == 9000
    # Nobody on port 9001: counted, not delivered.
    peer.udp(40001, 9001, b"lost")
    assert host.stats()["udp_noport"] == 1


def accept_conn(h: NetdHost, peer: Peer, port: int = 80, lport: int = 50000):
    ls = open_sock(h, NS_TCP)
    assert resp(h.request(NsMsg(NS_BIND, sock=ls, lport=port)).events, NS_BIND).status == 0
    peer.arp_request()
    c = peer.connect(lport, port, iss=0x7000_0000)
    assert c.state == "ESTABLISHED"
    acc = [e for e in peer.events if e.op == NS_EV_ACCEPT]
    assert len(acc) == 1 and acc[0].id == ls and (acc[0].addr, acc[0].port) == (PEER_IP, lport)
    return ls, acc[0].sock, c


def test_tcp_passive_open_data_both_ways_and_close(host):
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    assert c.peer_mss == 1460

    up = stream(20000, 1)
    peer.tcp_send(c, up, mss=1460)
    assert data_of(peer.events, s) == up
    assert c.snd_una == c.snd_nxt  # every byte acknowledged

    down = stream(50000, 2)
    for i in range(0, len(down), 8000):
        peer._absorb(host.request(NsMsg(NS_SEND, sock=s, payload=down[i:i + 8000])))
    for _ in range(5):
        peer.wait(1)
    assert bytes(c.received) == down

    peer.tcp_close(c)  # peer closes first: NetD reports EOF, then the app closes
    assert any(e.op == NS_EV_EOF and e.sock == s for e in peer.events)
    peer._absorb(host.request(NsMsg(NS_CLOSE, sock=s)))
    assert c.fin_received
    st = host.stats()
    assert st["tcp_data_in"] == len(up) and st["tcp_data_out"] == len(down)
    assert st["tcp_retransmit"] == 0 and st["tcp_accepted"] == 1
    # The socket is gone: a request naming it is refused.
    assert resp(host.request(NsMsg(NS_SEND, sock=s, payload=b"x")).events, NS_SEND).status == -NS_EBADF


def test_tcp_active_open_and_netd_closes_first(host):
    peer = Peer(host)
    peer.listen(5000)
    s = open_sock(host, NS_TCP)
    out = host.request(NsMsg(NS_CONNECT, sock=s, id=42, addr=PEER_IP, port=5000))
    peer._absorb(out)   # NetD asked for the peer's MAC; the peer answered; the SYN is out
    assert resp(peer.events, NS_CONNECT).status == 0 and resp(peer.events, NS_CONNECT).id == 42
    c = next(iter(peer.conns.values()))
    assert c.state == "ESTABLISHED" and c.peer_mss == 1460
    peer._absorb(host.request(NsMsg(NS_SEND, sock=s, payload=b"hello over tcp")))
    assert bytes(c.received) == b"hello over tcp"
    peer._absorb(host.request(NsMsg(NS_CLOSE, sock=s)))
    assert c.fin_received
    peer.tcp_close(c)   # our FIN completes NetD's FIN_WAIT_2 -> TIME_WAIT
    peer.wait(2000)     # TIME_WAIT ends
    assert host.stats()["tcp_connected"] == 1


def test_connect_to_closed_port_is_refused_and_stray_segments_get_rst(host):
    peer = Peer(host)
    peer.arp_request()
    out = peer.send(peer._ip(P.PROTO_TCP, P.tcp(PEER_IP, NETD_IP, 1234, 81, 100, 0, P.SYN)))
    rst = [f.tcp for f in out if f.tcp]
    assert rst and rst[0].has(P.RST | P.ACK) and rst[0].ack == 101
    assert host.stats()["tcp_rst_sent"] == 1


def test_retransmission_after_a_dropped_segment(host):
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    data = stream(3000, 3)
    peer.drop_next = 1      # the first data segment NetD sends is lost
    peer._absorb(host.request(NsMsg(NS_SEND, sock=s, payload=data)))
    assert len(c.received) == 0     # later segments arrived out of order: not taken
    peer.wait(100)
    assert host.stats()["tcp_retransmit"] == 0
    peer.wait(100)          # the 200 ms RTO fires: go-back-N from SND.UNA
    assert bytes(c.received) == data
    assert host.stats()["tcp_retransmit"] == 1


def test_out_of_order_and_duplicate_segments_are_dropped_and_acked(host):
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    a, b = b"A" * 500, b"B" * 500
    start = c.snd_nxt
    acks = [f.tcp for f in peer.send(peer._seg(c, P.ACK | P.PSH, b, seq=start + 500)) if f.tcp]
    assert acks and acks[0].ack == start   # duplicate ACK: "still waiting for start"
    assert data_of(peer.events, s) == b""
    peer.tcp_resend(c, start, a)
    peer.tcp_resend(c, start, a)            # duplicate: dropped, acked again
    peer.tcp_resend(c, start + 500, b)
    assert data_of(peer.events, s) == a + b
    assert host.stats()["tcp_out_of_order"] == 2


def test_peer_that_never_answers_times_out(host):
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    peer.drop_next = 10**6      # the link to the peer is cut
    peer._absorb(host.request(NsMsg(NS_SEND, sock=s, payload=b"into the void")))
    for _ in range(12):
        peer.wait(60_000)
    assert any(e.op == NS_EV_RESET and e.sock == s for e in peer.events)
    st = host.stats()
    assert st["tcp_timeout"] == 1 and st["tcp_retransmit"] == 8


def test_connect_without_answer_reports_etimedout(host):
    peer = Peer(host)
    peer.arp_request()
    peer.drop_next = 10**6
    s = open_sock(host, NS_TCP)
    host.request(NsMsg(NS_CONNECT, sock=s, id=5, addr=PEER_IP, port=6000))
    for _ in range(12):
        peer.wait(60_000)
    assert resp(peer.events, NS_CONNECT).status == -NS_ETIMEDOUT


def test_rst_exact_resets_inexact_gets_challenge_ack(host):
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    out = peer.send(peer._seg(c, P.RST, seq=c.snd_nxt + 10))
    assert [f.tcp.flags for f in out if f.tcp] == [P.ACK] and not any(e.op == NS_EV_RESET for e in peer.events)
    peer.send(peer._seg(c, P.RST))
    assert any(e.op == NS_EV_RESET and e.sock == s for e in peer.events)
    st = host.stats()
    assert st["tcp_challenge_ack"] == 1 and st["tcp_rst_rx"] == 1


def test_syn_flood_is_bounded_and_netd_keeps_answering(host):
    peer = Peer(host)
    ls = open_sock(host, NS_TCP)
    host.request(NsMsg(NS_BIND, sock=ls, lport=80))
    peer.arp_request()
    for port in range(20000, 20100):
        peer.send(peer._ip(P.PROTO_TCP, P.tcp(PEER_IP, NETD_IP, port, 80, port * 7, 0, P.SYN)))
    st = host.stats()
    assert st["tcp_syn_drop"] == 100 - 8     # TCP_MAX_HALF_OPEN per listener
    assert [f.icmp.data for f in peer.ping(1, 1, b"alive") if f.icmp] == [b"alive"]


def test_icmp_flood_is_rate_limited():
    with NetdHost(["--icmp-rate", "10"]) as h:
        peer = Peer(h)
        peer.arp_request()
        replies = sum(1 for i in range(30) for f in peer.ping(1, i, b"f") if f.icmp)
        assert replies == 10 and h.stats()["icmp_ratelimit"] == 20
        peer.wait(1000)     # a new second: replies again
        assert [f.icmp.seq for f in peer.ping(1, 99, b"f") if f.icmp] == [99]


def test_forged_and_malformed_socket_requests():
    with NetdHost(["--tcp-echo", "7"]) as h:   # the echo application owns socket 0
        r = h.request(NsMsg(NS_SEND, sock=0, payload=b"not mine")).events
        assert resp(r, NS_SEND).status == -NS_EBADF
        assert resp(h.request(NsMsg(NS_CLOSE, sock=0)).events, NS_CLOSE).status == -NS_EBADF
        assert resp(h.request(NsMsg(NS_BIND, sock=999, lport=1)).events, NS_BIND).status == -NS_EBADF
        assert h.request(b"\x01\x02\x03").events == []      # shorter than a header: dropped
        bad_len = NsMsg(NS_SEND, sock=0, payload=b"abc").pack(length=4000)
        assert resp(h.request(bad_len).events, NS_SEND).status == -NS_EINVAL
        assert resp(h.request(NsMsg(0x7F, sock=0)).events, 0x7F).status == -NS_EBADF
        s = open_sock(h, NS_UDP)
        assert resp(h.request(NsMsg(NS_OPEN, proto=99)).events, NS_OPEN).status == -NS_EINVAL
        assert resp(h.request(NsMsg(0x7F, sock=s)).events, 0x7F).status == -NS_EINVAL
        st = h.stats()
        assert st["sock_forged"] == 4 and st["sock_bad_req"] == 3
        # The echo application's socket still works: a TCP peer gets its bytes back.
        peer = Peer(h)
        peer.arp_request()
        c = peer.connect(50001, 7, iss=1)
        peer.tcp_send(c, b"still echoing")
        peer.wait(1)
        assert bytes(c.received) == b"still echoing"


def _valid_frames(peer: Peer) -> list[bytes]:
    return [
        peer._ip(P.PROTO_ICMP, P.icmp_echo(1, 1, b"payload" * 10)),
        peer._ip(P.PROTO_UDP, P.udp(PEER_IP, NETD_IP, 40999, 7, b"udp payload" * 5)),
        peer._ip(P.PROTO_TCP, P.tcp(PEER_IP, NETD_IP, 40999, 7, 1, 0, P.SYN, mss=1460)),
        P.eth(peer.netd_mac, peer.mac, P.ETH_ARP, P.arp(1, peer.mac, PEER_IP, b"\0" * 6, NETD_IP)),
    ]


def test_malformed_packets_are_counted_and_contained():
    with NetdHost(["--guard", "--tcp-echo", "7"]) as h:
        peer = Peer(h)
        peer.arp_request()
        mk = peer._ip

        def counts(raw: bytes, stat: str) -> None:
            before = h.stats()[stat]
            peer.send(raw)
            assert h.stats()[stat] == before + 1, stat

        icmp = P.icmp_echo(1, 1, b"x" * 40)
        ipkt = P.ipv4(PEER_IP, NETD_IP, 1, icmp)
        hdr = peer.netd_mac + peer.mac + b"\x08\x00"
        counts(peer.netd_mac + peer.mac, "eth_runt")
        counts(hdr + ipkt[:19], "ip_trunc")
        counts(hdr + bytes([0x65]) + ipkt[1:], "ip_version")
        small = P.ipv4(PEER_IP, NETD_IP, 1, P.icmp_echo(1, 1, b""))  # 46 bytes with padding
        counts(hdr + bytes([0x4F]) + small[1:], "ip_hlen")            # IHL 60 > packet
        counts(hdr + bytes([0x44]) + ipkt[1:], "ip_hlen")             # IHL 16 < 20
        counts(hdr + ipkt[:2] + b"\xff\xff" + ipkt[4:], "ip_len")     # total length > frame
        counts(hdr + ipkt[:10] + b"\0\0" + ipkt[12:], "ip_cksum")
        counts(mk(P.PROTO_ICMP, icmp, df=False, mf=True), "ip_frag")
        counts(mk(P.PROTO_ICMP, icmp, df=False, frag_offset=100), "ip_frag")
        counts(mk(99, b"whatever"), "ip_proto")
        counts(mk(P.PROTO_ICMP, icmp[:5]), "icmp_trunc")
        counts(mk(P.PROTO_ICMP, icmp[:2] + b"\0\0" + icmp[4:]), "icmp_cksum")
        u = P.udp(PEER_IP, NETD_IP, 1000, 7, b"hello")
        counts(mk(P.PROTO_UDP, u[:6]), "udp_trunc")
        counts(mk(P.PROTO_UDP, u[:4] + b"\x01\x00" + u[6:]), "udp_len")   # 256 > datagram
        counts(mk(P.PROTO_UDP, u[:4] + b"\x00\x04" + u[6:]), "udp_len")   # 4 < header
        counts(mk(P.PROTO_UDP, u[:-1] + b"?"), "udp_cksum")
        t = P.tcp(PEER_IP, NETD_IP, 1000, 7, 1, 0, P.SYN, mss=1460)
        counts(mk(P.PROTO_TCP, t[:19]), "tcp_trunc")
        counts(mk(P.PROTO_TCP, t[:12] + b"\xf0" + t[13:]), "tcp_hlen")    # 60 > segment
        counts(mk(P.PROTO_TCP, t[:-1] + b"\0"), "tcp_cksum")
        counts(P.eth(peer.netd_mac, peer.mac, P.ETH_ARP, b"\0\1\x08\0\6\4\0\1"), "arp_bad")
        # TCP options that lie about their length: the SYN is still handled.
        bad_opts = P.tcp(PEER_IP, NETD_IP, 1001, 7, 1, 0, P.SYN, mss=None)
        s = bytearray(bad_opts[:20] + b"\x02\x09\x05\xb4" + bad_opts[20:])
        s[12] = 6 << 4
        s[16:18] = b"\0\0"
        s[16:18] = P.checksum(P._pseudo(PEER_IP, NETD_IP, 6, len(s)) + bytes(s)).to_bytes(2, "big")
        out = peer.send(mk(P.PROTO_TCP, bytes(s)))
        assert [f.tcp.mss for f in out if f.tcp] == [1460]

        # Every valid frame cut at every length, then seeded random bytes and bit flips.
        for v in _valid_frames(peer):
            for n in range(len(v)):
                peer.send(v[:n])
        rng = random.Random(15)
        for _ in range(1500):
            peer.send(rng.randbytes(rng.randrange(0, 1600)))
        for _ in range(1500):
            v = bytearray(rng.choice(_valid_frames(peer)))
            for _ in range(rng.randrange(1, 6)):
                v[rng.randrange(14, len(v))] ^= 1 << rng.randrange(8)
            peer.send(bytes(v))
        st = h.stats()
        assert st["rx_frames"] >= 3000 + 24
        assert st["rx_bad_desc"] == 0 and st["nic_rx_drop"] == 0
        # Still answering, still echoing.
        assert [f.icmp.data for f in peer.ping(3, 3, b"alive") if f.icmp] == [b"alive"]
        c = peer.connect(50002, 7, iss=77)
        peer.tcp_send(c, b"after the barrage")
        peer.wait(1)
        assert bytes(c.received) == b"after the barrage"
    assert h.close() == 0


def test_guard_mode_catches_a_planted_read_past_the_frame():
    """The barrage above is only evidence if a read past a frame would be noticed."""
    peer_frame = _valid_frames(Peer(None))[0]  # type: ignore[arg-type]
    h = NetdHost(["--guard"], planted_bug=True)
    with pytest.raises(NetError, match="exited"):
        h.frame(peer_frame)
    assert h.close() < 0        # killed by a signal (SIGSEGV on the PROT_NONE page)
    ok = NetdHost(["--frames", "64"], planted_bug=True)  # without --guard the same read passes
    ok.frame(peer_frame)
    assert ok.close() == 0


def test_full_send_buffer_holds_the_request_until_acks_free_room(host):
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    data = stream(5 * 8000, 5)
    peer.drop_next = 10**6          # nothing NetD sends arrives, so nothing is acknowledged
    for i in range(5):
        peer._absorb(host.request(NsMsg(NS_SEND, sock=s, payload=data[i * 8000:(i + 1) * 8000])))
    assert not [e for e in peer.events if e.op == NS_SEND | NS_RESP]    # no failure answered
    peer.drop_next = 0
    peer.wait(200)                  # RTO: go-back-N from SND.UNA; acks free room; the 5th send goes
    for _ in range(10):
        peer.wait(1)
    assert bytes(c.received) == data
    assert host.stats()["tcp_retransmit"] == 1


def resend_window(peer: Peer, c, base: int, data: bytes, mss: int = 1000) -> None:
    """Send again what NetD has not acknowledged, as far as its window reaches (go-back-N:
    the peer's SND.NXT comes back too, so its pure ACKs carry a sequence number NetD
    accepts while its window is shut)."""
    una = (c.snd_una - base) & 0xFFFFFFFF
    end = min(len(data), una + c.peer_window)
    c.snd_nxt = (base + end) & 0xFFFFFFFF
    for off in range(una, end, mss):
        peer.tcp_resend(c, (base + off) & 0xFFFFFFFF, data[off:min(off + mss, end)])


def test_full_event_ring_closes_the_window_and_held_bytes_are_delivered(host):
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    base = 0x7000_0000 + 1
    host.hold_events(True)          # the application stops reading: its 64 KiB ring fills
    data = stream(100_000, 6)
    peer.tcp_send(c, data, mss=1000)    # ignoring the window NetD advertises
    st = host.stats()
    acked = (c.snd_una - base) & 0xFFFFFFFF
    # Bytes inside the window were acknowledged and kept (the receive buffer holds
    # 16 KiB the ring had no room for); the window then shut and the rest was cut off.
    assert st["tcp_app_full"] > 0 and st["tcp_beyond_wnd"] > 0
    assert 16384 < acked < len(data) and st["tcp_data_in"] == acked
    assert c.peer_window == 0
    assert not data_of(peer.events, s)
    peer._absorb(host.hold_events(False))
    # Everything acknowledged reaches the application, in order, and the drained
    # buffer is announced: the window is open again without the peer probing.
    assert data_of(peer.events, s) == data[:acked]
    assert c.peer_window == 16384
    while data_of(peer.events, s) != data:
        resend_window(peer, c, base, data)
    assert host.stats()["tcp_data_in"] == len(data)


def test_echo_application_blocked_on_its_requests_does_not_deadlock():
    """The built-in echo stops reading events while its SEND requests wait for send-buffer
    room; NetD must still take those requests when acknowledgements free the room, so
    DATA never takes the event ring's last bytes (NETD_EVT_HEADROOM)."""
    with NetdHost(["--rto", "200", "--tcp-echo", "7"]) as h:
        peer = Peer(h)
        peer.arp_request()
        iss = 0x2000_0000
        c = peer.connect(51000, 7, iss=iss)
        assert c.state == "ESTABLISHED"
        base = iss + 1
        data = stream(300_000, 8)
        peer.drop_next = 10**9      # NetD's echo goes unacknowledged: its send buffer fills
        peer.tcp_send(c, data)
        st = h.stats()
        assert st["tcp_app_full"] > 0 and 0 < st["tcp_data_out"] <= 32768
        peer.drop_next = 0
        for _ in range(2000):
            if len(c.received) == len(data):
                break
            peer.wait(250)          # a retransmission timeout; the peer's ACKs free room
            resend_window(peer, c, base, data)
        assert bytes(c.received) == data
        st = h.stats()
        assert st["tcp_data_in"] == len(data) <= st["tcp_data_out"]   # out: with resends
    assert h.close() == 0


def test_hostile_tcp_segments_on_a_live_connection():
    """Checksummed segments with random flags, sequence and acknowledgement numbers near
    the window and random payloads reach the state machine; it stays whole."""
    with NetdHost(["--guard", "--tcp-echo", "7"]) as h:
        peer = Peer(h)
        peer.arp_request()
        rng = random.Random(93)
        for n in range(6):
            c = peer.connect(51000 + n, 7, iss=rng.getrandbits(32))
            for _ in range(400):
                seq = (c.snd_nxt + rng.randrange(-70000, 70000)) & 0xFFFFFFFF
                ack = (c.snd_una + rng.randrange(-70000, 70000)) & 0xFFFFFFFF
                flags = rng.getrandbits(6)
                payload = rng.randbytes(rng.choice((0, 0, 1, 100, 1460)))
                peer.send(peer._ip(P.PROTO_TCP, P.tcp(PEER_IP, NETD_IP, c.lport, 7, seq, ack, flags,
                                                      payload, window=rng.randrange(0, 65536))))
                if rng.random() < 0.05:
                    peer.wait(rng.randrange(1, 3000))
            peer.wait(120_000)      # every connection either recovered or timed out by now
        st = h.stats()
        assert st["tcp_rx"] >= 2400 and st["rx_bad_desc"] == 0
        assert st["tcp_challenge_ack"] > 0 and st["tcp_out_of_order"] > 0
        c = peer.connect(52000, 7, iss=5)
        peer.tcp_send(c, b"whole after chaos")
        peer.wait(1)
        assert bytes(c.received) == b"whole after chaos"
    assert h.close() == 0


def test_random_socket_requests_and_a_corrupt_ring_harm_no_other_application():
    with NetdHost(["--guard", "--tcp-echo", "7"]) as h:
        rng = random.Random(7)
        for _ in range(2000):
            m = NsMsg(rng.choice((0, 1, 2, 3, 4, 5, 0x41, 0x85, 255)), sock=rng.randrange(0, 40),
                      id=rng.getrandbits(32), proto=rng.choice((0, 6, 17, 255)),
                      addr=rng.choice((0, PEER_IP, NETD_IP, 0xFFFFFFFF, rng.getrandbits(32))),
                      port=rng.randrange(0, 65536), lport=rng.choice((0, 7, 80, rng.randrange(65536))),
                      payload=rng.randbytes(rng.choice((0, 10, 2000))))
            raw = m.pack(length=rng.choice((len(m.payload), len(m.payload), rng.getrandbits(32))))
            h.request(raw if rng.random() < 0.9 else rng.randbytes(rng.randrange(0, 60)))
        st = h.stats()
        assert st["sock_req"] == 2000 + 2 and st["sock_bad_req"] > 0  # + the echo app's OPEN, BIND and st["sock_forged"] > 0
        assert h.corrupt_request_head(0xDEADBEEF).events == []   # app 0 is not served
        h.advance(1)
        assert h.stats()["sock_ring_err"] >= 2
        peer = Peer(h)              # the echo application (app 1) is untouched
        peer.arp_request()
        c = peer.connect(53000, 7, iss=9)
        peer.tcp_send(c, b"app 1 unharmed")
        peer.wait(1)
        assert bytes(c.received) == b"app 1 unharmed"
    assert h.close() == 0


def test_zero_window_is_probed_not_reset(host):
    """A receiver that keeps its window shut but answers probes is waited for, however long."""
    peer = Peer(host)
    _, s, c = accept_conn(host, peer)
    peer.window = 0
    peer.send(peer._seg(c, P.ACK))      # window update: shut
    data = stream(3000, 8)
    peer._absorb(host.request(NsMsg(NS_SEND, sock=s, payload=data)))
    assert len(c.received) == 0         # nothing sent into a shut window
    for _ in range(20):                 # 20 minutes of probes, each answered with window 0
        peer.wait(60_000)
    probes = len(c.received)
    assert 1 <= probes <= 20
    assert not any(e.op == NS_EV_RESET for e in peer.events)
    peer.window = 65535                 # the next probe's ACK opens the window
    peer.wait(60_000)
    peer.wait(1)
    assert bytes(c.received) == data
    st = host.stats()
    assert st["tcp_timeout"] == 0 and st["tcp_retransmit"] == 0


def test_udp_echo_refuses_well_known_source_ports(host):
    """Two echo services must not be able to answer each other forever (CVE-1999-0103)."""
    peer = Peer(host)
    peer.arp_request()
    for sport in (7, 19, 1023):
        assert not [f for f in peer.udp(sport, 7, b"loop?") if f.udp]
    assert [f.udp.payload for f in peer.udp(1024, 7, b"fine") if f.udp] == [b"fine"]
    st = host.stats()
    assert st["udp_echo_loop"] == 3 and st["udp_echo"] == 1


def test_sequence_numbers_wrap_around_2_to_the_32(host):
    """RFC 9293 section 3.4: sequence space is modulo 2^32; data across the wrap is taken."""
    ls = open_sock(host, NS_TCP)
    host.request(NsMsg(NS_BIND, sock=ls, lport=80))
    peer = Peer(host)
    peer.arp_request()
    c = peer.connect(50000, 80, iss=0xFFFF_FC00)
    s = next(e.sock for e in peer.events if e.op == NS_EV_ACCEPT)
    data = stream(4000, 9)      # 1023 bytes before the wrap, the rest after it
    peer.tcp_send(c, data, mss=1000)
    assert data_of(peer.events, s) == data and c.snd_una == c.snd_nxt == (0xFFFF_FC01 + 4000) % 2**32
