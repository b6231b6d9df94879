"""pcap files: written, read back, opened by tcpdump; a NetD session captured twice is identical."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from keusim.net import NetError, pcap
from keusim.net import packet as P
from keusim.net.host import NetdHost
from keusim.net.peer import Peer, replay

SCRIPT = [
    {"at": 0, "do": "arp"},
    {"at": 1, "do": "ping", "seq": 1, "data": "ping one"},
    {"at": 2, "do": "udp", "sport": 4000, "dport": 7, "data": "udp echo"},
    {"at": 3, "do": "connect", "lport": 50000, "rport": 7, "iss": 1000},
    {"at": 4, "do": "send", "lport": 50000, "rport": 7, "data": "x" * 3000},
    {"at": 5, "do": "drop", "count": 2},   # the ACK and the echoed segment
    {"at": 5, "do": "send", "lport": 50000, "rport": 7, "data": "after a loss"},
    {"at": 400, "do": "close", "lport": 50000, "rport": 7},
    {"at": 401, "do": "wait"},
]


def session(path) -> tuple[list, Peer]:
    with NetdHost(["--tcp-echo", "7"], capture=path) as h:
        peer = Peer(h)
        transcript = peer.play(SCRIPT)
    return transcript, peer


def test_write_then_read_round_trip(tmp_path):
    frames = [(0, b"\x01" * 60), (1_500_001, b"\x02" * 1514), (3_000_000, b"\x03" * 70000)]
    with pcap.PcapWriter(tmp_path / "a.pcap") as w:
        for t, f in frames:
            w.write(t, f)
    raw = (tmp_path / "a.pcap").read_bytes()
    assert struct.unpack_from("<IHHiIII", raw) == (0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    got = list(pcap.read(tmp_path / "a.pcap"))
    assert [(p.time_us, p.data, p.orig_len) for p in got] == [
        (0, frames[0][1], 60), (1_500_001, frames[1][1], 1514), (3_000_000, frames[2][1][:65535], 70000)]


def test_reader_rejects_what_is_not_an_ethernet_pcap(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\0" * 40)      # pcapng
    with pytest.raises(NetError, match="not a classic pcap"):
        list(pcap.read(bad))
    bad.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    with pytest.raises(NetError, match="link type 101"):
        list(pcap.read(bad))
    bad.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + struct.pack("<IIII", 0, 0, 100, 100) + b"x")
    with pytest.raises(NetError, match="record 0 claims 100 bytes"):
        list(pcap.read(bad))
    with pytest.raises(NetError, match="too short"):
        bad.write_bytes(b"\xd4\xc3")
        list(pcap.read(bad))


def test_big_endian_and_nanosecond_files_are_read(tmp_path):
    f = tmp_path / "be.pcap"
    f.write_bytes(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
                  + struct.pack(">IIII", 2, 5000, 3, 3) + b"abc")
    assert [(p.time_us, p.data) for p in pcap.read(f)] == [(2_000_005, b"abc")]


def test_netd_session_capture_matches_the_wire_and_repeats_byte_for_byte(tmp_path):
    t1, peer = session(tmp_path / "one.pcap")
    t2, _ = session(tmp_path / "two.pcap")
    assert t1 == t2
    assert (tmp_path / "one.pcap").read_bytes() == (tmp_path / "two.pcap").read_bytes()
    # The capture holds exactly what crossed the wire, in order, at model time.
    wire = [(t * 1000, f) for t, who, f in t1 if who in ("peer", "netd", "dropped")]
    got = [(p.time_us, p.data) for p in pcap.read(tmp_path / "one.pcap")]
    assert got == wire
    # And the conversation worked: echo, loss recovered, both FINs.
    c = peer.conns[(50000, 7)]
    assert bytes(c.received) == b"x" * 3000 + b"after a loss" and c.fin_received
    assert any(f.icmp and f.icmp.data == b"ping one" for f in peer.received)
    assert any(f.udp and f.udp.payload == b"udp echo" for f in peer.received)


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (apt-get install tcpdump)")
def test_tcpdump_reads_the_capture(tmp_path):
    session(tmp_path / "s.pcap")
    r = subprocess.run(["tcpdump", "-nn", "-r", str(tmp_path / "s.pcap")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(list(pcap.read(tmp_path / "s.pcap")))
    text = r.stdout
    assert "ARP, Reply 10.77.0.2 is-at 02:00:00:00:00:02" in text
    assert "10.77.0.2 > 10.77.0.1: ICMP echo reply" in text
    assert "10.77.0.1.50000 > 10.77.0.2.7: Flags [S]" in text
    assert "10.77.0.2.7 > 10.77.0.1.50000: Flags [F.]" in text
    assert "bad cksum" not in text and "truncated" not in text.lower()


def test_script_errors_name_the_step():
    with NetdHost() as h:
        peer = Peer(h)
        with pytest.raises(NetError, match="step 0: unknown action 'teleport'"):
            peer.play([{"at": 0, "do": "teleport"}])
        with pytest.raises(NetError, match="step 0 \\(ping\\): missing field 'seq'"):
            peer.play([{"at": 0, "do": "ping"}])
        with pytest.raises(NetError, match="no connection 1->2"):
            peer.play([{"at": 0, "do": "send", "lport": 1, "rport": 2}])
        peer.play([{"at": 10, "do": "wait"}])
        with pytest.raises(NetError, match="before the link's time"):
            peer.play([{"at": 5, "do": "wait"}])
    assert P.ip_text(P.ip("10.77.0.2")) == "10.77.0.2"


def test_replaying_a_capture_reproduces_netd_byte_for_byte(tmp_path):
    """The model-time replay mode in miniature: only the peer's frames are fed back."""
    transcript, peer = session(tmp_path / "s.pcap")
    captured = list(pcap.read(tmp_path / "s.pcap"))
    with NetdHost(["--tcp-echo", "7"]) as h:
        answered = replay(captured, h, peer.mac)
    netd_side = [(p.time_us, p.data) for p in captured if p.data[6:12] != peer.mac]
    payloads = b"".join(P.parse(f).tcp.payload for _, f in netd_side if P.parse(f).tcp)
    assert payloads.count(b"after a loss") == 2     # sent, lost, sent again after the RTO
    assert answered == netd_side
