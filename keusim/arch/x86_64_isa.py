"""x86-64 instruction decoding for the cycle model (capstone -> :class:`~keusim.arch.isa.Decoded`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import capstone as cs
from capstone import x86_const as X86

from keusim.arch.isa import Decoded, address_regs
from keusim.arch.isa import uops as _uops

CS_ARCH, CS_MODE = cs.CS_ARCH_X86, cs.CS_MODE_64
OP_IMM = X86.X86_OP_IMM
OP_MEM = X86.X86_OP_MEM

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
    addr = address_regs(insn, X86.X86_OP_MEM, _x86_reg)
    mem = [op for op in insn.operands if op.type == X86.X86_OP_MEM]
    loads = any(op.access & cs.CS_AC_READ for op in mem)
    stores = any(op.access & cs.CS_AC_WRITE for op in mem)
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


decode = _x86_decode
