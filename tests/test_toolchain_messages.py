"""A guest build error is one line at the guest's file and line, and for the arm64
assembler's known gaps it says what to write instead; the suggestion then builds."""

from __future__ import annotations

import re

import capstone
import pytest

from keusim import manifest
from keusim.errors import BuildError
from keusim.system import run
from keusim.toolchain import arm64_encoding, builds


def _build_error(tmp_path, name: str, text: str, arch: str = "arm64") -> str:
    src = tmp_path / name
    src.write_text(text)
    with pytest.raises(BuildError) as ei:
        builds.guest_image(arch, [src], name=f"tc-{src.stem}-{arch}")
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def _disasm(word: int) -> str:
    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    (insn,) = md.disasm(word.to_bytes(4, "little"), 0)
    return f"{insn.mnemonic} {insn.op_str}"


def test_smc_in_c_gets_its_encoding_and_the_fix_runs(tmp_path):
    msg = _build_error(tmp_path, "smc.c", '#include <keusim/keusim.h>\nint main(void)\n{\n'
                       '    __asm__ volatile("smc #0");\n    return 0;\n}\n')
    assert re.search(r"smc\.c:4: instruction requires: el3; .*write `\.inst 0xd4000003`", msg)
    # The suggestion builds, and executing it at EL0 is contained: the kernel kills the
    # process and the report names the fault.
    (tmp_path / "fixed.c").write_text('#include <keusim/keusim.h>\nint main(void)\n{\n'
                                      '    __asm__ volatile(".inst 0xd4000003");\n    return 0;\n}\n')
    (tmp_path / "system.toml").write_text('[[process]]\nname = "smc"\nimage = "fixed.c"\n'
                                          'expect = "fault:privileged-instruction"\n')
    rep = run(manifest.load(tmp_path / "system.toml"), arch="arm64")
    assert rep.ok, rep.summary()


def test_lse_atomic_in_assembly_gets_an_encoding_that_decodes_back(tmp_path):
    msg = _build_error(tmp_path, "atom.S", ".text\n.globl f\nf:\n    ldadd x0, x1, [x2]\n    ret\n")
    m = re.search(r"atom\.S:4: instruction requires: lse; .*`\.inst (0x[0-9a-f]{8})`", msg)
    assert m, msg
    assert _disasm(int(m[1], 16)) == "ldadd x0, x1, [x2]"
    assert arm64_encoding("ldadd x0, x1, [x2]") == int(m[1], 16)


def test_fpcr_gets_the_generic_register_name_which_builds(tmp_path):
    msg = _build_error(tmp_path, "fp.S", ".text\n.globl f\nf:\n    msr fpcr, x3\n    ret\n")
    assert "fp.S:4:" in msg and "`msr s3_3_c4_c4_0, x3`" in msg, msg
    ok = tmp_path / "fp_ok.S"
    ok.write_text(".text\n.globl f\nf:\n    msr s3_3_c4_c4_0, x3\n    ret\n")
    main = tmp_path / "m.c"
    main.write_text("int main(void) { return 0; }\n")
    assert builds.guest_image("arm64", [main, ok], name="tc-fp-ok").is_file()


def test_undefined_symbol_names_the_file_and_line(tmp_path):
    msg = _build_error(tmp_path, "undef.c", '#include <keusim/keusim.h>\nint nope(void);\n'
                       'int main(void)\n{\n    return nope();\n}\n', arch="x86_64")
    assert re.search(r"undef\.c:5: undefined symbol nope", msg), msg


def test_no_hint_for_an_ordinary_error(tmp_path):
    msg = _build_error(tmp_path, "plain.c", "int main(void)\n{\n    return x;\n}\n")
    assert re.match(r".*plain\.c:3: use of undeclared identifier 'x' \(building ", msg), msg
