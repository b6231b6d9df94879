"""The manifest schema (keusim.manifest.SCHEMA): docs/manifest.md shows exactly its
tables, and every bad manifest gets one line naming the file, the field and the fix."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from keusim import manifest, report
from keusim.errors import ManifestError
from keusim.system import run
from keusim.toolchain import ROOT

DOC = ROOT / "docs" / "manifest.md"
HELLO = "@/guests/src/hello.c"


def test_doc_tables_are_the_schema():
    text = DOC.read_text()
    m = re.search(r"<!-- schema:begin -->\n(.*?)<!-- schema:end -->", text, re.S)
    assert m, "docs/manifest.md lacks the schema markers"
    assert m[1].strip() == manifest.schema_markdown().strip(), (
        "docs/manifest.md is out of date; paste the output of "
        "`python -c 'from keusim.manifest import schema_markdown; print(schema_markdown())'`")


def test_every_field_the_parser_reads_is_in_the_schema():
    """A manifest that sets every schema field (and nothing else) parses, with the values
    it set."""
    full = f"""
[system]
name = "all"
arch = "arm64"
cores = 2
ram_mb = 32
seed = 7
max_cycles = 1e9
timeslice = 5000
[[process]]
name = "a"
image = "{HELLO}"
core = 1
expect = "chanfault:corrupt-index"
cflags = ["-DX=1"]
nic = "queue"
[[process]]
name = "b"
image = ["{HELLO}"]
[[channel]]
name = "c"
producer = "a"
consumer = "b"
capacity = 4096
mode = "notify"
verified = true
"""
    spec = manifest.parse(full)
    assert spec.arch == "arm64" and spec.timeslice == 5000 and spec.max_cycles == 10**9
    assert spec.processes[0].cflags == ("-DX=1",) and spec.channels[0].verified
    assert spec.processes[0].nic == "queue" and spec.processes[1].nic == ""
    assert {f.kind for f in manifest.SCHEMA} <= {"str", "int", "bool", "strs", "str|strs"}
    assert set(re.findall(r"(?m)^(\w+) =", full)) == {f.name for f in manifest.SCHEMA}


def test_fault_kinds_and_ring_errors_match_the_report():
    assert set(manifest.FAULT_KINDS) == set(report.FAULT_KINDS.values())
    assert set(manifest.RING_ERROR_NAMES) == set(report.RING_ERRORS.values())


def _one_line_error(text: str, tmp_path) -> str:
    p = tmp_path / "system.toml"
    p.write_text(text)
    with pytest.raises(ManifestError) as ei:
        manifest.load(p)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(p.resolve())), msg
    return msg


BAD = {
    "unknown field": (
        f'[[process]]\nname = "a"\nimgae = "{HELLO}"\n',
        ["process 'a'", "unknown field 'imgae'", "did you mean 'image'?"]),
    "unknown system field": (
        f'[system]\nncores = 2\n[[process]]\nname = "a"\nimage = "{HELLO}"\n',
        ["[system]", "unknown field 'ncores'", "did you mean 'cores'?"]),
    "wrong type": (
        f'[[process]]\nname = "a"\nimage = "{HELLO}"\ncore = "one"\n',
        ["process 'a'", "'core' must be an integer, got 'one'", "e.g. core = 1"]),
    "wrong type bool": (
        f'[[process]]\nname = "a"\nimage = "{HELLO}"\n[[process]]\nname = "b"\n'
        f'image = "{HELLO}"\n[[channel]]\nproducer = "a"\nconsumer = "b"\nverified = "yes"\n',
        ["channel #1", "'verified' must be true or false"]),
    "impossible expect": (
        f'[[process]]\nname = "a"\nimage = "{HELLO}"\nexpect = "chanfault"\n',
        ["process 'a'", "'expect' = 'chanfault' can never be met", "no channel endpoint"]),
    "unknown fault kind": (
        f'[[process]]\nname = "a"\nimage = "{HELLO}"\nexpect = "fault:segfault"\n',
        ["'expect' = 'fault:segfault' can never be met", "write-protect"]),
    "malformed expect": (
        f'[[process]]\nname = "a"\nimage = "{HELLO}"\nexpect = "exit"\n',
        ["'expect' = 'exit'", "exit:N"]),
    "missing image": (
        '[[process]]\nname = "a"\nimage = "nope.c"\n',
        ["process 'a'", "'image'", "nope.c does not exist", "relative to the manifest"]),
    "no image": (
        '[[process]]\nname = "a"\n',
        ["process 'a'", "'image' is missing"]),
    "bad choice": (
        f'[[process]]\nname = "a"\nimage = "{HELLO}"\n[[process]]\nname = "b"\n'
        f'image = "{HELLO}"\n[[channel]]\nproducer = "a"\nconsumer = "b"\nmode = "push"\n',
        ["channel #1", "'mode' = 'push' is not one of 'poll', 'notify'"]),
    "bad arch": (
        f'[system]\narch = "mips"\n[[process]]\nname = "a"\nimage = "{HELLO}"\n',
        ["[system]", "'arch' = 'mips' is not an architecture"]),
    "image is a folder": (
        '[[process]]\nname = "a"\nimage = "."\n',
        ["process 'a'", "'image'", "is a folder"]),
    "bad system name": (
        f'[system]\nname = "a/b"\n[[process]]\nname = "a"\nimage = "{HELLO}"\n',
        ["[system]", "'name' = 'a/b' must be a short identifier"]),
    "cores too few": (
        f'[system]\ncores = 1\n[[process]]\nname = "a"\nimage = "{HELLO}"\ncore = 1\n',
        ["[system]", "'cores' = 1", "set cores = 2"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_manifest_names_the_field(case, tmp_path):
    text, needles = BAD[case]
    msg = _one_line_error(text, tmp_path)
    for n in needles:
        assert n in msg, msg


def test_cli_prints_the_one_line(tmp_path):
    p = tmp_path / "system.toml"
    p.write_text(BAD["unknown field"][0])
    res = subprocess.run([sys.executable, "-m", "keusim", "run", str(p)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keusim: error: ") and "'imgae'" in lines[0]


def test_chanfault_expect_is_met_by_reporting_the_channel(tmp_path):
    """The expect the validator now accepts only on endpoints can be met: a consumer that
    records a corrupt channel with ks_chanfault meets chanfault:corrupt-length, and
    fails chanfault:corrupt-index."""
    (tmp_path / "tx.c").write_text("#include <keusim/keusim.h>\nint main(void) { return 0; }\n")
    (tmp_path / "rx.c").write_text(
        "#include <keusim/keusim.h>\n#include <keusim/ring.h>\n"
        "int main(void) { ks_chanfault(0, RING_ECORRUPT_LEN); return 0; }\n")
    base = ('[[process]]\nname = "tx"\nimage = "tx.c"\n[[process]]\nname = "rx"\n'
            'image = "rx.c"\ncore = 1\nexpect = "{}"\n[[channel]]\nproducer = "tx"\n'
            'consumer = "rx"\n')
    for expect, ok in (("chanfault", True), ("chanfault:corrupt-length", True),
                       ("chanfault:corrupt-index", False), ("exit:0", True)):
        p = tmp_path / "system.toml"
        p.write_text(base.format(expect))
        rep = run(manifest.load(p))
        assert rep.process("rx").expectation_met is ok, (expect, rep.summary())
