"""Running a system: manifest -> builds -> machine -> boot -> run -> RunReport.

This is the library entry point that the CLI, experiments and notebooks share:

    >>> from keusim.system import run
    >>> r = run("pingpong", arch="arm64", params={"messages": 1000})
    >>> r.ok, r.channel(0).intact
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from keusim import arch as archmod
from keusim.crypto.drbg import seed_key
from keusim.errors import KeusimError
from keusim.machine import Machine, MachineResult, loader
from keusim.machine.pagetable import coalesce, walk_all
from keusim.manifest import SystemSpec, resolve
from keusim.model.costmodel import FRACTION, FlatCost, apportion
from keusim.report import (
    CHANNEL_SETUP_ERRORS,
    FAULT_KINDS,
    KLOG_CHAN_DATA,
    KLOG_CHAN_ERR,
    KLOG_CHAN_IDX,
    KLOG_CHAN_STATS,
    KLOG_CTL,
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

USER_BASE, INFO_VA = 0x400000, 0x10000000
CHAN_VA_BASE, CHAN_STRIDE = 0x20000000, 0x400000


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


def run(system: str | Path | SystemSpec, arch: str | None = None, params: dict | None = None,
        profile: str | None = None, quantum: int = 200_000, lookahead: int = 20,
        max_cycles: int | None = None, dump_mappings: bool = False, kernel_flags: int = 0,
        verified: bool = False, attribution: bool = False,
        progress: Callable[[int, int], None] | None = None) -> RunReport:
    """Run a system and return its report.

    Args:
        system: a built-in scenario name, a manifest path, or a SystemSpec.
        arch: ``x86_64`` or ``arm64`` (default: the manifest's, else x86_64).
        params: overrides for the manifest's [params] (become -DNAME=value).
        profile: microarchitecture profile for the cycle model (default: flat 1 cycle/insn).
        quantum: cycles a core runs alone between host checks; never changes results.
        lookahead: cross-core window in cycles (docs/architecture.md, virtual time): the
            default 20 is within ~1% of lookahead 1 on pingpong; 200 runs 2-3x faster
            but is 6-13% off.
        max_cycles: model-time budget (default: the manifest's).
        dump_mappings: read every process's page tables into ``report.mappings``.
        kernel_flags: test-only kernel options (bootinfo flags).
        attribution: break instructions and cycles down by function into
            ``report.functions`` (kernel and each process, from ELF symbols).
        verified: switch every channel to notify mode with SipHash-verified
            descriptors (guests see -DVERIFIED=1).
        progress: called as progress(model_cycles, max_cycles) now and then.
    """
    spec = system if isinstance(system, SystemSpec) else resolve(system)
    if verified:
        spec = _verified(spec)
    a_name = archmod.normalize(arch or spec.arch or "x86_64")
    a = archmod.get(a_name)
    allp = dict(spec.params)
    for k, v in (params or {}).items():
        if k not in allp:
            known = ", ".join(sorted(allp)) or "none"
            raise KeusimError(f"scenario {spec.name!r} has no parameter {k!r} (it has: {known})")
        allp[k] = v
    images = build_images(spec, a_name, allp)
    kernel = loader.ElfImage(builds.kernel_image(a_name), a.elf_machine, "kernel")
    idx = {p.name: i for i, p in enumerate(spec.processes)}
    chans = [loader.BootChan(idx[c.producer], idx[c.consumer], c.capacity,
                             0 if c.mode == "poll" else 1, c.verified) for c in spec.channels]
    ram = spec.ram_mb << 20
    cost, mkw = _cost_model(profile, a_name)
    m = Machine(a, spec.cores, ram, cost=cost, lookahead=lookahead, quantum=quantum,
                shared=loader.pool_region(ram, chans), **mkw)
    try:
        procs = [loader.BootProc(p.name, img, p.core) for p, img in zip(spec.processes, images, strict=True)]
        loader.boot(m, kernel, procs, chans, seed=seed_key(spec.seed), flags=kernel_flags,
                    timeslice=spec.timeslice)
        budget = max_cycles or spec.max_cycles
        res = m.run(budget, (lambda t: progress(t, budget)) if progress else None)
        mappings = _dump_mappings(m, spec, res) if dump_mappings else None
        rep = _report(spec, a_name, allp, m, res, profile or "flat", mappings)
        if attribution:
            import dataclasses
            rep = dataclasses.replace(rep, functions=_attribution(m, spec, res, kernel, images))
        return rep
    finally:
        m.close()


def _verified(spec: SystemSpec) -> SystemSpec:
    import dataclasses
    chans = tuple(dataclasses.replace(c, mode="notify", verified=True) for c in spec.channels)
    return dataclasses.replace(spec, channels=chans, params={**spec.params, "verified": 1})


def _expectation(expect: str, exit_code: int | None, fault: Fault | None) -> bool:
    if expect == "any":
        return True
    if expect.startswith("exit:"):
        return fault is None and exit_code == int(expect[5:])
    if expect.startswith("fault:"):
        return fault is not None and fault.kind == expect[6:]
    if expect.startswith("chanfault"):
        return fault is not None and fault.kind == "channel-fault"
    return False


def _report(spec: SystemSpec, arch: str, params: dict, m: Machine, res: MachineResult,
            profile: str, mappings) -> RunReport:
    exits: dict[int, int] = {}
    faults: dict[int, Fault] = {}
    stats: dict[tuple[int, int], dict] = {}
    chan_err: dict[int, str] = {}
    chan_faults: dict[int, list] = {}
    notes: dict[int, dict] = {}
    for typ, pid, a, b, c in res.klog:
        if typ == KLOG_EXIT:
            exits[pid] = a - (1 << 64) if a >= 1 << 63 else a
        elif typ == KLOG_FAULT:
            faults[pid] = Fault(FAULT_KINDS.get(a, f"kind-{a}"), b, c)
        elif typ == KLOG_STAT:
            stats.setdefault((a, pid), {})[STAT_KEYS.get(b, f"key{b}")] = c
        elif typ == KLOG_CHAN_ERR:
            if pid == 0:
                chan_err[a] = CHANNEL_SETUP_ERRORS.get(b, f"error {b}")
            else:
                code = b - (1 << 64) if b >= 1 << 63 else b
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
                                   _expectation(p.expect, ec, f)))
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
                     tuple(procs), cores, tuple(chans), profile, res.klog_dropped, mappings)


def _attribution(m: Machine, spec: SystemSpec, res: MachineResult, kernel, images) -> tuple:
    """Per (core, image, function): instructions, cycles and block executions."""
    roots = {a: pid for typ, pid, a, b, c in res.klog if typ == KLOG_PROC}
    acc: dict[tuple[int, str, str], list[int]] = {}
    for core in m.cores:
        for va, root, ninsn, cost, count in core.native.blocks():
            if root == 0:
                where, fn = "kernel", kernel.function(va)
            else:
                pid = roots.get(root)
                if pid is None:
                    continue
                where, fn = spec.processes[pid - 1].name, images[pid - 1].function(va)
            a = acc.setdefault((core.id, where, fn), [0, 0, 0])
            a[0] += ninsn * count
            a[1] += cost * count          # 1/FRACTION cycles
            a[2] += count
    # Whole cycles per function that add up, per core, to what the blocks put on the clock
    # (the sum of their exact costs, rounded down: fastcore.frac holds the rest).
    cycles: dict[tuple[int, str, str], int] = {}
    for cid in {k[0] for k in acc}:
        keys = [k for k in acc if k[0] == cid]
        total = sum(acc[k][1] for k in keys) // FRACTION
        cycles.update(apportion({k: acc[k][1] for k in keys}, total))
    rows = [{"core": c, "image": w, "function": f, "instructions": v[0],
             "cycles": cycles[(c, w, f)], "block_executions": v[2]}
            for (c, w, f), v in acc.items()]
    rows.sort(key=lambda r: (r["core"], -r["cycles"], r["image"], r["function"]))
    return tuple(rows)


def _owner_map(res: MachineResult, m: Machine, spec: SystemSpec) -> dict[int, str]:
    """Physical page -> what the kernel put there (from its own set-up records)."""
    owners: dict[int, str] = {}
    for typ, _pid, a, b, c in res.klog:
        if typ == KLOG_CHAN_IDX:
            owners[b] = f"channel {a} head"
            owners[c] = f"channel {a} tail"
        elif typ == KLOG_CHAN_DATA:
            for off in range(0, c, 4096):
                owners[b + off] = f"channel {a} data"
        elif typ == KLOG_CTL:
            for off in range(0, b, 4096):
                owners[a + off] = "kernel control (channel table, keys)"
    return owners


def _dump_mappings(m: Machine, spec: SystemSpec, res: MachineResult) -> dict:
    """Every process's user mappings, read from the page tables in emulated RAM."""
    import dataclasses

    owners = _owner_map(res, m, spec)
    roots = {pid: a for typ, pid, a, b, c in res.klog if typ == KLOG_PROC}
    out = {}
    for i, p in enumerate(spec.processes):
        root = roots.get(i + 1)
        if root is None:
            continue
        pages = list(walk_all(m.ram, m.arch.pte, root))
        runs = coalesce(pages)
        rows = []
        for r in runs:
            # A run can span pages of different owners (the broken layout maps head and
            # tail both RW, contiguous in va and pa): split it where the owner changes,
            # so each row names what it maps (the gate-policy proofs name rows).
            pieces: list[list] = []
            for off in range(0, r.size, 4096):
                o = _classify(r.va + off, r.pa + off, owners, p.name)
                if pieces and pieces[-1][2] == o:
                    pieces[-1][1] += 4096
                else:
                    pieces.append([off, 4096, o])
            for off, size, o in pieces:
                d = dataclasses.replace(r, va=r.va + off, pa=r.pa + off, size=size).as_dict()
                d["owner"] = o
                rows.append(d)
        out[p.name] = rows
    out["_kernel_control_pages"] = sorted(
        f"{pa:#x}" for pa, o in owners.items() if o.startswith("kernel"))
    # -- Added for the gate-policy proofs (proofs/gate_policy.py, docs/proofs.md) --------
    # Facts those proofs need beyond the user-half rows above, all read from the kernel's
    # own records and from emulated RAM:
    #   _channels          each channel the kernel set up (KLOG_CHAN_IDX/DATA): endpoints,
    #                      capacity, and the pa of head, tail and the first data page;
    #   _boot              from the boot-info block: free_pa (everything below it is the
    #                      loader's: boot-info, kernel image, boot modules, boot stacks,
    #                      boot page tables), the IPC pool and the kernel's table root;
    #   _page_tables       every page-table page reachable from a process root or from
    #                      the kernel root;
    #   _kernel_half_user  per process, the user-accessible (U) leaves at or above
    #                      USER_TOP in its MMU context (x86-64: entries 256..511 of its own
    #                      root, copied from the kernel's; arm64: TTBR0 entries 256..511
    #                      and the TTBR1 kernel root). Normally empty.
    import struct

    from keusim.machine.pagetable import PAGE, U

    chans: dict[int, dict] = {}
    for typ, _pid, a, b, c in res.klog:
        if typ == KLOG_CHAN_IDX:
            sc = spec.channels[a]
            chans[a] = {"id": a, "producer": sc.producer, "consumer": sc.consumer,
                        "capacity": sc.capacity, "head_pa": f"{b:#x}", "tail_pa": f"{c:#x}"}
        elif typ == KLOG_CHAN_DATA and a in chans:
            chans[a]["data_pa"] = f"{b:#x}"
    out["_channels"] = [chans[i] for i in sorted(chans)]
    free_pa, pool_pa, pool_size, kroot = struct.unpack(
        "<QQQQ", m.ram.read(loader.BOOTINFO_PA + 32, 32))
    out["_boot"] = {"free_pa": f"{free_pa:#x}", "pool_pa": f"{pool_pa:#x}",
                    "pool_size": f"{pool_size:#x}", "kernel_root": f"{kroot:#x}"}
    tables: set[int] = set()
    memo: dict[tuple[int, int, int], list] = {}

    def scan(t: int, level: int, va: int, idxs: range) -> list[tuple[int, int, int]]:
        """Record t and its subtables in `tables`; return its U leaves (va, pa, perm).
        Shared subtrees (the kernel half) are scanned once (memo)."""
        key = (t, level, va)
        if idxs == range(512) and key in memo:
            return memo[key]
        tables.add(t)
        ents = struct.unpack("<512Q", m.ram.read(t, PAGE))
        found: list[tuple[int, int, int]] = []
        for i in idxs:
            kind, pa, perm = m.arch.pte.decode(ents[i], level)
            v = va | i << (12 + 9 * level)
            if kind == "table" and level > 0:
                found += scan(pa, level - 1, v, range(512))
            elif kind == "leaf" and perm & U:
                found += [(v + o, pa + o, perm) for o in range(0, PAGE << 9 * level, PAGE)]
        if idxs == range(512):
            memo[key] = found
        return found

    ext = 0xFFFF << 48   # sign extension of a 48-bit upper-half address
    # x86-64: a user root's entries 256..511 are the (shared) kernel half. arm64: the
    # kernel half is the TTBR1 root; TTBR0 entries 256..511 are plain user-half VAs.
    shared_root = m.arch.kernel_half_in_user_root
    kleaves = scan(kroot, 3, 0, range(512))
    khalf: dict[str, list] = {}
    for i, p in enumerate(spec.processes):
        root = roots.get(i + 1)
        if root is None:
            continue
        scan(root, 3, 0, range(256))
        up = scan(root, 3, 0, range(256, 512))
        up = [(v | ext if shared_root else v, pa, perm) for v, pa, perm in up]
        if not shared_root:
            up += [(v | ext, pa, perm) for v, pa, perm in kleaves]
        khalf[p.name] = [dict(r.as_dict(), owner=owners.get(r.pa, "kernel half"))
                         for r in coalesce(up)]
    out["_page_tables"] = [f"{t:#x}" for t in sorted(tables)]
    out["_kernel_half_user"] = khalf
    return out


def _classify(va: int, pa: int, owners: dict[int, str], proc: str) -> str:
    if pa in owners:
        return owners[pa]
    if va == INFO_VA:
        return f"{proc} info page (kernel-written, read-only)"
    if CHAN_VA_BASE <= va < CHAN_VA_BASE + 32 * CHAN_STRIDE:
        return f"channel window {(va - CHAN_VA_BASE) // CHAN_STRIDE} (unknown page)"
    if va >= 0x7F0000000000:
        return f"{proc} stack"
    return f"{proc} image"


def default_progress(label: str):
    """A tqdm progress bar on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    # A run ends when its processes do, usually long before max_cycles, so the bar
    # shows model time advanced and its rate rather than a misleading percentage.
    bar = tqdm(desc=label, unit=" cycles", unit_scale=True, leave=False, file=sys.stderr)

    def cb(t: int, budget: int) -> None:
        bar.update(max(0, t - bar.n))
    return cb
