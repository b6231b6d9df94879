"""arm64 facts for the GDB stub (keusim/machine/gdb.py): the target description
and the register list in the order of gdb's ``g`` packet.

The feature is gdb's ``org.gnu.gdb.aarch64.core`` (GDB manual, "Standard Target
Features", AArch64 Features): x0..x30, sp, pc and cpsr, where ``sp`` is the stack
pointer of the current exception level (SP_EL0 in a process, SP_EL1 in the kernel)
and ``cpsr`` is PSTATE. The FP/SIMD feature is optional for gdb and left out: guests
are built without FP (docs/unicorn.md, toolchain facts). ``org.keusim.arm64.system``
adds the translation roots and exception registers.
"""

from unicorn import arm64_const as A

# (name, bits, gdb type, Unicorn register id or None = unavailable, feature)
REGS: list[tuple[str, int, str, int | None, str]] = (
    [(f"x{i}", 64, "int", getattr(A, f"UC_ARM64_REG_X{i}"), "core") for i in range(31)]
    + [("sp", 64, "data_ptr", A.UC_ARM64_REG_SP, "core"),
       ("pc", 64, "code_ptr", A.UC_ARM64_REG_PC, "core"),
       ("cpsr", 32, "int", A.UC_ARM64_REG_PSTATE, "core")]
    + [(n.lower(), 64, "int64", getattr(A, f"UC_ARM64_REG_{n}"), "system")
       for n in ("SP_EL0", "SP_EL1", "ELR_EL1", "ESR_EL1", "FAR_EL1", "VBAR_EL1",
                 "TTBR0_EL1", "TTBR1_EL1")]
)

PC = "pc"
GDB_ARCH = "aarch64"

_FEATURES = {"core": "org.gnu.gdb.aarch64.core", "system": "org.keusim.arm64.system"}


def target_xml() -> str:
    """The target description served for ``qXfer:features:read:target.xml``."""
    out = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">',
           f"<target><architecture>{GDB_ARCH}</architecture>"]
    for key, fname in _FEATURES.items():
        out.append(f'<feature name="{fname}">')
        out += [f'<reg name="{n}" bitsize="{b}" type="{t}"/>'
                for n, b, t, _r, f in REGS if f == key]
        out.append("</feature>")
    out.append("</target>")
    return "\n".join(out)
