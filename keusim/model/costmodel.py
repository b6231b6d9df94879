"""Block costs: what one execution of a translated block costs in model cycles.

The machine asks once per block (on a miss in the native table) and C charges the
answer on every execution, so a block's cost is a constant: the same instructions always
cost the same cycles. :class:`FlatCost` (one cycle per instruction) is the placeholder;
:class:`ProfileCost` prices a block with a microarchitecture profile
(:mod:`keusim.model.profiles`). The model, its reasons and its limits are in docs/cycle-model.md;
in short, for each stretch of the block between serializing instructions:

    cycles = max(front end  = instructions / issue width,
                 busiest execution resource = sum of reciprocal throughputs on it
                                              (loads + stores also / memory_ops),
                 loop-carried chain = longest path from a register's value on entry to
                                      the same register's value on exit)

plus a fixed cost for each serializing, trap or PAUSE instruction. Before a serializing
instruction the whole dependency chain of the stretch is exposed instead of only the
loop-carried part, because the pipeline must drain. Loads are L1 hits; the C coherence
model adds the cross-core cost of shared lines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from types import MappingProxyType

import capstone as cs
from capstone import arm64_const as A64
from capstone import x86_const as X86

from keusim.errors import ArchError
from keusim.model.profiles import TRAP_CLASSES, Profile, load_profile

FRACTION = 256
"""Block costs are charged in 1/FRACTION cycles: the native hook adds them to a per-core
fractional accumulator and moves whole cycles to the clock, so a loop that costs 5.5
cycles per iteration advances the clock 5.5 cycles per iteration on average, not 6
(``fastcore.frac``)."""


@dataclass(frozen=True)
class BlockCost:
    """One execution of a block: ``cycles`` rounded (for display), ``fixed`` exact to
    1/:data:`FRACTION` cycle (what the machine charges; ``cycles * FRACTION`` when not
    given), ``insns`` instructions."""

    cycles: int
    insns: int
    fixed: int = -1
    """Fixed-point cycles: units of 1/FRACTION cycle."""

    def __post_init__(self) -> None:
        if self.fixed < 0:
            object.__setattr__(self, "fixed", self.cycles * FRACTION)


class FlatCost:
    """One cycle per instruction."""

    name = "flat"

    def block(self, insns: list) -> BlockCost:
        return BlockCost(len(insns), len(insns))


# --------------------------------------------------------------------------- classes

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


# x86 ----------------------------------------------------------------------------------

_X86_FAMILY = {
    **dict.fromkeys("al ah ax eax rax".split(), "rax"),
    **dict.fromkeys("bl bh bx ebx rbx".split(), "rbx"),
    **dict.fromkeys("cl ch cx ecx rcx".split(), "rcx"),
    **dict.fromkeys("dl dh dx edx rdx".split(), "rdx"),
    **dict.fromkeys("sil si esi rsi".split(), "rsi"),
    **dict.fromkeys("dil di edi rdi".split(), "rdi"),
    **dict.fromkeys("bpl bp ebp rbp".split(), "rbp"),
    **dict.fromkeys("spl sp esp rsp".split(), "rsp"),
    **dict.fromkeys("rflags eflags flags".split(), "flags"),
}
_X86_RN = re.compile(r"^(r(?:[89]|1[0-5]))[bwd]?$")
_X86_IGNORE = {"rip", "eip", "ip"}

# Mnemonic -> class (exact), for the integer and system instructions zig cc and the
# kernel's assembly emit. Memory operands add load/store micro-ops (see _x86_decode).
_X86_EXACT: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys("""add sub adc sbb and or xor not neg inc dec cmp test lea bt
        cdqe cdq cqo cwd cwde cbw bswap popcnt lzcnt tzcnt andn bsf bsr blsi blsr blsmsk
        sahf lahf clc stc cmc cld std movzx movsx movsxd movbe xadd cmpxchg""".split(),
                    "alu"),
    **dict.fromkeys("mov movabs".split(), "move"),
    **dict.fromkeys("""shl shr sar sal rol ror rcl rcr shld shrd shlx shrx sarx rorx
        bextr bzhi pdep pext bts btr btc""".split(), "shift"),
    **dict.fromkeys("imul mul mulx".split(), "mul"),
    **dict.fromkeys("div idiv".split(), "div"),
    "push": "store", "pop": "load", "leave": "load",
    "jmp": "branch_taken", "ljmp": "system",
    "call": "call", "ret": "ret", "retq": "ret",
    "mfence": "fence", "lfence": "fence_light", "sfence": "fence_light",
    "pause": "pause",
    **dict.fromkeys("rdtsc rdtscp".split(), "counter"),
    **dict.fromkeys("syscall sysenter".split(), "syscall"),
    **dict.fromkeys("sysret sysretq sysexit".split(), "sysret"),
    **dict.fromkeys("int int1 int3 into ud0 ud1 ud2".split(), "exception"),
    **dict.fromkeys("iret iretd iretq".split(), "trap_return"),
    **dict.fromkeys("invlpg invpcid".split(), "tlb_flush"),
    **dict.fromkeys("""wrmsr rdmsr cpuid lgdt lidt ltr lldt lmsw clts wbinvd invd xsetbv
        retf retfq lret in out insb insw insd outsb outsw outsd verw rdpmc
        fxsave fxsave64 fxrstor fxrstor64 xsave xsave64 xrstor xrstor64""".split(),
                    "system"),
    **dict.fromkeys("""swapgs cli sti hlt rdfsbase rdgsbase wrfsbase wrgsbase pushfq
        popfq pushf popf clac stac rdpid sgdt sidt str sldt smsw rdpkru wrpkru""".split(),
                    "system_light"),
    **dict.fromkeys("nop endbr64 endbr32 prefetch prefetcht0 prefetcht1 prefetcht2 "
                    "prefetchnta prefetchw fnop".split(), "nop"),
})
_X86_PREFIX: tuple[tuple[str, str], ...] = (
    ("cmov", "alu"), ("set", "alu"), ("j", "branch"), ("loop", "branch"),
    ("movs", "string"), ("stos", "string"), ("lods", "string"), ("cmps", "string"),
    ("scas", "string"),
)
_LOCK = 0xF0


def _x86_reg(name: str) -> str | None:
    if name in _X86_IGNORE:
        return None
    if name in _X86_FAMILY:
        return _X86_FAMILY[name]
    m = _X86_RN.match(name)
    return m.group(1) if m else name


def _x86_class(insn: cs.CsInsn) -> str:
    mn = insn.mnemonic
    base = mn.split()[-1]   # "lock xadd" -> "xadd", "rep movsb" -> "movsb"
    if insn.prefix[0] == _LOCK or mn.startswith("lock "):
        return "atomic"
    if base == "xchg" and any(o.type == X86.X86_OP_MEM for o in insn.operands):
        return "atomic"      # XCHG with memory is implicitly locked (Intel SDM vol. 2)
    if base in ("mov",) and insn.operands and insn.operands[0].type == X86.X86_OP_REG:
        dst = insn.reg_name(insn.operands[0].reg)
        if dst == "cr3":
            return "mmu_switch"
        if dst.startswith(("cr", "dr")):
            return "system"
    if base == "mov" and len(insn.operands) > 1 and insn.operands[1].type == X86.X86_OP_REG \
            and insn.reg_name(insn.operands[1].reg).startswith(("cr", "dr")):
        return "system_light"
    if base == "xchg":
        return "move"
    cls = _X86_EXACT.get(base)
    if cls is not None:
        return cls
    for pre, c in _X86_PREFIX:
        if base.startswith(pre):
            return c
    return "other"


def _x86_decode(insn: cs.CsInsn) -> Decoded:
    cls = _x86_class(insn)
    reads, writes = insn.regs_access()
    rd = [r for r in (_x86_reg(insn.reg_name(x)) for x in reads) if r]
    wr = [r for r in (_x86_reg(insn.reg_name(x)) for x in writes) if r]
    addr: list[str] = []
    loads = stores = False
    for op in insn.operands:
        if op.type == X86.X86_OP_MEM:
            for r in (op.mem.base, op.mem.index):
                if r:
                    name = _x86_reg(insn.reg_name(r))
                    if name:
                        addr.append(name)
            loads |= bool(op.access & cs.CS_AC_READ)
            stores |= bool(op.access & cs.CS_AC_WRITE)
    mn = insn.mnemonic.split()[-1]
    if mn == "lea":
        loads = stores = False
    free: tuple[str, ...] = ()
    if mn in ("push", "pop", "call", "ret", "retq", "leave", "pushfq", "popfq"):
        # The stack engine updates RSP at decode: no latency (Agner Fog, microarchitecture
        # guide, "stack engine", Intel since Pentium M and AMD since Zen).
        free = ("rsp",)
        wr = [r for r in wr if r != "rsp"]
        stores |= mn in ("push", "call", "pushfq")
        loads |= mn in ("pop", "ret", "retq", "leave", "popfq")
        if mn in ("push", "pop", "call", "ret", "retq"):
            addr.append("rsp")
        elif mn == "leave":  # mov rsp, rbp; pop rbp: the load is addressed by rbp
            addr.append("rbp")
    # Zero idioms (xor r, r / sub r, r) do not depend on the register's old value
    # (LLVM X86ScheduleZnver3.td IsZeroIdiomFunction; Intel OPT, dependency breaking).
    if mn in ("xor", "sub") and len(insn.operands) == 2 and \
            all(o.type == X86.X86_OP_REG for o in insn.operands) and \
            insn.operands[0].reg == insn.operands[1].reg:
        rd = []
    explicit = _data_regs_x86(insn)
    if mn.startswith("cmov") and wr:
        rd.append(wr[0])     # a CMOV whose condition fails keeps the old value: an input
    if cls == "alu" and loads and mn in ("movzx", "movsx", "movsxd"):
        cls = "load"         # an extending load has the plain load latency
    data = tuple(dict.fromkeys(r for r in rd if r not in addr or r in explicit))
    uops = _uops(cls, loads, stores)
    return Decoded(insn.mnemonic, cls, uops, data, tuple(dict.fromkeys(addr)),
                   tuple(dict.fromkeys(wr)), free, (), loads, stores)


def _data_regs_x86(insn: cs.CsInsn) -> set[str]:
    """Registers an instruction reads as values (not only to form an address)."""
    out: set[str] = set()
    for op in insn.operands:
        if op.type == X86.X86_OP_REG and op.access & cs.CS_AC_READ:
            r = _x86_reg(insn.reg_name(op.reg))
            if r:
                out.add(r)
    return out


# arm64 --------------------------------------------------------------------------------

_A64_EXACT: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys("""add adds sub subs adc adcs sbc sbcs and ands orr orn eor eon bic
        bics neg negs ngc ngcs mvn cmp cmn tst ccmp ccmn csel csinc csinv csneg cset
        csetm cinc cinv cneg adr adrp clz cls rbit rev rev16 rev32 rev64 sxtb sxth sxtw
        uxtb uxth""".split(), "alu"),
    **dict.fromkeys("mov movz movk movn".split(), "move"),
    **dict.fromkeys("""lsl lsr asr ror lslv lsrv asrv rorv ubfx sbfx ubfiz sbfiz bfi bfxil
        bfc bfm ubfm sbfm extr""".split(), "shift"),
    **dict.fromkeys("""mul madd msub mneg smull umull smulh umulh smaddl umaddl smsubl
        umsubl smnegl umnegl""".split(), "mul"),
    **dict.fromkeys("udiv sdiv".split(), "div"),
    **dict.fromkeys("""ldr ldrb ldrh ldrsb ldrsh ldrsw ldur ldurb ldurh ldursb ldursh
        ldursw ldp ldpsw ldnp ldtr ldtrb ldtrh ldtrsb ldtrsh ldtrsw""".split(), "load"),
    **dict.fromkeys("""str strb strh stur sturb sturh stp stnp sttr sttrb
        sttrh""".split(), "store"),
    **dict.fromkeys("ldar ldarb ldarh ldapr ldaprb ldaprh ldlar ldlarb ldlarh".split(),
                    "load_acquire"),
    **dict.fromkeys("stlr stlrb stlrh stllr stllrb stllrh".split(), "store_release"),
    **dict.fromkeys("""ldxr ldxrb ldxrh ldaxr ldaxrb ldaxrh stxr stxrb stxrh stlxr stlxrb
        stlxrh ldxp ldaxp stxp stlxp""".split(), "atomic"),
    **dict.fromkeys("cbz cbnz tbz tbnz".split(), "branch"),
    "b": "branch_taken", "br": "branch_taken", "bl": "call", "blr": "call", "ret": "ret",
    **dict.fromkeys("dmb dsb".split(), "fence"),
    **dict.fromkeys("isb sb ssbb pssbb csdb".split(), "fence_light"),
    "yield": "pause",
    "svc": "syscall",
    **dict.fromkeys("brk udf hlt hvc smc".split(), "exception"),
    "eret": "trap_return",
    "tlbi": "tlb_flush",
    **dict.fromkeys("dc ic at".split(), "system"),
    **dict.fromkeys("wfi wfe sev sevl clrex".split(), "system_light"),
    **dict.fromkeys("nop hint bti paciasp autiasp pacibsp autibsp xpaclri esb".split(),
                    "nop"),
    "prfm": "nop", "prfum": "nop",
})
# LSE atomics: LDADD{A}{L}{B,H}, CAS*, SWP*, ST{ADD,...} (no-return forms).
_A64_ATOMIC = re.compile(r"^(ld(add|clr|eor|set|smax|smin|umax|umin)|st(add|clr|eor|set|"
                         r"smax|smin|umax|umin)|swp|casp?)(a|al|l)?[bh]?$")
_A64_MMU_REGS = ("ttbr0_el1", "ttbr1_el1")
_A64_HEAVY_SYSREGS = ("sctlr_el1", "tcr_el1", "mair_el1", "vbar_el1", "cpacr_el1",
                      "ttbr0_el2", "hcr_el2", "scr_el3", "cntkctl_el1")
_A64_COUNTERS = ("cntvct_el0", "cntpct_el0", "cntfrq_el0", "cntvctss_el0")
_A64_COMPARE = ("cmp", "cmn", "tst", "ccmp", "ccmn")


def _a64_reg(name: str) -> str | None:
    if name in ("xzr", "wzr", "pc"):
        return None
    if name in ("nzcv",):
        return "flags"
    if name == "fp":
        return "x29"
    if name == "lr":
        return "x30"
    if name in ("sp", "wsp"):
        return "sp"
    if name[0] == "w" and name[1:].isdigit():
        return "x" + name[1:]
    return name


def _a64_class(insn: cs.CsInsn) -> str:
    mn = insn.mnemonic
    if mn.startswith("b."):
        return "branch"
    if mn in ("msr", "mrs"):
        ops = [s.strip() for s in insn.op_str.split(",")]
        sysreg = ops[0] if mn == "msr" else (ops[1] if len(ops) > 1 else "")
        if mn == "msr" and sysreg in _A64_MMU_REGS:
            return "mmu_switch"
        if mn == "mrs" and sysreg in _A64_COUNTERS:
            return "counter"
        if mn == "msr" and sysreg in _A64_HEAVY_SYSREGS:
            return "system"
        return "system_light"
    cls = _A64_EXACT.get(mn)
    if cls is not None:
        return cls
    if _A64_ATOMIC.match(mn):
        return "atomic"
    return "other"


def _a64_decode(insn: cs.CsInsn) -> Decoded:
    cls = _a64_class(insn)
    mn = insn.mnemonic
    reads, writes = insn.regs_access()
    rd = [r for r in (_a64_reg(insn.reg_name(x)) for x in reads) if r]
    wr = [r for r in (_a64_reg(insn.reg_name(x)) for x in writes) if r]
    addr: list[str] = []
    for op in insn.operands:
        if op.type == A64.ARM64_OP_MEM:
            for r in (op.mem.base, op.mem.index):
                if r:
                    name = _a64_reg(insn.reg_name(r))
                    if name:
                        addr.append(name)
    # capstone 5 reports CMP-type instructions as writing their first operand and
    # reading only the second; they read every register operand and write the flags.
    if mn in _A64_COMPARE:
        rd = [r for r in (_a64_reg(insn.reg_name(o.reg)) for o in insn.operands
                          if o.type == A64.ARM64_OP_REG) if r]
        if mn.startswith("cc"):
            rd.append("flags")
        wr = ["flags"]
    if mn == "ret":
        target = [o for o in insn.operands if o.type == A64.ARM64_OP_REG]
        rd = [_a64_reg(insn.reg_name(target[0].reg)) or "x30"] if target else ["x30"]
    if mn in ("bl", "blr"):
        wr = ["x30"]
    if cls in ("syscall", "exception"):
        wr = []
    if cls in ("load", "load_acquire"):
        loads, stores = True, False
    elif cls in ("store", "store_release"):
        loads, stores = False, True
    elif cls == "atomic":
        # Exclusive loads only load, exclusive stores only store; LSE atomics (LDADD,
        # CAS, SWP and the no-return STADD forms) read and write the line.
        loads = not mn.startswith(("stxr", "stlxr", "stxp", "stlxp"))
        stores = not mn.startswith(("ldxr", "ldaxr", "ldxp", "ldaxp"))
    else:
        loads = stores = False
    writeback: tuple[str, ...] = ()
    if insn.writeback and addr:
        writeback = (addr[0],)
        wr = [r for r in wr if r != addr[0]]
    data = [r for r in rd if r not in addr or _a64_reads_as_data(insn, r)]
    uops = _uops(cls, loads, stores)
    return Decoded(mn, cls, uops, tuple(dict.fromkeys(data)), tuple(dict.fromkeys(addr)),
                   tuple(dict.fromkeys(wr)), (), writeback, loads, stores)


def _a64_reads_as_data(insn: cs.CsInsn, reg: str) -> bool:
    """Whether ``reg`` is read as a value (a register operand capstone marks as read, or
    leaves unmarked as it does for LSE atomics), not only as an address."""
    for op in insn.operands:
        if op.type == A64.ARM64_OP_REG and _a64_reg(insn.reg_name(op.reg)) == reg and \
                (op.access & cs.CS_AC_READ or op.access == 0):
            return True
    return False


def _uops(cls: str, loads: bool, stores: bool) -> tuple[str, ...]:
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


# -- branch direction -------------------------------------------------------------------


def _branch_target(insn: cs.CsInsn) -> int | None:
    for op in reversed(insn.operands):
        if op.type in (X86.X86_OP_IMM, A64.ARM64_OP_IMM) and op.imm > 0:
            return op.imm
    return None


@dataclass(frozen=True)
class _Arch:
    name: str
    cs_arch: int
    cs_mode: int
    decode: Callable[[cs.CsInsn], Decoded]


_ARCHES: Mapping[str, _Arch] = MappingProxyType({
    "x86_64": _Arch("x86_64", cs.CS_ARCH_X86, cs.CS_MODE_64, _x86_decode),
    "arm64": _Arch("arm64", cs.CS_ARCH_ARM64, cs.CS_MODE_ARM, _a64_decode),
})
_ALIASES = {"x86-64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}


def arch_names() -> tuple[str, ...]:
    return tuple(_ARCHES)


def _arch(name: str) -> _Arch:
    n = _ALIASES.get(str(name).lower(), str(name).lower())
    if n not in _ARCHES:
        raise ArchError(f"unknown architecture {name!r} for the cost model; "
                        f"choose one of: {', '.join(_ARCHES)}")
    return _ARCHES[n]


def decode(insn: cs.CsInsn, arch: str) -> Decoded:
    """The model's view of one capstone instruction (capstone ``detail`` must be on).

    Conditional branches are classed by the static backward-taken/forward-not-taken rule:
    a conditional branch to a lower address is ``branch_taken`` (a loop back edge), to a
    higher one ``branch`` (not taken). A block's cost cannot depend on the direction a
    branch actually went, because it is computed once.
    """
    a = _arch(arch)
    key = (a.name, insn.address, bytes(insn.bytes))
    d = _DECODED.get(key)
    if d is None:
        d = _decode_uncached(insn, a)
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[key] = d
    return d


_DECODED: dict[tuple[str, int, bytes], Decoded] = {}
_DECODED_MAX = 1 << 16   # decoding is the slow part (capstone detail access in Python)


def _decode_uncached(insn: cs.CsInsn, a: _Arch) -> Decoded:
    d = a.decode(insn)
    if d.cls == "branch":
        t = _branch_target(insn)
        if t is not None and t <= insn.address:
            d = replace(d, cls="branch_taken", uops=("branch_taken",))
    return d


def classify(insn: cs.CsInsn, arch: str) -> str:
    """The instruction class of ``insn`` (see :data:`keusim.model.profiles.CLASS_NAMES` and
    :data:`keusim.model.profiles.TRAP_CLASSES`)."""
    return decode(insn, arch).cls


@lru_cache(maxsize=4)
def disassembler(arch: str) -> cs.Cs:
    """A capstone disassembler with detail on, as the machine uses."""
    a = _arch(arch)
    md = cs.Cs(a.cs_arch, a.cs_mode)
    md.detail = True
    return md


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class Breakdown:
    """How :class:`ProfileCost` priced one block (for inspection and tests)."""

    cycles: int
    insns: int
    exact: float
    """The unrounded cost."""
    segments: tuple[tuple[float, float, float, bool], ...]
    """Per stretch: (throughput bound, chain bound used, fixed cost after it, drained)."""
    categories: Mapping[str, int]
    classes: tuple[str, ...]


class ProfileCost:
    """Prices blocks with a microarchitecture profile; deterministic and integer-valued.

    Args:
        profile: a :class:`~keusim.model.profiles.Profile` or a profile name or path.
        arch: the guest architecture of the blocks, ``x86_64`` or ``arm64``. A profile
            of the other ISA may be used: its class prices then stand in for the guest's
            instructions (an approximation, noted in docs/cycle-model.md).
    """

    def __init__(self, profile: Profile | str = "host", arch: str = "x86_64"):
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        self.arch = _arch(arch).name
        self.name = f"profile:{self.profile.name}"
        p = self.profile
        self._lat = {c: k.latency for c, k in p.classes.items()}
        self._rt = {c: k.rthroughput for c, k in p.classes.items()}
        self._pipe = {c: k.pipe for c, k in p.classes.items()}
        for cls, key in TRAP_CLASSES.items():
            self._lat[cls] = p.param(key).value
            self._rt[cls] = 0.0
            self._pipe[cls] = "none"
        self._l1 = p.param("memory.l1").value
        self._width = p.issue_width
        self._memops = p.memory_ops

    # -- the interface the machine uses --------------------------------------
    def block(self, insns: Sequence[cs.CsInsn]) -> BlockCost:
        """The cost of one execution of the block ``insns`` (capstone, detail on)."""
        b = self.breakdown(insns)
        fixed = 0 if not b.insns else max(1, _round(b.exact * FRACTION))
        return BlockCost(b.cycles, b.insns, fixed)

    def attribute(self, insns: Sequence[cs.CsInsn]) -> dict[str, int]:
        """The block's cycles split into ``compute``, ``memory`` and ``trap``.

        The values are integers that add up to ``block(insns).cycles``.
        """
        return dict(self.breakdown(insns).categories)

    def coherence(self) -> tuple[int, int, int]:
        """(transfer, invalidate, fill) for ``Machine(coherence=...)``."""
        return self.profile.coherence()

    @property
    def ipi_cycles(self) -> int:
        return self.profile.ipi_cycles

    # -- the model --------------------------------------------------------------
    def breakdown(self, insns: Sequence[cs.CsInsn]) -> Breakdown:
        """Price the block and show the parts (see the module docstring)."""
        decoded = [decode(i, self.arch) for i in insns]
        segs: list[tuple[float, float, float, bool]] = []
        cat = dict.fromkeys(CATEGORIES, 0.0)
        seg: list[Decoded] = []
        for d in decoded:
            if d.cls in SERIALIZING:
                segs.append(self._segment(seg, drained=True, fixed=self._lat[d.cls], cat=cat,
                                          fixed_cls=d.cls))
                seg = []
            else:                      # PAUSE stays in the stretch: a delay, not a drain
                seg.append(d)
        if seg or not segs:
            segs.append(self._segment(seg, drained=False, fixed=0.0, cat=cat, fixed_cls=None))
        exact = sum(t_bound if t_bound >= c_bound else c_bound for t_bound, c_bound, _, _ in segs)
        exact += sum(f for _, _, f, _ in segs)
        cycles = 0 if not decoded else max(1, _round(exact))
        return Breakdown(cycles, len(decoded), exact, tuple(segs),
                         MappingProxyType(apportion(cat, cycles, ("trap", "memory", "compute"),
                                                    empty="compute")),
                         tuple(d.cls for d in decoded))

    def _segment(self, seg: list[Decoded], *, drained: bool, fixed: float,
                 cat: dict[str, float], fixed_cls: str | None) -> tuple[float, float, float, bool]:
        """Bounds of one stretch; adds its cycles, by category, to ``cat``."""
        lat, rt, pipe = self._lat, self._rt, self._pipe
        # Throughput: the front end and each execution resource.
        per_pipe: dict[str, float] = {}
        per_pipe_cat: dict[str, dict[str, float]] = {}
        pause = 0.0
        for d in seg:
            if d.cls == "pause":
                pause += lat["pause"]
                continue
            for u in d.uops:
                p = pipe[u]
                if p == "none":
                    continue
                uses = [(p, rt[u])]
                # The load and store pipes share the load/store unit's address generation:
                # at most pipeline.memory_ops memory micro-ops per cycle in total.
                if p in ("load", "store"):
                    uses.append((MEMORY_OPS, 1.0 / self._memops))
                for res, c in uses:
                    per_pipe[res] = per_pipe.get(res, 0.0) + c
                    pc = per_pipe_cat.setdefault(res, dict.fromkeys(CATEGORIES, 0.0))
                    pc[CATEGORY[u]] += c
        front = len(seg) / self._width
        busiest = max(per_pipe.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0.0))
        t_bound = max(front, busiest[1])
        # Dependencies: for each register, the longest path from each register's value on
        # entry to the stretch (entry values are ready at time 0). A path is a vector
        # (length, compute part, memory part, trap part) so that the bound can be
        # attributed to the categories along the path that sets it.
        dep: dict[str, dict[str, _Path]] = {}
        full: _Path = _ZERO

        def paths(r: str) -> dict[str, _Path]:
            return dep.get(r, {r: _ZERO})

        for d in seg:
            if d.cls == "pause":
                continue
            op_lat = lat[d.cls] if d.cls not in ("load", "store", "load_acquire",
                                                 "store_release") else 0.0
            # The L1 hit is on the path from the address to the result. An atomic's and
            # an acquire load's own latency includes it; a string instruction's register
            # updates do not wait for its data.
            mem_lat = self._l1 if d.loads and d.cls not in ("atomic", "load_acquire",
                                                            "string") else 0.0
            if d.cls == "load_acquire":
                mem_lat = lat["load_acquire"]
            opcat = CATEGORY[d.cls]
            out: dict[str, _Path] = {}
            for r in d.addr:
                for src, v in paths(r).items():
                    out[src] = _longer(out.get(src), _extend(v, mem_lat, op_lat, opcat))
            for r in d.data:
                for src, v in paths(r).items():
                    out[src] = _longer(out.get(src), _extend(v, 0.0, op_lat, opcat))
            if not out:
                out = {"": _extend(_ZERO, mem_lat, op_lat, opcat)}
            done = max(out.values())
            if d.stores and not d.writes:
                done = _extend(done, lat["store"], 0.0, "memory")
            full = max(full, done)
            for w in d.writeback:      # base-register update: an ALU add of the base
                dep[w] = {s: _extend(v, 0.0, lat["alu"], "compute") for s, v in paths(w).items()}
            for w in d.writes:
                dep[w] = dict(out)
        carried = max((v[r] for r, v in dep.items() if r in v), default=_ZERO)
        chain = full if drained else carried
        c_bound = chain[0]
        # Attribution of the overlapped part: by the bound that won.
        overlap = max(t_bound, c_bound)
        if overlap > 0:
            if c_bound > t_bound:
                weights = dict(zip(CATEGORIES, chain[1:], strict=True))
            elif busiest[1] >= front and busiest[0]:
                weights = per_pipe_cat[busiest[0]]
            else:
                weights = dict.fromkeys(CATEGORIES, 0.0)
                for d in seg:
                    weights[CATEGORY[d.cls]] += 1.0
            tot = sum(weights.values())
            for k in CATEGORIES:
                cat[k] += overlap * (weights[k] / tot if tot > 0 else float(k == "compute"))
        cat["compute"] += pause
        if fixed_cls is not None:
            cat[CATEGORY[fixed_cls]] += fixed
        return (t_bound, c_bound, fixed + pause, drained)


_Path = tuple[float, float, float, float]
_ZERO: _Path = (0.0, 0.0, 0.0, 0.0)


def _extend(p: _Path, mem: float, op: float, opcat: str) -> _Path:
    """Path ``p`` followed by a memory access of ``mem`` and an operation of ``op``."""
    c, m, t = p[1], p[2] + mem, p[3]
    if opcat == "compute":
        c += op
    elif opcat == "memory":
        m += op
    else:
        t += op
    return (p[0] + mem + op, c, m, t)


def _longer(a: _Path | None, b: _Path) -> _Path:
    return b if a is None or b[0] > a[0] else a


def _round(x: float) -> int:
    """Round half up; the epsilon absorbs float noise such as 0.1 + 0.2."""
    return int(math.floor(x + 0.5 + 1e-9))


def apportion(amounts: Mapping, total: int, ties: Sequence = (), empty=None) -> dict:
    """Whole numbers proportional to the non-negative ``amounts`` that add up to ``total``
    (largest remainder). Equal remainders go first to the keys in ``ties``, in that order,
    then in sorted key order; with nothing to share in proportion, ``total`` goes to
    ``empty`` (default: the first key in that order). Integer amounts are shared exactly."""
    rank = {k: (list(ties).index(k) if k in ties else len(ties), k) for k in amounts}
    keys = sorted(amounts, key=rank.__getitem__)
    out = dict.fromkeys(amounts, 0)
    s = sum(amounts.values())
    if total <= 0 or not keys:
        return out
    if s <= 0:
        out[keys[0] if empty is None else empty] = total
        return out
    if all(isinstance(v, int) for v in amounts.values()):
        out = {k: v * total // s for k, v in amounts.items()}
        rem = {k: v * total % s for k, v in amounts.items()}
    else:
        raw = {k: v * total / s for k, v in amounts.items()}
        out = {k: int(math.floor(v)) for k, v in raw.items()}
        rem = {k: raw[k] - out[k] for k in amounts}
    left = total - sum(out.values())
    for k in sorted(keys, key=lambda k: -rem[k])[:left]:    # stable: ties keep the order
        out[k] += 1
    return out


def block_from_bytes(code: bytes, arch: str, address: int = 0x1000) -> list[cs.CsInsn]:
    """Disassemble ``code`` as the machine does (helper for tests and notebooks)."""
    return list(disassembler(arch).disasm(code, address))


def census(insns: Iterable[cs.CsInsn], arch: str) -> dict[str, dict[str, int]]:
    """class -> {mnemonic: count} over ``insns`` (to check classification coverage)."""
    out: dict[str, dict[str, int]] = {}
    for i in insns:
        c = classify(i, arch)
        out.setdefault(c, {}).setdefault(i.mnemonic, 0)
        out[c][i.mnemonic] += 1
    return out


__all__ = ["BlockCost", "Breakdown", "CATEGORIES", "CATEGORY", "Decoded", "FIXED", "FRACTION",
           "FlatCost", "OTHER_ALLOWED", "apportion", "ProfileCost", "SERIALIZING", "arch_names", "block_from_bytes",
           "census", "classify", "decode", "disassembler"]
