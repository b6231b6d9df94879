"""The platform foundation: boot, syscalls, faults, determinism, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cached_run

from keusim import manifest
from keusim.errors import ArchError, BuildError, ImageError, ManifestError
from keusim.system import run

DATA = Path(__file__).parent / "data"


def test_hello_greets_and_exits_zero(arch):
    r = cached_run("hello", arch)
    assert r.ok and r.status == "poweroff"
    p = r.process("hello")
    assert p.exit_code == 0 and p.fault is None
    assert p.console.startswith("hello from keusim: pid 1 on core 0")
    assert r.cores[0].instructions > 0 and r.cores[0].cycles >= r.cores[0].instructions


def test_faults_are_classified_and_contained(arch):
    r = cached_run("faults", arch)
    kinds = {p.name: (p.fault.kind if p.fault else None) for p in r.processes}
    assert kinds == {"read-kernel": "kernel-access", "write-text": "write-protect",
                     "exec-stack": "exec-nx", "privileged": "privileged-instruction",
                     "honest": None}
    honest = r.process("honest")
    assert honest.exit_code == 0
    # The honest process made 1,000 syscall round trips between the faults.
    assert honest.console.startswith("honest: done, checksum")
    assert r.ok
    # Faults record where they happened: user addresses, never kernel pcs.
    for p in r.processes:
        if p.fault:
            assert p.fault.pc < 0x800000000000


def test_reports_are_byte_identical_across_runs(arch):
    a = run("faults", arch=arch).to_json()
    b = run("faults", arch=arch).to_json()
    assert a == b
    assert json.loads(a)["cores"][0]["cycles"] > 0


def test_quantum_does_not_change_results(arch):
    a = run("pingpong", arch=arch, params={"messages": 50}, quantum=5_000)
    b = run("pingpong", arch=arch, params={"messages": 50}, quantum=2_000_000)
    assert a.to_json() == b.to_json()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keusim", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args,needle", [
    (["run", str(DATA / "malformed.toml")], "not valid TOML"),
    (["run", str(DATA / "missing_image.toml")], "does not exist"),
    (["run", str(DATA / "compile_error.toml")], "compile_error.c:5"),
    (["run", "hello", "--arch", "sparc"], "unknown architecture 'sparc'"),
    (["run", "no-such-scenario"], "neither a manifest file nor a built-in scenario"),
    (["run", "pingpong", "--param", "nope=1"], "has no parameter 'nope'"),
])
def test_bad_input_gets_one_clear_line(args, needle):
    res = _cli(*args)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("keusim: error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in res.stderr


def test_library_raises_typed_errors():
    with pytest.raises(ManifestError):
        manifest.load(DATA / "malformed.toml")
    with pytest.raises(BuildError, match="compile_error.c:5"):
        run(manifest.load(DATA / "compile_error.toml"))
    with pytest.raises(ArchError):
        run("hello", arch="mips")
    with pytest.raises(ImageError, match="not a valid ELF"):
        run(manifest.parse(f'[[process]]\nname="x"\nimage="{DATA / "not_an_elf.bin"}"\n'))


def test_manifest_validation_names_the_field():
    with pytest.raises(ManifestError, match="'core' = 9 is out of range"):
        manifest.parse('[[process]]\nname = "a"\nimage = "@/guests/src/hello.c"\ncore = 9\n')
    with pytest.raises(ManifestError, match="'consumer' = 'ghost' is not a process"):
        manifest.parse('[[process]]\nname = "a"\nimage = "@/guests/src/hello.c"\n'
                       '[[channel]]\nproducer = "a"\nconsumer = "ghost"\n')


def test_timer_preempts_processes_sharing_a_core(arch):
    text = f"""
[system]
name = "timeslice"
cores = 1
timeslice = 20000
max_cycles = 50_000_000
[[process]]
name = "a"
image = "{DATA / 'spin.c'}"
[[process]]
name = "b"
image = "{DATA / 'spin.c'}"
"""
    r = run(manifest.parse(text), arch=arch)
    assert r.ok
    for p in r.processes:
        # Each spins for 2M model cycles; with a 20k-cycle slice and one rival it
        # must have been preempted dozens of times (about 2M / (2 * 20k) = 50).
        n = int(p.console.split(" saw ")[1].split()[0])
        assert 30 <= n <= 70, p.console
