"""Spin fast-forward and the native scheduler loop are exact (docs/architecture.md,
"virtual time"): every report is byte-identical with fast-forward on and off, and a
fast-forward that skipped a check would be caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from keusim.system import BootedSystem, run

DATA = Path(__file__).parent / "data"
# Short configurations of the built-in scenarios (the rest run as shipped).
SHORT = {"pingpong": {"messages": 40}, "stream": {"messages": 40},
         "notify-attacks": {"messages": 20}, "poll-wakeup": {"messages": 8},
         "callchain": {"calls": 100}, "compute": {"iterations": 20000},
         "syscalls": {"calls": 100}}


def _scenarios() -> list[str]:
    import keusim
    return sorted(p.stem for p in (Path(keusim.__file__).parent / "scenarios").glob("*.toml"))


def _booted(system, arch: str, params=None, profile: str = "host", park_store_loops=True,
            **kw):
    """A finished run. Loops that store are parked after a recorded iteration proves their
    stores silent (park_store_loops, the default with the wheel's Unicorn; with keusim's
    they spin instead: Machine.park_store_loops): these tests check that mechanism."""
    b = BootedSystem(system, arch, params, profile, **kw)
    b.machine.park_store_loops = park_store_loops
    b.finish()
    return b


@pytest.mark.parametrize("name", _scenarios())
def test_every_scenario_reports_the_same_with_and_without_fast_forward(arch, name):
    p = SHORT.get(name, {})
    on = run(name, arch=arch, params=p, profile="host")
    off = run(name, arch=arch, params=p, profile="host", fast_forward=False)
    assert on.to_json() == off.to_json()
    assert on.status == off.status


def test_verified_pingpong_and_flat_model_report_the_same(arch):
    for kw in ({"verified": True, "profile": "host"}, {"profile": None}):
        on = run("pingpong", arch=arch, params={"messages": 40}, **kw)
        off = run("pingpong", arch=arch, params={"messages": 40}, fast_forward=False, **kw)
        assert on.ok and on.to_json() == off.to_json()


def test_pingpong_parks_its_polling_cores_and_still_counts_every_spin(arch):
    """Fast-forward engages (the identity above is not vacuous): both cores park about
    once per round trip, and the blocks they skipped are counted as executed."""
    n = 300
    with _booted("pingpong", arch, {"messages": n}) as on, \
            _booted("pingpong", arch, {"messages": n}, fast_forward=False) as off:
        for c_on, c_off in zip(on.machine.cores, off.machine.cores, strict=True):
            parks, wakes, skipped = c_on.native.spin_stats()
            assert parks >= n // 2 and wakes == parks and skipped > 10 * parks
            assert c_off.native.spin_stats() == (0, 0, 0)
            assert c_on.native.k.nblocks == c_off.native.k.nblocks
            assert c_on.native.k.shared_reads == c_off.native.k.shared_reads
            assert c_on.native.blocks() and sorted(c_on.native.blocks()) == \
                sorted(c_off.native.blocks())
        assert on.report().to_json() == off.report().to_json()


def test_results_do_not_depend_on_quantum_or_on_fast_forward_at_another_lookahead(arch):
    p = {"messages": 50}
    a = run("pingpong", arch=arch, params=p, profile="host", quantum=5_000)
    b = run("pingpong", arch=arch, params=p, profile="host", quantum=2_000_000)
    assert a.to_json() == b.to_json()
    c = run("pingpong", arch=arch, params=p, profile="host", lookahead=200)
    d = run("pingpong", arch=arch, params=p, profile="host", lookahead=200, fast_forward=False)
    assert c.to_json() == d.to_json()


def test_only_loops_that_change_nothing_are_parked(arch):
    """ff_spin.c polls in three ways; only the pure poll may be parked. The loop that
    counts in memory has the same registers every time round, so only the check that
    its stores are silent keeps it running: planting that bug (check_stores = 0) parks
    it, and its count comes out wrong."""
    man = DATA / "ff_spin.toml"
    with _booted(man, arch) as on, _booted(man, arch, fast_forward=False) as off:
        r_on, r_off = on.report(), off.report()
        assert r_on.ok and r_on.to_json() == r_off.to_json()
        assert "memory count" in r_on.process("waiter").console
        assert on.machine.cores[0].native.spin_stats()[0] >= 3     # pure-poll rounds parked
    with BootedSystem(man, arch, None, "host") as bad:
        bad.machine.park_store_loops = True
        bad.machine._sched.check_stores = 0
        bad.finish()
        r_bad = bad.report()
    assert r_bad.ok
    assert r_bad.process("waiter").console != r_off.process("waiter").console


def test_loops_that_store_spin_instead_when_not_parked_and_results_stay(arch):
    """Machine.park_store_loops = False (the default with keusim's Unicorn) parks only
    loops without stores (BF_NOSTORE): pingpong's polls call ring_recv, so nothing parks,
    and the reports equal those with such loops parked and with fast-forward off."""
    n = 100
    with _booted("pingpong", arch, {"messages": n}, park_store_loops=False) as nostore, \
            _booted("pingpong", arch, {"messages": n}) as parked, \
            _booted("pingpong", arch, {"messages": n}, fast_forward=False) as off:
        assert all(c.native.spin_stats()[0] == 0 for c in nostore.machine.cores)
        assert all(c.native.spin_stats()[0] >= n // 2 for c in parked.machine.cores)
        assert nostore.report().to_json() == parked.report().to_json() \
            == off.report().to_json()


def test_timeout_while_parked_names_where_the_cores_really_are(arch):
    """A run that ends while a core is parked reports its real position (the core is
    made real again first): the same message as without fast-forward."""
    p = {"messages": 100000}
    on = run("pingpong", arch=arch, params=p, profile="host", max_cycles=200_000)
    off = run("pingpong", arch=arch, params=p, profile="host", max_cycles=200_000,
              fast_forward=False)
    assert on.status == "timeout" and on.to_json() == off.to_json()


@pytest.mark.parametrize("name", ["syscalls", "faults", "notify-attacks", "poll-wakeup"])
def test_native_system_call_entry_matches_the_python_one(arch, name):
    """System calls entered natively (keusim/arch/<arch>_trap.c) leave the machine as the
    Python entry does: the same report, byte for byte; and the native path is taken."""
    p = SHORT.get(name, {})
    with BootedSystem(name, arch, p, "host") as fast, BootedSystem(name, arch, p, "host") as slow:
        slow.machine.native_traps = False
        fast.finish()
        slow.finish()
        assert fast.report().to_json() == slow.report().to_json()
        assert fast.machine._sched.ntraps > 0 and slow.machine._sched.ntraps == 0


def test_a_device_event_time_bounds_the_native_loop_without_changing_results(arch):
    """next_device_event (for timed device models): the native loop hands control back to
    Python before any core starts a slice at or after it, and moving it changes nothing."""
    p = {"messages": 200}
    ref = run("pingpong", arch=arch, params=p, profile="host").to_json()
    with BootedSystem("pingpong", arch, p, "host") as b:
        m = b.machine
        t_event = 400_000
        m.next_device_event = t_event
        while m.step() and min(c.next_time() for c in m.cores) < t_event:
            pass
        assert m.result is None
        # Stopped at the event: no core got more than one block past it.
        assert min(c.next_time() for c in m.cores) >= t_event
        assert max(c.clock for c in m.cores) < t_event + 2_000
        m.next_device_event = (1 << 64) - 1
        b.finish()
        assert b.report().to_json() == ref


def test_a_parked_core_takes_its_timer_interrupts_where_it_would_have(arch):
    """A hog shares the waiter's core under a short timeslice, so the timer preempts the
    waiter while it spins: a parked core's slices end at its timer deadline, the interrupt
    is delivered to the real core at the same model time, and it parks again after."""
    import dataclasses

    from keusim.manifest import ProcessSpec, resolve
    base = resolve(str(DATA / "ff_spin.toml"))
    waiter = base.processes[0]
    hog = dataclasses.replace(waiter, name="hog", cflags=("-DROLE=2",), expect="exit:0")
    spec = dataclasses.replace(base, timeslice=4000, processes=base.processes + (hog,))
    assert isinstance(hog, ProcessSpec)
    p = {"rounds": 1, "delay": 200}     # one long pure poll
    with BootedSystem(spec, arch, p, "host") as on, \
            BootedSystem(spec, arch, p, "host", fast_forward=False) as off:
        on.machine.park_store_loops = True      # ring_peek is a call: the poll stores
        on.finish()
        off.finish()
        r = on.report()
        assert r.ok and r.process("hog").console.startswith("hog: done")
        assert r.to_json() == off.report().to_json()
        assert on.machine.cores[0].native.spin_stats()[0] > 0
        assert on.machine._sched.parked_timers > 0     # the timer did find it parked
