"""arm64 instruction decoding for the cycle model (capstone -> :class:`~keusim.arch.isa.Decoded`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import capstone as cs
from capstone import arm64_const as A64

from keusim.arch.isa import Decoded, address_regs
from keusim.arch.isa import uops as _uops

CS_ARCH, CS_MODE = cs.CS_ARCH_ARM64, cs.CS_MODE_ARM
OP_IMM = A64.ARM64_OP_IMM
OP_MEM = A64.ARM64_OP_MEM

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
    addr = address_regs(insn, A64.ARM64_OP_MEM, _a64_reg)
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


decode = _a64_decode
