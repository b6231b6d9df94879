"""Where the cycles went: by process, kernel path, function and category.

A core's model clock is the sum of four things (docs/cycle-model.md §1, §3):

* the costs of the blocks it executed (the native block hook), which
  ``ProfileCost.attribute`` splits into **compute**, **memory** and **trap**;
* **coherence**: cache-line transfers on shared ring pages (the C memory hook,
  ``CoreReport.coherence_cycles``);
* **trap delivery**: exception and interrupt entry the machine performs
  (``trap.exception_entry`` per delivery; ``syscall`` is an instruction and is priced
  with its block), counted in the **trap** category;
* **idle**: time halted, waiting for an IPI or a timer.

:func:`attribute` runs a system once and returns an :class:`Attribution` whose totals add
up exactly to each core's cycles in its :class:`~keusim.report.RunReport`; its rows are
the report's ``functions`` rows (core, image, function, instructions, cycles, block
executions) with the category split added. Kernel functions are grouped into **paths**
(:data:`KERNEL_PATHS`: trap entry/exit, syscall dispatch, notify, scheduler, ...).

    >>> from keusim.analysis.attribution import attribute
    >>> a = attribute("pingpong", params={"messages": 200}, verified=True)
    >>> print(a.table())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from keusim.machine.machine import DEFAULT_LOOKAHEAD
from keusim.manifest import SystemSpec
from keusim.model.costmodel import CATEGORIES, FRACTION, apportion
from keusim.report import KLOG_PROC, RunReport

CATEGORY_NAMES: tuple[str, ...] = (*CATEGORIES, "coherence", "idle")
"""Categories of :meth:`Attribution.by_category`: compute, memory, trap (instructions and
machine-charged trap delivery), coherence, idle."""

KERNEL_PATHS: Mapping[str, tuple[str, ...]] = {
    # Names of kernel/ functions on both architectures; a trailing * is a prefix.
    "trap entry/exit": (
        "syscall_entry", "syscall_return", "alltraps", "trapret", "usertrapret", "vec*",
        "vectors", "x86_trap", "el0_sync", "el0_irq", "el1_sync", "el1_irq", "arm64_sync_el0",
        "arm64_sync_el1", "arm64_irq", "arm64_bad_vector", "bad_vector", "arch_tf_*",
        "arch_set_kstack", "user_fault", "gp_kind", "undef_kind", "noncanonical"),
    "syscall dispatch": ("syscall", "copyin", "user_range_ok", "console_write", "klog",
                         "strnlen", "arch_cycles", "chan_report", "chan_fault", "chan_side"),
    "notify (verify, wake)": ("sys_notify", "sys_wait", "notify_*", "siphash24", "reject",
                              "wakeup", "sleep_on"),
    "scheduler and switch": ("sched", "scheduler", "swtch", "yield", "arch_switch_uvm",
                             "arch_root_switched", "mycpu", "myproc", "arch_mycpu", "acquire",
                             "plat_wait", "arm_timeslice", "interrupt", "arch_cpu_relax",
                             "arch_mb", "plat_read", "plat_write", "arch_user_save",
                             "arch_user_restore", "slice_over", "others_waiting"),
    "boot and set-up": ("_start", "kmain", "kinit", "procinit", "proc_start", "elf_load",
                        "uvm_create", "mappages", "walk", "kalloc", "kalloc_pool",
                        "channels_init", "map_endpoint", "drbg_*", "klog_init", "arch_cpu_init",
                        "arch_uvm_init", "arch_context_init", "arch_pte_*", "proc_info",
                        "kprintf", "cpuid", "arch_fp_init"),
    "exit and shutdown": ("proc_exit", "proc_kill", "channels_report", "finish", "poweroff",
                          "panic", "chan_flush_stats"),
    "NIC (attach, wait, copy path)": ("nic_*", "sys_nic_*", "sys_net_*", "kq_*", "queue_*",
                                      "take_notifications", "copyout", "iommu_*", "nicq_*"),
    "kernel library": ("memcpy", "memset", "memmove", "memcmp"),
}
"""Kernel path -> kernel function names (``*``: prefix). Unlisted functions are
``other kernel``. Extend it for new kernel code."""


def kernel_path(function: str) -> str:
    """The :data:`KERNEL_PATHS` group of a kernel function."""
    for path, names in KERNEL_PATHS.items():
        for n in names:
            if function == n or (n.endswith("*") and function.startswith(n[:-1])):
                return path
    return "other kernel"


@dataclass(frozen=True)
class FunctionRow:
    """One (core, image, function): the report's row plus its category split."""

    core: int
    image: str
    function: str
    instructions: int
    cycles: int
    block_executions: int
    compute: int
    memory: int
    trap: int

    @property
    def path(self) -> str:
        """The kernel path (kernel functions) or ``user: <process>``."""
        return kernel_path(self.function) if self.image == "kernel" else f"user: {self.image}"


@dataclass(frozen=True)
class CoreSplit:
    """One core's clock, taken apart; the parts add up to ``cycles``."""

    core: int
    cycles: int
    block_cycles: int
    coherence_cycles: int
    delivery_cycles: int
    """Exception/interrupt entry the machine charged (``trap.exception_entry`` each)."""
    idle_cycles: int


@dataclass(frozen=True)
class Attribution:
    """The breakdown of one run; see the module docstring."""

    report: RunReport
    rows: tuple[FunctionRow, ...]
    cores: tuple[CoreSplit, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def total_cycles(self) -> int:
        """Sum of every core's cycles (cores run in parallel: this is core-time)."""
        return sum(c.cycles for c in self.cores)

    def by_category(self, core: int | None = None) -> dict[str, int]:
        """compute / memory / trap / coherence / idle cycles (one core, or all cores)."""
        out = dict.fromkeys(CATEGORY_NAMES, 0)
        for r in self.rows:
            if core is None or r.core == core:
                out["compute"] += r.compute
                out["memory"] += r.memory
                out["trap"] += r.trap
        for c in self.cores:
            if core is None or c.core == core:
                out["trap"] += c.delivery_cycles
                out["coherence"] += c.coherence_cycles
                out["idle"] += c.idle_cycles
        return out

    def by_process(self) -> dict[str, dict[str, int]]:
        """image (``kernel`` or a process) -> cycles and instructions of its code."""
        out: dict[str, dict[str, int]] = {}
        for r in self.rows:
            d = out.setdefault(r.image, {"cycles": 0, "instructions": 0})
            d["cycles"] += r.cycles
            d["instructions"] += r.instructions
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["cycles"]))

    def by_kernel_path(self) -> dict[str, dict[str, int]]:
        """kernel path -> cycles, instructions, and the functions in it that ran."""
        out: dict[str, dict] = {}
        for r in self.rows:
            if r.image != "kernel":
                continue
            d = out.setdefault(r.path, {"cycles": 0, "instructions": 0, "functions": set()})
            d["cycles"] += r.cycles
            d["instructions"] += r.instructions
            d["functions"].add(r.function)
        for d in out.values():
            d["functions"] = sorted(d["functions"])
        return dict(sorted(out.items(), key=lambda kv: -kv[1]["cycles"]))

    def by_function(self, image: str | None = None, top: int | None = None
                    ) -> list[dict[str, int | str]]:
        """Functions summed over cores, most cycles first (``image`` filters)."""
        acc: dict[tuple[str, str], dict] = {}
        for r in self.rows:
            if image is not None and r.image != image:
                continue
            d = acc.setdefault((r.image, r.function), {
                "image": r.image, "function": r.function, "path": r.path, "cycles": 0,
                "instructions": 0, "block_executions": 0, "compute": 0, "memory": 0, "trap": 0})
            for k in ("cycles", "instructions", "block_executions", "compute", "memory", "trap"):
                d[k] += getattr(r, k)
        rows = sorted(acc.values(), key=lambda d: (-d["cycles"], d["image"], d["function"]))
        return rows[:top] if top else rows

    def as_dict(self) -> dict:
        return {
            "scenario": self.report.scenario, "arch": self.report.arch,
            "profile": self.report.profile, "params": self.report.params,
            "cores": [c.__dict__ for c in self.cores],
            "by_category": self.by_category(), "by_process": self.by_process(),
            "by_kernel_path": self.by_kernel_path(), "by_function": self.by_function(),
            "notes": list(self.notes),
        }

    def table(self, top: int = 15) -> str:
        """Text tables: categories per core, processes, kernel paths, top functions."""
        tot = self.total_cycles or 1
        r = self.report
        out = [f"{r.scenario} on {r.arch}, profile {r.profile}, params {r.params}: "
               f"{tot} core-cycles on {len(self.cores)} cores"]
        out.append("")
        hdr = f"{'category':<10}" + "".join(f"{'core ' + str(c.core):>14}" for c in self.cores)
        out.append(hdr + f"{'all':>14}{'share':>8}")
        cats = {c.core: self.by_category(c.core) for c in self.cores}
        allc = self.by_category()
        for k in CATEGORY_NAMES:
            out.append(f"{k:<10}" + "".join(f"{cats[c.core][k]:>14}" for c in self.cores)
                       + f"{allc[k]:>14}{100 * allc[k] / tot:>7.1f}%")
        out.append(f"{'total':<10}" + "".join(f"{c.cycles:>14}" for c in self.cores)
                   + f"{tot:>14}")
        out.append("")
        out.append(f"{'image (code)':<28}{'cycles':>14}{'instructions':>14}{'share':>8}")
        for name, d in self.by_process().items():
            out.append(f"{name:<28}{d['cycles']:>14}{d['instructions']:>14}"
                       f"{100 * d['cycles'] / tot:>7.1f}%")
        kp = self.by_kernel_path()
        if kp:
            out.append("")
            out.append(f"{'kernel path':<28}{'cycles':>14}{'instructions':>14}{'share':>8}  functions")
            for name, d in kp.items():
                fns = ", ".join(d["functions"][:6]) + (" ..." if len(d["functions"]) > 6 else "")
                out.append(f"{name:<28}{d['cycles']:>14}{d['instructions']:>14}"
                           f"{100 * d['cycles'] / tot:>7.1f}%  {fns}")
        out.append("")
        out.append(f"{'function':<40}{'cycles':>12}{'insns':>12}{'compute':>10}{'memory':>10}"
                   f"{'trap':>10}{'share':>8}")
        for d in self.by_function(top=top):
            name = f"{d['image']}:{d['function']}"
            out.append(f"{name[:39]:<40}{d['cycles']:>12}{d['instructions']:>12}"
                       f"{d['compute']:>10}{d['memory']:>10}{d['trap']:>10}"
                       f"{100 * d['cycles'] / tot:>7.1f}%")
        for n in self.notes:
            out.append(f"note: {n}")
        return "\n".join(out)


def attribute(system: str | Path | SystemSpec, arch: str | None = None,
              params: dict | None = None, profile: str | None = None,
              verified: bool = False, max_cycles: int | None = None,
              lookahead: int = DEFAULT_LOOKAHEAD) -> Attribution:
    """Run ``system`` once and break its cycles down (see the module docstring).

    Arguments as :func:`keusim.system.run`, with the same defaults, so the cycles are
    those ``run`` reports (with ``None``/``flat`` every instruction is one ``compute``
    cycle: pass a profile such as ``host`` for a useful split).
    """
    from keusim.model.costmodel import ProfileCost, disassembler
    from keusim.system import BootedSystem

    with BootedSystem(system, arch, params, profile, verified=verified,
                      max_cycles=max_cycles, lookahead=lookahead) as sess:
        res = sess.finish()
        rep = sess.report(attribution=True)
        m = sess.machine
        roots = {a: pid for typ, pid, a, _b, _c in res.klog if typ == KLOG_PROC}
        md = disassembler(sess.arch)
        cost = sess.cost if isinstance(sess.cost, ProfileCost) else None
        split: dict[tuple[int, str, str], list[int]] = {}
        notes: list[str] = []
        mismatched = 0
        cores = []
        for core in m.cores:
            block_fp = 0                  # 1/FRACTION cycles
            for va, root, ninsn, bcost, count in core.native.blocks():
                block_fp += bcost * count
                if root == 0:
                    image = "kernel"
                else:
                    pid = roots.get(root)
                    if pid is None:
                        continue
                    image = sess.spec.processes[pid - 1].name
                elf = sess.image(image)
                fn = elf.function(va)
                cats = _block_categories(cost, md, elf, va, ninsn, bcost)
                if cats is None:
                    mismatched += 1
                    cats = {"compute": bcost, "memory": 0, "trap": 0}
                acc = split.setdefault((core.id, image, fn), [0, 0, 0])
                for i, k in enumerate(CATEGORIES):
                    acc[i] += cats[k] * count
            k = core.native.k
            idle = core.idle
            block_cycles = block_fp // FRACTION   # what the blocks put on the clock
            delivery = k.clock - block_cycles - k.coh_cycles - idle
            cores.append(CoreSplit(core.id, k.clock, block_cycles, k.coh_cycles, delivery, idle))
        if mismatched:
            notes.append(f"{mismatched} blocks could not be re-priced from their ELF bytes; "
                         "their cycles are counted as compute")
    rows = []
    for r in rep.functions:
        fp = split.get((r["core"], r["image"], r["function"]), [1, 0, 0])
        c = apportion(dict(zip(CATEGORIES, fp, strict=True)), r["cycles"])
        rows.append(FunctionRow(r["core"], r["image"], r["function"], r["instructions"],
                                r["cycles"], r["block_executions"],
                                *(c[k] for k in CATEGORIES)))
    return Attribution(rep, tuple(rows), tuple(cores), tuple(notes))


def function_rows(booted, res) -> tuple[dict, ...]:
    """Per (core, image, function) of a finished :class:`~keusim.system.BootedSystem`:
    instructions, whole cycles (adding up per core to what the blocks put on the clock)
    and block executions; the rows of ``RunReport.functions``."""
    m, spec, kernel, images = booted.machine, booted.spec, booted.kernel, booted.images
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



def _block_categories(cost, md, image, va: int, ninsn: int, bcost: int) -> dict | None:
    """compute/memory/trap of one block in 1/FRACTION cycles (adding up to ``bcost``),
    re-priced from the image's bytes; None when the bytes are not there or do not give
    the same cost."""
    if cost is None:
        return {"compute": bcost, "memory": 0, "trap": 0}
    code = _image_bytes(image, va, 16 * max(ninsn, 1))
    if not code:
        return None
    insns = list(md.disasm(code, va, ninsn))
    if len(insns) != ninsn:
        return None
    if cost.block(insns).fixed != bcost:
        return None
    return apportion(cost.attribute(insns), bcost)


def _image_bytes(image, va: int, n: int) -> bytes:
    for s in image.segments:
        if s.vaddr <= va < s.vaddr + len(s.data):
            return s.data[va - s.vaddr: va - s.vaddr + n]
    return b""
