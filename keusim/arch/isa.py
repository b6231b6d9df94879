"""Instruction classes: the vocabulary the cycle model prices, and decoding into it.

Each architecture's decoder lives beside its backend (:mod:`keusim.arch.x86_64_isa`,
:mod:`keusim.arch.arm64_isa`) and turns one capstone instruction into a :class:`Decoded`:
its class (``alu``, ``load``, ``syscall``, ...), the throughput classes it uses, and the
registers it reads, writes and addresses with. :mod:`keusim.model.costmodel` prices
classes with a profile and knows nothing of any instruction set.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import MappingProxyType

import capstone as cs

from keusim.arch import normalize

CATEGORIES: tuple[str, ...] = ("compute", "memory", "trap")
"""Where :meth:`ProfileCost.attribute` puts cycles."""

MEMORY_OPS = "memory_ops"
"""The pseudo-resource of the throughput bound that counts every load and store micro-op
against ``pipeline.memory_ops`` (shared address generation), beside the separate ``load``
and ``store`` pipes."""

CATEGORY: Mapping[str, str] = MappingProxyType({
    **{c: "compute" for c in ("alu", "move", "shift", "mul", "div", "branch", "branch_taken",
                              "call", "ret", "pause", "nop", "other")},
    **{c: "memory" for c in ("load", "store", "atomic", "fence", "fence_light",
                             "load_acquire", "store_release", "string")},
    **{c: "trap" for c in ("counter", "tlb_flush", "system", "system_light", "syscall",
                           "sysret", "exception", "trap_return", "mmu_switch")},
})
"""Instruction class -> attribution category."""

SERIALIZING: frozenset[str] = frozenset({
    "fence", "fence_light", "tlb_flush", "system", "syscall", "sysret", "exception",
    "trap_return", "mmu_switch",
})
"""Classes that drain the pipeline: they end a stretch, expose its whole dependency chain,
and cost their fixed latency (or [trap] parameter) on top."""

FIXED: frozenset[str] = SERIALIZING | {"pause"}
"""Classes charged a fixed cost per instruction instead of being overlapped."""

OTHER_ALLOWED: frozenset[str] = frozenset()
"""Mnemonics that may fall into ``other`` without a test failing (none so far)."""


@dataclass(frozen=True)
class Decoded:
    """One instruction as the model sees it.

    ``cls`` is its class; ``uops`` the classes whose throughput it uses (an x86
    ``add [rdi], rax`` is ``("alu", "load", "store")``); ``data`` the registers its result
    depends on; ``addr`` the address registers of its memory access; ``writes`` the
    registers it produces (``flags`` for the condition codes); ``free_writes`` registers
    updated with no latency (the x86 stack engine's RSP updates).
    """

    mnemonic: str
    cls: str
    uops: tuple[str, ...]
    data: tuple[str, ...]
    addr: tuple[str, ...]
    writes: tuple[str, ...]
    free_writes: tuple[str, ...] = ()
    writeback: tuple[str, ...] = ()
    """Address registers the instruction also updates (arm64 pre/post-index): an ALU add."""
    loads: bool = False
    stores: bool = False


def uops(cls: str, loads: bool, stores: bool) -> tuple[str, ...]:
    """Throughput classes of one instruction: its class plus folded memory micro-ops."""
    if cls in ("load", "store", "atomic", "string", "load_acquire", "store_release") or \
            cls in FIXED:
        return (cls,)
    out = [cls]
    if loads:
        out.append("load")
    if stores:
        out.append("store")
    return tuple(out)


def address_regs(insn: cs.CsInsn, mem_type: int, reg) -> list[str]:
    """The registers (named by ``reg``: capstone name -> model name or None) that form the
    addresses of ``insn``'s memory operands (operand type ``mem_type``), in order."""
    out: list[str] = []
    for op in insn.operands:
        if op.type == mem_type:
            for r in (op.mem.base, op.mem.index):
                name = reg(insn.reg_name(r)) if r else None
                if name:
                    out.append(name)
    return out


def _isa(arch: str):
    """The decoder module of ``arch`` (``keusim.arch.<arch>_isa``)."""
    return importlib.import_module(f"keusim.arch.{normalize(arch)}_isa")


def decode(insn: cs.CsInsn, arch: str) -> Decoded:
    """The model's view of one capstone instruction (capstone ``detail`` must be on).

    Conditional branches are classed by the static backward-taken/forward-not-taken rule:
    a conditional branch to a lower address is ``branch_taken`` (a loop back edge), to a
    higher one ``branch`` (not taken). A block's cost cannot depend on the direction a
    branch actually went, because it is computed once.
    """
    key = (arch, insn.address, bytes(insn.bytes))
    d = _DECODED.get(key)
    if d is None:
        mod = _isa(arch)
        d = mod.decode(insn)
        if d.cls == "branch":
            t = _branch_target(insn, mod.OP_IMM)
            if t is not None and t <= insn.address:
                d = replace(d, cls="branch_taken", uops=("branch_taken",))
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[key] = d
    return d


_DECODED: dict[tuple[str, int, bytes], Decoded] = {}
_DECODED_MAX = 1 << 16   # decoding is the slow part (capstone detail access in Python)


def _branch_target(insn: cs.CsInsn, op_imm: int) -> int | None:
    for op in reversed(insn.operands):
        if op.type == op_imm and op.imm > 0:
            return op.imm
    return None


def classify(insn: cs.CsInsn, arch: str) -> str:
    """The instruction class of ``insn`` (see :data:`keusim.model.profiles.CLASS_NAMES` and
    :data:`keusim.model.profiles.TRAP_CLASSES`)."""
    return decode(insn, arch).cls


def spin_eligible(insns, arch: str, classes: frozenset[str], writes) -> bool:
    """True when every instruction of a block is of one of ``classes`` and writes only
    registers whose capstone names match ``writes`` (a compiled pattern): what a
    fast-forwarded spin loop may contain (keusim/machine/fastpath.c, BF_SPIN)."""
    for i in insns:
        if decode(i, arch).cls not in classes:
            return False
        try:
            _read, written = i.regs_access()
        except cs.CsError:
            return False
        if any(not writes.match(i.reg_name(r) or "") for r in written):
            return False
    return True


# Instruction classes that never write memory by themselves (a memory operand they write,
# as x86 `mov [rbx], rax` of class "move" does, is checked separately).
_NO_STORE_CLASSES = frozenset({"alu", "move", "shift", "mul", "branch", "branch_taken", "ret",
                               "pause", "nop", "load", "load_acquire", "fence",
                               "fence_light"})


def may_store(insns, arch: str) -> bool:
    """False only when no instruction of the block can write memory: each is of a class
    in :data:`_NO_STORE_CLASSES` and has no memory operand that capstone marks written
    (or, for a class other than a load, leaves unmarked). Implicit stack writes (push,
    call, enter) are of other classes. A spin loop made of such blocks needs no store
    check (fastpath.c BF_NOSTORE)."""
    mod = _isa(arch)
    for i in insns:
        cls = decode(i, arch).cls
        if cls not in _NO_STORE_CLASSES:
            return True
        for op in i.operands:
            if op.type != mod.OP_MEM:
                continue
            if op.access & cs.CS_AC_WRITE or (not op.access
                                               and cls not in ("load", "load_acquire")):
                return True
    return False


def new_disassembler(arch: str) -> cs.Cs:
    """A fresh capstone disassembler for ``arch`` with detail on, as the machine uses."""
    mod = _isa(arch)
    md = cs.Cs(mod.CS_ARCH, mod.CS_MODE)
    md.detail = True
    return md


@lru_cache(maxsize=4)
def disassembler(arch: str) -> cs.Cs:
    """A shared :func:`new_disassembler` (capstone objects are reusable)."""
    return new_disassembler(normalize(arch))
