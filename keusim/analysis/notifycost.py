"""What one verified notification costs the kernel, split three ways.

The split comes from a run's per-function attribution (``run(..., attribution=True)``,
``RunReport.functions``), kernel image only, divided by the accepted notifications:

- **trap**: the trap instruction itself (x86-64 ``syscall``, arm64 ``svc``: it executes
  in the notifying process, priced as the ``syscall`` class, :func:`trap_instruction`)
  and the architecture's entry and exit stubs (x86-64 ``syscall_entry`` and
  ``syscall_return``; arm64 the vector table, ``el0_sync`` and ``trapret``);
- **tag**: tag verification (``siphash24`` and ``notify_tag_ok``, which holds the
  inlined ``desc_tag_ok``/``desc_encode`` and the branch-free compare);
- **routing**: everything else the kernel ran on those cores (``syscall`` dispatch,
  ``sys_notify``, ``copyin``, the page walk, ``wakeup``, ``usertrapret``, ...).

A single run also contains fixed costs (boot, reports, exit) on the same cores, so
:func:`notify_cost` can subtract a *baseline* run of the same system with fewer
notifications: the result is then the marginal cost of one notification.
:func:`measure` does that on a built-in system in which the notifying process is
alone on its core and makes no other system call per message::

    >>> from keusim.analysis.notifycost import measure
    >>> print(measure("x86_64").table())

``keusim notifycost --arch arm64`` prints the same table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from keusim import arch as archmod
from keusim.report import RunReport

# Tag verification: SipHash itself and kernel/notify.c's noinline wrapper around
# desc_tag_ok (descriptor.h's helpers are static inline and land in the wrapper).
TAG_FUNCTIONS = ("siphash24", "notify_tag_ok", "desc_tag_ok", "desc_tag", "desc_encode",
                 "desc_put32")
PAPER_TAG_CYCLES = 15   # seed 003: "~15 cycles ... using the hardware CRC extension"
PAPER_PATH_CYCLES = 25  # seed 003: "25 cycles for the SipHash tag check and ... routing"

# The measurement system: one verified notify channel, producer alone on core 1,
# consumer on core 0. It reuses the honest roles of guests/src/notify_attacks.c.
# The 1 MiB ring holds 14,563 64-byte records, so the producer never finds it full
# (a full ring would make it yield, an extra system call per message).
_SYSTEM = """
[system]
name = "notify-cost"
cores = 2
max_cycles = 100_000_000_000

[params]
messages = {messages}
size = 64

[[process]]
name = "rx"
image = "@/guests/src/notify_attacks.c"
cflags = ["-DROLE=R_HONEST_RX"]
core = 0

[[process]]
name = "tx"
image = "@/guests/src/notify_attacks.c"
cflags = ["-DROLE=R_HONEST_TX"]
core = 1

[[channel]]
name = "tx->rx"
producer = "tx"
consumer = "rx"
capacity = 1048576
mode = "notify"
verified = true
"""
MAX_MESSAGES = 14_000


@dataclass(frozen=True)
class Part:
    """Kernel instructions and model cycles per accepted notification."""
    instructions: float
    cycles: float


@dataclass(frozen=True)
class NotifyCost:
    """The kernel's cost of one accepted notification, split three ways."""
    arch: str
    profile: str
    notifications: int              # accepted notifications the totals are divided by
    cores: tuple[int, ...]          # the notifying cores whose kernel time is counted
    trap: Part
    tag: Part
    routing: Part
    baseline: bool                  # fixed costs removed with a baseline run
    functions: dict = field(default_factory=dict)  # name -> {part, instructions, cycles}

    @property
    def total(self) -> Part:
        return Part(self.trap.instructions + self.tag.instructions + self.routing.instructions,
                    self.trap.cycles + self.tag.cycles + self.routing.cycles)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total"] = asdict(self.total)
        return d

    def table(self) -> str:
        """The split beside the paper's claims, for the terminal."""
        how = "marginal, baseline run subtracted" if self.baseline else "single run"
        cores = ", ".join(str(c) for c in self.cores)
        parts = (("trap insn+entry+exit", self.trap), ("tag verification", self.tag),
                 ("routing", self.routing), ("total", self.total))
        lines = [f"kernel cost of one verified notify on {self.arch} (profile {self.profile}; "
                 f"{self.notifications} notifications, core {cores}, {how})",
                 f"  {'part':<18}{'insns':>9}{'cycles':>9}   functions"]
        for name, p in parts:
            fns = ", ".join(f for f, v in sorted(self.functions.items(),
                                                 key=lambda kv: -kv[1]["instructions"])
                            if v["part"] == name.split()[0] and v["instructions"] >= 0.5)
            lines.append(f"  {name:<18}{p.instructions:>9.1f}{p.cycles:>9.1f}   {fns}".rstrip())
        lines.append(f"  paper: tag check ~{PAPER_TAG_CYCLES} cycles (\"hardware CRC extension\"); "
                     f"tag check + routing ~{PAPER_PATH_CYCLES} cycles")
        lines.append(f"  keusim: tag check {self.tag.cycles:.0f} cycles, tag + routing "
                     f"{self.tag.cycles + self.routing.cycles:.0f}; SipHash-2-4 on 24 bytes is "
                     f"12 SipRounds (>= 48 cycles of dependent ALU ops) and uses no CRC instruction")
        return "\n".join(lines)


TRAP_INSTRUCTION = "(trap instruction)"
"""The ``functions`` key of the trap instruction's share (it has no kernel function)."""


def trap_instruction(profile: str | None) -> Part:
    """The price of one trap instruction (``syscall``/``svc``) under ``profile``.

    The instruction runs in the user image, which the kernel-only attribution leaves
    out, yet it is the hardware half of the trap: one instruction, priced by the profile
    as its ``syscall`` class (``trap.syscall_entry``; flat: one cycle, as every
    instruction). One notification makes exactly one system call in the measurement
    system (:func:`measure`), so it is charged once per notification.
    """
    if not profile or profile == "flat":
        return Part(1.0, 1.0)
    from keusim.model.profiles import TRAP_CLASSES, load_profile
    return Part(1.0, load_profile(profile).param(TRAP_CLASSES["syscall"]).value)


def _part(arch: str, fn: str) -> str:
    if fn in archmod.get(arch).trap_stubs:   # the backend's system-call entry/exit stubs
        return "trap"
    if fn in TAG_FUNCTIONS:
        return "tag"
    return "routing"


def _producer_cores(report: RunReport) -> tuple[int, ...]:
    cores = {report.process(c.producer).core for c in report.channels
             if c.notifications.get("accepted", 0) > 0}
    return tuple(sorted(cores))


def _accepted(report: RunReport, cores: tuple[int, ...]) -> int:
    return sum(c.notifications.get("accepted", 0) for c in report.channels
               if report.process(c.producer).core in cores)


def _kernel_totals(report: RunReport, cores: tuple[int, ...]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in report.functions:
        if r["image"] == "kernel" and r["core"] in cores:
            t = out.setdefault(r["function"], [0, 0])
            t[0] += r["instructions"]
            t[1] += r["cycles"]
    return out


def notify_cost(report: RunReport, cores: tuple[int, ...] | None = None,
                baseline: RunReport | None = None) -> NotifyCost:
    """Split the kernel's per-notification cost from a run with ``attribution=True``.

    Args:
        report: the run. Its kernel instructions on ``cores`` are divided by the
            notifications accepted on channels whose producer runs on those cores.
        cores: the notifying cores (default: every core that runs the producer of a
            channel with accepted notifications). Everything the kernel did there
            counts, so for a clean split those cores should make no other system
            calls per message, or pass ``baseline``.
        baseline: the same system with fewer notifications; its totals are subtracted
            first, which removes boot, report and exit costs.

    The trap part also holds the trap instruction (:func:`trap_instruction`), one per
    notification: the producer makes one system call per message.
    """
    if not report.functions:
        raise ValueError("the report has no per-function rows; run with attribution=True")
    cores = tuple(cores) if cores is not None else _producer_cores(report)
    n = _accepted(report, cores)
    tot = _kernel_totals(report, cores)
    if baseline is not None:
        if not baseline.functions:
            raise ValueError("the baseline has no per-function rows; run it with attribution=True")
        n -= _accepted(baseline, cores)
        for fn, (i, c) in _kernel_totals(baseline, cores).items():
            t = tot.setdefault(fn, [0, 0])
            t[0] -= i
            t[1] -= c
    if n <= 0:
        raise ValueError(f"no accepted notifications to divide by on cores {cores} "
                         f"(a baseline must have fewer than the run)")
    sums = {"trap": [0, 0], "tag": [0, 0], "routing": [0, 0]}
    insn = trap_instruction(report.profile)
    sums["trap"] = [insn.instructions * n, insn.cycles * n]
    fns = {TRAP_INSTRUCTION: {"part": "trap", "instructions": insn.instructions,
                              "cycles": insn.cycles}}
    for fn, (i, c) in tot.items():
        part = _part(report.arch, fn)
        sums[part][0] += i
        sums[part][1] += c
        if i or c:
            fns[fn] = {"part": part, "instructions": i / n, "cycles": c / n}
    return NotifyCost(report.arch, report.profile, n, cores,
                      *(Part(sums[k][0] / n, sums[k][1] / n) for k in ("trap", "tag", "routing")),
                      baseline=baseline is not None, functions=fns)


def measure(arch: str = "x86_64", notifications: int = 200, profile: str | None = None
            ) -> NotifyCost:
    """Marginal kernel cost of one verified notify: runs the built-in one-channel system
    with ``notifications`` and ``2 * notifications`` messages and subtracts."""
    from keusim.manifest import parse
    from keusim.system import run

    if not 1 <= notifications <= MAX_MESSAGES // 2:
        raise ValueError(f"notifications must be in [1, {MAX_MESSAGES // 2}]")
    runs = []
    for n in (notifications, 2 * notifications):
        r = run(parse(_SYSTEM.format(messages=n)), arch=arch, profile=profile, attribution=True)
        if not r.ok or r.channel(0).notifications.get("accepted") != n or not r.channel(0).intact:
            raise RuntimeError(f"the notify-cost system did not run cleanly on {arch}: "
                               f"{r.status} {r.message} {r.channel(0).notifications}")
        runs.append(r)
    tx_core = runs[1].process("tx").core
    return notify_cost(runs[1], cores=(tx_core,), baseline=runs[0])
