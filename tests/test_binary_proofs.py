"""Proofs about the compiled ring and kernel (proofs/ring_binary.py, notify_binary.py,
keusim.proof.lift, keusim.proof.mutants): a subset that keeps the suite quick. The full
set runs in `keusim prove --all`, the full mutant catalogue in `keusim prove --mutants`."""

from __future__ import annotations

import pytest

from keusim.proof import lift, mutants, prove

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def rb():
    return prove.load_module("ring_binary")


@pytest.fixture(scope="module")
def nb():
    return prove.load_module("notify_binary")


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
@pytest.mark.parametrize("func", ["ring_commit", "ring_release"])
def test_compiled_ring_function_refines_the_model(rb, arch, func) -> None:
    o = rb.check_refinement(arch, func)
    assert o.outcome == "proved", o.counterexample
    assert o.details["paths"] >= 2        # both the success and the refusal paths


def test_object_code_is_what_guests_link(rb) -> None:
    """The lifted object's ring functions are byte-identical in a linked guest (the
    object has no relocations inside them), so the proofs are about the guests' code."""
    from keusim.toolchain import ROOT, builds

    for arch in ("x86_64", "arm64"):
        obj = lift.read_image(rb.ring_object(arch))
        elf = lift.read_image(builds.guest_image(arch, [ROOT / "guests" / "src" / "hello.c"]))
        for f in rb.FUNCS:
            assert elf.funcs[f].code == obj.funcs[f].code, f"{f} ({arch}) differs"


def test_ep_layout_matches_dwarf(rb) -> None:
    for arch in ("x86_64", "arm64"):
        size, members = lift.struct_layout(rb.ring_object(arch), "ring_ep")
        assert size == rb.EP_SIZE
        assert {k: v for k, v in members.items()} == {k: o for k, (o, _) in rb.EP_FIELDS.items()}


def test_ordering_litmus_tests_come_from_the_instructions(rb) -> None:
    arm = rb.litmus_tests("arm64", str(rb.ring_object("arm64")))
    x86 = rb.litmus_tests("x86_64", str(rb.ring_object("x86_64")))
    arm_text = "\n".join(t for _, t in arm)
    # stlr/ldar in the arm64 object become release/acquire; x86-64 has plain accesses.
    assert "st.rel head 1" in arm_text and "ld.acq r0 head" in arm_text
    assert "st.rel tail 1" in arm_text
    assert ".rel" not in "\n".join(t for _, t in x86)
    # Every publish path meets every header-reading consume path, and both hand-offs.
    assert any(n.startswith("publish ring_reserve") for n, _ in arm)   # the lone WRAP
    assert any(n.startswith("reuse ring_peek") for n, _ in arm)        # the WRAP follow
    assert rb.check_ordering("arm64").outcome == "proved"


def test_unmodelled_instruction_stops_the_proof(tmp_path) -> None:
    """A floating-point add has no P-code semantics here: the executor must refuse."""
    code = bytes.fromhex("f30f58c1c3")              # addss xmm0, xmm1 ; ret
    image = lift.Image(tmp_path / "fake.o", {"f": lift.Func("f", 0x1000, code)}, {}, {})
    lf = lift.Lifter("x86_64", image)

    class NoMem(lift.Env):
        pass

    ex = lift.Executor(lf, NoMem(), [])
    with pytest.raises(lift.LiftError, match="not modelled"):
        ex.run(lift.State(0x1000))


def test_notify_capability_proved_on_compiled_kernel(nb) -> None:
    for arch in ("x86_64", "arm64"):
        o = nb.check(arch, "capability")
        assert o.outcome == "proved", o.counterexample
        assert o.details["accepting paths"] >= 1


@pytest.mark.parametrize("name", ["ring.capacity_off_by_record", "notify.no_capability"])
def test_planted_bug_is_caught(name) -> None:
    (m,) = [m for m in mutants.CATALOGUE if m.name == name]
    r = mutants.run_mutant(m, budget=600)
    assert r.error is None and r.caught and r.ok, r
    assert r.by and "counterexample" in r.by[0]


def test_equivalent_change_still_proves(rb) -> None:
    """A rename and a reorder of independent statements, applied to copies, leave the
    refinement proofs of the functions they touch proved: the proofs are about what the
    code does, not its text."""
    import tempfile
    from pathlib import Path

    from keusim.toolchain import ROOT

    for name, func in (("ring.equiv_renamed_variable", "ring_reserve"),
                       ("ring.equiv_reordered_statements", "ring_commit")):
        (m,) = [m for m in mutants.CATALOGUE if m.name == name]
        with tempfile.TemporaryDirectory() as tmp:
            root = mutants.copy_tree(Path(tmp))
            mutants.apply(m, root)
            assert m.new in (root / m.file).read_text()
            assert m.new not in (ROOT / m.file).read_text()     # the tree is untouched
            for arch in ("x86_64", "arm64"):
                o = rb.check_refinement(arch, func, root)
                assert o.outcome == "proved", (name, arch, o.counterexample)


def test_stale_mutant_text_is_an_error(tmp_path) -> None:
    root = mutants.copy_tree(tmp_path)
    bad = mutants.Mutant("x", mutants.RING, "no such text in ring.c", "y", "stale")
    with pytest.raises(mutants.KeusimError, match="occurs 0 times"):
        mutants.apply(bad, root)
