"""Typed run results. The CLI, the experiments and the notebooks all render these.

Everything in a :class:`RunReport` comes from model state (model cycles,
instruction counts, the kernel's event records, console bytes), never from host
time, so two runs of the same inputs give byte-identical JSON.

What nobody reported is reported as unknown (``None``, JSON ``null``), never as
a good verdict: a channel whose consumer never reported is not ``intact``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

# kernel/include/klog.h
KLOG_EXIT, KLOG_FAULT, KLOG_CHAN_ERR, KLOG_NOTIFY, KLOG_STAT, KLOG_CHAN_STATS = 1, 2, 3, 4, 5, 6
KLOG_PROC, KLOG_CHAN_IDX, KLOG_CHAN_DATA, KLOG_CTL = 7, 8, 9, 10
FAULT_KINDS = {
    1: "unmapped", 2: "kernel-access", 3: "write-protect", 4: "exec-nx",
    5: "privileged-instruction", 6: "undefined-instruction", 7: "alignment",
    8: "bad-syscall", 9: "bad-tag", 10: "replay", 11: "bad-descriptor",
    12: "no-capability", 13: "bad-pointer", 14: "channel-fault", 15: "other",
    16: "general-protection", 17: "breakpoint", 18: "software-interrupt", 19: "non-canonical",
    20: "divide-error", 21: "fp-exception",
}
# kernel/include/channel.h CHERR_*
CHANNEL_SETUP_ERRORS = {
    1: "capacity is not a power of two", 2: "capacity is below 4096 bytes",
    3: "capacity is above 1 MiB", 4: "producer and consumer are the same process",
    5: "unknown process", 6: "unknown wake-up mode",
}
# guests/include/keusim/ring.h RING_E*
RING_ERRORS = {-1: "again", -2: "too-big", -3: "message-size", -4: "corrupt-index",
               -5: "corrupt-length", -6: "invalid"}
# guests/include/keusim/keusim.h STAT_*
STAT_KEYS = {1: "sent_msgs", 2: "sent_bytes", 3: "recv_msgs", 4: "recv_bytes",
             5: "verified_bytes", 6: "stream_hash", 7: "mismatches", 8: "round_trips",
             9: "rt_cycles", 10: "notified"}


@dataclass(frozen=True)
class Fault:
    """Why the kernel killed a process: kind, address, and where (pc and its symbol in
    the process's own image: every image starts at 0x400000, so a bare pc is ambiguous)."""

    kind: str
    addr: int
    pc: int
    symbol: str = ""
    process: str = ""
    pid: int = 0
    core: int = 0

    def as_dict(self) -> dict:
        return {"kind": self.kind, "addr": f"{self.addr:#x}", "pc": f"{self.pc:#x}",
                "symbol": self.symbol, "process": self.process, "pid": self.pid,
                "core": self.core}

    def describe(self) -> str:
        return (f"{self.kind} at {self.addr:#x} (pc {self.pc:#x} in {self.symbol or '?'}; "
                f"process {self.process} pid {self.pid}, core {self.core})")


@dataclass(frozen=True)
class ProcessReport:
    name: str
    pid: int
    core: int
    exit_code: int | None
    fault: Fault | None
    console: str
    expect: str
    expectation_met: bool

    @property
    def running(self) -> bool:
        """Neither exited nor killed when the run ended (its outcome is unknown)."""
        return self.fault is None and self.exit_code is None

    def as_dict(self) -> dict:
        d = {"name": self.name, "pid": self.pid, "core": self.core, "console": self.console,
             "expect": self.expect, "expectation_met": self.expectation_met}
        if self.fault is not None:
            d["fault"] = self.fault.as_dict()
        else:
            d["exit_code"] = self.exit_code
        d["still_running"] = self.running
        return d


@dataclass(frozen=True)
class CoreReport:
    id: int
    instructions: int
    cycles: int
    kernel_instructions: int
    kernel_cycles: int
    coherence_transfers: int
    coherence_cycles: int
    shared_reads: int
    shared_writes: int


@dataclass(frozen=True)
class ChannelReport:
    id: int
    name: str
    producer: str
    consumer: str
    capacity: int
    mode: str
    verified: bool
    setup_error: str | None
    producer_stats: dict
    consumer_stats: dict
    notifications: dict = field(default_factory=dict)
    faults: tuple = ()

    @property
    def intact(self) -> bool | None:
        """Every byte the consumer received matched what the producer generated.

        None (unknown) unless the consumer reported both what it received and what
        it verified: silence is not evidence of integrity.
        """
        c = self.consumer_stats
        if "recv_bytes" not in c or "verified_bytes" not in c:
            return None
        return c.get("mismatches", 0) == 0 and c["recv_bytes"] == c["verified_bytes"]

    @property
    def complete(self) -> bool | None:
        """Intact, and everything the producer sent was received (None: unknown)."""
        intact = self.intact
        if intact is None or "sent_bytes" not in self.producer_stats:
            return None if intact is not False else False
        return intact and self.consumer_stats["recv_bytes"] == self.producer_stats["sent_bytes"]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["faults"] = list(self.faults)
        d["intact"] = self.intact
        d["complete"] = self.complete
        for side in ("producer_stats", "consumer_stats"):
            if "stream_hash" in d[side]:
                d[side]["stream_hash"] = f"{d[side]['stream_hash']:016x}"
        return d


@dataclass(frozen=True)
class RunReport:
    scenario: str
    arch: str
    ok: bool
    status: str
    message: str
    params: dict
    processes: tuple[ProcessReport, ...]
    cores: tuple[CoreReport, ...]
    channels: tuple[ChannelReport, ...] = ()
    profile: str = "flat"
    mappings: dict | None = None
    functions: tuple = ()
    devices: dict | None = None
    """Device models beyond the platform device (the NIC, its link and IOMMU): their
    counters and the IOMMU's fault records. None when the system has none."""

    def process(self, name: str) -> ProcessReport:
        for p in self.processes:
            if p.name == name:
                return p
        raise KeyError(name)

    def channel(self, i: int) -> ChannelReport:
        return self.channels[i]

    @property
    def cycles(self) -> int:
        return max((c.cycles for c in self.cores), default=0)

    @property
    def instructions(self) -> int:
        return sum(c.instructions for c in self.cores)

    def as_dict(self) -> dict:
        d = {
            "scenario": self.scenario, "arch": self.arch, "ok": self.ok, "status": self.status,
            "message": self.message, "profile": self.profile, "params": self.params,
            "processes": [p.as_dict() for p in self.processes],
            "cores": [asdict(c) for c in self.cores],
            "channels": [c.as_dict() for c in self.channels],
        }
        if self.mappings is not None:
            d["mappings"] = self.mappings
        if self.functions:
            d["functions"] = list(self.functions)
        if self.devices is not None:
            d["devices"] = self.devices
        return d

    def function_totals(self, image: str = "kernel") -> dict[str, dict]:
        """Instructions and cycles per function of one image, summed over cores."""
        out: dict[str, dict] = {}
        for r in self.functions:
            if r["image"] != image:
                continue
            t = out.setdefault(r["function"], {"instructions": 0, "cycles": 0})
            t["instructions"] += r["instructions"]
            t["cycles"] += r["cycles"]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.as_dict(), indent=indent, sort_keys=False)

    def summary(self) -> str:
        """A human-readable summary for the terminal."""
        lines = [f"{self.scenario} on {self.arch}: {'OK' if self.ok else 'NOT OK'} "
                 f"({self.status}{': ' + self.message if self.message else ''})"]
        for p in self.processes:
            how = (f"killed: {p.fault.describe()}" if p.fault else
                   "still running when the run ended" if p.running else f"exit {p.exit_code}")
            mark = "" if p.expectation_met else f"   <-- expected {p.expect}"
            lines.append(f"  [{p.pid}] {p.name:<14} core {p.core}  {how}{mark}")
            for ln in p.console.splitlines()[:20]:
                lines.append(f"        | {ln}")
        for c in self.channels:
            if c.setup_error:
                lines.append(f"  channel {c.id} {c.name}: rejected by the kernel: {c.setup_error}")
                continue
            cs = c.consumer_stats
            lines.append(f"  channel {c.id} {c.name} ({c.producer}->{c.consumer}, {c.capacity} B, "
                         f"{c.mode}{', verified' if c.verified else ''}): "
                         f"sent {c.producer_stats.get('sent_msgs', 0)} msgs, "
                         f"received {cs.get('recv_msgs', 0)}, verified {cs.get('verified_bytes', 0)} B"
                         f"{' (integrity unknown: the consumer did not report)' if c.intact is None else ''}"
                         f"{' (NOT intact)' if c.intact is False else ''}"
                         f"{' (incomplete)' if c.intact and c.complete is False else ''}")
            if c.mode == "notify" and c.notifications:
                lines.append(f"      notifications: {c.notifications}")
            for f in c.faults:
                lines.append(f"      fault: {f}")
        nic = (self.devices or {}).get("nic")
        if nic:
            c = nic["counters"]
            drops = ", ".join(f"{k} {v}" for k, v in c.items() if v and k not in (
                "rx_frames", "rx_bytes", "tx_frames", "tx_bytes", "interrupts"))
            lines.append(f"  nic: {c['rx_frames']} frames in, {c['tx_frames']} out, "
                         f"{c['interrupts']} interrupts; dropped or refused: {drops or 'none'}")
            io = nic["iommu"]
            lines.append(f"  iommu: {io['faults_total']} blocked DMA"
                         + "".join(f"\n      fault: stream {f['stream']} {f['access']} "
                                   f"{f['iova']} ({f['length']} B): {f['reason']}"
                                   for f in io["faults"][:10]))
        for c in self.cores:
            lines.append(f"  core {c.id}: {c.instructions} instructions, {c.cycles} cycles "
                         f"(kernel {c.kernel_instructions} insns), "
                         f"{c.coherence_transfers} line transfers")
        return "\n".join(lines)
