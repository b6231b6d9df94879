"""Instruction traces (keusim.analysis.trace): the right instructions, symbolized and priced."""

from __future__ import annotations

import pytest

from keusim import arch as archmod
from keusim.analysis.trace import TraceError, format_trace, trace
from keusim.machine.loader import ElfImage
from keusim.manifest import resolve
from keusim.model.costmodel import FRACTION, ProfileCost, disassembler
from keusim.system import build_images

PARAMS = {"iterations": 200}
PROFILE = "host"   # trace shows the cycle model at work; flat would price every insn 1


def _elf(arch: str) -> ElfImage:
    spec = resolve("compute")
    img = build_images(spec, arch, {**spec.params, **PARAMS})[0]
    return ElfImage(img.path, archmod.get(arch).elf_machine)


def _straight_line(elf: ElfImage, arch: str, fn: str) -> list:
    """The function's instructions from its entry up to and including the first branch."""
    va = elf.symbol(fn)
    seg = next(s for s in elf.segments if s.vaddr <= va < s.vaddr + len(s.data))
    code = seg.data[va - seg.vaddr: va - seg.vaddr + 256]
    out = []
    for i in disassembler(arch).disasm(code, va):
        out.append(i)
        if i.group(1) or i.group(7) or i.mnemonic.startswith(("j", "b", "cb", "tb", "ret")):
            break   # CS_GRP_JUMP / CS_GRP_BRANCH_RELATIVE
    return out


def test_trace_shows_the_function_it_was_asked_for(arch):
    rows = trace("compute", arch=arch, start="compute:compute_loop", count=40, params=PARAMS, profile=PROFILE)
    assert len(rows) == 40
    elf = _elf(arch)
    want = _straight_line(elf, arch, "compute_loop")
    got = rows[:len(want)]
    assert [(r.pc, r.mnemonic) for r in got] == [(i.address, i.mnemonic) for i in want]
    assert all(r.image == "compute" and r.symbol.startswith("compute_loop") for r in got)
    assert rows[0].symbol == "compute_loop" and rows[0].block_start
    # The block cost shown is the model's price of the block the machine ran.
    cost = ProfileCost("host", arch)
    assert rows[0].block_cycles == cost.block(want).cycles
    assert rows[0].block_insns == len(want)
    # Instruction indices are consecutive.
    assert [r.index for r in rows] == list(range(rows[0].index, rows[0].index + 40))


def test_clock_advances_by_each_blocks_cost():
    rows = trace("compute", start="compute_loop", count=120, params=PARAMS, profile=PROFILE)
    starts = [i for i, r in enumerate(rows) if r.block_start]
    assert len(starts) >= 3
    cost, md = ProfileCost(PROFILE, "x86_64"), disassembler("x86_64")
    charged = exact = checked = 0
    for a, b in zip(starts, starts[1:], strict=False):
        # Costs are charged at block entry (the loop touches no shared line), in units of
        # 1/FRACTION cycle: the clock takes the whole cycles and carries the rest, so a
        # block's step is its exact cost rounded down or up, and the steps add up to the
        # exact sum to within one cycle (which step rounds up depends on the carry).
        block = rows[b:b + rows[b].block_insns]
        if len(block) < rows[b].block_insns:
            break                      # the window ends inside this block
        insns = list(md.disasm(bytes.fromhex("".join(r.raw for r in block)), block[0].pc))
        fixed = cost.block(insns).fixed
        step = rows[b].clock - rows[a].clock
        assert fixed // FRACTION <= step <= -(-fixed // FRACTION), (rows[b], fixed)
        charged, exact, checked = charged + step, exact + fixed, checked + 1
    assert checked >= 2 and abs(charged - exact / FRACTION) < 1
    assert all(r.coherence_cycles == 0 for r in rows)
    assert {r.category for r in rows} <= {"compute", "memory", "trap"}


def test_index_and_symbol_windows_agree():
    by_sym = trace("compute", start="compute_loop", count=10, params=PARAMS, profile=PROFILE)
    by_idx = trace("compute", start=by_sym[0].index, count=10, params=PARAMS, profile=PROFILE)
    assert by_idx == by_sym


def test_kernel_syscall_path_is_symbolized():
    rows = trace("syscalls", start="kernel:syscall", count=30, params={"calls": 3}, profile=PROFILE)
    assert rows[0].image == "kernel" and rows[0].symbol == "syscall"
    assert all(r.image == "kernel" for r in rows)
    text = format_trace(rows)
    assert "kernel:syscall" in text and "cycles" in text


def test_shared_ring_accesses_show_coherence_cycles():
    rows = trace("pingpong", start="pong:ring_recv", count=300, params={"messages": 5},
                 core=1, profile=PROFILE)
    assert any(r.coherence_cycles > 0 for r in rows)
    assert any(r.image == "pong" for r in rows)


def test_bad_requests_are_clear_errors():
    with pytest.raises(TraceError, match="core 5 does not exist"):
        trace("compute", core=5, params=PARAMS, profile=PROFILE)
    with pytest.raises(TraceError, match="no symbol 'no_such_fn'"):
        trace("compute", start="no_such_fn", params=PARAMS, profile=PROFILE)
