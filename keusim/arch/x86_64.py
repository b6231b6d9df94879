"""x86-64 backend: page-table format, boot state and architectural trap entry.

Unicorn never delivers an exception, ``syscall`` or interrupt into the guest
(docs/unicorn.md), so this module does what the silicon would:

* ``syscall``: RCX <- RIP of the next instruction, R11 <- RFLAGS, RFLAGS &= ~FMASK,
  CS/SS from STAR, RIP <- LSTAR, no stack switch (SDM Vol. 2B, SYSCALL).
* exceptions and interrupts: from CPL3, switch to TSS.RSP0; push SS, RSP, RFLAGS,
  CS, RIP and the error code if the vector has one; RIP <- the IDT gate's offset
  (SDM Vol. 3A, 6.14).
* ``int N``/``int3`` from CPL3: Unicorn hands the vector over without looking at
  the IDT. The backend checks the gate as the CPU does (SDM Vol. 3A, 6.12.1.1):
  not present -> #NP, DPL < CPL -> #GP, both with error code N*8+2 (IDT bit).
* what Unicorn reports as an error or skips: an undefined opcode
  (UC_ERR_INSN_INVALID) -> #UD, ``int1`` -> #DB; port I/O at CPL3 with IOPL 0
  and ``sysenter`` (IA32_SYSENTER_CS = 0) -> #GP(0).
* user state the kernel-entry template would overwrite (x87, MXCSR, XMM) is
  carried over, so a trap never changes a user register.

CPL can only be changed by restoring a context saved at CPL0: writing CS from the
host changes the selector, not the CPL. The machine therefore keeps one context
per core, captured when the kernel reports its trap set-up done (PLAT_READY),
before any fault, so QEMU's "exception in flight" state is clear in it.
"""

from __future__ import annotations

import ctypes
import re
import struct

import capstone as cs
from unicorn import (
    UC_ARCH_X86,
    UC_ERR_EXCEPTION,
    UC_ERR_INSN_INVALID,
    UC_HOOK_CODE,
    UC_HOOK_INSN,
    UC_HOOK_INTR,
    UC_MODE_64,
    Uc,
)
from unicorn import x86_const as X

from keusim.arch.isa import may_store, new_disassembler, spin_eligible
from keusim.arch.x86_64_facts import TOOLCHAIN
from keusim.machine.fastpath import BF_NOSTORE, BF_SPIN, BF_SYNC
from keusim.machine.pagetable import DEV, R, U, W, translate
from keusim.machine.pagetable import X as PX
from keusim.machine.ucutil import RawBatch, RegBatch, RegReader, flush_tlb

KERNBASE = 0xFFFFFFFF80000000

# Entry bits (SDM Vol. 3A, 4.5, Table 4-19/4-20).
_P, _RW, _US, _PCD, _A, _D, _PS, _NX = 1, 2, 4, 16, 32, 64, 128, 1 << 63
_ADDR = 0x000FFFFFFFFFF000

GPRS = [X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX,
        X.UC_X86_REG_RSI, X.UC_X86_REG_RDI, X.UC_X86_REG_RBP, X.UC_X86_REG_RSP,
        X.UC_X86_REG_R8, X.UC_X86_REG_R9, X.UC_X86_REG_R10, X.UC_X86_REG_R11,
        X.UC_X86_REG_R12, X.UC_X86_REG_R13, X.UC_X86_REG_R14, X.UC_X86_REG_R15]
# State read at every trap from user mode (GPRs, then these).
_SAVE = GPRS + [X.UC_X86_REG_RIP, X.UC_X86_REG_RFLAGS, X.UC_X86_REG_CR3,
                X.UC_X86_REG_GS_BASE, X.UC_X86_REG_FS_BASE, X.UC_X86_REG_CS]
_I_RIP, _I_RFLAGS, _I_CR3, _I_GS, _I_FS, _I_CS = range(16, 22)

# Exceptions that push an error code (SDM Vol. 3A, Table 6-1).
_HAS_ERR = {8, 10, 11, 12, 13, 14, 17, 21}
VEC_DB, VEC_UD, VEC_NP, VEC_GP, VEC_PF = 1, 6, 11, 13, 14
VEC_TIMER, VEC_IPI = 32, 33
# User FP/SIMD state carried across kernel entry (the template would reset it).
_FP_REGS = ([X.UC_X86_REG_FPCW, X.UC_X86_REG_FPSW, X.UC_X86_REG_FPTAG, X.UC_X86_REG_MXCSR]
            + [X.UC_X86_REG_ST0 + i for i in range(8)]
            + [X.UC_X86_REG_XMM0 + i for i in range(16)])
# The CPU model: Sandy Bridge, the newest one Unicorn offers without RDRAND/RDSEED.
# Those return host randomness in QEMU; without them CPUID.1:ECX.RDRAND = 0 and the
# instructions raise #UD, so nothing guest-visible depends on the host (issue 11).
CPU_MODEL = X.UC_CPU_X86_SANDYBRIDGE
# CR4: PAE (5), OSFXSR (9), OSXMMEXCPT (10). FSGSBASE (16) stays off: user code
# cannot set its FS/GS base (wrfsbase is #UD), so there is nothing to leak between
# processes; OSXSAVE (18) stays off: no XSAVE state beyond what FXSAVE covers.
CR4 = 1 << 5 | 1 << 9 | 1 << 10


# Instructions that write the stack without a memory operand capstone reports as written.
_PORT_IO = {cs.x86.X86_INS_IN, cs.x86.X86_INS_OUT, cs.x86.X86_INS_INSB, cs.x86.X86_INS_INSW,
            cs.x86.X86_INS_INSD, cs.x86.X86_INS_OUTSB, cs.x86.X86_INS_OUTSW,
            cs.x86.X86_INS_OUTSD}
_STACK_WRITERS = {cs.x86.X86_INS_PUSH, cs.x86.X86_INS_PUSHF, cs.x86.X86_INS_PUSHFQ,
                  cs.x86.X86_INS_CALL, cs.x86.X86_INS_ENTER}


# Spin fast-forward (fastpath.c): instruction classes a fast-forwarded loop may contain,
# and the registers it may write (its snapshot holds GPRs and RFLAGS, nothing else).
_SPIN_CLASSES = frozenset({"alu", "move", "shift", "mul", "branch", "branch_taken", "call",
                           "ret", "pause", "nop", "load", "store", "load_acquire",
                           "store_release", "fence", "fence_light"})
_SPIN_WRITES = re.compile(r"^(r[a-d]x|e[a-d]x|[a-d][lhx]|[re]?[sd]i|[sd]il|[re]?[sb]p|[sb]pl"
                          r"|r\d+[dwb]?|[re]?flags|rip)$")
SPIN_REGS = (X.UC_X86_REG_RIP, GPRS + [X.UC_X86_REG_RFLAGS])


class X86Entry(ctypes.Structure):
    """x86_64_trap.c ``struct x86_entry``: what the native SYSCALL entry needs."""

    _fields_ = [("template_ctx", ctypes.c_void_p), ("lstar", ctypes.c_uint64),
                ("fmask", ctypes.c_uint64), ("percpu", ctypes.c_uint64),
                ("off_cr3", ctypes.c_uint64), ("off_gs", ctypes.c_uint64),
                ("off_fs", ctypes.c_uint64), ("off_kgs", ctypes.c_uint64),
                ("save_ids", ctypes.c_int32 * len(_SAVE)),
                ("fp_ids", ctypes.c_int32 * len(_FP_REGS)),
                ("gpr_ids", ctypes.c_int32 * len(GPRS)),
                ("idt", ctypes.c_uint64), ("kernbase", ctypes.c_uint64),
                ("irq_ids", ctypes.c_int32 * 4),
                ("vec_timer", ctypes.c_uint64), ("vec_ipi", ctypes.c_uint64)]


class PteCodec:
    def leaf(self, pa: int, perm: int, level: int = 0) -> int:
        e = (pa & _ADDR) | _P | _A | _D
        if perm & W:
            e |= _RW
        if perm & U:
            e |= _US
        if not perm & PX:
            e |= _NX
        if perm & DEV:
            e |= _PCD
        return e

    def table(self, pa: int) -> int:
        return (pa & _ADDR) | _P | _RW | _US

    def decode(self, e: int, level: int) -> tuple[str, int, int]:
        if not e & _P:
            return "invalid", 0, 0
        perm = R | (W if e & _RW else 0) | (U if e & _US else 0) | (0 if e & _NX else PX)
        if level == 0 or e & _PS:
            return "leaf", e & _ADDR, perm
        return "table", e & _ADDR, perm


class Trap:
    """A pending architectural event, recorded by a hook and delivered after emu_stop.

    kind: "syscall", "exception" or "interrupt". err: the error code, or None to
    synthesise it (#PF). soft: raised by ``int N``/``int3`` (the gate's DPL is checked;
    RIP is already past the instruction). rip: the faulting instruction when it
    differs from the core's RIP at delivery (hooks that fire mid-block).
    """

    __slots__ = ("kind", "vector", "addr", "err", "soft", "rip", "insn_len")

    def __init__(self, kind: str, vector: int = 0, addr: int = 0, err: int | None = None,
                 soft: bool = False, rip: int | None = None, insn_len: int = 0):
        self.kind, self.vector, self.addr, self.err = kind, vector, addr, err
        self.soft, self.rip, self.insn_len = soft, rip, insn_len


def _provoke(code: bytes, paging: bool) -> tuple[bytes, bytes]:
    """Context bytes of a scratch instance before ``code`` runs at 0x1000 and at its first
    trap. With ``paging``, only the code page is identity-mapped (0x5000 stays unmapped)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x10000)
    uc.mem_write(0x1000, code)
    if paging:
        pml4, pdpt, pd, pt = 0x8000, 0x9000, 0xA000, 0xB000
        for tab, nxt in ((pml4, pdpt), (pdpt, pd), (pd, pt)):
            uc.mem_write(tab, struct.pack("<Q", nxt | 3))
        uc.mem_write(pt + 8, struct.pack("<Q", 0x1000 | 3))
        uc.reg_write(X.UC_X86_REG_CR3, pml4)
        uc.reg_write(X.UC_X86_REG_CR4, 0x20)
        uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, 0x500))
        uc.reg_write(X.UC_X86_REG_CR0, 0x80000011)
    got: list[bytes] = []

    def hook(uc, n, ud):
        got.append(bytes(uc.context_save()))
        uc.emu_stop()

    uc.hook_add(UC_HOOK_INTR, hook)
    before = bytes(uc.context_save())
    uc.emu_start(0x1000, 0x1FF0, count=8)
    if not got:
        raise RuntimeError("context-field discovery: the probe did not trap")
    return before, got[0]


def _find_inflight_offset() -> int:
    """Locate QEMU's "exception in flight" field (env->old_exception) in context bytes.

    It is -1 in a fresh instance and takes the vector of a contributory fault. A
    context captured after boot can already hold 14 (seen with Unicorn 2.1.4), which
    would turn the first user fault into #DF and the second into a silent triple
    fault. Found by provoking #DE and #PF in scratch instances, never hard-coded.
    """
    import ctypes as C

    b1, a1 = _provoke(bytes.fromhex("31c9f7f1"), False)     # div ecx -> #DE (vector 0)
    b2, a2 = _provoke(bytes.fromhex("8b042500500000"), True)  # mov eax, [0x5000] -> #PF (14)
    hits = [i for i in range(0, len(b1) - 4, 4)
            if C.c_int32.from_buffer_copy(b1, i).value == -1
            and C.c_int32.from_buffer_copy(a1, i).value == 0
            and C.c_int32.from_buffer_copy(a2, i).value == 14]
    if len(hits) != 1:
        raise RuntimeError(f"cannot locate the exception-in-flight field (candidates {hits})")
    return hits[0]


_INFLIGHT: list[int] = []


def _find_entry_offsets() -> tuple[int, int, int, int]:
    """Offsets of CR3, GS.base, FS.base and KERNEL_GS_BASE in context bytes.

    The native system-call entry (x86_64_trap.c) writes the user's values into the CPL0
    template before restoring it, instead of writing the registers after: a host write of
    CR3 flushes the whole emulated TLB, and that flush was most of the cost of a trap.
    Found by writing four distinct values in a scratch instance, never hard-coded.
    """
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.ctl_set_cpu_model(CPU_MODEL)
    vals = (0x5A5A5000, 0x1234_5678_9ABC_0000, 0x0FED_CBA9_8765_4000, 0x0102_0304_0506_0000)
    uc.reg_write(X.UC_X86_REG_CR3, vals[0])
    uc.reg_write(X.UC_X86_REG_GS_BASE, vals[1])
    uc.reg_write(X.UC_X86_REG_FS_BASE, vals[2])
    uc.reg_write(X.UC_X86_REG_MSR, (0xC0000102, vals[3]))
    b = bytes(uc.context_save())
    out = []
    for v in vals:
        hits = [i for i in range(0, len(b) - 7, 4) if struct.unpack_from("<Q", b, i)[0] == v]
        if len(hits) != 1:
            raise RuntimeError(f"cannot locate a context field holding {v:#x} (candidates "
                               f"{hits}); keusim needs unicorn==2.1.4")
        out.append(hits[0])
    return tuple(out)


_ENTRY_OFFSETS: list[tuple[int, int, int, int]] = []


def _find_isint_offset() -> int:
    """Locate QEMU's env->exception_is_int in context bytes (1 for ``int N``/``int3``).

    Unicorn calls UC_HOOK_INTR with the same vector for ``int $14`` and a real #PF;
    only this field tells them apart. Found by provoking two software interrupts
    and two faults in scratch instances, never hard-coded.
    """
    import ctypes as C

    runs = [(_provoke(bytes.fromhex("cd41"), False), 1),            # int $0x41
            (_provoke(bytes.fromhex("90cc"), False), 1),            # int3
            (_provoke(bytes.fromhex("31c9f7f1"), False), 0),        # div ecx -> #DE
            (_provoke(bytes.fromhex("8b042500500000"), True), 0)]   # #PF
    first = runs[0][0][0]
    hits = [i for i in range(0, len(first) - 4, 4)
            if all(C.c_int32.from_buffer_copy(b, i).value == 0
                   and C.c_int32.from_buffer_copy(a, i).value == want
                   for (b, a), want in runs)]
    if len(hits) != 1:
        raise RuntimeError(f"cannot locate the exception_is_int field (candidates {hits}); "
                           f"keusim needs unicorn==2.1.4")
    return hits[0]


_ISINT: list[int] = []


def _clear_inflight(ctx) -> None:
    import ctypes as C
    if not _INFLIGHT:
        _INFLIGHT.append(_find_inflight_offset())
    base = C.cast(ctx._context, C.c_void_p).value
    C.c_int32.from_address(base + _INFLIGHT[0]).value = -1


class X86_64:
    name = "x86_64"
    toolchain = TOOLCHAIN
    elf_machine = "EM_X86_64"
    kernbase = KERNBASE
    pte = PteCodec()
    root_symbol = "arch_root_switched"
    # Kernel entry/exit stubs of a system call (kernel/arch/x86_64/entry.S).
    trap_stubs = ("syscall_entry", "syscall_return")
    # Every user PML4 shares entries 256..511 (the kernel half) with the boot root.
    kernel_half_in_user_root = True
    # rdtsc returns model cycles; no separate counter frequency.
    counter_hz = 0

    def __init__(self):
        self._cs = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64)
        self._cs.detail = True

    def capstone(self) -> cs.Cs:
        return new_disassembler(self.name)

    def new_uc(self) -> Uc:
        uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.ctl_set_cpu_model(CPU_MODEL)
        return uc

    # -- boot -----------------------------------------------------------------
    def boot_core(self, core, entry: int, stack: int, bootinfo_va: int, root_pa: int) -> None:
        """Long mode with 4-level paging on, CPL0, at the kernel entry point."""
        uc = core.uc
        uc.reg_write(X.UC_X86_REG_CR3, root_pa)
        uc.reg_write(X.UC_X86_REG_CR4, CR4)
        uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, (1 << 8) | (1 << 10) | (1 << 11) | 1))  # EFER: SCE LME LMA NXE
        uc.reg_write(X.UC_X86_REG_CR0, 0x80010033)             # PG WP NE ET MP PE
        uc.reg_write(X.UC_X86_REG_RSP, stack)
        uc.reg_write(X.UC_X86_REG_RDI, bootinfo_va)
        uc.reg_write(X.UC_X86_REG_RSI, core.id)
        core.pc = entry
        core.arch_state = {"template": None, "batch": RegBatch(uc, _SAVE),
                           "fp": RawBatch(uc, _FP_REGS)}

    def setup_call(self, uc, args: tuple[int, ...], sp: int, ret: int, mem_write) -> None:
        """Prepare a System V AMD64 call in a bare Uc: args in rdi, rsi, ... and the
        return address ``ret`` pushed at ``sp`` (for running one guest function alone)."""
        mem_write(sp, struct.pack("<Q", ret))
        uc.reg_write(X.UC_X86_REG_RSP, sp)
        regs = (X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX,
                X.UC_X86_REG_RCX, X.UC_X86_REG_R8, X.UC_X86_REG_R9)
        for i, v in enumerate(args):
            uc.reg_write(regs[i], v)

    def finish_boot_tables(self, machine, tb, alloc) -> None:
        """Nothing beyond the kernel half: user roots copy PML4 entries 256..511."""

    def install(self, core) -> None:
        import ctypes as C
        uc = core.uc
        if not _ISINT:
            _ISINT.append(_find_isint_offset())
        ctx = uc.context_save()   # reused: context_update refills it in place
        is_int = C.c_int32.from_address(C.cast(ctx._context, C.c_void_p).value + _ISINT[0])
        core.arch_state["intr_ctx"] = ctx

        def on_intr(uc, intno, _ud):
            # The first exception is the real one. The faulting instruction can run once
            # more before the stop takes effect, and QEMU then reports #DF (vector 8).
            if core.trap is None:
                uc.context_update(ctx)
                soft = is_int.value == 1
                if not soft and intno >= 32:
                    # QEMU's internal exits (EXCP_HLT 0x10001, EXCP_DEBUG ...) are not
                    # vectors; none is reachable from user mode with this set-up, so
                    # treat one as an invalid instruction rather than index the IDT.
                    core.trap = Trap("exception", VEC_UD, err=0)
                else:
                    core.trap = Trap("exception", intno,
                                     uc.reg_read(X.UC_X86_REG_CR2)
                                     if intno == VEC_PF and not soft else 0, soft=soft)
                    if intno == VEC_UD and not soft:
                        core.trap = self._fix_ud(core, core.trap)
            uc.emu_stop()

        def gp_here(uc) -> None:
            # Port I/O at CPL3 with IOPL 0 and no I/O bitmap, and sysenter with
            # IA32_SYSENTER_CS = 0, raise #GP(0) (SDM Vol. 1, 19.5.2; Vol. 2B, SYSENTER).
            # Unicorn performs neither check. The hook fires before the instruction
            # with RIP on it; the rest of the translated block may still run before
            # the stop takes effect (the process is killed either way), so the
            # recorded RIP, not the final one, goes into the frame.
            if core.trap is None:
                core.trap = Trap("exception", VEC_GP, err=0,
                                 rip=uc.reg_read(X.UC_X86_REG_RIP))
            uc.emu_stop()

        def on_in(uc, port, size, _ud):
            if self.user_mode(core):
                gp_here(uc)
            return 0

        def on_out(uc, port, size, value, _ud):
            if self.user_mode(core):
                gp_here(uc)

        def on_sysenter(uc, _ud):
            gp_here(uc)

        # syscall: a native hook stops the core; the entry is native too once the kernel
        # is ready (x86_64_trap.c), else Python's (pending_trap, deliver).
        core.native.hook_syscall(X.UC_X86_INS_SYSCALL)
        uc.hook_add(UC_HOOK_INSN, on_in, None, 1, 0, X.UC_X86_INS_IN)
        uc.hook_add(UC_HOOK_INSN, on_out, None, 1, 0, X.UC_X86_INS_OUT)
        uc.hook_add(UC_HOOK_INSN, on_sysenter, None, 1, 0, X.UC_X86_INS_SYSENTER)
        uc.hook_add(UC_HOOK_INTR, on_intr)
        core.native.hook_rdtsc(X.UC_X86_INS_RDTSC, X.UC_X86_INS_RDTSCP,
                               X.UC_X86_REG_RAX, X.UC_X86_REG_RDX, X.UC_X86_REG_RCX)

    spin_regs = SPIN_REGS
    # The user MMU root the block-cost table is keyed by: CR3's address bits.
    root_reg, root_mask = X.UC_X86_REG_CR3, _ADDR
    # Locating Unicorn's skip-PC-sync field (keusim/machine/ucutil.py
    # find_skip_sync_offset): nop; nop; mov [rbx], rax (the store at +2).
    sync_probe = (bytes.fromhex("9090488903"), 2, X.UC_X86_REG_RIP,
                  ((X.UC_X86_REG_RBX, 0x2000), (X.UC_X86_REG_RAX, 0x1122334455667788)))

    def block_flags(self, insns) -> int:
        """fastpath.c BF_* flags of a user block: BF_SPIN when it may belong to a
        fast-forwarded spin loop (only general-register, flag and memory instructions);
        BF_SYNC when it holds port I/O or sysenter, whose Python hooks read RIP (Unicorn
        syncs it before those hooks only when the block does not skip the sync)."""
        flags = BF_SPIN if spin_eligible(insns, self.name, _SPIN_CLASSES, _SPIN_WRITES) else 0
        if flags and not may_store(insns, self.name):
            flags |= BF_NOSTORE
        if any(i.id in _PORT_IO or i.id == cs.x86.X86_INS_SYSENTER for i in insns):
            flags |= BF_SYNC
        return flags

    def hook_block(self, core, insns) -> bool:
        """A user block seen for the first time: hook its port-I/O instructions.

        The IN/OUT hooks fire inside the instruction's helper, and Unicorn finishes
        the translated block before the stop takes effect, so later instructions of
        the block would run after the #GP. A code hook on the instruction itself
        fires before it and stops there, as the CPU's #GP would (SDM Vol. 1, 19.5.2).
        Returns True when a new hook was added (the block must be translated again).
        """
        # (root, address) pairs holding port I/O: every image starts at 0x400000, so the
        # same address in another process is usually something else.
        sites = core.arch_state.setdefault("io_sites", set())
        hooked = core.arch_state.setdefault("io_hooked", set())
        root = self.read_root(core.uc)
        added = False
        for insn in insns:
            if insn.id in _PORT_IO and (root, insn.address) not in sites:
                sites.add((root, insn.address))
                if insn.address not in hooked:
                    hooked.add(insn.address)
                    core.uc.hook_add(UC_HOOK_CODE, self._on_port_io, core,
                                     insn.address, insn.address)
                    added = True
        return added

    def _on_port_io(self, uc, addr, size, core) -> None:
        if (self.user_mode(core)
                and (self.read_root(uc), addr) in core.arch_state["io_sites"]):
            if core.trap is None:
                core.trap = Trap("exception", VEC_GP, err=0, rip=addr)
            uc.emu_stop()

    def pending_trap(self, core) -> Trap:
        """The trap for a system call the native hook stopped at (Python delivers it)."""
        return Trap("syscall")

    def kernel_ready(self, core) -> None:
        """PLAT_READY: capture this core's CPL0 context (before any fault), and hand it to
        the native system-call entry (x86_64_trap.c)."""
        import ctypes as C
        if core.arch_state["template"] is None:
            ctx = core.uc.context_save()
            _clear_inflight(ctx)
            core.uc.context_restore(ctx)
            core.arch_state["template"] = ctx
            core.arch_state["lstar"] = core.uc.reg_read(X.UC_X86_REG_MSR, 0xC0000082)
            core.arch_state["fmask"] = core.uc.reg_read(X.UC_X86_REG_MSR, 0xC0000084)
            idtr = core.uc.reg_read(X.UC_X86_REG_IDTR)
            core.arch_state["idt"] = idtr[1]
            core.arch_state["idt_limit"] = idtr[2] + 1
            gdtr = core.uc.reg_read(X.UC_X86_REG_GDTR)
            core.arch_state["gdt"] = gdtr[1]
            # The kernel set GS_BASE to its per-cpu block; in user mode that value
            # sits in KERNEL_GS_BASE (the kernel's swapgs convention).
            core.arch_state["percpu"] = core.uc.reg_read(X.UC_X86_REG_GS_BASE)
            st = core.arch_state
            if not _ENTRY_OFFSETS:
                _ENTRY_OFFSETS.append(_find_entry_offsets())
            cr3, gs, fs, kgs = _ENTRY_OFFSETS[0]
            e = st["native_entry"] = X86Entry(
                template_ctx=C.cast(ctx._context, C.c_void_p).value, lstar=st["lstar"],
                fmask=st["fmask"], percpu=st["percpu"], off_cr3=cr3, off_gs=gs, off_fs=fs,
                off_kgs=kgs)
            e.save_ids[:] = _SAVE
            e.fp_ids[:] = _FP_REGS
            e.gpr_ids[:] = GPRS
            core.native.set_trap_entry("x86_syscall_entry", e)
            # Interrupts to a core at CPL0 (woken from PLAT_WAIT), natively (x86_64_trap.c
            # x86_irq_entry: the kernel-mode branch of deliver below).
            e.idt, e.kernbase = st["idt"], KERNBASE
            e.irq_ids[:] = [X.UC_X86_REG_RIP, X.UC_X86_REG_RSP, X.UC_X86_REG_RFLAGS,
                            X.UC_X86_REG_CS]
            e.vec_timer, e.vec_ipi = VEC_TIMER, VEC_IPI
            core.native.set_irq_entry("x86_irq_entry", e)

    # -- state ----------------------------------------------------------------
    def pc(self, core) -> int:
        r = core.arch_state.get("rip")
        if r is None:
            r = core.arch_state["rip"] = RegReader(core.uc, X.UC_X86_REG_RIP)
        return r()

    def user_mode(self, core) -> bool:
        r = core.arch_state.get("cs")
        if r is None:
            r = core.arch_state["cs"] = RegReader(core.uc, X.UC_X86_REG_CS)
        return r() & 3 == 3

    def read_root(self, uc) -> int:
        return uc.reg_read(self.root_reg) & self.root_mask

    def root_for(self, core, va: int) -> int:
        """The table root that translates va now (CR3 holds both halves)."""
        return self.read_root(core.uc)

    # -- trap entry -----------------------------------------------------------
    def _idt_handler(self, core, vec: int) -> int:
        ent = core.machine.ram.read(core.arch_state["idt"] - KERNBASE + 16 * vec, 16)
        lo, sel, _ist, _typ, mid, hi, _z = struct.unpack("<HHBBHII", ent)
        return lo | (mid << 16) | (hi << 32)

    def _tss_rsp0(self, core) -> int:
        # TR is selector 0x28: the GDT holds the TSS base in entries 5 and 6.
        g = core.machine.ram.read(core.arch_state["gdt"] - KERNBASE + 5 * 8, 16)
        lo, hi = struct.unpack("<QQ", g)
        base = ((lo >> 16) & 0xFFFFFF) | (((lo >> 56) & 0xFF) << 24) | ((hi & 0xFFFFFFFF) << 32)
        return struct.unpack("<Q", core.machine.ram.read(base - KERNBASE + 4, 8))[0]

    def _enter_kernel(self, core) -> list[int]:
        """Restore the CPL0 template keeping the user's registers; returns them.

        The template would also reset x87, MXCSR and XMM: those are copied out and
        back, so kernel entry leaves every user register as it was.
        """
        st = core.arch_state
        if st["template"] is None:
            raise RuntimeError("trap before the kernel reported PLAT_READY")
        regs = st["batch"].read()
        fp = st["fp"]
        fp.save()
        core.uc.context_restore(st["template"])
        fp.restore()
        return regs

    def _restore_common(self, core, regs: list[int]) -> None:
        """Write back what the template must not override: GPRs, CR3, GS/FS bases."""
        uc = core.uc
        uc.reg_write(X.UC_X86_REG_CR3, regs[_I_CR3])
        uc.reg_write(X.UC_X86_REG_GS_BASE, regs[_I_GS])
        uc.reg_write(X.UC_X86_REG_FS_BASE, regs[_I_FS])
        # KERNEL_GS_BASE holds the per-cpu pointer while user code runs (kernel's swapgs).
        uc.reg_write(X.UC_X86_REG_MSR, (0xC0000102, core.arch_state["percpu"]))
        flush_tlb(uc)

    def deliver(self, core, trap: Trap) -> None:
        """Perform architectural entry for trap; sets core.pc to the handler."""
        uc = core.uc
        if trap.kind == "syscall":
            regs = self._enter_kernel(core)
            self._restore_common(core, regs)
            rip, rflags = regs[_I_RIP], regs[_I_RFLAGS]
            gpr = list(regs[:16])
            gpr[2], gpr[11] = rip, rflags  # RCX, R11
            self._write_gprs(core, gpr)
            uc.reg_write(X.UC_X86_REG_RFLAGS, rflags & ~core.arch_state["fmask"] & 0xFFFFFFFF)
            core.pc = core.arch_state["lstar"]
            return
        # Exceptions and interrupts.
        user = self.user_mode(core)
        rip = uc.reg_read(X.UC_X86_REG_RIP) if trap.rip is None else trap.rip
        if trap.soft:
            vec, err, rip = self._gate_check(core, trap, rip, user)
        else:
            vec = trap.vector
            err = trap.err if trap.err is not None else self._error_code(core, trap, rip, user)
        if user:
            regs = self._enter_kernel(core)
            self._restore_common(core, regs)
            self._write_gprs(core, regs[:16])
            rsp = self._tss_rsp0(core)
            frame = [rip, regs[_I_CS], regs[_I_RFLAGS], regs[7], 0x1B]
        else:
            # Same stack, no privilege change: an interrupt while idle in the kernel,
            # or a kernel-mode exception going to the kernel's own handler.
            if trap.kind != "interrupt":
                self._clear_kernel_inflight(core)
            rsp0 = uc.reg_read(X.UC_X86_REG_RSP)
            rflags = uc.reg_read(X.UC_X86_REG_RFLAGS)
            rsp = rsp0 & ~0xF
            frame = [rip, 0x08, rflags, rsp0, 0x10]
        if vec == VEC_PF:
            uc.reg_write(X.UC_X86_REG_CR2, trap.addr)
        words = ([err] if vec in _HAS_ERR else []) + frame
        rsp -= 8 * len(words)
        core.machine.ram.write(rsp - KERNBASE, struct.pack(f"<{len(words)}Q", *words))
        uc.reg_write(X.UC_X86_REG_RSP, rsp)
        uc.reg_write(X.UC_X86_REG_RFLAGS, 0x2)
        core.pc = self._idt_handler(core, vec)

    def _write_gprs(self, core, gpr: list[int]) -> None:
        b = core.arch_state.get("gpr_batch")
        if b is None:
            b = core.arch_state["gpr_batch"] = RegBatch(core.uc, GPRS)
        b.write(gpr)

    def _error_code(self, core, trap: Trap, rip: int, user: bool) -> int:
        """Synthesize the #PF error code: P, W/R, U/S, I/D (SDM Vol. 3A, 4.7).

        Unicorn does not expose it. W is set when the faulting instruction writes
        memory: an explicit memory operand written (capstone operand access) or an
        implicit stack write (push, call, enter); I/D when the fault address is the
        fetch. Other vectors: 0 (those with a real code get it from their hook).
        """
        if trap.vector != VEC_PF:
            return 0
        err = 4 if user else 0
        if rip <= trap.addr < rip + 16:
            err |= 0x10
        else:
            code = core.machine.read_virtual(core, rip, 16)
            if code:
                for insn in self._cs.disasm(code, rip, 1):
                    if insn.id in _STACK_WRITERS:
                        err |= 2
                    for op in insn.operands:
                        if op.type == cs.x86.X86_OP_MEM and op.access & cs.CS_AC_WRITE:
                            err |= 2
        tr = translate(core.machine.ram, self.pte, self.read_root(core.uc), trap.addr)
        if tr is not None:
            err |= 1
            # A data access to a present page faults only for U/S or R/W (SDM Vol. 3A,
            # 4.6): a user access to a user page that is readable but not writable can
            # only have been a write, whatever capstone says of the operand (it marks
            # the destination of e.g. `rol dword ptr [rdi], 0x6d` as read-only).
            if user and not err & 0x10 and tr[1] & U and not tr[1] & W:
                err |= 2
        return err

    def _gate_check(self, core, trap: Trap, rip: int, user: bool) -> tuple[int, int, int]:
        """``int N``/``int3``: (vector, error code, saved RIP) after the IDT checks.

        SDM Vol. 3A, 6.12.1.1: a software interrupt through a gate whose DPL is
        below CPL raises #GP, and through a gate that is not present #NP, both with
        error code N*8 + 2 (IDT) and the saved RIP on the ``int`` instruction. A
        permitted one enters the gate with RIP after it. Unicorn leaves RIP after it.
        """
        vec = trap.vector
        n = 1 if vec == 3 and self._byte_before(core, rip, 1) == 0xCC else 2
        typ = 0
        if 16 * vec < core.arch_state.get("idt_limit", 0):
            ent = core.machine.ram.read(core.arch_state["idt"] - KERNBASE + 16 * vec, 16)
            typ = ent[5]
        cpl = 3 if user else 0
        if not typ & 0x80:
            return VEC_NP, vec * 8 + 2, rip - n
        if (typ >> 5) & 3 < cpl:
            return VEC_GP, vec * 8 + 2, rip - n
        return vec, 0, rip

    def _byte_before(self, core, rip: int, n: int) -> int | None:
        b = core.machine.read_virtual(core, rip - n, 1)
        return b[0] if b else None

    def _clear_kernel_inflight(self, core) -> None:
        """Reset QEMU's exception-in-flight field before a kernel-mode exception is
        entered by hand (otherwise the next fault would become #DF)."""
        ctx = core.uc.context_save()
        _clear_inflight(ctx)
        core.uc.context_restore(ctx)

    def trap_from_error(self, core, err) -> Trap | None:
        """The exception for a Unicorn error that stands for one, else None.

        UC_ERR_INSN_INVALID is QEMU's #UD; the CPU raises it with RIP on the
        instruction (SDM Vol. 3A, 6.15, #UD). ``int1`` (F1) also lands here: it is
        a #DB trap, delivered with RIP after it, without a DPL check.
        UC_ERR_EXCEPTION (an exception no hook took; its vector is lost) is taken as
        #UD too, so the kernel, not the machine, deals with the offender.
        """
        if err.errno not in (UC_ERR_INSN_INVALID, UC_ERR_EXCEPTION):
            return None
        rip = self.pc(core)
        code = core.machine.read_virtual(core, rip, 15)
        if code:
            for insn in self._cs.disasm(code, rip, 1):
                if insn.bytes[-1:] == b"\xf1" and insn.mnemonic.startswith("int1"):
                    return Trap("exception", VEC_DB, err=0, rip=rip + insn.size)
        return self._fix_ud(core, Trap("exception", VEC_UD, err=0, rip=rip))

    def _fix_ud(self, core, trap: Trap) -> Trap:
        """#UD where the CPU raises #GP(0): QEMU does not implement ``rdpmc`` and
        raises #UD for it, but with CR4.PCE = 0 at CPL3 the CPU checks the privilege
        first (SDM Vol. 2B, RDPMC: #GP(0) if CR4.PCE = 0 and CPL > 0)."""
        rip = self.pc(core) if trap.rip is None else trap.rip
        code = core.machine.read_virtual(core, rip, 15)
        if code and self.user_mode(core):
            for insn in self._cs.disasm(code, rip, 1):
                if insn.id == cs.x86.X86_INS_RDPMC:
                    return Trap("exception", VEC_GP, err=0, rip=rip)
        return trap

    def interrupt_trap(self, cause: str) -> Trap:
        return Trap("interrupt", VEC_TIMER if cause == "timer" else VEC_IPI)

    def fault_summary(self, core, trap: Trap) -> str:
        rip = self.pc(core) if trap.rip is None else trap.rip
        s = f"vector {trap.vector}{' (int N)' if trap.soft else ''} at rip {rip:#x}"
        return s + (f", fault address {trap.addr:#x}" if trap.vector == VEC_PF else "")


ARCH = X86_64()
