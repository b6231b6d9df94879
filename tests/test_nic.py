"""The NIC and IOMMU device models, the kernel's NIC support, and NetD as a process of the
machine (docs/netd.md, "NetD on the machine"), on both architectures."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from keusim import abi
from keusim.errors import KeusimError, ManifestError
from keusim.machine import devices, iommu, nic
from keusim.manifest import parse
from keusim.net import packet as P
from keusim.net import pcap
from keusim.net.wire import PcapWire, ScriptWire, demo_script
from keusim.system import BootedSystem, run

ARCHS = ("x86_64", "arm64")
NETD_SRCS = ", ".join(f'"@/guests/netd/{f}"' for f in (
    "machine/netd_main.c", "netd.c", "netif.c", "eth.c", "arp.c", "ip.c", "icmp.c", "udp.c",
    "tcp.c", "sock.c"))


def test_python_constants_match_the_header():
    n = abi.defines("nic.h")
    assert (devices.IOMMU_PA, devices.NIC_PA, devices.NIC_QUEUES) == (
        n["IOMMU_PA"], n["NIC_PA"], n["NIC_QUEUES"])
    assert [nic.QCTL0 + nic.QCTL_STRIDE * q for q in range(2)] == [0x100, 0x140]
    assert n["NIC_RINGS_HDR"] == 4 * n["NIC_IDX_BYTES"] == 512
    assert abi.define("platform.h", "IRQ_DEV") == devices.IRQ_DEV
    assert abi.define("abi.h", "NSYSCALL") == 14
    from keusim.fuzz import gen
    assert gen.NSYSCALL == abi.define("abi.h", "NSYSCALL")


def _run_demo(arch: str, **kw):
    wire = ScriptWire(demo_script())
    rep = run("netd", arch=arch, wire=wire, **kw)
    return rep, wire


@pytest.mark.parametrize("arch", ARCHS)
def test_netd_answers_arp_ping_udp_and_tcp_over_the_nic(arch):
    rep, wire = _run_demo(arch)
    assert rep.ok, rep.summary()
    peer = wire.peer
    got = peer.received
    arp = [f for f in got if f.arp and f.arp.op == 2]
    assert len(arp) == 1 and arp[0].arp.sha == bytes.fromhex("020000000002")
    pings = {f.icmp.seq: f.icmp.data for f in got if f.icmp and f.icmp.type == 0}
    assert pings == {i: b"keusim-ping-%d" % i for i in range(3)}
    udp = {(f.udp.sport, f.udp.dport): f.udp.payload for f in got if f.udp}
    for i in range(3):
        assert udp[(7, 40000 + i)] == b"udp-echo-%d" % i       # NetD's own echo service
        assert udp[(9, 41000 + i)] == b"udp-app-%d" % i        # the echo process, over rings
    conn = peer.conns[(50000, 7)]
    data = bytes((i * 7 + 3) & 0xFF for i in range(20_000))
    assert bytes(conn.received) == data and conn.fin_received and not conn.reset
    dev = rep.devices["nic"]
    assert dev["iommu"]["faults_total"] == 0
    assert dev["counters"]["rx_frames"] == sum(1 for _t, w, _f in peer.transcript if w == "peer")
    # Every byte of the payload reached the application through its event ring and came back.
    assert "echo: tcp 20000 bytes" in rep.process("echo").console
    ch = rep.channels[1]
    assert ch.notifications["accepted"] > 0 and not ch.notifications["rejected"]


def test_the_run_is_deterministic_and_its_capture_is_a_valid_pcap(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    r1, _ = _run_demo("x86_64", pcap_out=a)
    r2, _ = _run_demo("x86_64", pcap_out=b)
    assert r1.to_json() == r2.to_json()
    assert a.read_bytes() == b.read_bytes()
    pkts = list(pcap.read(a))
    c = r1.devices["nic"]["counters"]
    assert len(pkts) == c["rx_frames"] + c["tx_frames"]
    assert all(x.time_us <= y.time_us for x, y in zip(pkts, pkts[1:], strict=False))
    frames = [P.parse(p.data) for p in pkts]
    assert all(f is not None for f in frames)
    assert all(f.tcp.cksum_ok for f in frames if f.tcp)
    if shutil.which("tcpdump"):
        out = subprocess.run(["tcpdump", "-nn", "-vv", "-r", str(a)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.strip().splitlines()) >= len(pkts)
        assert "bad cksum" not in out.stdout and "incorrect" not in out.stdout


@pytest.mark.parametrize("arch", ARCHS)
def test_pcap_replay_gives_byte_identical_reports(arch, tmp_path):
    src = tmp_path / "session.pcap"
    first, _ = _run_demo(arch, pcap_out=src)
    outs, reps = [], []
    for i in range(2):
        o = tmp_path / f"replay{i}.pcap"
        rep = run("netd", arch=arch, wire=PcapWire(src), pcap_out=o)
        assert rep.ok, rep.summary()
        reps.append(rep.to_json())
        outs.append(o.read_bytes())
    assert reps[0] == reps[1] and outs[0] == outs[1]
    rep = json.loads(reps[0])
    # NetD answered the replayed peer as it answered the live one: the same frames out.
    live = [p.data for p in pcap.read(src) if p.data[6:12] == bytes.fromhex("020000000002")]
    replayed = [p.data for p in pcap.read(tmp_path / "replay0.pcap")
                if p.data[6:12] == bytes.fromhex("020000000002")]
    assert replayed == live
    assert rep["devices"]["nic"]["wire"]["frames_replayed"] == first.devices["nic"]["counters"]["rx_frames"]


def _attack_manifest(tmp_path, extra: str = "") -> str:
    m = tmp_path / "attack.toml"
    m.write_text(f"""
[system]
name = "dma-attack"
cores = 2
max_cycles = 10_000_000_000
[[process]]
name = "rogue"
image = "@/guests/netd/machine/dma_attack.c"
core = 0
nic = "queue"
[[process]]
name = "bystander"
image = "@/guests/netd/machine/no_nic.c"
core = 1
{extra}
""")
    return str(m)


def _attack_wire():
    frame = P.eth(bytes.fromhex("020000000002"), bytes.fromhex("020000000001"), 0x88B5,
                  b"\xaa" * 100)
    return ScriptWire([{"at": 2, "do": "raw", "frame": frame},
                       {"at": 3, "do": "raw", "frame": frame}], drain_ms=5)


def _attack(tmp_path, arch: str, bypass: bool = False):
    with BootedSystem(_attack_manifest(tmp_path), arch=arch, wire=_attack_wire(),
                      iommu_bypass=bypass) as b:
        boot = b.machine.ram.read(0x1000, 4096)
        kernel = b.machine.ram.read(0x100000, 64)
        b.finish()
        after = b.machine.ram.read(0x1000, 4096)
        rep = b.report()
        out = b.nic.capture()
    return rep, boot, after, kernel, out


def dma_contained(rep, boot_before: bytes, boot_after: bytes, kernel: bytes, wire_frames) -> list[str]:
    """What the DMA attack broke; empty when the IOMMU contained it."""
    broken = []
    if boot_after != boot_before:
        broken.append("the boot-info page changed")
    if any(kernel in f for _t, d, f in wire_frames if d == "out"):
        broken.append("kernel bytes went out on the wire")
    io = rep.devices["nic"]["iommu"]
    want = {("0x1000", "write", "unmapped"), ("0x100000", "read", "unmapped")}
    got = {(f["iova"], f["access"], f["reason"]) for f in io["faults"]}
    if not want <= got:
        broken.append(f"faults not recorded: {sorted(want - got)}")
    if "canary intact" not in rep.process("rogue").console:
        broken.append("the unregistered page changed")
    return broken


@pytest.mark.parametrize("arch", ARCHS)
def test_dma_outside_the_registered_region_is_blocked_and_recorded(arch, tmp_path):
    rep, boot, after, kernel, out = _attack(tmp_path, arch)
    assert rep.ok, rep.summary()
    assert dma_contained(rep, boot, after, kernel, out) == []
    io = rep.devices["nic"]["iommu"]
    assert io["faults_total"] == 3 and all(f["stream"] == 0 for f in io["faults"])
    c = rep.devices["nic"]["counters"]
    assert (c["rx_dma_blocked"], c["tx_dma_blocked"], c["tx_frames"], c["rx_frames"]) == (2, 1, 0, 0)
    con = rep.process("rogue").console
    assert "attach refusals -14 -22 -22, attach 30000000, again -16" in con
    assert "rx descriptors 0, completions 1" in con
    assert "no-nic: attach -1 wait -1 send -1 recv -1" in rep.process("bystander").console


def test_a_broken_iommu_is_caught(tmp_path):
    """The planted bug (failed translations pass through) must fail the attack check."""
    rep, boot, after, kernel, out = _attack(tmp_path, "x86_64", bypass=True)
    broken = dma_contained(rep, boot, after, kernel, out)
    assert "the boot-info page changed" in broken
    assert "kernel bytes went out on the wire" in broken
    assert any(b.startswith("faults not recorded") for b in broken)


def test_manifest_nic_field_is_checked(tmp_path):
    base = '[[process]]\nname = "a"\nimage = "@/guests/src/hello.c"\n'
    with pytest.raises(ManifestError, match="'nic' = 'dma' is not one of 'queue', 'syscalls'"):
        parse(base + 'nic = "dma"\n')
    three = "".join(f'[[process]]\nname = "p{i}"\nimage = "@/guests/src/hello.c"\nnic = "queue"\n'
                    for i in range(3))
    with pytest.raises(ManifestError, match="the NIC has 2 queues"):
        parse(three)
    with pytest.raises(KeusimError, match="has no process with a NIC"):
        run("hello", wire=_attack_wire())


def test_iommu_event_queue_records_faults_in_memory(tmp_path):
    """The kernel set up the SMMU-style event queue: the blocked accesses are in RAM too."""
    with BootedSystem(_attack_manifest(tmp_path), wire=_attack_wire()) as b:
        b.finish()
        io = b.nic.iommu
        assert io.regs[iommu.EVTQ_PROD] == 3 and io.events_lost == 0
        raw = b.machine.ram.read(io.regs[iommu.EVTQ], 32 * 3)
        evs = [iommu._EVENT.unpack_from(raw, 32 * i) for i in range(3)]
        canary = b.image("rogue").symbol("canary")
        assert {(e[4], e[1], e[2]) for e in evs} == {
            (0x1000, iommu.F_UNMAPPED, iommu.ACC_WRITE), (0x100000, iommu.F_UNMAPPED, iommu.ACC_READ),
            (canary, iommu.F_UNMAPPED, iommu.ACC_WRITE)}


# ----------------------------------------------------------------------------- TCP, attacks

NETD_MAC, PEER_MAC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
PEER_IP, NETD_IP = P.ip("10.77.0.1"), P.ip("10.77.0.2")


def _ip_frame(proto: int, payload: bytes, **kw) -> bytes:
    return P.eth(NETD_MAC, PEER_MAC, P.ETH_IPV4, P.ipv4(PEER_IP, NETD_IP, proto, payload, **kw))


@pytest.mark.parametrize("arch", ARCHS)
def test_tcp_retransmits_what_the_wire_lost(arch):
    data = bytes(range(256)) * 40
    script = [{"at": 5, "do": "arp"},
              {"at": 6, "do": "connect", "lport": 50001, "rport": 7, "iss": 0xFFFFF000},
              {"at": 8, "do": "drop", "count": 14},   # its 11 ACKs and the first echoed segments
              {"at": 8, "do": "send", "lport": 50001, "rport": 7, "data": data, "mss": 1000},
              {"at": 900, "do": "close", "lport": 50001, "rport": 7}]
    wire = ScriptWire(script)
    rep = run("netd", arch=arch, wire=wire)
    assert rep.ok, rep.summary()
    conn = wire.peer.conns[(50001, 7)]
    assert bytes(conn.received) == data and conn.fin_received
    con = rep.process("netd").console
    assert "tcp_retransmit" in con
    assert sum(1 for _t, w, _f in wire.peer.transcript if w == "dropped") == 14


def _malformed_frames() -> list[bytes]:
    import random
    rnd = random.Random(15)
    good_udp = P.udp(PEER_IP, NETD_IP, 40000, 7, b"x" * 32)
    bad_ck_ip = bytearray(P.ipv4(PEER_IP, NETD_IP, P.PROTO_UDP, good_udp))
    bad_ck_ip[10] ^= 0xFF
    bad_udp = bytearray(good_udp)
    bad_udp[6] ^= 0x55
    long_udp = bytearray(good_udp)
    long_udp[4:6] = (500).to_bytes(2, "big")
    bad_tcp = bytearray(P.tcp(PEER_IP, NETD_IP, 1234, 7, 1, 0, P.SYN))
    bad_tcp[16] ^= 0x11
    big_off = bytearray(P.tcp(PEER_IP, NETD_IP, 1234, 7, 1, 0, P.SYN))
    big_off[12] = 0xF0
    ip_len = bytearray(P.ipv4(PEER_IP, NETD_IP, P.PROTO_UDP, good_udp))
    ip_len[2:4] = (1400).to_bytes(2, "big")
    frames = [
        NETD_MAC + PEER_MAC,                                           # runt: no EtherType
        P.eth(NETD_MAC, PEER_MAC, P.ETH_IPV4, b"\x45\x00", pad=False),  # IPv4 cut short
        P.eth(NETD_MAC, PEER_MAC, P.ETH_IPV4, bytes(bad_ck_ip)),         # bad header checksum
        P.eth(NETD_MAC, PEER_MAC, P.ETH_IPV4, bytes(ip_len)),            # total length > frame
        _ip_frame(P.PROTO_UDP, good_udp, df=False, mf=True),           # a first fragment
        _ip_frame(P.PROTO_UDP, good_udp, df=False, frag_offset=8),     # a later fragment
        _ip_frame(P.PROTO_UDP, bytes(bad_udp)),                         # bad UDP checksum
        _ip_frame(P.PROTO_UDP, bytes(long_udp)),                        # UDP length past the end
        _ip_frame(P.PROTO_TCP, bytes(bad_tcp)),                         # bad TCP checksum
        _ip_frame(P.PROTO_TCP, bytes(big_off)),                         # data offset past the end
        _ip_frame(P.PROTO_ICMP, b"\x08"),                               # ICMP cut short
        P.eth(NETD_MAC, PEER_MAC, P.ETH_IPV4, b"\x45" + bytes(2000)),   # oversize: the NIC drops
    ]
    frames += [P.eth(NETD_MAC, PEER_MAC, P.ETH_IPV4, rnd.randbytes(rnd.randrange(0, 200)))
               for _ in range(150)]
    for _ in range(150):   # valid frames with one bit flipped
        f = bytearray(_ip_frame(P.PROTO_UDP, P.udp(PEER_IP, NETD_IP, 40000, 7, rnd.randbytes(40))))
        i = rnd.randrange(14, len(f))
        f[i] ^= 1 << rnd.randrange(8)
        frames.append(bytes(f))
    return frames


@pytest.mark.parametrize("arch", ARCHS)
def test_malformed_stream_and_flood_are_contained(arch):
    bad = _malformed_frames()
    script = [{"at": 5, "do": "arp"}]
    script += [{"at": 6 + i // 40, "do": "raw", "frame": f} for i, f in enumerate(bad)]
    # A ping flood: 600 echo requests in one millisecond.
    script += [{"at": 20, "do": "ping", "ident": 7, "seq": i, "data": b"flood"} for i in range(600)]
    script += [{"at": 40, "do": "ping", "ident": 9, "seq": 1, "data": b"after the storm"},
               {"at": 41, "do": "connect", "lport": 50002, "rport": 7, "iss": 5},
               {"at": 43, "do": "send", "lport": 50002, "rport": 7, "data": b"still echoing " * 50},
               {"at": 60, "do": "close", "lport": 50002, "rport": 7}]
    wire = ScriptWire(script)
    rep = run("netd", arch=arch, wire=wire)
    assert rep.ok, rep.summary()
    con = rep.process("netd").console
    counts = {ln.split()[1]: int(ln.split()[2]) for ln in con.splitlines()
              if ln.startswith("netd: ") and len(ln.split()) == 3}
    for k in ("eth_runt", "ip_trunc", "ip_cksum", "ip_len", "ip_frag", "udp_cksum", "udp_len",
              "tcp_cksum", "tcp_hlen", "icmp_trunc"):
        assert counts.get(k, 0) > 0, (k, counts)
    assert counts["ip_frag"] >= 2
    nc = rep.devices["nic"]["counters"]
    assert nc["rx_oversize"] == 1
    # The flood outran NetD: the NIC dropped what found no fill frame, as hardware does,
    # and NetD answered what it received.
    assert nc["rx_no_fill"] > 0 and counts["icmp_echo"] + nc["rx_no_fill"] >= 600
    assert rep.devices["nic"]["iommu"]["faults_total"] == 0
    got = wire.peer.received
    assert any(f.icmp and f.icmp.type == 0 and f.icmp.data == b"after the storm" for f in got)
    conn = wire.peer.conns[(50002, 7)]
    assert bytes(conn.received) == b"still echoing " * 50 and conn.fin_received


def test_forged_socket_requests_hurt_no_one(tmp_path):
    m = tmp_path / "forge.toml"
    m.write_text(f"""
[system]
name = "netd-forge"
cores = 3
max_cycles = 100_000_000_000
[[process]]
name = "netd"
image = [{NETD_SRCS}]
core = 0
nic = "queue"
[[process]]
name = "echo"
image = "@/guests/netd/machine/echo_app.c"
core = 1
[[process]]
name = "forger"
image = "@/guests/netd/machine/forger.c"
core = 2
expect = "fault:bad-tag"
""" + "".join(f"""
[[channel]]
producer = "{a}"
consumer = "{b}"
capacity = 65536
mode = "notify"
verified = true
""" for a, b in (("echo", "netd"), ("netd", "echo"), ("forger", "netd"), ("netd", "forger"))))
    data = bytes((i * 31) & 0xFF for i in range(6000))
    script = [{"at": 5, "do": "arp"},
              {"at": 15, "do": "connect", "lport": 50003, "rport": 7, "iss": 77},
              {"at": 16, "do": "send", "lport": 50003, "rport": 7, "data": data},
              {"at": 40, "do": "udp", "sport": 41000, "dport": 9, "data": b"to the echo app"},
              {"at": 50, "do": "close", "lport": 50003, "rport": 7}]
    wire = ScriptWire(script)
    rep = run(str(m), wire=wire)
    assert rep.ok, rep.summary()
    forger = rep.process("forger")
    assert forger.fault.kind == "bad-tag"
    assert "still alive" not in forger.console
    n_ans, n_ref = (int(x) for x in forger.console.split("forger: ")[1].split()[0:3:2])
    assert n_ans == n_ref >= 6      # every request on a foreign socket was refused
    con = rep.process("netd").console
    assert "sock_forged" in con and "sock_bad_req" in con
    conn = wire.peer.conns[(50003, 7)]
    assert bytes(conn.received) == data and conn.fin_received
    assert any(f.udp and f.udp.payload == b"to the echo app" for f in wire.peer.received)
