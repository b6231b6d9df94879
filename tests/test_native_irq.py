"""The native wake-up path (docs/architecture.md, "The native scheduler loop") is exact: a
halted core woken and its interrupt delivered by sched_run (fastpath.c ``wake_native``,
keusim/arch/<arch>_trap.c ``*_irq_entry``), and the platform device's PLAT_IPI, PLAT_WAIT
and PLAT_IRQ_CAUSE served natively, leave every report byte-identical to the Python path
(``Machine.native_irqs = False``), on both architectures; and a native path that skipped
the interrupt-entry charge would be caught."""

from __future__ import annotations

import pytest
from conftest import run_state

from keusim.system import BootedSystem

# The scenarios the native system-call comparison runs (tests/test_fastforward.py), with
# its short parameters, then verified pingpong and poll-wakeup in each of its modes
# (experiments/poll_wakeup.py: 0 poll, 1 wake, 2 hybrid; a short and a long interval).
CASES = [
    ("syscalls", {"calls": 100}, {}),
    ("faults", {}, {}),
    ("notify-attacks", {"messages": 20}, {}),
    ("poll-wakeup", {"messages": 8}, {}),
    ("pingpong", {"messages": 60}, {"verified": True}),
    ("poll-wakeup", {"messages": 8, "mode": 0, "interval": 20000}, {}),
    ("poll-wakeup", {"messages": 8, "mode": 1, "interval": 20000}, {}),
    ("poll-wakeup", {"messages": 8, "mode": 1, "interval": 500}, {}),
    ("poll-wakeup", {"messages": 8, "mode": 2, "interval": 20000, "spin": 2000}, {}),
]


def _pair(arch, name, params, kw, plant=None):
    with BootedSystem(name, arch, params, "host", **kw) as fast, \
            BootedSystem(name, arch, params, "host", **kw) as slow:
        fast.machine.native_irqs = True       # whatever KEUSIM_NATIVE_IRQS says
        slow.machine.native_irqs = False
        if plant:
            plant(fast.machine)
        fast.finish()
        slow.finish()
        return run_state(fast), run_state(slow), fast.machine._sched, slow.machine._sched


@pytest.mark.parametrize("name,params,kw", CASES,
                         ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in p.items())}"
                              f"{'-verified' if kw else ''}" for n, p, kw in CASES])
def test_native_wake_up_path_matches_the_python_one(arch, name, params, kw):
    fast, slow, sf, ss = _pair(arch, name, params, kw)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    # The native path is taken (not a vacuous identity) and the Python one is not.
    assert sf.ndev > 0 and ss.ndev == 0 and ss.nwakes == 0
    if name != "syscalls":     # one core: nobody to wake it
        assert sf.nwakes > 0


def test_wake_ups_are_native_in_verified_pingpong(arch):
    """About two wake-ups and six device accesses a round trip, all native: Python is
    entered only at the quantum's yield points, at boot and at the end."""
    n = 200
    with BootedSystem("pingpong", arch, {"messages": n}, "host", verified=True) as b:
        b.machine.native_irqs = True
        steps = 0
        while b.machine.step():
            steps += 1
        b.finish()
        s = b.machine._sched
        assert b.report().ok
        assert s.nwakes >= 2 * n - 20 and s.ndev >= 6 * n
        assert steps < n // 4


@pytest.mark.parametrize("bug", ["exception_cycles", "ipi_cycles"])
def test_a_planted_bug_in_the_native_path_is_caught(arch, bug):
    """The comparison is not blind: a native path that skips the interrupt-entry charge
    (or sends IPIs without their latency) gives another report."""
    def plant(m):
        setattr(m._sched, bug, 0)     # the native copy only; Python keeps the real one
    fast, slow, sf, _ = _pair(arch, "pingpong", {"messages": 60}, {"verified": True}, plant)
    assert sf.nwakes > 0
    assert fast[0] != slow[0]


def test_single_slice_mode_keeps_the_python_device_and_its_trace_events(arch):
    """In single-slice mode (KEUSIM_TRACE_STEPS, --gdb) every slice starts in Python and
    the device is Python's: the trace still shows each IPI and halt, and the report is the
    same as the native run's."""
    p = {"messages": 10}
    with BootedSystem("pingpong", arch, p, "host", verified=True) as ref:
        ref.machine.native_irqs = True
        ref.finish()
        want = ref.report().to_json()
    with BootedSystem("pingpong", arch, p, "host", verified=True) as b:
        m = b.machine
        m.native_irqs = True
        m._trace = True                 # as KEUSIM_TRACE_STEPS=1 sets it
        seen: set[str] = set()
        while m.step():
            for c in m.cores:
                seen.update(c.events)
        b.finish()
        assert {"ipi", "halt"} <= seen
        assert m._sched.ndev == 0 and m._sched.nwakes == 0
        assert b.report().to_json() == want


def test_timer_interrupts_under_a_short_timeslice_match(arch):
    """Timer deadlines beside native wake-ups: a hog shares the waiter's core under a short
    timeslice (the spec of tests/test_fastforward.py's parked-timer test), so the timer
    interrupts user code (delivered by Python, as before) while the other core's IPI
    wake-ups are native; the two mix the same way in both runs."""
    import dataclasses
    from pathlib import Path

    from keusim.manifest import resolve
    base = resolve(str(Path(__file__).parent / "data" / "ff_spin.toml"))
    waiter = base.processes[0]
    hog = dataclasses.replace(waiter, name="hog", cflags=("-DROLE=2",), expect="exit:0")
    spec = dataclasses.replace(base, timeslice=4000, processes=base.processes + (hog,))
    fast, slow, sf, _ = _pair(arch, spec, {"rounds": 2, "delay": 200}, {})
    assert fast[0] == slow[0] and fast[1] == slow[1]
    assert sf.nwakes > 0


def test_a_halted_core_woken_by_its_timer_matches(arch):
    """A timer deadline wakes a core halted in the kernel (IRQ_TIMER from the deadline, the
    timer turned off, vector 32 on x86-64): a timed device event arms the timer of every
    halted core now and then during verified pingpong, in both runs alike."""
    def plant(m):
        m.py_kernel_timers = 0
        deliver = m._deliver_irq

        def count(core):        # interrupts Python delivers to a core in the kernel
            if core.irq & 1 and not m.arch.user_mode(core):
                m.py_kernel_timers += 1
            deliver(core)
        m._deliver_irq = count

        def tick(t):
            for c in m.cores:
                if c.state == "halt" and not c.timer:
                    c.timer = t + 3000
            m.add_timed(t + 37_000, tick)
        m.add_timed(400_000, tick)

    with BootedSystem("pingpong", arch, {"messages": 60}, "host", verified=True) as fast, \
            BootedSystem("pingpong", arch, {"messages": 60}, "host", verified=True) as slow:
        fast.machine.native_irqs = True
        slow.machine.native_irqs = False
        plant(fast.machine)
        plant(slow.machine)
        fast.finish()
        slow.finish()
        assert fast.report().ok
        assert run_state(fast) == run_state(slow)
        assert fast.machine._sched.nwakes > 0
        # The kernel-mode timer wake-ups were taken natively in one run, by Python in the
        # other.
        assert fast.machine.py_kernel_timers == 0 < slow.machine.py_kernel_timers
