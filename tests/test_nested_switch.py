"""The nested core switch (fastpath.c ``sched_continue``; docs/architecture.md, "The native
scheduler loop") changes host speed only: with it on, the next core's slice runs inside
the current core's block hook, and every report and every core's counters are
byte-identical to the run with it off, on both architectures. The cases cover what makes
a nested core come back to Python (a device event, a trap Python delivers, a fault, the
run's end) and spin fast-forward on and off."""

from __future__ import annotations

import pytest
from conftest import run_state

from keusim.net.wire import ScriptWire, demo_script
from keusim.system import BootedSystem, run

CASES = [
    ("pingpong", {"messages": 80}, {}),
    ("pingpong", {"messages": 80}, {"fast_forward": False}),
    ("pingpong", {"messages": 40}, {"verified": True}),
    ("faults", {}, {}),
    ("notify-attacks", {"messages": 20}, {}),
    ("poll-wakeup", {"messages": 8, "mode": 2, "interval": 20000, "spin": 2000}, {}),
    ("ring-attacks", {}, {}),
]


def _run(name, arch, params, kw, nested):
    with BootedSystem(name, arch, params, "host", **kw) as b:
        b.machine.nested_switch = nested
        b.finish()
        s = b.machine._sched
        state = (*run_state(b), tuple(c.pc for c in b.machine.cores))
        return state, s.nested, s.starts, s.slices


@pytest.mark.parametrize("name,params,kw", CASES,
                         ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in {**p, **kw}.items())}"
                              for n, p, kw in CASES])
def test_nested_switch_leaves_every_report_identical(arch, name, params, kw):
    on, nested_on, starts_on, slices_on = _run(name, arch, params, kw, True)
    off, nested_off, starts_off, slices_off = _run(name, arch, params, kw, False)
    assert on[0] == off[0]      # the report
    assert on == off            # and every core's counters and pc
    # The same slices, but the switch was taken: a core waiting in its hook goes on
    # without a new uc_emu_start, so fewer slices start one.
    assert slices_on == slices_off
    assert nested_off == 0
    assert nested_on > 0
    assert starts_on < starts_off


def test_nested_switch_with_device_events(arch, monkeypatch):
    """NetD with the NIC: device events (Python) arrive while a nested core runs."""
    reps = []
    for nested in ("1", "0"):
        monkeypatch.setenv("KEUSIM_NESTED", nested)
        wire = ScriptWire(demo_script())
        rep = run("netd", arch=arch, wire=wire)
        assert rep.ok, rep.summary()
        reps.append((rep.to_json(), [bytes(f.raw) if hasattr(f, "raw") else repr(f)
                                     for f in wire.peer.received]))
    assert reps[0] == reps[1]
