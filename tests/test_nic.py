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
