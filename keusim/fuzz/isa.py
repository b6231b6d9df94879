"""Instruction material for attack snippets, per architecture.

These are encodings the fuzzer needs and nothing else in keusim does: a jump back
to the attacker's trampoline, loads of chosen values into argument registers, and
a curated list of instructions whose user-mode behaviour the architecture defines
as a trap (or as harmless), taken from the Intel SDM (vol. 2 instruction pages;
vol. 3A 6.15 exception table) and the Arm ARM (D1 exception model, C5 system
instructions). Every encoding was checked with capstone (tests/test_fuzz.py
decodes them all). Random-instruction streams come from capstone as well:
random bytes, kept only where they decode.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

import capstone


@dataclass(frozen=True)
class SnippetFacts:
    """What the generator needs to write machine code for one architecture."""

    name: str
    curated: dict[str, bytes]                   # named instructions worth trying at user level
    load_reg: Callable[[int, int], bytes]       # (register slot 0..3, value) -> code
    jump_back: Callable[[int], bytes]           # absolute address -> code that jumps there,
                                                # keeping the result register (rax / x0)
    disasm: Callable[[], capstone.Cs]
    insn_align: int                             # 1 (x86-64) or 4 (arm64)
    nregs: int = 4


# -- x86-64 -------------------------------------------------------------------------
# Register slots: rax (syscall number / address operand), rdi, rsi, rdx (arguments).
_X86_MOVABS = (b"\x48\xb8", b"\x48\xbf", b"\x48\xbe", b"\x48\xba")

X86_CURATED: dict[str, bytes] = {k: bytes.fromhex(v) for k, v in {
    # #UD at any level (SDM vol. 2B UD; vol. 3A 6.15: invalid opcode)
    "ud2": "0f0b", "ud0": "0fff", "ud1": "0fb9c0", "into": "ce", "lock-nop": "f090",
    "aad": "d50a", "push-es": "06", "bound": "6200",
    # int n: #GP unless the gate's DPL >= CPL (SDM vol. 2A INT n; vol. 3A 6.12.1.1)
    "int3": "cc", "int1": "f1", "int-0x80": "cd80", "int-0x20": "cd20", "int-0x21": "cd21",
    "int-0x0d": "cd0d", "int-0x0e": "cd0e", "int-0x08": "cd08", "int-0xff": "cdff",
    # privileged at CPL3: #GP(0) (SDM vol. 3A 5.9)
    "hlt": "f4", "cli": "fa", "sti": "fb", "mov-cr3": "0f22d8", "mov-from-cr0": "0f20c0",
    "lgdt": "0f0110", "invlpg": "0f0138", "wrmsr": "0f30", "rdmsr": "0f32", "clts": "0f06",
    "wbinvd": "0f09", "invd": "0f08", "swapgs": "0f01f8", "ltr": "0f00d8", "xsetbv": "0f01d1",
    "sysexit": "0f35", "sysretq": "480f07", "iretq": "48cf", "mov-ss": "8ed0",
    "monitor": "0f01c8", "mwait": "0f01c9", "vmcall": "0f01c1",
    # I/O at IOPL 0: #GP(0) (SDM vol. 1 19.5.1)
    "in-dx": "ec", "out-dx": "ee", "in-imm": "e460",
    # #UD in 64-bit mode on Intel, or by feature/configuration
    "sysenter": "0f34", "rdpmc": "0f33", "rdrand": "480fc7f0", "rdseed": "480fc7f8",
    "wrfsbase": "f3480faed0", "wrgsbase": "f3480faed8", "rdfsbase": "f3480faec0",
    "vzeroupper": "c5f877", "tpause": "660faef0",
    # allowed at CPL3 (virtualised or harmless)
    "rdtsc": "0f31", "rdtscp": "0f01f9", "cpuid": "0fa2", "xgetbv": "0f01d0", "syscall": "0f05",
    "pushfq": "9c", "popfq": "9d", "std": "fd", "lahf": "9f", "smsw": "0f01e0", "sgdt": "0f0100",
    "str": "0f00c8", "enter": "c8ffff00", "rep-movsb": "f3a4",
    # faults through memory operands (address in rax) and control flow
    "div0": "31c948f7f1", "load-rax": "488b00", "store-rax": "488900", "jmp-rax": "ffe0",
    "call-rax": "ffd0", "rsp-from-rax": "4889c4", "push-rax": "50", "fxsave": "0fae00",
    "xsave": "0fae20", "ldmxcsr": "0fae10", "cmpxchg16b": "480fc708", "movnti": "0fc300",
    "clflush": "0fae38",
    # loops: a spinner with and without system calls (preemption must stop both)
    "spin": "ebfe", "spin-syscall": "b8080000000f05ebf7",
}.items()}


def _x86_load(slot: int, value: int) -> bytes:
    return _X86_MOVABS[slot] + struct.pack("<Q", value & (1 << 64) - 1)


def _x86_jump(addr: int) -> bytes:
    # movabs r11, addr; jmp r11 -- r11 so that rax (the snippet's result) survives
    return b"\x49\xbb" + struct.pack("<Q", addr) + b"\x41\xff\xe3"


X86_64 = SnippetFacts(
    "x86_64", X86_CURATED, _x86_load, _x86_jump,
    lambda: capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64), 1)


# -- arm64 --------------------------------------------------------------------------
# Register slots: x0, x1, x2 (arguments / address operand), x8 (syscall number).
_A64_REGS = (0, 1, 2, 8)


def _w(*words: int) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


A64_CURATED: dict[str, bytes] = {k: _w(*v) for k, v in {
    # undefined / permanently undefined (Arm ARM C6.2 UDF)
    "udf": (0x00000000,), "fmov-fp": (0x1E270000,),
    # exception-generating (Arm ARM D1.10): BRK, HLT, HVC/SMC (undefined at EL0), SVC
    "brk": (0xD4200000,), "hlt": (0xD4400000,), "hvc": (0xD4000002,), "smc": (0xD4000003,),
    "svc": (0xD4000001,), "eret": (0xD69F03E0,),
    # EL1 system registers and instructions at EL0: undefined (Arm ARM D1.5)
    "msr-ttbr0": (0xD5182000,), "mrs-ttbr0": (0xD5382000,), "msr-daifset": (0xD50342DF,),
    "mrs-currentel": (0xD5384240,), "mrs-sctlr": (0xD5381000,), "msr-vbar": (0xD518C000,),
    "tlbi": (0xD508871F,), "ic-iallu": (0xD508751F,), "msr-spsel": (0xD50041BF,),
    "mrs-midr": (0xD5380000,), "msr-pan": (0xD500419F,), "msr-sp-el0": (0xD5184100,),
    "mrs-pmccntr": (0xD53B9D00,), "mrs-cntpct": (0xD53BE020,), "msr-cntv-ctl": (0xD51BE320,),
    "mrs-rndr": (0xD53B2400,),
    # allowed at EL0 (virtualised or harmless)
    "wfi": (0xD503207F,), "wfe": (0xD503205F,), "msr-tpidr": (0xD51BD040,),
    "mrs-tpidr": (0xD53BD040,), "mrs-cntvct": (0xD53BE040,), "mrs-cntfrq": (0xD53BE000,),
    "msr-fpcr": (0xD51B4400,), "mrs-fpsr": (0xD53B4420,), "mrs-nzcv": (0xD53B4200,),
    "msr-dit": (0xD503415F,), "isb": (0xD5033FDF,),
    # faults through memory operands (address in x0) and control flow
    "dc-zva": (0xD50B7420,), "dc-civac": (0xD50B7E20,), "ic-ivau": (0xD50B7520,),
    "ldr-x0": (0xF9400000,), "str-x0": (0xF9000000,), "ldur-unaligned": (0xF8401000,),
    "ldxr": (0xC85F7C00,), "stxr": (0xC8017C00,), "ldaxr": (0xC85FFC00,),
    "casal": (0xC8E0FC41,), "br-x0": (0xD61F0000,), "blr-x0": (0xD63F0000,),
    "sp-from-x0": (0x9100001F,), "push-sp": (0xF81F0FE0,),
    # loops: a spinner with and without system calls (preemption must stop both)
    "spin": (0x14000000,), "spin-syscall": (0xD2800108, 0xD4000001, 0x17FFFFFE),
}.items()}


def _a64_movq(reg: int, value: int) -> bytes:
    value &= (1 << 64) - 1
    ops = (0xD2800000, 0xF2A00000, 0xF2C00000, 0xF2E00000)  # movz, movk lsl 16/32/48
    return _w(*(op | ((value >> 16 * i) & 0xFFFF) << 5 | reg for i, op in enumerate(ops)))


def _a64_load(slot: int, value: int) -> bytes:
    return _a64_movq(_A64_REGS[slot], value)


def _a64_jump(addr: int) -> bytes:
    return _a64_movq(16, addr) + _w(0xD61F0200)                # x16 = addr; br x16


ARM64 = SnippetFacts(
    "arm64", A64_CURATED, _a64_load, _a64_jump,
    lambda: capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM), 4)

FACTS = {"x86_64": X86_64, "arm64": ARM64}


def decoded_stream(facts: SnippetFacts, rng: random.Random, n: int) -> list[bytes]:
    """n instructions decoded by capstone from random bytes (undecodable bytes skipped)."""
    md = facts.disasm()
    out: list[bytes] = []
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        raw = rng.randbytes(16 if facts.insn_align == 1 else 4)
        for insn in md.disasm(raw, 0):
            out.append(bytes(insn.bytes))
            break
    return out
