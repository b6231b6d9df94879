"""Every process's mappings, read back from the page tables the kernel built in RAM.

:func:`dump_mappings` gives ``RunReport.mappings`` (``run(..., dump_mappings=True)``):
per process, its user mappings coalesced into runs and named by what the kernel put there
(from the kernel's own set-up records in its event log), plus the facts the gate-policy
proofs need (``_channels``, ``_boot``, ``_page_tables``, ``_kernel_half_user``).
"""

from __future__ import annotations

import dataclasses
import struct

from keusim.machine import Machine, MachineResult, loader
from keusim.machine.pagetable import PAGE, U, coalesce, walk_all
from keusim.manifest import SystemSpec
from keusim.report import KLOG_CHAN_DATA, KLOG_CHAN_IDX, KLOG_CTL, KLOG_PROC
from keusim.system import CHAN_STRIDE, CHAN_VA_BASE, INFO_VA


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


def dump_mappings(m: Machine, spec: SystemSpec, res: MachineResult) -> dict:
    """Every process's user mappings, read from the page tables in emulated RAM, plus the
    facts the gate-policy proofs need (module docstring)."""
    owners = _owner_map(res, m, spec)
    roots = {pid: a for typ, pid, a, b, c in res.klog if typ == KLOG_PROC}
    out = _user_rows(m, spec, roots, owners)
    out["_kernel_control_pages"] = sorted(
        f"{pa:#x}" for pa, o in owners.items() if o.startswith("kernel"))
    out["_channels"] = _channels(spec, res)
    out["_boot"] = _boot_facts(m)
    tables, khalf = _table_scan(m, spec, roots, owners, int(out["_boot"]["kernel_root"], 16))
    out["_page_tables"] = [f"{t:#x}" for t in sorted(tables)]
    out["_kernel_half_user"] = khalf
    return out


def _user_rows(m: Machine, spec: SystemSpec, roots: dict[int, int],
               owners: dict[int, str]) -> dict[str, list[dict]]:
    """Per process: its user-half mappings as runs, each named by its owner."""
    out = {}
    for i, p in enumerate(spec.processes):
        root = roots.get(i + 1)
        if root is None:
            continue
        runs = coalesce(list(walk_all(m.ram, m.arch.pte, root)))
        rows = []
        for r in runs:
            # A run can span pages of different owners (the broken layout maps head and
            # tail both RW, contiguous in va and pa): split it where the owner changes,
            # so each row names what it maps (the gate-policy proofs name rows).
            pieces: list[list] = []
            for off in range(0, r.size, PAGE):
                o = _classify(r.va + off, r.pa + off, owners, p.name)
                if pieces and pieces[-1][2] == o:
                    pieces[-1][1] += PAGE
                else:
                    pieces.append([off, PAGE, o])
            for off, size, o in pieces:
                d = dataclasses.replace(r, va=r.va + off, pa=r.pa + off, size=size).as_dict()
                d["owner"] = o
                rows.append(d)
        out[p.name] = rows
    return out


def _channels(spec: SystemSpec, res: MachineResult) -> list[dict]:
    """Each channel the kernel set up (KLOG_CHAN_IDX/DATA): endpoints, capacity, and the
    physical addresses of head, tail and the first data page."""
    chans: dict[int, dict] = {}
    for typ, _pid, a, b, c in res.klog:
        if typ == KLOG_CHAN_IDX:
            sc = spec.channels[a]
            chans[a] = {"id": a, "producer": sc.producer, "consumer": sc.consumer,
                        "capacity": sc.capacity, "head_pa": f"{b:#x}", "tail_pa": f"{c:#x}"}
        elif typ == KLOG_CHAN_DATA and a in chans:
            chans[a]["data_pa"] = f"{b:#x}"
    return [chans[i] for i in sorted(chans)]


def _boot_facts(m: Machine) -> dict[str, str]:
    """From the boot-info block: free_pa (everything below it is the loader's: boot-info,
    kernel image, boot modules, boot stacks, boot page tables), the IPC pool and the
    kernel's table root."""
    free_pa, pool_pa, pool_size, kroot = struct.unpack(
        "<QQQQ", m.ram.read(loader.BOOTINFO_PA + 32, 32))
    return {"free_pa": f"{free_pa:#x}", "pool_pa": f"{pool_pa:#x}",
            "pool_size": f"{pool_size:#x}", "kernel_root": f"{kroot:#x}"}


def _table_scan(m: Machine, spec: SystemSpec, roots: dict[int, int], owners: dict[int, str],
                kroot: int) -> tuple[set[int], dict[str, list]]:
    """Every page-table page reachable from a process root or the kernel root, and per
    process the user-accessible (U) leaves at or above USER_TOP in its MMU context
    (x86-64: entries 256..511 of its own root, copied from the kernel's; arm64: TTBR0
    entries 256..511 and the TTBR1 kernel root). Normally empty."""
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
    return tables, khalf


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


