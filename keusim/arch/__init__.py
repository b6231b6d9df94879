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


def normalize(name: str) -> str:
    """Map an architecture name or alias to its canonical name, or raise ArchError."""
    n = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if n not in ARCH_NAMES:
        raise ArchError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCH_NAMES)}")
    return n


def get(name: str):
    """Return the backend module's ``ARCH`` object for ``name``."""
    mod = importlib.import_module(f"keusim.arch.{normalize(name)}")
    return mod.ARCH


def toolchain(name: str) -> ToolchainFacts:
    """The compiler facts for ``name`` (importable without Unicorn)."""
    mod = importlib.import_module(f"keusim.arch.{normalize(name)}_facts")
    return mod.TOOLCHAIN


class Backend:
    """The protocol every backend's ``ARCH`` object implements (documentation only).

    Attributes:
        name: canonical architecture name.
        toolchain: :class:`ToolchainFacts`.
        elf_machine: pyelftools ``e_machine`` string (``EM_X86_64``, ``EM_AARCH64``).
        kernbase: start of the kernel's direct map (kernel/include/memlayout.h).
        pte: a :class:`keusim.machine.pagetable.PteCodec` for this architecture's entries.
        kernel_half_in_user_root: True when each user root also maps the kernel half
            (x86-64 PML4 entries 256..511); False with a separate kernel root (arm64 TTBR1).
        root_symbol: kernel symbol right after the MMU-root write; the machine hooks
            it to learn the current user root (for per-address-space cost tables).

    Methods (``core`` is a :class:`keusim.machine.Core`):
        new_uc() -> Uc
        capstone() -> capstone.Cs with detail on
        finish_boot_tables(machine, table_builder, alloc): arch extras after the
            kernel direct map is built (arm64: an empty TTBR0 root).
        boot_core(core, entry, stack_va, bootinfo_va, root_pa): registers for the
            kernel entry: MMU on, kernel privilege; sets ``core.pc``.
        install(core): trap hooks (record a trap in ``core.trap``, then emu_stop),
            virtual-time instruction hooks through ``core.native``.
        kernel_ready(core): the kernel wrote PLAT_READY on this core.
        hook_block(core, insns) -> bool: a user block seen for the first time (capstone
            instructions); add instruction hooks for exceptions Unicorn would raise too
            late, and return True if any was added (the machine re-translates the block).
        deliver(core, trap): architectural entry for a recorded trap or interrupt;
            sets ``core.pc`` to the vector.
        interrupt_trap(cause: "timer"|"ipi") -> trap object for deliver().
        pc(core), user_mode(core) -> bool, read_root(uc) -> int.
        root_for(core, va) -> int: the table root translating va right now (for
            keusim's own page walks; uc_vmem_* must not be used inside hooks).
        trap_from_error(core, uc_error) -> trap or None: the architectural exception
            for a Unicorn error that stands for one (an undefined opcode), else None.
        fault_summary(core, trap) -> str: for kernel-mode faults (a panic).
        setup_call(uc, args, sp, ret, mem_write): the C calling convention, for running
            one guest function in a bare Uc (bench/machine_speed.py).
    """
