"""The cycle model charges only what it says it charges.

- ``flat`` is one cycle per instruction and nothing else: no coherence, IPI or exception
  cycles hidden in ``Machine`` defaults.
- The notify cost's trap part holds the trap instruction (``syscall``/``svc``) as well as
  the kernel's entry and exit stubs.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest

from keusim.analysis import notifycost
from keusim.machine.machine import Machine
from keusim.model.profiles import load_profile
from keusim.system import run


def test_machine_defaults_charge_nothing_beyond_instructions():
    params = inspect.signature(Machine).parameters
    assert params["coherence"].default == (0, 0, 0)
    assert params["ipi_cycles"].default == 0
    assert params["exception_cycles"].default == 0


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_flat_pingpong_charges_no_coherence_and_one_cycle_per_instruction(arch):
    r = run("pingpong", arch=arch, params={"messages": 100, "size": 64})
    assert r.ok and r.profile == "flat"
    assert r.channel(0).producer_stats["round_trips"] == 100
    # Lines did move between the cores, and cost nothing.
    assert sum(c.coherence_transfers for c in r.cores) > 0
    assert all(c.coherence_cycles == 0 for c in r.cores)
    # The core that runs ping never idles until it powers the machine off: every cycle
    # on its clock is one instruction (kernel ones included).
    ping = r.cores[r.process("ping").core]
    assert ping.cycles == ping.instructions and ping.kernel_cycles == ping.kernel_instructions
    # The other core's clock runs ahead of its instructions only while it waits halted.
    for c in r.cores:
        assert c.kernel_cycles == c.kernel_instructions and c.cycles >= c.instructions


def _fake_report(profile: str | None, functions: list[dict], accepted: int):
    chan = SimpleNamespace(producer="tx", notifications={"accepted": accepted})
    procs = {"tx": SimpleNamespace(core=1)}
    return SimpleNamespace(arch="x86_64", profile=profile or "flat", functions=functions,
                           channels=[chan], process=lambda n: procs[n])


@pytest.mark.parametrize("profile", [None, "zen3", "raptorlake"])
def test_the_trap_part_includes_the_trap_instruction(profile):
    n = 10
    fns = [{"image": "kernel", "core": 1, "function": "syscall_entry",
            "instructions": 20 * n, "cycles": 30 * n},
           {"image": "kernel", "core": 1, "function": "syscall_return",
            "instructions": 10 * n, "cycles": 60 * n},
           {"image": "kernel", "core": 1, "function": "siphash24",
            "instructions": 200 * n, "cycles": 70 * n},
           {"image": "kernel", "core": 1, "function": "sys_notify",
            "instructions": 50 * n, "cycles": 40 * n},
           # The user side (where the syscall instruction executes) is not kernel work.
           {"image": "tx", "core": 1, "function": "main", "instructions": 99 * n,
            "cycles": 99 * n}]
    c = notifycost.notify_cost(_fake_report(profile, fns, n), cores=(1,))
    insn = 1.0 if profile is None else load_profile(profile).param("trap.syscall_entry").value
    assert c.trap.instructions == 20 + 10 + 1
    assert c.trap.cycles == pytest.approx(30 + 60 + insn)
    assert c.functions[notifycost.TRAP_INSTRUCTION] == {"part": "trap", "instructions": 1.0,
                                                        "cycles": insn}
    assert (c.tag.instructions, c.routing.instructions) == (200, 50)
    assert c.total.cycles == pytest.approx(30 + 60 + insn + 70 + 40)
    assert "(trap instruction)" in c.table()
