"""Architecture backends.

Each backend module (``x86_64``, ``arm64``) exposes one :class:`ArchSpec` instance,
``ARCH``, that holds the architecture's facts as data (toolchain target and flags,
register lists, page-table format constants) and implements the small protocol the
machine needs (trap entry, timer interrupt, virtual-time hooks, page-table walks).

An ``if arch == ...`` outside this package is a smell: put the fact here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from keusim.errors import ArchError

ARCH_NAMES = ("x86_64", "arm64")
_ALIASES = {"x86-64": "x86_64", "amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}


@dataclass(frozen=True)
class ToolchainFacts:
    """How to compile freestanding guest code for one architecture.

    Both kernel and user code are built without SIMD/FP registers so that the kernel
    never has to save FP state and the cycle model never meets a vector unit that
    Unicorn's default CPU does not have (docs/unicorn.md, toolchain facts).
    """

    zig_target: str
    cflags: tuple[str, ...]
    kernel_cflags: tuple[str, ...]
    host_target: str
    """zig target for native Linux programs on a host of this architecture (the native
    harness, the machine's fast path)."""


def normalize(name: str) -> str:
    """Map an architecture name or alias to its canonical name, or raise ArchError."""
    n = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if n not in ARCH_NAMES:
        raise ArchError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCH_NAMES)}")
    return n


def host() -> str:
    """The canonical name of the architecture keusim itself runs on."""
    import platform

    try:
        return normalize(platform.machine())
    except ArchError:
        raise ArchError(f"keusim runs on x86-64 and arm64 Linux hosts; this one is "
                        f"{platform.machine()!r}") from None


def get(name: str):
    """Return the backend module's ``ARCH`` object for ``name``."""
    mod = importlib.import_module(f"keusim.arch.{normalize(name)}")
    return mod.ARCH


def toolchain(name: str) -> ToolchainFacts:
    """The compiler facts for ``name`` (importable without Unicorn)."""
    mod = importlib.import_module(f"keusim.arch.{normalize(name)}_facts")
    return mod.TOOLCHAIN


@runtime_checkable
class Backend(Protocol):
    """The protocol every backend's ``ARCH`` object implements (``tests/test_arch_protocol.py``
    checks both backends against it, signatures included).

    ``core`` is a :class:`keusim.machine.Core`; ``trap`` is the backend's own trap record.
    """

    name: str
    """Canonical architecture name."""
    toolchain: ToolchainFacts
    elf_machine: str
    """pyelftools ``e_machine`` string (``EM_X86_64``, ``EM_AARCH64``)."""
    kernbase: int
    """Start of the kernel's direct map (kernel/include/memlayout.h)."""
    pte: Any
    """A :class:`keusim.machine.pagetable.PteCodec` for this architecture's entries."""
    kernel_half_in_user_root: bool
    """True when each user root also maps the kernel half (x86-64 PML4 entries 256..511);
    False with a separate kernel root (arm64 TTBR1)."""
    root_symbol: str
    """Kernel symbol right after the MMU-root write; the machine hooks it to learn the
    current user root (for per-address-space cost tables)."""
    trap_stubs: tuple[str, ...]
    """Kernel symbols of the system-call entry and exit stubs (the "trap" part of a
    notification's cost, :mod:`keusim.analysis.notifycost`)."""
    counter_hz: int
    """Frequency the guest's counter register reports (arm64 CNTFRQ_EL0; 0: none)."""

    def new_uc(self) -> Any:
        """A fresh Unicorn instance of this architecture, in system mode."""

    def capstone(self) -> Any:
        """A capstone disassembler with detail on (:func:`keusim.arch.isa.new_disassembler`)."""

    def finish_boot_tables(self, machine, tb, alloc) -> None:
        """Arch extras after the kernel direct map is built (arm64: an empty TTBR0 root)."""

    def boot_core(self, core, entry: int, stack: int, bootinfo_va: int, root_pa: int) -> None:
        """Registers for the kernel entry: MMU on, kernel privilege; sets ``core.pc``."""

    def install(self, core) -> None:
        """Trap hooks (record a trap in ``core.trap``, then stop) and the virtual-time
        instruction hooks through ``core.native``."""

    def kernel_ready(self, core) -> None:
        """The kernel wrote PLAT_READY on this core: capture its CPL0/EL1 template."""

    def hook_block(self, core, insns) -> bool:
        """A user block seen for the first time (capstone instructions): add instruction
        hooks for exceptions Unicorn would raise too late; True if any was added (the
        machine then translates the block again)."""

    def trap_from_error(self, core, err) -> Any:
        """The architectural exception for a Unicorn error that stands for one (an
        undefined opcode), else None."""

    def deliver(self, core, trap) -> None:
        """Architectural entry for a recorded trap or interrupt; sets ``core.pc``."""

    def interrupt_trap(self, cause: str) -> Any:
        """The trap record of an interrupt, ``cause`` being ``"timer"`` or ``"ipi"``."""

    def pc(self, core) -> int:
        """The core's program counter."""

    def user_mode(self, core) -> bool:
        """True while the core runs at user privilege (CPL3/EL0)."""

    def read_root(self, uc) -> int:
        """The user MMU root register's table address."""

    def root_for(self, core, va: int) -> int:
        """The table root translating va right now (for keusim's own page walks;
        ``uc_vmem_*`` must not be used inside hooks)."""

    def fault_summary(self, core, trap) -> str:
        """One line on a kernel-mode fault (for a panic message)."""

    def setup_call(self, uc, args: tuple[int, ...], sp: int, ret: int, mem_write) -> None:
        """The C calling convention, for running one guest function in a bare Uc."""
