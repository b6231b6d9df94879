"""The two shortcuts in Unicorn's slow memory path (docs/unicorn.md) change nothing but
host time: skipping the per-access PC sync (fastpath.c fast_block) and answering RAM
lookups from a cache (fastpath.c mm_patch). Reports are byte-identical with them and with
plain Unicorn's behaviour (the fallback); the private fields are found by behaviour or
value and a probe that finds nothing falls back cleanly; the blocks whose hooks read the
PC keep the sync."""

from __future__ import annotations

import ctypes as C

import pytest

from keusim import arch as arches
from keusim.arch import x86_64 as x86
from keusim.machine import fastpath, ucutil
from keusim.machine import machine as mmod
from keusim.system import BootedSystem
from tests.test_traps import _manifest


def _report(system, arch: str, params=None, skip: bool = True, **kw) -> str:
    with BootedSystem(system, arch, params, "host", **kw) as b:
        b.machine.skip_pc_sync = skip
        b.machine.cache_ram_lookup = skip
        assert b.machine.skip_pc_sync is skip and b.machine.cache_ram_lookup is skip
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
def test_reports_are_identical_with_and_without_the_shortcuts(arch, name, params, kw):
    fast = _report(name, arch, params, True, **kw)
    assert fast == _report(name, arch, params, False, **kw)


def test_every_hostile_instruction_reports_the_same_with_the_shortcuts(arch):
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


def test_a_machine_without_the_fields_runs_as_plain_unicorn(arch, monkeypatch):
    """The fallback: when the probes find nothing, no core skips the sync or caches a
    lookup, and the report is the one the fast way gives."""
    fast = _report("pingpong", arch, {"messages": 40})
    monkeypatch.setitem(mmod._SKIP_SYNC, arch, None)
    monkeypatch.setattr(ucutil, "find_memory_mapping_offset", lambda uc: None)
    with BootedSystem("pingpong", arch, {"messages": 40}, "host") as b:
        assert not b.machine.skip_pc_sync and not b.machine.cache_ram_lookup
        assert all(not c.native.k.sync_skip for c in b.machine.cores)
        b.finish()
        assert b.report().to_json() == fast


def test_the_ram_lookup_is_cached_only_when_unicorn_agrees_page_by_page(arch):
    """mm_patch replaces the lookup only when the field holds Unicorn's function and
    every RAM page maps to one region; it answers every address as Unicorn does."""
    a = arches.get(arch)
    uc = a.new_uc()
    uc.mem_map(0, 0x10000)
    uc.mem_map(0x20000, 0x1000)             # a second region past RAM
    so = fastpath.lib()
    h = ucutil.uc_handle(uc)
    off, orig = ucutil.find_memory_mapping_offset(uc)
    assert so.mm_patch(h, off, orig + 16, 0x10000) == -1           # not Unicorn's function
    assert so.mm_patch(h, off, orig, 0x21000) == -1                # RAM is not one region
    assert so.mm_patch(h, off, orig, 0x10000) == 0
    f = C.cast(so.fast_memory_mapping, C.CFUNCTYPE(C.c_void_p, C.c_void_p, C.c_uint64))
    g = C.CFUNCTYPE(C.c_void_p, C.c_void_p, C.c_uint64)(orig)
    for addr in (0, 0xFFFF, 0x10000, 0x1FFFF, 0x20000, 0x20FFF, 0x21000, 1 << 40):
        assert f(h, addr) == g(h, addr), hex(addr)
    assert f(h, 0) and not f(h, 0x10000) and f(h, 0x20000) and f(h, 0x20000) != f(h, 0)
    so.mm_unpatch(h, off)
    assert ucutil.find_memory_mapping_offset(uc) == (off, orig)   # Unicorn's own again


def test_sysenter_and_port_io_blocks_keep_the_sync(monkeypatch):
    """Their Python hooks read RIP for the fault frame. Planting the bug (no BF_SYNC)
    leaves RIP where the block began, and the fault report changes."""
    spec = _manifest("x86_64")
    good = _report(spec, "x86_64")
    real = x86.X86_64.block_flags
    monkeypatch.setattr(x86.X86_64, "block_flags",
                        lambda self, insns: real(self, insns) & ~mmod.fastpath.BF_SYNC)
    assert _report(spec, "x86_64") != good
