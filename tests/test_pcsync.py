"""Skipping Unicorn's per-access PC sync (docs/unicorn.md, fastpath.c fast_block) changes
nothing but host time: reports are byte-identical with it and with plain Unicorn's
behaviour (the fallback), the private field is found by its behaviour and a wrong probe
falls back cleanly, and the blocks whose hooks read the PC keep the sync."""

from __future__ import annotations

import pytest

from keusim import arch as arches
from keusim.arch import x86_64 as x86
from keusim.machine import machine as mmod
from keusim.machine import ucutil
from keusim.system import BootedSystem
from tests.test_traps import _manifest


def _report(system, arch: str, params=None, skip: bool = True, **kw) -> str:
    with BootedSystem(system, arch, params, "host", **kw) as b:
        b.machine.skip_pc_sync = skip
        assert b.machine.skip_pc_sync is skip
        b.finish()
        return b.report().to_json()


@pytest.mark.parametrize("name,params,kw", [
    ("pingpong", {"messages": 60}, {}),
    ("pingpong", {"messages": 30}, {"verified": True}),
    ("pingpong", {"messages": 60}, {"fast_forward": False}),
    ("stream", {"messages": 40}, {}),
    ("faults", None, {}),
    ("ring-attacks", None, {}),
    ("notify-attacks", {"messages": 20}, {}),
])
def test_reports_are_identical_with_and_without_the_pc_sync(arch, name, params, kw):
    fast = _report(name, arch, params, True, **kw)
    assert fast == _report(name, arch, params, False, **kw)


def test_every_hostile_instruction_reports_the_same_without_the_pc_sync(arch):
    """traps.c: every fault (port I/O and sysenter on x86-64 among them) with its PC."""
    spec = _manifest(arch)
    assert _report(spec, arch, skip=True) == _report(spec, arch, skip=False)


def test_the_field_is_found_by_behaviour_and_a_wrong_probe_falls_back(arch):
    a = arches.get(arch)
    code, store_at, pc_reg, regs = a.sync_probe
    off = ucutil.find_skip_sync_offset(a.new_uc, code, store_at, pc_reg, regs)
    assert off is not None and off == mmod._skip_sync_offset(a)
    # A probe whose store is elsewhere proves nothing: no offset, plain Unicorn.
    assert ucutil.find_skip_sync_offset(a.new_uc, code, store_at + 1, pc_reg, regs) is None


def test_a_machine_without_the_field_runs_as_plain_unicorn(arch, monkeypatch):
    """The fallback: when the probe finds nothing, no core skips the sync, and the report
    is the one the fast way gives."""
    fast = _report("pingpong", arch, {"messages": 40})
    monkeypatch.setitem(mmod._SKIP_SYNC, arch, None)
    with BootedSystem("pingpong", arch, {"messages": 40}, "host") as b:
        assert not b.machine.skip_pc_sync
        assert all(not c.native.k.sync_skip for c in b.machine.cores)
        b.finish()
        assert b.report().to_json() == fast


def test_sysenter_and_port_io_blocks_keep_the_sync(monkeypatch):
    """Their Python hooks read RIP for the fault frame. Planting the bug (no BF_SYNC)
    leaves RIP where the block began, and the fault report changes."""
    spec = _manifest("x86_64")
    good = _report(spec, "x86_64")
    real = x86.X86_64.block_flags
    monkeypatch.setattr(x86.X86_64, "block_flags",
                        lambda self, insns: real(self, insns) & ~mmod.fastpath.BF_SYNC)
    assert _report(spec, "x86_64") != good
