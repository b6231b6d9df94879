"""Cross-language ring endpoints (experiments/xlang.py, experiments/native/xlang/).

The quick matrix runs every ordered pair of C, C++, Zig and Python endpoints natively
over one shared file and checks that every message was delivered and every payload word
verified at both ends, and that the C/C++/Zig endpoints really interoperate (the Zig
end runs its own port of the ring). Timing is reported, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keusim.toolchain import ROOT


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("xlang")
    p = subprocess.run([sys.executable, str(ROOT / "experiments" / "xlang.py"), "--quick",
                        "--out", str(out)], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    return out, p.stdout, json.loads((out / "xlang.json").read_text())


def test_every_pair_delivers_and_verifies(quick):
    _out, _stdout, d = quick
    pairs = d["details"]["pairs"]
    langs = ("c", "cpp", "zig", "python")
    assert {(p["sender"], p["echoer"]) for p in pairs} == {(a, b) for a in langs for b in langs}
    for p in pairs:
        n = (p["iters"] + p["warmup"]) * p["rounds"]
        assert p["delivered"] == [n, n], p
        assert p["verified_bytes"] == [n * p["size"], n * p["size"]], p
        assert p["mismatches"] == [0, 0], p
        assert p["rt_ns"] > 0 and p["oneway_ab_ns"] > 0


def test_outputs(quick):
    out, stdout, d = quick
    assert "56 ns" in stdout and "one way, sender -> echoer" in stdout
    for suffix in ("json", "csv", "png", "svg"):
        assert (out / f"xlang.{suffix}").exists()
    assert d["provenance"]["parameters"]["langs"] == ["c", "cpp", "zig", "python"]
