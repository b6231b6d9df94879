"""The core switches of the native scheduler (fastpath.c ``sched_continue``;
docs/architecture.md, "The native scheduler loop") change host speed only. With the nested
switch, the next core's slice runs inside the current core's block hook; with the
resident-core switch, every core runs on a fiber of its own and waits in its block hook
while another runs. Every report and every core's counters are byte-identical to the run
with both off, on both architectures. The cases cover what makes a core come back to
Python (a device event, a trap Python delivers, a fault, the run's end), interrupts that
must reach a waiting core, and spin fast-forward on and off."""

from __future__ import annotations

import pytest
from conftest import run_state

from keusim.errors import MachineError
from keusim.machine import fastpath
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


MODES = {"stop": (False, False), "nested": (True, False), "resident": (False, True)}
"""Machine.nested_switch and Machine.resident_cores for each way of switching cores."""


def _mode(mode):
    if MODES[mode][1] and not fastpath.resident_cores_available():
        pytest.skip("this host has no resident-core switch (fastpath.resident_cores_available)")
    return MODES[mode]


def _run(name, arch, params, kw, mode):
    nested, resident = _mode(mode)
    with BootedSystem(name, arch, params, "host", **kw) as b:
        b.machine.nested_switch = nested
        b.machine.resident_cores = resident
        b.finish()
        s = b.machine._sched
        state = (*run_state(b), tuple(c.pc for c in b.machine.cores))
        return state, {"nested": s.nested, "switches": s.switches, "starts": s.starts,
                       "slices": s.slices}


@pytest.mark.parametrize("mode", ["nested", "resident"])
@pytest.mark.parametrize("name,params,kw", CASES,
                         ids=[f"{n}-{'-'.join(f'{k}{v}' for k, v in {**p, **kw}.items())}"
                              for n, p, kw in CASES])
def test_core_switch_leaves_every_report_identical(arch, name, params, kw, mode):
    on, st_on = _run(name, arch, params, kw, mode)
    off, st_off = _run(name, arch, params, kw, "stop")
    assert on[0] == off[0]      # the report
    assert on == off            # and every core's counters and pc
    # The same slices, but the switch was taken: a core waiting in its hook goes on
    # without a new uc_emu_start, so fewer slices start one.
    assert st_on["slices"] == st_off["slices"]
    assert st_off["nested"] == st_off["switches"] == 0
    if mode == "nested":
        assert st_on["nested"] > 0 and st_on["switches"] == 0
    else:
        assert st_on["switches"] > 0 and st_on["nested"] == 0
    assert st_on["starts"] < st_off["starts"]


def test_resident_cores_start_almost_no_slice(arch):
    """Pingpong with resident cores: nearly every slice is a resumed hook, not a new
    uc_emu_start (the nested switch still starts one per pair of slices)."""
    _, res = _run("pingpong", arch, {"messages": 200}, {}, "resident")
    _, nest = _run("pingpong", arch, {"messages": 200}, {}, "nested")
    assert res["slices"] == nest["slices"]
    assert res["starts"] * 20 < res["slices"]
    assert nest["starts"] * 3 > nest["slices"]


@pytest.mark.parametrize("mode", ["nested", "resident"])
def test_core_switch_with_device_events(arch, monkeypatch, mode):
    """NetD with the NIC: device events (Python) arrive while cores wait in their hooks."""
    _mode(mode)
    reps = []
    for m in (mode, "stop"):
        nested, resident = MODES[m]
        monkeypatch.setenv("KEUSIM_NESTED", str(int(nested)))
        monkeypatch.setenv("KEUSIM_RESIDENT", str(int(resident)))
        wire = ScriptWire(demo_script())
        rep = run("netd", arch=arch, wire=wire)
        assert rep.ok, rep.summary()
        reps.append((rep.to_json(), [bytes(f.raw) if hasattr(f, "raw") else repr(f)
                                     for f in wire.peer.received]))
    assert reps[0] == reps[1]


def test_resident_cores_refused_where_the_host_has_none(monkeypatch):
    """Asking for the resident-core switch on a host without it (another CPU, Python 3.14)
    is one clear error naming the setting; the machine keeps the nested switch."""
    with BootedSystem("pingpong", "x86_64", {"messages": 4}, "host") as b:
        monkeypatch.setattr(fastpath, "resident_cores_available", lambda: False)
        with pytest.raises(MachineError, match="Machine.resident_cores"):
            b.machine.resident_cores = True
        b.machine.resident_cores = False
        b.finish()
        assert b.report().ok and b.machine._sched.switches == 0
