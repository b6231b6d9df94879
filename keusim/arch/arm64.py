"""arm64 (AArch64) backend: page-table format, boot state and exception entry.

Unicorn never takes an exception into the guest (docs/unicorn.md): ``svc``,
aborts and undefined instructions only reach ``UC_HOOK_INTR`` (intno 2, 3/4, 1),
with the PC left at ``svc+4`` or on the faulting instruction and PSTATE still at
EL0. This module does what the silicon would (Arm ARM, AArch64 "Exception entry"):

* ELR_EL1 <- the preferred return address, SPSR_EL1 <- PSTATE;
* ESR_EL1 <- the syndrome, FAR_EL1 <- the fault address (aborts);
* from EL0: SP_EL0 <- the user SP, SP <- SP_EL1 (QEMU banks SPs only on its own
  EL changes, so the host swaps them);
* PSTATE <- EL1h with DAIF masked; PC <- VBAR_EL1 + the vector offset
  (0x400 lower-EL sync, 0x480 lower-EL IRQ, 0x200/0x280 current-EL SPx).

The last register written is always a system register through the CP-register
interface: that write rebuilds QEMU's cached EL state (hflags). A PSTATE write
alone does not, and the handler would be fetched with EL0 permissions.

Unicorn does not expose the syndrome or the fault address either. They sit in
QEMU's ``env->exception`` record inside the bytes of ``uc_context_save``, at an
offset that depends on the build. :func:`syndrome_layout` finds both offsets
once per process by provoking two ``svc #imm`` and two data aborts at known
addresses in a scratch instance; nothing is hard-coded.
"""

from __future__ import annotations

import ctypes as C
import re
import struct
from dataclasses import dataclass
from functools import cache

import capstone as cs
from unicorn import (
    UC_ARCH_ARM64,
    UC_ERR_EXCEPTION,
    UC_ERR_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MODE_ARM,
    Uc,
    UcError,
)
from unicorn import arm64_const as A
from unicorn.unicorn_py3.unicorn import uclib

from keusim.arch.arm64_facts import TOOLCHAIN
from keusim.arch.isa import may_store, new_disassembler, spin_eligible
from keusim.errors import ArchError
from keusim.machine.fastpath import BF_NOSTORE, BF_SPIN, BF_SVC
from keusim.machine.pagetable import DEV, R, U, W
from keusim.machine.pagetable import X as PX
from keusim.machine.ucutil import RegBatch, RegReader, flush_tlb

KERNBASE = 0xFFFFFFFF80000000

# The A72 (Unicorn's default, chosen explicitly): ARMv8.0-A, no LSE atomics, no PAN.
# The toolchain (-mcpu=generic-neon-fp_armv8) emits nothing newer.
CPU_MODEL = A.UC_CPU_ARM64_A72

# System registers without a named Unicorn constant: (op0, op1, CRn, CRm, op2).
SCR_EL3 = (3, 6, 1, 1, 0)
SCTLR_EL1 = (3, 0, 1, 0, 0)
TCR_EL1 = (3, 0, 2, 0, 2)
SPSR_EL1 = (3, 0, 4, 0, 0)
ELR_EL1 = (3, 0, 4, 0, 1)
ESR_EL1 = (3, 0, 5, 2, 0)
ID_AA64MMFR0_EL1 = (3, 0, 0, 7, 0)

# Descriptor bits (Arm ARM, VMSAv8-64 translation table descriptor formats, 4 KiB
# granule); the kernel's encoder (kernel/arch/arm64/arm64.c) uses the same ones.
_VALID, _TYPE = 1 << 0, 1 << 1          # 0b11 table/page, 0b01 block
_ATTR_DEV = 1 << 2                      # AttrIndx 1: MAIR slot 1 (Device-nGnRnE)
_ATTR_MASK = 7 << 2
_AP_EL0, _AP_RO = 1 << 6, 1 << 7        # AP[1], AP[2]
_SH_IS = 3 << 8
_AF, _NG = 1 << 10, 1 << 11
_PXN, _UXN = 1 << 53, 1 << 54
_ADDR = 0x0000FFFFFFFFF000

# MAIR_EL1: slot 0 normal memory, inner/outer write-back read/write-allocate (0xFF);
# slot 1 Device-nGnRnE (0x00) (Arm ARM, MAIR_EL1).
MAIR = 0x00FF
# TCR_EL1 (Arm ARM, TCR_EL1): T0SZ = T1SZ = 16 (48-bit halves); 4 KiB granules
# (TG0 = 0b00, TG1 = 0b10); walks inner-shareable, inner/outer write-back
# write-allocate; ASID from TTBR0 (A1 = 0), 8 bits (AS = 0). IPS is filled in
# from the CPU's PARange.
TCR = (16 | 1 << 8 | 1 << 10 | 3 << 12 | 0 << 14
       | 16 << 16 | 1 << 24 | 1 << 26 | 3 << 28 | 2 << 30)
# SCTLR_EL1 (Arm ARM, SCTLR_EL1): M (MMU), C, SA, SA0, I, UCT (EL0 may read
# CTR_EL0); RES1 bits 29, 28, 23, 22, 20, 11. A = 0 (no alignment checks on
# ordinary accesses), nTWI = nTWE = 0 (wfi/wfe at EL0 trap: a user process may
# not idle the core), UMA = 0 (EL0 may not touch DAIF).
SCTLR = (1 << 0 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 12 | 1 << 15
         | 1 << 29 | 1 << 28 | 1 << 23 | 1 << 22 | 1 << 20 | 1 << 11)
PSTATE_EL1H = 0x3C5                     # EL1 with SP_EL1, D A I F masked
EL_MASK = 0xC                           # PSTATE.EL (bits 3..2)

# Vector offsets from VBAR_EL1 (Arm ARM, "Exception vectors").
VEC_CUR_SYNC, VEC_CUR_IRQ = 0x200, 0x280
VEC_LOWER_SYNC, VEC_LOWER_IRQ = 0x400, 0x480

# QEMU exception numbers seen by UC_HOOK_INTR (target/arm/cpu.h EXCP_*).
EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT = 1, 2, 3, 4
# ESR_EL1 values (Arm ARM, ESR_EL1): "unknown reason" (IL is RES1 for EC 0x00),
# and a PC alignment fault.
ESR_UNKNOWN = 1 << 25
ESR_PC_ALIGN = 0x22 << 26 | 1 << 25

_EC_NAMES = {0x00: "unknown/undefined", 0x01: "wfi/wfe", 0x07: "FP/SIMD access",
             0x0E: "illegal state", 0x15: "svc", 0x18: "system register",
             0x20: "instruction abort (EL0)", 0x21: "instruction abort (EL1)",
             0x22: "PC alignment", 0x24: "data abort (EL0)", 0x25: "data abort (EL1)",
             0x26: "SP alignment", 0x3C: "brk"}


# Spin fast-forward (fastpath.c): instruction classes a fast-forwarded loop may contain,
# and the registers it may write (its snapshot holds X0-X30, SP and NZCV).
_SPIN_CLASSES = frozenset({"alu", "move", "shift", "mul", "branch", "branch_taken", "call",
                           "ret", "pause", "nop", "load", "store", "load_acquire",
                           "store_release", "fence", "fence_light"})
_SPIN_WRITES = re.compile(r"^([xw]\d+|w?sp|[xw]zr|nzcv|fp|lr)$")
SPIN_REGS = (A.UC_ARM64_REG_PC, [A.UC_ARM64_REG_X0 + i for i in range(29)]
             + [A.UC_ARM64_REG_X29, A.UC_ARM64_REG_X30, A.UC_ARM64_REG_SP, A.UC_ARM64_REG_NZCV])


# -- page tables ----------------------------------------------------------------
class PteCodec:
    """Stage-1 descriptors. ``level`` counts like keusim's walker: 0 is the page level."""

    def leaf(self, pa: int, perm: int, level: int = 0) -> int:
        e = (pa & _ADDR) | _VALID | _AF | _SH_IS | (_TYPE if level == 0 else 0)
        if perm & DEV:
            e |= _ATTR_DEV
        if not perm & W:
            e |= _AP_RO
        if perm & U:
            e |= _AP_EL0 | _NG | _PXN
            if not perm & PX:
                e |= _UXN
        else:
            e |= _UXN | (0 if perm & PX else _PXN)
        return e

    def table(self, pa: int) -> int:
        return (pa & _ADDR) | _VALID | _TYPE

    def decode(self, e: int, level: int) -> tuple[str, int, int]:
        if not e & _VALID:
            return "invalid", 0, 0
        if level == 0:
            kind = "leaf" if e & _TYPE else "invalid"       # 0b01 is reserved at level 3
        elif e & _TYPE:
            kind = "table"
        else:
            kind = "leaf" if level in (1, 2) else "invalid"  # no L0 blocks with 4 KiB
        if kind != "leaf":
            return kind, (e & _ADDR) if kind == "table" else 0, 0
        user = bool(e & _AP_EL0)
        xn = _UXN if user else _PXN
        perm = (R | (0 if e & _AP_RO else W) | (U if user else 0) | (0 if e & xn else PX)
                | (DEV if e & _ATTR_MASK == _ATTR_DEV else 0))
        # A block maps 2 MiB (level 1) or 1 GiB (level 2): its address bits start higher.
        mask = _ADDR & ~((1 << (12 + 9 * level)) - 1)
        return "leaf", e & mask, perm


# -- the syndrome record inside uc_context_save ------------------------------------
@dataclass(frozen=True)
class SyndromeLayout:
    """Byte offsets, in ``uc_context_save`` data, of QEMU's exception record fields."""

    esr: int    # uint32 syndrome (ESR_ELx format)
    far: int    # uint64 fault virtual address


def _movz(rd: int, imm: int, hw: int) -> int:
    return 0xD2800000 | hw << 21 | (imm & 0xFFFF) << 5 | rd


def _movk(rd: int, imm: int, hw: int) -> int:
    return 0xF2800000 | hw << 21 | (imm & 0xFFFF) << 5 | rd


def _mov64(rd: int, v: int) -> list[int]:
    return [_movz(rd, v, 0)] + [_movk(rd, v >> (16 * i), i) for i in (1, 2, 3)]


def _svc(imm: int) -> int:
    return 0xD4000001 | imm << 5


_LDR_X1_X0_8 = 0xF9400401   # ldr x1, [x0, #8]
_STR_X1_X0_8 = 0xF9000401   # str x1, [x0, #8]
_B_SELF = 0x14000000


def _scratch_uc() -> Uc:
    """An EL1 instance with the MMU on: 1 GiB identity block at 0, RWX at EL1."""
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.ctl_set_cpu_model(CPU_MODEL)
    uc.mem_map(0, 2 << 20)
    uc.cpr_write(*SCR_EL3, uc.cpr_read(*SCR_EL3) | 1 << 10)
    l0, l1 = 0x10000, 0x11000
    uc.mem_write(l0, struct.pack("<Q", l1 | _VALID | _TYPE))
    uc.mem_write(l1, struct.pack("<Q", _VALID | _AF | _SH_IS))
    uc.reg_write(A.UC_ARM64_REG_MAIR_EL1, MAIR)
    uc.cpr_write(*TCR_EL1, TCR | 2 << 32)
    uc.reg_write(A.UC_ARM64_REG_TTBR0_EL1, l0)
    uc.reg_write(A.UC_ARM64_REG_PSTATE, PSTATE_EL1H)
    uc.cpr_write(*SCTLR_EL1, SCTLR)
    flush_tlb(uc)
    return uc


@cache
def syndrome_layout() -> SyndromeLayout:
    """Find where this Unicorn build keeps the syndrome and fault address (cached).

    Runs ``svc #0x1234``, ``svc #0xBEEF``, a load from one unmapped address and a
    store to another, and keeps the offsets whose contents match the expected
    syndromes (Arm ARM, ESR_EL1: EC 0x15 SVC with IL and imm16; EC 0x25 data
    abort at the current EL, DFSC 0b000100 translation fault level 0, WnR for the
    store) and fault addresses in every run. Raises ArchError unless exactly one
    offset survives for each.
    """
    uc = _scratch_uc()
    ctx = uc.context_save()
    seen: list[tuple[int, bytes]] = []

    def on_intr(uc, intno, _ud):
        uc.context_update(ctx)
        seen.append((intno, bytes(ctx)))
        uc.emu_stop()

    uc.hook_add(UC_HOOK_INTR, on_intr)
    base = 0x1000

    def run(code: list[int]) -> tuple[int, bytes]:
        nonlocal base
        blob = b"".join(struct.pack("<I", w) for w in code + [_B_SELF])
        uc.mem_write(base, blob)
        seen.clear()
        uc.emu_start(base, base + len(blob) - 4, count=len(code) + 1)
        base += 0x100
        if len(seen) != 1:
            raise ArchError("syndrome discovery: the probe instruction did not trap "
                            "(unexpected Unicorn build; keusim needs unicorn==2.1.4)")
        return seen[0]

    def offsets(blob: bytes, fmt: str, value: int) -> set[int]:
        n = struct.calcsize(fmt)
        return {o for o in range(0, len(blob) - n + 1, 4)
                if struct.unpack_from(fmt, blob, o)[0] == value}

    esr = None
    for imm in (0x1234, 0xBEEF):
        intno, blob = run([_svc(imm)])
        found = offsets(blob, "<I", 0x15 << 26 | 1 << 25 | imm)
        esr = found if esr is None else esr & found
        if intno != EXCP_SWI:
            esr = set()
    far = None
    aborts = []
    for addr, insn, wnr in ((0x5A5A12345678, _LDR_X1_X0_8, 0),
                            (0x3C3C87654320, _STR_X1_X0_8, 1 << 6)):
        intno, blob = run(_mov64(0, addr - 8) + [insn])
        found = offsets(blob, "<Q", addr)
        far = found if far is None else far & found
        aborts.append((intno, blob, 0x25 << 26 | 1 << 25 | wnr | 0x04))
    esr = {o for o in esr or ()
           if all(i == EXCP_DATA_ABORT and struct.unpack_from("<I", b, o)[0] == want
                  for i, b, want in aborts)}
    if len(esr) != 1 or len(far or ()) != 1:
        raise ArchError(f"syndrome discovery found {len(esr)} syndrome and {len(far or ())} "
                        f"fault-address offsets (need exactly one each); keusim needs "
                        f"unicorn==2.1.4")
    return SyndromeLayout(esr=esr.pop(), far=far.pop())


# -- traps ------------------------------------------------------------------------
class Trap:
    """A pending exception or interrupt, recorded by a hook and delivered after emu_stop.

    kind: "syscall" (svc), "exception" (anything else synchronous) or "interrupt".
    """

    __slots__ = ("kind", "intno", "esr", "far", "cause")

    def __init__(self, kind: str, intno: int = 0, esr: int = 0, far: int = 0,
                 cause: str = ""):
        self.kind, self.intno, self.esr, self.far, self.cause = kind, intno, esr, far, cause

    def __repr__(self) -> str:
        return (f"Trap({self.kind}, intno={self.intno}, esr={self.esr:#x}, far={self.far:#x}"
                f"{', ' + self.cause if self.cause else ''})")


class Arm64Entry(C.Structure):
    """arm64_trap.c ``struct arm64_entry``: what the native svc entry needs."""

    _fields_ = [("read_ids", C.c_int32 * 7), ("write_ids", C.c_int32 * 7),
                ("spsr_enc", C.c_uint32 * 5), ("esr_enc", C.c_uint32 * 5),
                ("pstate_el1h", C.c_uint64), ("el_mask", C.c_uint64),
                ("vec_lower_sync", C.c_uint64),
                ("elr_enc", C.c_uint32 * 5), ("vec_cur_irq", C.c_uint64)]


class _EntryWrite:
    """The register writes of one exception entry, in order, in one C call.

    ELR_EL1, SP_EL0, SP, FAR_EL1, PSTATE, then two CP-register writes: SPSR_EL1
    and a last one (ESR_EL1, or ELR_EL1 again for interrupts) that rebuilds the
    emulator's cached EL state. CP-register values are ``uc_arm64_cp_reg``
    structs (unicorn/arm64.h: u32 crn, crm, op0, op1, op2; u64 val); everything
    lives in one buffer filled with a single ``struct.pack_into``.
    """

    _IDS = [A.UC_ARM64_REG_ELR_EL1, A.UC_ARM64_REG_SP_EL0, A.UC_ARM64_REG_SP,
            A.UC_ARM64_REG_FAR_EL1, A.UC_ARM64_REG_PSTATE,
            A.UC_ARM64_REG_CP_REG, A.UC_ARM64_REG_CP_REG]
    _LAYOUT = struct.Struct("<5Q" + "5I4xQ" * 2)   # 40 + 2 * 32 bytes

    def __init__(self, uc: Uc):
        self.uc = uc
        n = len(self._IDS)
        self.ids = (C.c_int * n)(*self._IDS)
        self.buf = C.create_string_buffer(self._LAYOUT.size)
        base = C.addressof(self.buf)
        self.ptrs = (C.c_void_p * n)(*([base + 8 * i for i in range(5)] + [base + 40, base + 72]))

    def write(self, elr: int, sp_el0: int, sp: int, far: int, pstate: int, spsr: int,
              last: tuple[tuple[int, int, int, int, int], int]) -> None:
        (op0, op1, crn, crm, op2), val = last
        self._LAYOUT.pack_into(self.buf, 0, elr, sp_el0, sp, far, pstate,
                               SPSR_EL1[2], SPSR_EL1[3], SPSR_EL1[0], SPSR_EL1[1], SPSR_EL1[4],
                               spsr, crn, crm, op0, op1, op2, val & 0xFFFFFFFFFFFFFFFF)
        err = uclib.uc_reg_write_batch(self.uc._uch, self.ids, self.ptrs, len(self._IDS))
        if err:
            raise UcError(err)


# State read at every entry.
_ENTRY_READ = [A.UC_ARM64_REG_PC, A.UC_ARM64_REG_PSTATE, A.UC_ARM64_REG_SP,
               A.UC_ARM64_REG_SP_EL0, A.UC_ARM64_REG_SP_EL1, A.UC_ARM64_REG_FAR_EL1,
               A.UC_ARM64_REG_VBAR_EL1]


class Arm64:
    name = "arm64"
    toolchain = TOOLCHAIN
    elf_machine = "EM_AARCH64"
    kernbase = KERNBASE
    pte = PteCodec()
    root_symbol = "arch_root_switched"
    # Kernel entry/exit stubs of a system call (kernel/arch/arm64/entry.S): the vector
    # entry is one branch inside `vectors`.
    trap_stubs = ("vectors", "el0_sync", "trapret")
    # The kernel half lives in TTBR1; user roots (TTBR0) hold only the lower half.
    kernel_half_in_user_root = False
    # cntvct_el0 counts model cycles; CNTFRQ_EL0 reports 1 GHz, the frequency
    # Armv8.6-A fixes for the system counter, so one tick reads as 1 ns of a
    # nominal 1 GHz core. The cycle model has no separate clock domain.
    counter_hz = 1_000_000_000

    def capstone(self) -> cs.Cs:
        return new_disassembler(self.name)

    def new_uc(self) -> Uc:
        """An A72 instance (the model must be set before any mem_map) in AArch64 EL1.

        SCR_EL3.RW is 0 on a fresh instance, which makes EL1 AArch32 for
        translation and exceptions (docs/unicorn.md); set it at once.
        """
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.ctl_set_cpu_model(CPU_MODEL)
        uc.cpr_write(*SCR_EL3, uc.cpr_read(*SCR_EL3) | 1 << 10)
        return uc

    # -- boot -----------------------------------------------------------------
    def setup_call(self, uc, args: tuple[int, ...], sp: int, ret: int, mem_write) -> None:
        """Prepare an AAPCS64 call in a bare Uc: args in x0.., return address in x30."""
        uc.reg_write(A.UC_ARM64_REG_SP, sp)
        for i, v in enumerate(args):
            uc.reg_write(A.UC_ARM64_REG_X0 + i, v)
        uc.reg_write(A.UC_ARM64_REG_X30, ret)

    def finish_boot_tables(self, machine, tb, alloc) -> None:
        """An empty TTBR0 root: user addresses fault until the kernel switches in a process."""
        empty = alloc()
        for core in machine.cores:
            core.arch_state["boot_ttbr0"] = empty

    def boot_core(self, core, entry: int, stack: int, bootinfo_va: int, root_pa: int) -> None:
        """MMU on (kernel half in TTBR1, empty TTBR0), EL1h, at the kernel entry point."""
        uc = core.uc
        ttbr0 = core.arch_state.get("boot_ttbr0")
        if ttbr0 is None:
            raise ArchError("arm64 boot_core: finish_boot_tables() did not run first")
        uc.cpr_write(*SCR_EL3, uc.cpr_read(*SCR_EL3) | 1 << 10)
        parange = uc.cpr_read(*ID_AA64MMFR0_EL1) & 0xF
        uc.reg_write(A.UC_ARM64_REG_MAIR_EL1, MAIR)
        uc.cpr_write(*TCR_EL1, TCR | min(parange, 5) << 32)
        uc.reg_write(A.UC_ARM64_REG_TTBR1_EL1, root_pa)
        uc.reg_write(A.UC_ARM64_REG_TTBR0_EL1, ttbr0)
        uc.reg_write(A.UC_ARM64_REG_PSTATE, PSTATE_EL1H)
        uc.reg_write(A.UC_ARM64_REG_SP_EL1, stack)
        uc.reg_write(A.UC_ARM64_REG_SP, stack)
        uc.reg_write(A.UC_ARM64_REG_X0, bootinfo_va)
        uc.reg_write(A.UC_ARM64_REG_X1, core.id)
        uc.cpr_write(*SCTLR_EL1, SCTLR)     # last: rebuilds the cached EL/MMU state
        flush_tlb(uc)
        core.pc = entry
        core.arch_state.update(read=RegBatch(uc, _ENTRY_READ), write=_EntryWrite(uc))

    def install(self, core) -> None:
        """UC_HOOK_INTR records the exception with its syndrome; MRS reads of the
        generic timer's counter and frequency come from the model clock (C hook)."""
        uc = core.uc
        lay = syndrome_layout()
        ctx = uc.context_save()   # reused: context_update refills it in place
        base = C.cast(ctx.context, C.c_void_p).value
        esr_at = C.c_uint32.from_address(base + lay.esr)
        far_at = C.c_uint64.from_address(base + lay.far)
        core.arch_state["syndrome_ctx"] = ctx   # keep the buffer alive

        uc = core.uc

        def on_intr(_uch, intno, _ud):
            if core.trap is not None:   # the first exception is the real one
                uc.emu_stop()
                return
            uc.context_update(ctx)
            far = far_at.value if intno in (EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT) else 0
            # An ESR of 0 is never valid for AArch64 (EC 0 has IL = 1), yet Unicorn
            # reports it for exceptions raised from helpers that restore the
            # instruction state afterwards (e.g. `msr daifset` at EL0 with
            # SCTLR_EL1.UMA = 0): the syndrome was lost, so report "unknown reason".
            esr = esr_at.value or ESR_UNKNOWN
            core.trap = Trap("syscall" if intno == EXCP_SWI else "exception", intno, esr, far)
            uc.emu_stop()

        # svc from a block priced with its immediate (block_flags) is taken natively
        # (arm64_trap.c); every other exception comes here.
        core.native.hook_intr(on_intr)
        e = core.arch_state["native_entry"] = Arm64Entry(
            pstate_el1h=PSTATE_EL1H, el_mask=EL_MASK, vec_lower_sync=VEC_LOWER_SYNC)
        e.read_ids[:] = _ENTRY_READ
        e.write_ids[:] = _EntryWrite._IDS
        e.spsr_enc[:] = SPSR_EL1
        e.esr_enc[:] = ESR_EL1
        e.elr_enc[:] = ELR_EL1
        e.vec_cur_irq = VEC_CUR_IRQ
        core.native.set_trap_entry("arm64_svc_entry", e)
        core.native.hook_mrs(A.UC_ARM64_INS_MRS, self.counter_hz)

    spin_regs = SPIN_REGS
    # The user MMU root the block-cost table is keyed by: TTBR0_EL1's address bits.
    root_reg, root_mask = A.UC_ARM64_REG_TTBR0_EL1, _ADDR
    # Locating Unicorn's skip-PC-sync field (keusim/machine/ucutil.py
    # find_skip_sync_offset): nop; nop; str x0, [x1] (the store at +8). No arm64 hook reads
    # the PC of a memory access (exceptions restore it themselves), so no block needs
    # BF_SYNC.
    sync_probe = (bytes.fromhex("1f2003d51f2003d5200000f9"), 8, A.UC_ARM64_REG_PC,
                  ((A.UC_ARM64_REG_X1, 0x2000), (A.UC_ARM64_REG_X0, 0x1122334455667788)))

    def block_flags(self, insns) -> int:
        """fastpath.c BF_* flags of a user block: BF_SPIN when it may belong to a
        fast-forwarded spin loop (only general-register, flag and memory instructions);
        BF_SVC with the immediate in bits 16-31 when it ends in ``svc #imm`` (the native
        entry builds the syndrome from it)."""
        flags = BF_SPIN if spin_eligible(insns, self.name, _SPIN_CLASSES, _SPIN_WRITES) else 0
        if flags and not may_store(insns, self.name):
            flags |= BF_NOSTORE
        last = insns[-1]
        if last.mnemonic == "svc" and last.operands:
            flags |= BF_SVC | (last.operands[0].imm & 0xFFFF) << 16
        return flags

    def pending_trap(self, core) -> Trap:
        """The trap for an svc the native hook stopped at (Python delivers it)."""
        return Trap("syscall", EXCP_SWI, core.native.k.syndrome, 0)

    def hook_block(self, core, insns) -> bool:
        """Nothing to hook: every arm64 exception Unicorn raises is precise."""
        return False

    def kernel_ready(self, core) -> None:
        """PLAT_READY: the kernel installed VBAR_EL1 on this core; check it."""
        vbar = core.uc.reg_read(A.UC_ARM64_REG_VBAR_EL1)
        if vbar < KERNBASE or vbar & 0x7FF:
            raise ArchError(f"core {core.id}: VBAR_EL1 = {vbar:#x} after PLAT_READY; the "
                            f"kernel's vector table must be a 2 KiB-aligned kernel address")
        # Interrupts to a core at EL1 (woken from PLAT_WAIT), natively from now on
        # (arm64_trap.c arm64_irq_entry: the EL1 branch of deliver below).
        core.native.set_irq_entry("arm64_irq_entry", core.arch_state["native_entry"])

    # -- state ----------------------------------------------------------------
    def pc(self, core) -> int:
        r = core.arch_state.get("pc")
        if r is None:
            r = core.arch_state["pc"] = RegReader(core.uc, A.UC_ARM64_REG_PC)
        return r()

    def user_mode(self, core) -> bool:
        r = core.arch_state.get("pstate")
        if r is None:
            r = core.arch_state["pstate"] = RegReader(core.uc, A.UC_ARM64_REG_PSTATE)
        return r() & EL_MASK == 0

    def read_root(self, uc) -> int:
        """TTBR0_EL1 without the ASID (bits 63..48) and CnP (bit 0)."""
        return uc.reg_read(self.root_reg) & self.root_mask

    def root_for(self, core, va: int) -> int:
        """The table root that translates va now: TTBR1_EL1 for the upper half
        (bit 63 set, the kernel), TTBR0_EL1 for the lower half (the process)."""
        if va >> 63:
            return core.uc.reg_read(A.UC_ARM64_REG_TTBR1_EL1) & _ADDR
        return self.read_root(core.uc)

    # -- exception entry ------------------------------------------------------
    def deliver(self, core, trap: Trap) -> None:
        """Take trap (an exception recorded at emu_stop, or an interrupt) to EL1."""
        st = core.arch_state
        pc, pstate, sp, sp_el0, sp_el1, far, vbar = st["read"].read()
        if vbar == 0:
            raise ArchError(f"core {core.id}: exception before the kernel set VBAR_EL1")
        from_el0 = pstate & EL_MASK == 0
        if from_el0:
            # Bank the stack pointers as an EL change would: the user SP goes to
            # SP_EL0, and SP becomes SP_EL1 (the process's kernel stack).
            sp_el0, sp = sp, sp_el1
        if trap.kind == "interrupt":
            off = VEC_LOWER_IRQ if from_el0 else VEC_CUR_IRQ
            last = (ELR_EL1, pc)
        else:
            off = VEC_LOWER_SYNC if from_el0 else VEC_CUR_SYNC
            esr = trap.esr
            if trap.intno in (EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT):
                far = trap.far
            if pc & 3 and trap.kind != "syscall":
                # Unicorn does not check PC alignment: it fetches the misaligned
                # word and usually reports it as undefined. The silicon raises a
                # PC alignment fault first (Arm ARM, "PC alignment checking"),
                # with FAR = the PC.
                esr, far = ESR_PC_ALIGN, pc
                trap.esr, trap.far = esr, far
            last = (ESR_EL1, esr)
        st["write"].write(pc, sp_el0, sp, far, PSTATE_EL1H, pstate, last)
        core.pc = vbar + off

    def interrupt_trap(self, cause: str) -> Trap:
        return Trap("interrupt", cause=cause)

    def trap_from_error(self, core, err) -> Trap | None:
        """The exception for a Unicorn error that stands for one, else None.

        UC_ERR_INSN_INVALID means QEMU found the encoding UNDEFINED without raising
        its own exception: the architecture takes an "unknown reason" exception
        (ESR EC 0x00) with ELR on the instruction (Arm ARM, ESR_EL1.EC == 0).
        UC_ERR_EXCEPTION (an exception no hook took) is taken the same way.
        """
        if err.errno not in (UC_ERR_INSN_INVALID, UC_ERR_EXCEPTION):
            return None
        return Trap("exception", EXCP_UDEF, ESR_UNKNOWN, 0)

    def fault_summary(self, core, trap: Trap) -> str:
        ec = trap.esr >> 26
        s = (f"EC {ec:#x} ({_EC_NAMES.get(ec, 'other')}) ESR {trap.esr:#x} "
             f"at pc {self.pc(core):#x}")
        if trap.intno in (EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT):
            s += f", fault address {trap.far:#x}"
        return s


ARCH = Arm64()
