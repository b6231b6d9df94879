"""scripts/sysdeps.sh: the packages handed to apt-get are exactly the missing ones.

Each argument is COMMAND:PACKAGE:WHAT and WHAT holds spaces; an earlier version split the
missing list on spaces and asked apt-get for "run --gdb and tests/test_gdb.py", so the
install failed and the gdb tests skipped in CI.
"""
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "sysdeps.sh"


def _run(*specs):
    env = dict(os.environ, SYSDEPS_DRY_RUN="1")
    out = subprocess.run(["sh", str(SCRIPT), *specs], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_only_missing_packages_reach_apt_get():
    got = _run("sh:dash:the shell itself, present everywhere",
               "keusim-no-such-cmd-1:pkg-one:keusim run --gdb and tests/test_gdb.py",
               "keusim-no-such-cmd-2:pkg-two:the NetD TAP tests")
    assert got == "apt-get install -y -q pkg-one pkg-two"


def test_nothing_missing_prints_nothing():
    assert _run("sh:dash:the shell") == ""
