"""keusim's libunicorn (tools/unicorn/hooked-pages.patch, docs/unicorn.md "hooked pages").

With the patch, translated loads and stores keep QEMU's inline TLB path while memory hooks
exist, and only TLB entries of pages a hook covers send accesses down the slow path, where
the hooks are called. That must be invisible: every hook callback the wheel's library makes
(address, size, value, order) and every byte and register must come out the same, including
for a hook added and deleted in the middle of a run (the TLB entries filled before it must
not let a covered store through: the patch empties the TLB when memory hooks change), for
sub-page ranges and for misaligned and page-crossing accesses. Whole runs must report
byte-identical JSON with either library.

Each side runs in its own process (one libunicorn per process): LIBUNICORN_PATH pointing at
the patched build, or KEUSIM_STOCK_UNICORN=1 for the wheel's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LIB_DIR = Path(sys.prefix) / "lib" / "keusim-unicorn"
UC_MEM_READ, UC_MEM_WRITE = 16, 17      # unicorn_const.UC_MEM_READ / UC_MEM_WRITE

pytestmark = pytest.mark.skipif(
    not (LIB_DIR / "libunicorn.so.2").exists(),
    reason=f"keusim's libunicorn is not built in {LIB_DIR} (run 'make unicorn')")


def _run(code: str, patched: bool) -> dict:
    env = dict(os.environ)
    env.pop("LIBUNICORN_PATH", None)
    env.pop("KEUSIM_STOCK_UNICORN", None)
    if patched:
        env["LIBUNICORN_PATH"] = str(LIB_DIR)
    else:
        env["KEUSIM_STOCK_UNICORN"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# x86-64, MMU off, RAM at [0, 0x10000). Page A (0x4000) carries a read+write hook over the
# whole page, page C (0x6000) a write hook over 8 bytes of it, page B (0x5000) none. Each
# block ends in `jmp` to the next; the block hook adds an all-RAM read+write hook W at the
# start of block 2 (page B is in the TLB by then, filled without a hook) and deletes it at
# the start of block 3. Only the load shows a stale TLB entry: Unicorn never marks a page
# mapped executable dirty, so stores to such pages take the slow path whatever the flags
# (cputlb.c notdirty_write).
PROBE = r'''
import json, struct
import keusim  # picks the library as keusim does
from unicorn import *
from unicorn.x86_const import *
from unicorn.unicorn_py3.unicorn import uclib

def mov_rbx(v): return b"\x48\xc7\xc3" + struct.pack("<i", v)
def mov_rax(v): return b"\x48\xb8" + struct.pack("<Q", v)
ST, LD_RCX, LD_RDX, JMP = b"\x48\x89\x03", b"\x48\x8b\x0b", b"\x48\x8b\x13", b"\xeb\x00"
b1 = (mov_rax(0x1111) + mov_rbx(0x5008) + ST + mov_rbx(0x4000) + ST + LD_RCX
      + mov_rbx(0x6000) + ST + mov_rbx(0x6010) + ST + mov_rbx(0x5008) + LD_RCX + JMP)
b2 = mov_rax(0x2222) + mov_rbx(0x5008) + LD_RCX + ST + mov_rbx(0x4ffd) + ST + LD_RDX + JMP
b3 = (mov_rax(0x3333) + mov_rbx(0x5008) + ST + LD_RCX + mov_rbx(0x4003) + ST + LD_RDX
      + mov_rbx(0x5ffc) + LD_RDX + JMP)
code = b1 + b2 + b3
uc = Uc(UC_ARCH_X86, UC_MODE_64)
uc.mem_map(0, 0x10000)
uc.mem_write(0x1000, code)
uc.mem_write(0x5ff8, bytes(range(1, 17)))
events = []
def mem(name):
    def cb(uc, access, addr, size, value, ud):
        events.append([name, int(access), addr, size, value & (1 << 64) - 1])
    return cb
uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, mem("A"), None, 0x4000, 0x4fff)
uc.hook_add(UC_HOOK_MEM_WRITE, mem("C"), None, 0x6010, 0x6017)
state = {"n": 0, "w": None}
def block(uc, addr, size, ud):
    state["n"] += 1
    if state["n"] == 2:
        state["w"] = uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, mem("W"))
    elif state["n"] == 3:
        uc.hook_del(state["w"])
    events.append(["block", state["n"], addr, size, 0])
uc.hook_add(UC_HOOK_BLOCK, block)
uc.emu_start(0x1000, 0x1000 + len(code))
print(json.dumps({"patched": hasattr(uclib, "uc_keusim_hooked_pages"), "events": events,
                  "mem": bytes(uc.mem_read(0x4000, 0x3000)).hex(),
                  "regs": [uc.reg_read(r) for r in (UC_X86_REG_RAX, UC_X86_REG_RBX,
                                                    UC_X86_REG_RCX, UC_X86_REG_RDX)]}))
'''


def test_memory_hooks_fire_exactly_as_with_the_wheels_library():
    got = _run(PROBE, patched=True)
    want = _run(PROBE, patched=False)
    assert got["patched"] and not want["patched"]     # each side ran the library it names
    assert got["events"] == want["events"]
    assert got["mem"] == want["mem"] and got["regs"] == want["regs"]
    ev = [tuple(e[:3]) for e in got["events"] if e[0] != "block"]
    # The mid-run hook W saw the load from page B whose entry the TLB already held, the
    # store, and the page-crossing store; once deleted it saw nothing (block 3's load
    # from 0x5ffc); C only saw its 8 bytes.
    w = [e[:4] for e in got["events"] if e[0] == "W"]
    assert w[:3] == [["W", UC_MEM_READ, 0x5008, 8], ["W", UC_MEM_WRITE, 0x5008, 8],
                     ["W", UC_MEM_WRITE, 0x4ffd, 8]]
    third = got["events"].index(next(e for e in got["events"] if e[:2] == ["block", 3]))
    assert not [e for e in got["events"][third:] if e[0] == "W"]
    assert [e[2] for e in got["events"] if e[0] == "C"] == [0x6010]
    assert ("A", UC_MEM_READ, 0x4000) in ev and ("A", UC_MEM_WRITE, 0x4003) in ev

# Whole runs: report JSON with each library. Verified pingpong and the notify attacks
# exercise the native trap and wake-up paths with the coherence hook on the shared pool;
# pingpong with fast-forward exercises spin recording and its resident store hook.
RUNS = r'''
import json, sys
import keusim
out = []
for arch in ("x86_64", "arm64"):
    for name, params, kw in (("pingpong", {"messages": 300}, {}),
                             ("pingpong", {"messages": 40}, {"verified": True}),
                             ("pingpong", {"messages": 100}, {"fast_forward": False}),
                             ("faults", {}, {}),
                             ("notify-attacks", {"messages": 20}, {}),
                             ("poll-wakeup", {"messages": 8, "mode": 2, "interval": 20000,
                                              "spin": 2000}, {})):
        rep = keusim.run(name, arch=arch, params=params, profile="host", **kw)
        out.append([arch, name, rep.ok, rep.to_json()])
print(json.dumps(out))
'''


def test_runs_report_byte_identical_json_with_either_library():
    got = _run(RUNS, patched=True)
    want = _run(RUNS, patched=False)
    assert [r[:3] for r in got] == [r[:3] for r in want]
    assert all(r[2] for r in got)
    for g, w in zip(got, want, strict=True):
        assert g[3] == w[3], f"{g[0]} {g[1]}: reports differ"


# Exits: keusim's build tests the exit request inline at each TB start and after slow-path
# accesses only (cputlb.c uc_exit_after_access), where Unicorn calls a helper at every TB
# start and after every load and store. Where the guest stops must not change: a memory hook
# that calls emu_stop in the middle of a block (on a load, and on a store), an unmapped load
# in the middle of a block (an error), and an emu_stop from the block hook. Each case
# reports the PC, the registers, the memory and the callbacks up to the stop, on both
# architectures.
EXITS = r'''
import json, struct
import keusim
from unicorn import *
from unicorn import x86_const as X, arm64_const as A
from unicorn.unicorn_py3.unicorn import uclib

def x86():
    def movi(r, v): return bytes([0x48, 0xc7, 0xc0 | r]) + struct.pack("<i", v)
    ST, LD = b"\x48\x89\x03", b"\x48\x8b\x0b"       # mov [rbx], rax; mov rcx, [rbx]
    INC = b"\x48\xff\xc2"                           # inc rdx
    blk = lambda a, b: (movi(0, 0x77) + movi(3, a) + INC + ST + INC + movi(3, b) + LD + INC
                        + b"\xeb\x00")
    regs = (X.UC_X86_REG_RIP, X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX,
            X.UC_X86_REG_RDX)
    return Uc(UC_ARCH_X86, UC_MODE_64), blk, regs

def arm():
    def movi(r, v): return struct.pack("<I", 0xd2800000 | (v & 0xffff) << 5 | r)
    ST, LD = struct.pack("<I", 0xf9000020), struct.pack("<I", 0xf9400022)  # str x0,[x1]; ldr x2,[x1]
    INC = struct.pack("<I", 0x91000463)             # add x3, x3, #1
    B = struct.pack("<I", 0x14000001)               # b .+4
    blk = lambda a, b: (movi(0, 0x77) + movi(1, a) + INC + ST + INC + movi(1, b) + LD + INC + B)
    regs = (A.UC_ARM64_REG_PC, A.UC_ARM64_REG_X0, A.UC_ARM64_REG_X1, A.UC_ARM64_REG_X2,
            A.UC_ARM64_REG_X3)
    return Uc(UC_ARCH_ARM64, UC_MODE_ARM), blk, regs

out = []
for mk in (x86, arm):
    for case in ("stop-on-store", "stop-on-load", "unmapped-load", "stop-in-block-hook"):
        uc, blk, regs = mk()
        uc.mem_map(0, 0x8000)
        a, b = 0x4000, (0x9000 if case == "unmapped-load" else 0x5000)
        code = blk(0x6000, 0x6008) + blk(a, b) + blk(0x6010, 0x6018)
        uc.mem_write(0x1000, code)
        ev = []
        def mem(uc, access, addr, size, value, ud):
            ev.append(["mem", int(access), addr, size])
            if ((case == "stop-on-store" and addr == a) or (case == "stop-on-load" and addr == b)):
                uc.emu_stop()
        def block(uc, addr, size, ud):
            ev.append(["block", addr])
            if case == "stop-in-block-hook" and len([e for e in ev if e[0] == "block"]) == 2:
                uc.emu_stop()
        uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, mem, None, 0x4000, 0x5fff)
        uc.hook_add(UC_HOOK_BLOCK, block)
        err = None
        try:
            uc.emu_start(0x1000, 0x1000 + len(code))
        except UcError as e:
            err = e.errno
        out.append([mk.__name__, case, err, ev, [uc.reg_read(r) for r in regs],
                    bytes(uc.mem_read(0x4000, 0x2020)).hex()])
print(json.dumps({"patched": hasattr(uclib, "uc_keusim_hooked_pages"), "out": out}))
'''


def test_exits_stop_where_the_wheels_library_stops():
    got = _run(EXITS, patched=True)
    want = _run(EXITS, patched=False)
    assert got["patched"] and not want["patched"]
    assert got["out"] == want["out"]
    by = {(r[0], r[1]): r for r in got["out"]}
    for arch in ("x86", "arm"):
        # Each stop came before the rest of its block: the third block never ran, and the
        # unmapped load is an error, not a value.
        for case in ("stop-on-store", "stop-on-load", "stop-in-block-hook"):
            blocks = [e for e in by[(arch, case)][3] if e[0] == "block"]
            assert len(blocks) == 2 and by[(arch, case)][2] is None, (arch, case)
        assert by[(arch, "unmapped-load")][2] == 6        # UC_ERR_READ_UNMAPPED
