"""x86-64 facts for the GDB stub (keusim/machine/gdb.py): the target description
and the register list in the order of gdb's ``g`` packet.

The features are gdb's own ``org.gnu.gdb.i386.core`` and ``org.gnu.gdb.i386.sse``
(GDB manual, "Standard Target Features", i386 Features): amd64 gdb requires both,
and numbers registers in document order. keusim's guests use no x87/SSE state
(docs/unicorn.md, toolchain facts), so those registers are reported as unavailable.
A third feature, ``org.keusim.x86_64.system``, adds the control registers and the
segment bases a kernel developer wants to see (``info registers cr3``).
"""

from unicorn import x86_const as X

# (name, bits, gdb type, Unicorn register id or None = unavailable, feature)
_GPR = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] + [f"r{i}" for i in range(8, 16)]
REGS: list[tuple[str, int, str, int | None, str]] = (
    [(n, 64, "int64", getattr(X, f"UC_X86_REG_{n.upper()}"), "core") for n in _GPR]
    + [("rip", 64, "code_ptr", X.UC_X86_REG_RIP, "core"),
       ("eflags", 32, "int32", X.UC_X86_REG_EFLAGS, "core")]
    + [(s, 32, "int32", getattr(X, f"UC_X86_REG_{s.upper()}"), "core")
       for s in ("cs", "ss", "ds", "es", "fs", "gs")]
    + [(f"st{i}", 80, "i387_ext", None, "core") for i in range(8)]
    + [(n, 32, "int", None, "core")
       for n in ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")]
    + [(f"xmm{i}", 128, "vec128", None, "sse") for i in range(16)]
    + [("mxcsr", 32, "int", None, "sse")]
    + [("fs_base", 64, "int64", X.UC_X86_REG_FS_BASE, "system"),
       ("gs_base", 64, "int64", X.UC_X86_REG_GS_BASE, "system"),
       ("cr0", 64, "int64", X.UC_X86_REG_CR0, "system"),
       ("cr2", 64, "int64", X.UC_X86_REG_CR2, "system"),
       ("cr3", 64, "int64", X.UC_X86_REG_CR3, "system"),
       ("cr4", 64, "int64", X.UC_X86_REG_CR4, "system")]
)

PC = "rip"
# gdb's name for the architecture in <architecture> and `set architecture`.
GDB_ARCH = "i386:x86-64"

_FEATURES = {"core": "org.gnu.gdb.i386.core", "sse": "org.gnu.gdb.i386.sse",
             "system": "org.keusim.x86_64.system"}
_TYPES = """<vector id="v4f" type="ieee_single" count="4"/>
<vector id="v2d" type="ieee_double" count="2"/>
<vector id="v16i8" type="int8" count="16"/>
<vector id="v8i16" type="int16" count="8"/>
<vector id="v4i32" type="int32" count="4"/>
<vector id="v2i64" type="int64" count="2"/>
<union id="vec128"><field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>
<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>
<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>
<field name="uint128" type="uint128"/></union>"""


def target_xml() -> str:
    """The target description served for ``qXfer:features:read:target.xml``."""
    out = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">',
           f"<target><architecture>{GDB_ARCH}</architecture>"]
    for key, fname in _FEATURES.items():
        out.append(f'<feature name="{fname}">')
        if key == "sse":
            out.append(_TYPES)
        out += [f'<reg name="{n}" bitsize="{b}" type="{t}"/>'
                for n, b, t, _r, f in REGS if f == key]
        out.append("</feature>")
    out.append("</target>")
    return "\n".join(out)
