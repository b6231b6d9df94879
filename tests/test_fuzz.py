"""The fuzzer (keusim.fuzz, docs/fuzzing.md): a fixed small campaign on both
architectures, a planted kernel bug it must catch, the minimizer on synthetic
failures, and the saved regression cases it found on the machine."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from keusim.cli import main as keusim_main
from keusim.fuzz import (
    Op,
    Program,
    build_target,
    ddmin,
    fuzz,
    generate,
    minimize_program,
    replay_case,
    run_checked,
)
from keusim.fuzz import target as T
from keusim.fuzz.isa import FACTS
from keusim.fuzz.program import F_MUST_FAULT, OPS

CASES = Path(__file__).parent / "data" / "fuzz"
BOOT_FLAG_BROKEN_LAYOUT = 1   # kernel/include/bootinfo.h: the consumer may write head

# Cases the fuzzer found on the machine as it was when it was written, and the
# issue-11 item that fixes each. They are expected to fail until that fix is merged;
# strict, so a fixed one turns this into a failure that says to drop the mark.
# What each saved case found on the machine before issue 11's fixes; each must stay fixed.
FOUND_BUGS = {
    "x86_64-machine-stop-ud.json":
        "issue 11 item 1 (trap model): an undefined opcode stops the machine instead of #UD",
    "x86_64-kernel-panic-int-n.json":
        "issue 11 item 1 (trap model): `int N` ignores the IDT gate's DPL and panics the kernel",
    "x86_64-honest-harmed-spin.json":
        "issue 11 item 2 (preemption): a spinning attacker starves an honest process on its core",
    "arm64-honest-harmed-spin-syscall.json":
        "issue 11 item 2 (preemption): a spinner that makes system calls starves its core too",
    "arm64-state-leak-tpidr.json":
        "issue 11 item 4 (context switches): TPIDR_EL0 flows from the attacker to the next process",
    "arm64-honest-harmed-spin.json":
        "issue 11 item 2 (preemption): a spinning attacker starves an honest process on its core",
    "x86_64-report-verdict-flood.json":
        "issue 11 item 3 (report): report() calls fill the event log and drop honest exits",
    "arm64-report-verdict-flood.json":
        "issue 11 item 3 (report): report() calls fill the event log and drop honest exits",
    "x86_64-report-forged-chanfault.json":
        "issue 11 item 3 (report) / chanfault bullet: chanfault on a channel the caller does not own",
    "arm64-report-forged-chanfault.json":
        "issue 11 item 3 (report) / chanfault bullet: chanfault on a channel the caller does not own",
    "x86_64-state-leak-sse.json":
        "issue 11 item 4 (context switches): x86-64 kernel entries zero the user's SSE registers",
    "x86_64-determinism-rdseed.json":
        "issue 11 item 5 (determinism): rdseed returns host randomness",
}


@functools.cache
def target(arch: str) -> T.Target:
    return build_target(arch)


# -- generator and encoding --------------------------------------------------------------
def test_same_seed_same_program_and_every_operation_is_generated(arch):
    t = target(arch)
    assert generate(t, 5) == generate(t, 5)
    assert generate(t, 5) != generate(t, 6)
    kinds = {o.kind for s in range(60) for o in generate(t, s).ops}
    assert kinds == set(OPS)


def test_snippet_glue_decodes_to_what_it_claims(arch):
    f = FACTS[arch]
    md = f.disasm()
    for addr in (0x401234, 0x7FFF_DEAD_BEEF):
        code = f.jump_back(addr)
        insns = list(md.disasm(code, 0))
        assert sum(i.size for i in insns) == len(code)
        assert insns[-1].mnemonic in ("jmp", "br")
        # the immediates (x86 movabs; arm64 movz/movk with their shifts) rebuild addr
        value = 0
        for i in insns[:-1]:
            imm = re.search(r"#?(0x[0-9a-f]+|\d+)", i.op_str.split(",", 1)[1])
            shift = re.search(r"lsl #(\d+)", i.op_str)
            value |= int(imm.group(1), 0) << (int(shift.group(1)) if shift else 0)
        assert value == addr
    for slot in range(f.nregs):
        assert sum(i.size for i in md.disasm(f.load_reg(slot, 0x1122334455667788), 0)) == len(
            f.load_reg(slot, 0x1122334455667788))
    # curated instructions decode whole, except those invalid in 64-bit mode (capstone
    # decodes nothing) and ud1, which capstone takes without the ModRM byte the SDM gives it
    for name, code in f.curated.items():
        got = b"".join(i.bytes for i in md.disasm(code, 0))
        assert got == code or name in ("into", "lock-nop", "aad", "push-es", "bound", "ud1"), name


# -- a fixed small campaign on both architectures --------------------------------------
@functools.cache
def fixed_campaign():
    return fuzz(runs=16, seed=2026, determinism_every=1)


def test_fixed_campaign_is_deterministic_and_reaches_the_kernel_checks():
    s = fixed_campaign()
    assert s.runs == 16 and s.determinism_checked == 16
    assert s.by_invariant["determinism"] == 0, s.render()
    # The attackers die in many different ways: the programs get past the first
    # check into the MMU gates, the syscall dispatcher and the notify checks.
    kinds = set(s.attacker_outcomes)
    assert len(kinds) >= 5, s.render()
    assert kinds & {"bad-tag", "bad-descriptor", "replay", "no-capability"}, s.render()
    assert kinds & {"write-protect", "unmapped", "kernel-access"}, s.render()


def test_fixed_campaign_contains_the_attackers():
    """Every invariant but state-leak (test_fixed_campaign_holds_every_invariant covers it
    too), so a state-leak regression and a containment one fail separately."""
    s = fixed_campaign()
    bad = [f"run {f.index} ({f.arch}): {v.invariant}: {v.detail}" for f in s.failures
           for v in f.violations if v.invariant != "state-leak"]
    assert not bad, "\n".join(bad)


def test_fixed_campaign_holds_every_invariant():
    s = fixed_campaign()
    assert s.ok, s.render()


# The register fuzz_state_<arch>.S holds for the honest processes.
STATE_REGISTER = {"x86_64": "xmm15", "arm64": "tpidr_el0"}


def test_honest_state_register_is_used_only_by_the_state_helpers(arch):
    """Otherwise a state-leak report could be the compiler's doing, not the kernel's."""
    from keusim import arch as archmod
    from keusim.machine.loader import ElfImage
    t = target(arch)
    md = FACTS[arch].disasm()
    for name, path in t.images.items():
        img = ElfImage(path, archmod.get(arch).elf_machine)
        users = {img.function(i.address) for s in img.segments if s.flags & 1
                 for i in md.disasm(s.data, s.vaddr) if STATE_REGISTER[arch] in i.op_str}
        assert users <= {"fuzz_state_set", "fuzz_state_get"}, (name, users)


# -- a planted bug -----------------------------------------------------------------------
def test_planted_gate_bug_is_caught(arch):
    """With BOOT_FLAG_BROKEN_LAYOUT the kernel maps the head page writable for the
    consumer: the attacker's must-fault store to its peer's head then succeeds, and
    the fuzzer reports the broken gate; without the flag the same store faults."""
    import dataclasses
    t = target(arch)
    prog = Program((Op("store", (T.chan_va(T.CH_ATTACK_RX) + T.HEAD_OFF, 7, 4), F_MUST_FAULT,
                       expect="write-protect"),))
    rep, vs = run_checked(t, prog, kernel_flags=0)
    atk = next(p for p in rep.processes if p.name == T.ATTACKER)
    assert atk.fault is not None and atk.fault.kind == "write-protect"
    assert not [v for v in vs if v.invariant in ("mmu-gate", "fault-kind")]
    # the same fault recorded with another kind is caught by the fault-kind oracle
    i = rep.processes.index(atk)
    lie = dataclasses.replace(atk, fault=dataclasses.replace(atk.fault, kind="other"))
    bad = dataclasses.replace(rep, processes=rep.processes[:i] + (lie,) + rep.processes[i + 1:])
    assert [v.invariant for v in T.check(bad, prog) if v.invariant == "fault-kind"] == ["fault-kind"]
    # a refused system call's record (its address is a channel or a number) is not judged
    lie = dataclasses.replace(atk, fault=dataclasses.replace(atk.fault, kind="no-capability"))
    bad = dataclasses.replace(rep, processes=rep.processes[:i] + (lie,) + rep.processes[i + 1:])
    assert not [v for v in T.check(bad, prog) if v.invariant == "fault-kind"]
    _, vs = run_checked(t, prog, kernel_flags=BOOT_FLAG_BROKEN_LAYOUT)
    assert [v.invariant for v in vs if v.invariant == "mmu-gate"] == ["mmu-gate"]


def test_campaign_finds_the_planted_bug():
    """A short campaign (short programs, so that more of them reach their gate
    probe) against the broken kernel reports the broken gate."""
    s = fuzz(runs=24, seed=2, determinism_every=0, kernel_flags=BOOT_FLAG_BROKEN_LAYOUT,
             max_ops=6)
    assert s.by_invariant["mmu-gate"] > 0, s.render()
    assert all(v.invariant != "mmu-gate" or "not stopped by the MMU" in v.detail
               for f in s.failures for v in f.violations)


# -- the checker on planted report faults ----------------------------------------------------
def test_check_catches_planted_report_faults():
    """A clean arm64 run, then the same report with one lie planted at a time."""
    import dataclasses
    rep, vs = run_checked(target("arm64"), Program(()))
    assert vs == [] and rep.ok
    procs = {p.name: i for i, p in enumerate(rep.processes)}

    def with_proc(name, **kw):
        ps = list(rep.processes)
        ps[procs[name]] = dataclasses.replace(ps[procs[name]], **kw)
        return dataclasses.replace(rep, processes=tuple(ps))

    def with_chan(i, **kw):
        cs = list(rep.channels)
        cs[i] = dataclasses.replace(cs[i], **kw)
        return dataclasses.replace(rep, channels=tuple(cs))

    def invariants(r):
        return sorted({v.invariant for v in T.check(r)})
    c0 = rep.channels[0]
    assert invariants(with_proc("honest-c0", exit_code=None)) == ["report-verdict"]
    assert invariants(with_chan(0, consumer_stats={**c0.consumer_stats, "stream_hash": 1})) == [
        "report-verdict"]
    assert invariants(with_chan(0, consumer_stats={**c0.consumer_stats, "mismatches": 3,
                                                   "verified_bytes": 0})) == ["report-verdict"]
    assert invariants(with_chan(1, faults=("corrupt-index (found and recorded by attacker)",))) == [
        "report-forged"]
    assert invariants(with_chan(1, faults=("corrupt-index (found and recorded by honest-c1)",))) == []
    assert invariants(with_proc("attacker", console="fuzz: op 3 escaped\n")) == ["mmu-gate"]
    assert invariants(with_proc("honest-c1", console="honest: ch 1 BAD msgs 3 mismatches 0 hash 0 "
                                "state ok\n")) == ["honest-harmed", "report-verdict"]
    assert invariants(dataclasses.replace(rep, status="error", message="boom")) == ["machine-stop"]


# -- the minimizer -----------------------------------------------------------------------
def test_ddmin_finds_the_failure_inducing_pair():
    calls = []

    def fails(xs):
        calls.append(len(xs))
        return 17 in xs and 42 in xs
    assert ddmin(list(range(100)), fails) == [17, 42]
    assert len(calls) < 200


def test_minimize_program_keeps_only_the_cause():
    """A synthetic failure: an exec whose snippet holds ud2, after a report flood."""
    ud2 = FACTS["x86_64"].curated["ud2"]
    noise = [Op("syscall", (8, 0, 0, 0, 1)), Op("send", (2, 60, 1)), Op("recv", (3,))]
    prog = Program(tuple(noise * 3 + [
        Op("syscall", (9, 0, 1, 2, 600)),
        Op("exec", (), 0, (b"\x90", FACTS["x86_64"].curated["cpuid"], ud2, b"\x90"))] + noise))

    def fails(p: Program) -> bool:
        flood = any(o.kind == "syscall" and o.x[0] == 9 and o.x[4] >= 300 for o in p.ops)
        return flood and any(ud2 in o.code for o in p.ops)
    small = minimize_program(prog, fails)
    assert [o.kind for o in small.ops] == ["syscall", "exec"]
    assert small.ops[1].code == (ud2,)


def test_minimizer_on_a_real_run_shrinks_a_planted_failure():
    t = target("arm64")
    g = [Op("syscall", (3, 0, 0, 0, 1)), Op("send", (2, 8, 1)), Op("syscall", (8, 0, 0, 0, 1))]
    bad = Op("store", (T.chan_va(T.CH_ATTACK_RX) + T.HEAD_OFF, 1, 4), F_MUST_FAULT)
    from keusim.fuzz.campaign import fails_like
    prog = Program(tuple(g + [bad] + g))
    key = "mmu-gate: attacker op # was not stopped by the MMU"
    small = minimize_program(prog, fails_like(t, key, BOOT_FLAG_BROKEN_LAYOUT))
    assert small.ops == (bad,)


# -- regression cases the fuzzer found -----------------------------------------------------
def _case_params():
    out = []
    for p in sorted(CASES.glob("*.json")):
        out.append(pytest.param(p, id=p.stem))
    return out


@pytest.mark.parametrize("case", _case_params())
def test_regression_case_no_longer_fails(case):
    """The case's own violation (FOUND_BUGS) is gone; the fixed campaign covers the others."""
    doc = json.loads(case.read_text())
    _, vs = replay_case(case, {doc["arch"]: target(doc["arch"])})
    same = [f"{v.invariant}: {v.detail}" for v in vs if v.key() == doc["key"]]
    assert not same, "; ".join(same)


def test_every_known_failing_case_exists():
    assert {p.name for p in CASES.glob("*.json")} >= set(FOUND_BUGS)


# -- the command line ----------------------------------------------------------------------
def test_cli_runs_and_summarises(tmp_path, capsys):
    rc = keusim_main(["fuzz", "--runs", "2", "--seed", "9", "--arch", "arm64", "--save-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc in (0, 1) and out.startswith("fuzz: 2 runs in ")
    assert "machine stops" in out and "determinism failures" in out


@pytest.mark.parametrize("args, needle", [
    (["--runs", "1", "--arch", "sparc"], "sparc"),
    (["--replay", "/nonexistent/case.json"], "not a fuzz regression case"),
])
def test_cli_bad_input_gets_one_error_line(args, needle, capsys):
    assert keusim_main(["fuzz", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("keusim: error: ") and needle in err[0]
