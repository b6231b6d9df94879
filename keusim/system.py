"""Running a system: manifest -> builds -> machine -> boot -> run -> RunReport.

This is the library entry point that the CLI, experiments and notebooks share:

    >>> from keusim.system import run
    >>> r = run("pingpong", arch="arm64", params={"messages": 1000})
    >>> r.ok, r.channel(0).intact
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from keusim import abi
from keusim import arch as archmod
from keusim.crypto.drbg import seed_key
from keusim.errors import KeusimError
from keusim.machine import Machine, MachineResult, loader
from keusim.machine.machine import DEFAULT_LOOKAHEAD, DEFAULT_QUANTUM
from keusim.manifest import SystemSpec, resolve
from keusim.model.costmodel import FlatCost
from keusim.report import (
    CHANNEL_SETUP_ERRORS,
    FAULT_KINDS,
    KLOG_CHAN_ERR,
    KLOG_CHAN_STATS,
    KLOG_EXIT,
    KLOG_FAULT,
    KLOG_NOTIFY,
    KLOG_PROC,
    KLOG_STAT,
    RING_ERRORS,
    STAT_KEYS,
    ChannelReport,
    CoreReport,
    Fault,
    ProcessReport,
    RunReport,
)
from keusim.toolchain import builds

if TYPE_CHECKING:
    from keusim.machine.gdb import GdbOptions

# The user address layout, from the kernel's own header (kernel/include/memlayout.h).
USER_BASE, INFO_VA, CHAN_VA_BASE, CHAN_STRIDE = (
    abi.define("memlayout.h", n) for n in ("USER_BASE", "INFO_VA", "CHAN_VA_BASE", "CHAN_STRIDE"))
# The manifest's `nic` values -> NIC_CAP_* (kernel/include/bootinfo.h).
NIC_CAPS = {"": abi.define("bootinfo.h", "NIC_CAP_NONE"),
            "queue": abi.define("bootinfo.h", "NIC_CAP_QUEUE"),
            "syscalls": abi.define("bootinfo.h", "NIC_CAP_SYSCALLS")}


def _cost_model(profile: str | None, arch: str):
    """The block cost model and machine parameters for a profile name (None: flat).

    ``flat`` is one cycle per instruction and nothing else: no coherence, IPI or
    exception costs (docs/cycle-model.md)."""
    if not profile or profile == "flat":
        return FlatCost(), {"coherence": (0, 0, 0), "ipi_cycles": 0, "exception_cycles": 0}
    try:
        from keusim.model.costmodel import ProfileCost
        from keusim.model.profiles import load_profile
    except ImportError as e:  # pragma: no cover - profiles not installed
        raise KeusimError(f"profiles are unavailable ({e})") from e
    prof = load_profile(profile)
    kw = {"coherence": prof.coherence(), "coherence_stream": prof.coherence_stream(),
          "coherence_posted": prof.coherence_posted(),
          "coherence_stream_access": prof.coherence_stream_access(),
          "ipi_cycles": prof.ipi_cycles,
          "exception_cycles": prof.cycles("trap.exception_entry")}
    return ProfileCost(prof, arch), kw


def build_images(spec: SystemSpec, arch: str, params: dict) -> list[loader.ElfImage]:
    """Build (or load) every process image, checked for the user address range."""
    a = archmod.get(arch)
    defines = tuple(f"-D{k.upper()}={v}" for k, v in sorted(params.items()))
    images = []
    for p in spec.processes:
        if p.is_elf:
            path = p.sources[0]
        else:
            path = builds.guest_image(arch, p.sources, name=f"{spec.name}-{p.name}-{arch}",
                                     extra_cflags=defines + p.cflags)
        img = loader.ElfImage(path, a.elf_machine, f"image of process {p.name!r}")
        img.check_user(USER_BASE, INFO_VA)
        images.append(img)
    return images


class BootedSystem:
    """A system built, loaded and booted on a :class:`~keusim.machine.Machine`: the one boot
    path behind :func:`run`, :mod:`keusim.analysis` (trace, attribution, notify cost), the
    experiments and the notebooks.

    Args are those of :func:`run`. Use it as a context manager (or call :meth:`close`);
    :meth:`step` runs one scheduler slice, :meth:`finish` runs to the end, :meth:`report`
    gives the :class:`~keusim.report.RunReport`.

        >>> with BootedSystem("pingpong", profile="host") as b:
        ...     b.finish()
        ...     rep = b.report()
    """

    def __init__(self, system: str | Path | SystemSpec, arch: str | None = None,
                 params: dict | None = None, profile: str | None = None, *,
                 verified: bool = False, quantum: int = DEFAULT_QUANTUM,
                 lookahead: int = DEFAULT_LOOKAHEAD, max_cycles: int | None = None,
                 kernel_flags: int = 0, gdb: GdbOptions | None = None,
                 fast_forward: bool = True, wire=None, iommu_bypass: bool = False):
        spec = system if isinstance(system, SystemSpec) else resolve(system)
        if verified:
            spec = _verified(spec)
        self.spec = spec
        self.arch = archmod.normalize(arch or spec.arch or "x86_64")
        a = archmod.get(self.arch)
        self.params = _check_params(spec, params or {})
        self.profile = profile or "flat"
        self.images = build_images(spec, self.arch, self.params)
        self.kernel = loader.ElfImage(builds.kernel_image(self.arch), a.elf_machine, "kernel")
        idx = {p.name: i for i, p in enumerate(spec.processes)}
        chans = [loader.BootChan(idx[c.producer], idx[c.consumer], c.capacity,
                                 0 if c.mode == "poll" else 1, c.verified) for c in spec.channels]
        ram = spec.ram_mb << 20
        self.cost, mkw = _cost_model(profile, self.arch)
        self.machine = Machine(a, spec.cores, ram, cost=self.cost, lookahead=lookahead,
                               quantum=quantum, shared=loader.pool_region(ram, chans),
                               fast_forward=fast_forward, **mkw)
        self.budget = max_cycles or spec.max_cycles
        self.machine.max_cycles = self.budget
        self.result: MachineResult | None = None
        self._roots: dict[int, int] = {}
        self.nic = None
        try:
            procs = [loader.BootProc(p.name, img, p.core, NIC_CAPS[p.nic])
                     for p, img in zip(spec.processes, self.images, strict=True)]
            if wire is not None and not any(p.nic for p in spec.processes):
                raise KeusimError(f"system {spec.name!r} has no process with a NIC, so a wire "
                                  "(--pcap-in, --tap) has nothing to connect to; give one "
                                  "process nic = \"queue\" in the manifest")
            if any(p.nic for p in spec.processes):
                from keusim.machine.iommu import Iommu
                from keusim.machine.nic import Nic
                self.nic = Nic(self.machine, Iommu(self.machine, bypass=iommu_bypass))
                if wire is None:
                    from keusim.net.wire import default_wire
                    wire = default_wire()
                self.nic.attach(wire)
            loader.boot(self.machine, self.kernel, procs, chans, seed=seed_key(spec.seed),
                        flags=kernel_flags, timeslice=spec.timeslice, nic=self.nic is not None)
            if gdb is not None:
                from keusim.machine.gdb import GdbStub
                self.machine.debugger = GdbStub(gdb, self.machine, [("kernel", self.kernel.path)] + [
                    (p.name, img.path) for p, img in zip(spec.processes, self.images, strict=True)])
        except BaseException:
            self.machine.close()
            raise

    def __enter__(self) -> BootedSystem:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.machine.close()
        wire = self.nic.wire if self.nic is not None else None
        if wire is not None and hasattr(wire, "close"):   # a TAP wire: device and namespace
            wire.close()

    def image(self, name: str) -> loader.ElfImage:
        """The ELF image of ``kernel`` or of a process by name."""
        if name == "kernel":
            return self.kernel
        for p, img in zip(self.spec.processes, self.images, strict=True):
            if p.name == name:
                return img
        names = ", ".join(["kernel"] + [p.name for p in self.spec.processes])
        raise KeusimError(f"system {self.spec.name!r} has no image {name!r} (it has: {names})")

    def step(self) -> bool:
        """One scheduler slice; False once the run is over."""
        return self.machine.step()

    def finish(self, progress: Callable[[int, int], None] | None = None) -> MachineResult:
        """Run to the end (from wherever stepping left it) and collect the result."""
        if self.result is None:
            budget = self.budget
            self.result = self.machine.run(
                budget, (lambda t: progress(t, budget)) if progress else None)
        return self.result

    def klog(self) -> list[tuple[int, int, int, int, int]]:
        """The kernel's event records so far, as the report device received them
        (kernel/include/klog.h)."""
        return list(self.machine.klog)

    def process_of_root(self, root: int) -> str | None:
        """The process whose user MMU root is ``root`` (from the kernel's log), or None."""
        if root not in self._roots:   # re-read the log only for a root not seen yet
            self._roots = {a: pid for typ, pid, a, _b, _c in self.klog() if typ == KLOG_PROC}
        pid = self._roots.get(root)
        if pid is None or not 0 < pid <= len(self.spec.processes):
            return None
        return self.spec.processes[pid - 1].name

    def report(self, *, attribution: bool = False, dump_mappings: bool = False) -> RunReport:
        """The :class:`~keusim.report.RunReport` of the run (finishing it first)."""
        res = self.finish()
        mappings = None
        if dump_mappings:
            from keusim.analysis.mappings import dump_mappings as dump
            mappings = dump(self.machine, self.spec, res)
        rep = _report(self.spec, self.arch, self.params, self.machine, res, self.profile,
                      mappings)
        if self.nic is not None:
            rep = dataclasses.replace(rep, devices={"nic": self.nic.report()})
        if attribution:
            from keusim.analysis.attribution import function_rows
            rep = dataclasses.replace(rep, functions=function_rows(self, res))
        return rep


def run(system: str | Path | SystemSpec, arch: str | None = None, params: dict | None = None,
        profile: str | None = None, quantum: int = DEFAULT_QUANTUM,
        lookahead: int = DEFAULT_LOOKAHEAD, max_cycles: int | None = None,
        dump_mappings: bool = False, kernel_flags: int = 0, verified: bool = False,
        attribution: bool = False,
        progress: Callable[[int, int], None] | None = None,
        gdb: GdbOptions | None = None, fast_forward: bool = True, wire=None,
        pcap_out: str | Path | None = None, iommu_bypass: bool = False) -> RunReport:
    """Run a system and return its report.

    Args:
        system: a built-in scenario name, a manifest path, or a SystemSpec.
        arch: ``x86_64`` or ``arm64`` (default: the manifest's, else x86_64).
        params: overrides for the manifest's [params] (become -DNAME=value).
        profile: microarchitecture profile for the cycle model (default: flat 1 cycle/insn).
        quantum: cycles a core runs alone between host checks; never changes results.
        lookahead: cross-core window in cycles (docs/architecture.md, virtual time):
            :data:`~keusim.machine.machine.DEFAULT_LOOKAHEAD` is within ~1% of lookahead 1
            on pingpong; 200 runs 2-3x faster but is 6-13% off.
        max_cycles: model-time budget (default: the manifest's).
        dump_mappings: read every process's page tables into ``report.mappings``.
        kernel_flags: test-only kernel options (bootinfo flags).
        attribution: break instructions and cycles down by function into
            ``report.functions`` (kernel and each process, from ELF symbols).
        verified: switch every channel to notify mode with SipHash-verified
            descriptors (guests see -DVERIFIED=1).
        progress: called as progress(model_cycles, max_cycles) now and then.
        gdb: a :class:`keusim.machine.gdb.GdbOptions`: stop at boot and serve
            gdb-multiarch on one core (README.md, "Debugging a guest").
        fast_forward: park cores that spin on shared memory until another core writes
            what they poll (docs/architecture.md, "virtual time"). Reports are
            byte-identical with it off (``--no-fast-forward``), which is only slower.
        wire: what the NIC's link connects to (:mod:`keusim.net.wire`: a scripted peer,
            a pcap replay, or ``keusim.net.tap.TapWire``); a system with a ``nic``
            process and no wire gets :func:`keusim.net.wire.default_wire`.
        pcap_out: write every frame that crossed the NIC's link to this pcap file.
        iommu_bypass: test-only planted bug: the IOMMU passes failed translations through.
    """
    with BootedSystem(system, arch, params, profile, verified=verified, quantum=quantum,
                      lookahead=lookahead, max_cycles=max_cycles,
                      kernel_flags=kernel_flags, gdb=gdb, fast_forward=fast_forward,
                      wire=wire, iommu_bypass=iommu_bypass) as booted:
        booted.finish(progress)
        if pcap_out is not None:
            if booted.nic is None:
                raise KeusimError(f"system {booted.spec.name!r} has no NIC, so there is no "
                                  "capture to write; drop pcap_out or give a process nic = \"queue\"")
            booted.nic.write_pcap(pcap_out)
        return booted.report(attribution=attribution, dump_mappings=dump_mappings)


def _check_params(spec: SystemSpec, params: dict) -> dict:
    """The manifest's [params] with ``params`` applied; an unknown name is an error."""
    allp = dict(spec.params)
    for k, v in params.items():
        if k not in allp:
            known = ", ".join(sorted(allp)) or "none"
            raise KeusimError(f"scenario {spec.name!r} has no parameter {k!r} (it has: {known})")
        allp[k] = v
    return allp


def _verified(spec: SystemSpec) -> SystemSpec:
    chans = tuple(dataclasses.replace(c, mode="notify", verified=True) for c in spec.channels)
    return dataclasses.replace(spec, channels=chans, params={**spec.params, "verified": 1})


def _expectation(expect: str, exit_code: int | None, fault: Fault | None,
                 chanfaults: frozenset[str] = frozenset()) -> bool:
    if expect == "any":
        return True
    if expect.startswith("exit:"):
        return fault is None and exit_code == int(expect[5:])
    if expect.startswith("fault:"):
        return fault is not None and fault.kind == expect[6:]
    if expect.startswith("chanfault"):
        # Met when the process recorded a corrupt channel with ks_chanfault (the code
        # named after the colon, if any) and was not killed for something else.
        code = expect.partition(":")[2]
        if fault is not None:
            return fault.kind == "channel-fault"
        return bool(chanfaults) and (not code or code in chanfaults)
    return False


def _fault(spec: SystemSpec, m: Machine, pid: int, kind: int, addr: int, pc: int) -> Fault:
    """A fault record, named: process, pid, core, and the symbol of pc in its image."""
    i = pid - 1
    name = spec.processes[i].name if 0 <= i < len(spec.processes) else "?"
    core = spec.processes[i].core if 0 <= i < len(spec.processes) else -1
    sym = m.proc_images[i].where(pc) if 0 <= i < len(m.proc_images) else f"{pc:#x}"
    return Fault(FAULT_KINDS.get(kind, f"kind-{kind}"), addr, pc, sym, name, pid, core)


def _report(spec: SystemSpec, arch: str, params: dict, m: Machine, res: MachineResult,
            profile: str, mappings) -> RunReport:
    exits: dict[int, int] = {}
    faults: dict[int, Fault] = {}
    stats: dict[tuple[int, int], dict] = {}
    chan_err: dict[int, str] = {}
    chan_faults: dict[int, list] = {}
    recorded: dict[int, set[str]] = {}   # pid -> ring errors it reported (ks_chanfault)
    notes: dict[int, dict] = {}
    for typ, pid, a, b, c in res.klog:
        if typ == KLOG_EXIT:
            exits[pid] = a - (1 << 64) if a >= 1 << 63 else a
        elif typ == KLOG_FAULT:
            faults[pid] = _fault(spec, m, pid, a, b, c)
        elif typ == KLOG_STAT:
            stats.setdefault((a, pid), {})[STAT_KEYS.get(b, f"key{b}")] = c
        elif typ == KLOG_CHAN_ERR:
            if pid == 0:
                chan_err[a] = CHANNEL_SETUP_ERRORS.get(b, f"error {b}")
            else:
                code = b - (1 << 64) if b >= 1 << 63 else b
                recorded.setdefault(pid, set()).add(str(RING_ERRORS.get(code, code)))
                who = spec.processes[pid - 1].name if 0 < pid <= len(spec.processes) else pid
                chan_faults.setdefault(a, []).append(
                    f"{RING_ERRORS.get(code, code)} (found and recorded by {who})")
        elif typ == KLOG_NOTIFY and b:
            n = notes.setdefault(a, {"accepted": 0, "rejected": {}})
            kind = FAULT_KINDS.get(b, str(b))
            n["rejected"][kind] = n["rejected"].get(kind, 0) + 1
        elif typ == KLOG_CHAN_STATS:
            n = notes.setdefault(a, {"accepted": 0, "rejected": {}})
            n["accepted"] = b
    procs = []
    for i, p in enumerate(spec.processes):
        pid = i + 1
        f = faults.get(pid)
        ec = exits.get(pid)
        console = res.consoles.get(pid, b"").decode("utf-8", "replace")
        procs.append(ProcessReport(p.name, pid, p.core, ec, f, console, p.expect,
                                   _expectation(p.expect, ec, f,
                                                frozenset(recorded.get(pid, ())))))
    cores = tuple(CoreReport(c.id, c.native.k.insns, c.native.k.clock, c.native.k.kinsns,
                             c.native.k.kcycles, c.native.k.coh_xfers, c.native.k.coh_cycles,
                             c.native.k.shared_reads, c.native.k.shared_writes)
                  for c in m.cores)
    idx = {p.name: i for i, p in enumerate(spec.processes)}
    chans = []
    for i, c in enumerate(spec.channels):
        chans.append(ChannelReport(
            i, c.name, c.producer, c.consumer, c.capacity, c.mode, c.verified, chan_err.get(i),
            stats.get((i, idx[c.producer] + 1), {}), stats.get((i, idx[c.consumer] + 1), {}),
            notes.get(i, {}), tuple(chan_faults.get(i, []))))
    ok = res.status == "poweroff" and all(p.expectation_met for p in procs)
    kernel_msg = res.message
    if res.status == "poweroff" and not ok:
        bad = [p.name for p in procs if not p.expectation_met]
        kernel_msg = f"unexpected outcome for: {', '.join(bad)}"
    return RunReport(spec.name, arch, ok, res.status, kernel_msg, dict(sorted(params.items())),
                     tuple(procs), cores, tuple(chans), profile, mappings)


def default_progress(label: str):
    """A progress callback for :func:`run` showing model time on stderr when it is a
    terminal, else None. A run ends when its processes do, usually long before
    max_cycles, so the bar shows model time advanced and its rate, not a percentage."""
    from keusim.progress import progress_bar

    bar = progress_bar(desc=label, unit=" cycles", unit_scale=True)
    if bar is None:
        return None

    def cb(t: int, budget: int) -> None:
        bar.update(max(0, t - bar.n))
    return cb
