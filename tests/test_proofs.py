"""The Z3 proofs (proofs/*.py) through keusim.proof.prove, and their ties to the C sources."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from keusim.errors import KeusimError
from keusim.proof import prove
from keusim.toolchain import ROOT

RING_H = ROOT / "guests" / "include" / "keusim" / "ring.h"
RING_C = ROOT / "guests" / "lib" / "ring.c"


pytestmark = pytest.mark.timeout(900)

# The proofs about the compiled binaries are slower; tests/test_binary_proofs.py runs a
# subset of them (the whole set runs in `keusim prove --all`).
BINARY = ("ring_binary", "notify_binary")


@pytest.fixture(scope="module")
def results() -> dict[str, prove.ProofResult]:
    chosen = [p for p in prove.discover() if p.module not in BINARY]
    return {r.name: r for r in prove.run_proofs(None, proofs=chosen)}


@pytest.fixture(scope="module")
def ring():
    return prove.load_module("ring_invariants")


@pytest.fixture(scope="module")
def paper():
    return prove.load_module("paper_produce")


# ---- the whole suite ------------------------------------------------------------------

def test_every_proof_has_its_expected_outcome(results) -> None:
    bad = {n: (r.outcome, r.counterexample) for n, r in results.items() if not r.ok}
    assert not bad


@pytest.mark.parametrize("name", [
    "ring.produce.index_bound", "ring.consume.index_bound",
    "ring.produce.no_overwrite", "ring.consume.no_unpublished_read",
    "ring.produce.byte_queue", "ring.consume.byte_queue",
    "ring.produce.refines_queue", "ring.consume.refines_queue",
    "ring.consume.in_bounds", "ring.produce.in_bounds", "ring.link.no_wrap",
    "ordering.publish.rel-acq.armv8", "ordering.ring_c.armv8",
])
def test_ring_properties_proved(results, name) -> None:
    assert results[name].outcome == "proved", results[name].counterexample


@pytest.mark.parametrize("name", [n for n in [
    "ring.mutant.no_capacity_check", "ring.mutant.no_capacity_check_overwrite",
    "ring.mutant.no_wrap", "ring.mutant.no_wrap_framing", "ring.mutant.no_used_check",
    "ring.mutant.rec32_no_len_check"]])
def test_mutants_fail(results, name) -> None:
    r = results[name]
    assert r.expected == "counterexample" and r.outcome == "counterexample" and r.ok


def test_capacity_mutant_counterexample_exceeds_capacity(ring) -> None:
    o = ring.prove_produce_index_bound(ring.Variant(capacity_check=False))
    v = o.details
    assert o.outcome == "counterexample"
    assert v["head - tail after"] > v["capacity"]
    assert ring.prove_produce_index_bound().outcome == "proved"


def test_wrap_mutant_writes_past_the_end(ring) -> None:
    o = ring.prove_produce_in_bounds(ring.Variant(wrap=False))
    assert o.outcome == "counterexample"
    assert o.details["write index"] >= o.details["capacity"]


# ---- the paper's produce() ------------------------------------------------------------

def test_paper_full_write_makes_head_equal_tail(paper) -> None:
    o = paper.full_reads_empty()
    v = o.details
    assert o.outcome == "counterexample"
    assert v["head after"] == v["tail"]                  # reads as empty...
    assert v["bytes queued after"] == 0x1000             # ...with 4 KiB queued
    assert v["bytes queued before"] < 0x1000 and v["len"] > 0
    assert v["head before"] + v["len"] <= 0x1000          # not the overflow bug


def test_paper_copy_runs_past_the_buffer(paper) -> None:
    o = paper.copy_past_buffer()
    v = o.details
    assert o.outcome == "counterexample"
    assert v["head before"] + v["len"] > 0x1000 and v["len"] <= v["avail"]
    assert "head at 0x1000" in o.counterexample


def test_paper_overwrites_unconsumed_bytes(paper) -> None:
    o = paper.overwrites_unconsumed()
    v = o.details
    assert o.outcome == "counterexample"
    assert v["avail"] > v["free bytes"]                   # avail over-counts
    assert v["head before"] < v["tail"]                   # head has wrapped below tail
    # the overwritten index is queued: in [tail, tail + queued) mod 4096
    assert (v["overwritten index"] - v["tail"]) % 0x1000 < v["bytes queued before"]


def test_paper_avail_overflows_u16(paper) -> None:
    v = paper.avail_overflows().details
    assert v["tail"] + 0x1000 > 0xFFFF
    assert v["avail (u16)"] != v["avail (exact)"]


def test_paper_head_in_kernel_memory_contradiction(paper) -> None:
    v = paper.head_in_kernel_memory().details
    assert v["head page user-writable"] is True
    assert v["value stored by the sender"] > 0xFFF


# ---- memory ordering ------------------------------------------------------------------

def test_armv8_reordering_found_and_fixed(results) -> None:
    bad = results["ordering.publish.plain.armv8"]
    assert bad.outcome == "counterexample"
    assert "R head=1" in bad.counterexample and "R payload=0" in bad.counterexample
    assert results["ordering.publish.plain.x86-tso"].outcome == "proved"
    assert results["ordering.publish.rel-acq.armv8"].outcome == "proved"
    assert results["ordering.publish.dmb.armv8"].outcome == "proved"
    assert results["ordering.reuse.plain.armv8"].outcome == "counterexample"
    assert results["ordering.reuse.rel-acq.armv8"].outcome == "proved"


# ---- ties to the C sources ------------------------------------------------------------

def _defines(text: str) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^#define\s+(RING_\w+)\s+(.+?)\s*(?:/\*.*)?$", text, re.M):
        expr = re.sub(r"(?<=[0-9a-fA-F])[uUlL]+\b", "", m[2])
        if re.fullmatch(r"[\s0-9a-fA-FxX()<>+\-*]+", expr):
            out[m[1]] = int(eval(expr, {"__builtins__": {}}))  # digits and operators only
    return out


def test_ring_h_constants_match_the_proof(ring) -> None:
    d = _defines(RING_H.read_text())
    for name in ("RING_HDR_SIZE", "RING_ALIGN", "RING_WRAP", "RING_MIN_CAPACITY",
                 "RING_MAX_CAPACITY"):
        assert name in d, f"{name} not found in {RING_H}"
        assert d[name] == getattr(ring, name), (
            f"{name} is {d[name]:#x} in ring.h but {getattr(ring, name):#x} in "
            "proofs/ring_invariants.py: update the model and re-run the proofs")


_FUNC = re.compile(r"^(?:[\w*]+[ \t*]+)*(\w+)\s*\([^;{}()]*\)\s*\{", re.M)


def function_bodies(src: str) -> dict[str, str]:
    """Top-level C function bodies by name (brace matching; enough for ring.c)."""
    out: dict[str, str] = {}
    for m in _FUNC.finditer(src):
        depth, i = 0, m.end() - 1
        while i < len(src):
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            if depth == 0:
                break
            i += 1
        out[m[1]] = src[m.end():i]
    return out


def test_source_map_cites_ring_c(ring) -> None:
    lines = RING_C.read_text().splitlines()
    bodies = function_bodies(RING_C.read_text())
    for s in ring.SOURCE_MAP:
        here = lines[s.line - 1] if s.line <= len(lines) else ""
        now = [i + 1 for i, ln in enumerate(lines) if s.snippet in ln]
        assert s.snippet in here, (
            f"SOURCE_MAP '{s.step}' cites ring.c:{s.line} for {s.snippet!r}; it is now at "
            f"{now or 'no line'}")
        assert s.snippet in bodies[s.function], f"{s.snippet!r} is not in {s.function}"


# ---- the runner API -------------------------------------------------------------------

def test_list_and_select() -> None:
    names = prove.list_proofs()
    assert len(names) == len(set(names))
    assert {"ring.produce.index_bound", "paper.full_reads_empty",
            "ring.bin.arm64.ring_peek", "ordering.bin.x86_64",
            "notify.bin.arm64.window"} <= set(names)
    only = prove.select(["paper"], prove.discover())
    assert only and all(p.name.startswith("paper.") for p in only)
    by_file = prove.select(["paper_produce"], prove.discover())
    assert [p.name for p in by_file] == [p.name for p in only]
    with pytest.raises(KeusimError, match="no proof named"):
        prove.select(["no.such.proof"], prove.discover())


def test_run_proofs_by_name_and_table() -> None:
    rs = prove.run_proofs(["paper.copy_past_buffer", "ordering.publish.plain"])
    assert [r.name for r in rs] == ["paper.copy_past_buffer", "ordering.publish.plain.sc",
                                    "ordering.publish.plain.x86-tso",
                                    "ordering.publish.plain.armv8"]
    assert all(r.ok for r in rs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rs[0].ok = False  # type: ignore[misc]
    table = prove.render_table(rs)
    assert table.splitlines()[0].split()[:4] == ["proof", "expected", "outcome", "ok"]
    assert "4 proofs, 4 ok, 0 not ok" in table


def test_register_and_failures_are_reported() -> None:
    def boom() -> prove.Outcome:
        raise RuntimeError("model broke")

    prove.register(prove.Proof("test.extra.broken", "a proof that raises", boom),
                   prove.Proof("test.extra.wrong", "expects a proof, gets a cex",
                               lambda: prove.Outcome("counterexample", "x = 1")))
    try:
        rs = prove.run_proofs(["test.extra"])
        assert [(r.outcome, r.ok) for r in rs] == [("error", False), ("counterexample", False)]
        assert "model broke" in rs[0].counterexample
    finally:
        prove._REGISTERED.pop("test.extra.broken")
        prove._REGISTERED.pop("test.extra.wrong")


def test_proof_module_runs_on_its_own() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "proofs" / "paper_produce.py")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 proofs, 5 ok" in r.stdout and "head == tail" in r.stdout


def test_vacuous_hypotheses_are_an_error_not_a_proof() -> None:
    import z3

    x = z3.BitVec("x", 8)
    o = prove.solve([x == 1, x == 2], x == 3)
    assert o.outcome == "error" and "unsatisfiable" in (o.counterexample or "")
    assert prove.solve([x == 1], x + 1 == 2).outcome == "proved"
    assert prove.solve([z3.ULT(x, 4)], x != 3).outcome == "counterexample"


def test_budget_stops_a_proof_that_does_not_return() -> None:
    import time

    def spin() -> prove.Outcome:
        while True:
            time.sleep(0.05)

    p = prove.Proof("test.spin", "never returns", spin)
    r = prove.run_one(p, budget=1.0)
    assert r.outcome == "unknown" and "budget" in (r.counterexample or "")
    ok = prove.run_one(prove.Proof("test.ok", "returns", lambda: prove.Outcome("proved")),
                       budget=30.0)
    assert ok.ok and ok.outcome == "proved"


def test_budgeted_run_reports_the_spinner_and_still_runs_the_rest() -> None:
    import time

    def spin() -> prove.Outcome:
        while True:
            time.sleep(0.05)

    ps = [prove.Proof("t.a", "proved", lambda: prove.Outcome("proved"), module="m"),
          prove.Proof("t.spin", "never returns", spin, module="m"),
          prove.Proof("t.b", "a counterexample", lambda: prove.Outcome("counterexample", "x"),
                      expected="counterexample", module="m")]
    rs = prove.run_proofs(None, budget=1.0, proofs=ps)
    assert [(r.name, r.outcome, r.ok) for r in rs] == [
        ("t.a", "proved", True), ("t.spin", "unknown", False), ("t.b", "counterexample", True)]
    assert "budget" in (rs[1].counterexample or "")
