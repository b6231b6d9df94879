"""Cycle-model validation plumbing (keusim.model.validate) and determinism with a real profile.

The native twins are the guests' own C sources built for the host: these tests check
that they compute exactly what the guests compute, that the report is assembled and
written correctly, and that simulated cycles are deterministic under the `host` profile.
They never assert a host time or an error size.
"""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from keusim.manifest import resolve
from keusim.model.profiles import load_profile
from keusim.model.validate import (
    STATE_LINE_TOLERANCE,
    STATE_MIX_TOLERANCE,
    HostState,
    ValidationError,
    ValidationReport,
    ValidationRow,
    _rows,
    allowed_cpus,
    expected_state,
    native_twin,
    run_on_host,
    state_problem,
    validate,
)
from keusim.system import run


def _twin(name: str, **params):
    spec = resolve(name)
    allp = {**spec.params, **params}
    return spec, native_twin(spec, allp)


def test_native_callchain_computes_what_the_guest_computes():
    spec, exes = _twin("callchain", calls=300, size=200)
    _stats, consoles, _busy = run_on_host(spec, exes, allowed_cpus()[:1])
    sim = run("callchain", arch="x86_64", params={"calls": 300, "size": 200})
    native_line, sim_line = consoles[1].strip(), sim.process("callchain").console.strip()
    # Same C source: the same checksum; only the cycle figure differs.
    assert native_line.split("checksum")[1] == sim_line.split("checksum")[1]
    assert native_line.startswith("callchain: 300 chains of depth 8, 200 bytes")


TWO_CPUS = pytest.mark.skipif(len(allowed_cpus()) < 2,
                              reason="the native ring twins need two CPUs")


@TWO_CPUS
def test_native_stream_delivers_the_guests_byte_stream():
    spec, exes = _twin("stream", messages=500, size=100)
    stats, _consoles, _busy = run_on_host(spec, exes, allowed_cpus()[:2])
    sim = run("stream", arch="x86_64", params={"messages": 500, "size": 100})
    cons = sim.channel(0).consumer_stats
    # consumer (pid 2), channel 0: recv_msgs (3), verified bytes (5), mismatches (7), hash (6)
    assert stats[(2, 0, 3)] == cons["recv_msgs"] == 500
    assert stats[(2, 0, 5)] == cons["verified_bytes"] == 50_000
    assert stats[(2, 0, 7)] == 0
    assert stats[(2, 0, 6)] == cons["stream_hash"]


@TWO_CPUS
def test_validate_assembles_rows_and_writes_results(tmp_path):
    rep = validate("host", sizes=(64,), messages=40, progress=False,
                   workloads=("pingpong", "callchain"), runs=2, native_messages=2000)
    assert isinstance(rep, ValidationReport)
    assert [(r.workload, r.size) for r in rep.rows] == [("pingpong", 64), ("callchain", 64)]
    sts = [run("pingpong", arch="x86_64", params={"messages": n, "size": 64},
               profile="host").channel(0).producer_stats for n in (40, 8)]
    pp = rep.row("pingpong", 64)
    # Steady state: the difference of a 40- and an 8-round-trip run.
    assert pp.predicted_cycles == (sts[0]["rt_cycles"] - sts[1]["rt_cycles"]) / 32
    assert pp.sim_ops == 40 and pp.native_ops == 2000 and pp.native_runs == 2
    for r in rep.rows:
        assert len(r.native_run_cycles) == 2 and all(c > 0 for c in r.native_run_cycles)
        assert r.native_p10_cycles <= r.native_median_cycles <= r.native_p90_cycles
        assert math.isclose(r.error_pct,
                            100 * (r.predicted_cycles - r.native_median_cycles)
                            / r.native_median_cycles)
        assert math.isclose(r.native_median_ns * rep.ghz, r.native_median_cycles)
    assert rep.median_abs_error == pytest.approx(
        sorted(abs(r.error_pct) for r in rep.rows)[0] / 2
        + sorted(abs(r.error_pct) for r in rep.rows)[1] / 2)
    assert "median |error|" in rep.table()
    # The host state was measured before every native run, and each row says how many
    # runs found the profile's state; the row's median is over those (all when none did).
    exp = expected_state(load_profile("host"))
    assert rep.machine["expected_state"]["line_rt_ns"] == pytest.approx(exp.line_rt_ns, abs=0.1)
    for r in rep.rows:
        assert len(r.run_states) == 2 and r.state_runs == sum(not x for x in r.run_states)
        kept = sorted(c for c, x in zip(r.native_run_cycles, r.run_states, strict=True) if not x)
        assert r.native_median_cycles == pytest.approx(
            (kept[0] + kept[-1]) / 2 if kept else r.all_median_cycles)
    assert "host state check" in rep.table()
    # The placement check: a line round trip measured before and after the native runs,
    # beside what the profile assumes (2 x core_to_core).
    rts = rep.machine["line_round_trip_ns"]
    assert len(rts) == 2 and all(v > 0 for v in rts)
    prof = load_profile("host")
    assert rep.machine["profile_line_round_trip_ns"] == pytest.approx(
        2 * prof.param("coherence.core_to_core").value / prof.ghz, abs=0.1)
    assert "round trip between the two CPUs before/after" in rep.table()
    paths = rep.save(tmp_path / "v", plot=True)
    names = {p.name for p in paths}
    assert names == {"validation.json", "validation.csv", "validation.txt", "validation.png",
                     "validation.svg"}
    assert all(p.stat().st_size > 0 for p in paths)
    d = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert len(d["rows"]) == 2 and d["profile"] == "host"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "v" / "validation.csv").read_text())))
    assert [r["workload"] for r in rows] == ["pingpong", "callchain"]


def test_goal_summary_uses_median_and_worst():
    def row(err: float) -> ValidationRow:
        return ValidationRow("pingpong", 8, "round trip", 100 + err, 100.0, 90.0, 110.0, 30.0,
                             err, 3, 100, 100, False, 0.0)

    ok = ValidationReport("host", "", 3.0, 2.4e9, (0, 1), (row(5), row(-8), row(20)))
    assert ok.median_abs_error == 8 and ok.goal_met
    bad = ValidationReport("host", "", 3.0, 2.4e9, (0, 1), (row(5), row(-8), row(30)))
    assert not bad.goal_met and bad.worst.error_pct == 30


def test_state_problem_names_what_moved():
    exp = HostState(line_rt_ns=100.0, mix_cycles=5.0)
    assert state_problem(HostState(100 * (1 + STATE_LINE_TOLERANCE) - 1, 5.0), exp,
                         two_cpus=True) == ""
    far = state_problem(HostState(330.0, 5.0), exp, two_cpus=True)
    assert "line round trip 330 ns vs 100 ns" in far
    # A one-CPU workload does not care where the other vCPU is...
    assert state_problem(HostState(330.0, 5.0), exp, two_cpus=False) == ""
    # ... but every workload cares whether its CPU is shared.
    shared = state_problem(HostState(100.0, 5.0 * (1 + STATE_MIX_TOLERANCE) + 0.1), exp,
                           two_cpus=False)
    assert "mem_mix" in shared and "shared" in shared
    assert state_problem(HostState(100.0, 4.0), exp, two_cpus=True) == ""   # faster: fine
    # Unknown (a benchmark could not run) is not a problem of its own.
    assert state_problem(HostState(math.nan, math.nan), exp, two_cpus=True) == ""


def test_rows_compare_with_runs_in_the_profiles_state_only():
    key = ("callchain", 64)
    sim = {key: (110.0, 100, 0.0)}
    per_run = {key: [100.0, 150.0, 102.0, 148.0, 104.0]}
    states = {key: ["", "mem_mix 7.9 vs 5.3 cycles", "", "mem_mix 8.1 vs 5.3 cycles", ""]}
    (row,) = _rows([key], sim, per_run, {key: [0.0] * 5}, {key: 1000}, 5, 3.0, states)
    assert row.state_runs == 3 and row.native_median_cycles == 102.0
    assert row.all_median_cycles == 104.0
    assert row.error_pct == pytest.approx(100 * (110 - 102) / 102)
    rep = ValidationReport("host", "", 3.0, 2.4e9, (0, 1), (row,))
    assert rep.goal_met and not rep.rows_without_state
    # No run in the profile's state: the row keeps the all-runs median and fails the goal.
    (lost,) = _rows([key], sim, per_run, {key: [0.0] * 5}, {key: 1000}, 5, 3.0,
                    {key: ["moved"] * 5})
    assert lost.state_runs == 0 and lost.native_median_cycles == 104.0
    rep = ValidationReport("host", "", 3.0, 2.4e9, (0, 1), (lost,))
    assert rep.rows_without_state == [lost] and not rep.goal_met
    assert "no native run in the profile's host state" in rep.table()
    # Without the check every run counts.
    (plain,) = _rows([key], sim, per_run, {key: [0.0] * 5}, {key: 1000}, 5, 3.0)
    assert plain.run_states == () and plain.state_runs == 5
    assert plain.native_median_cycles == plain.all_median_cycles == 104.0


def test_expected_state_is_the_profiles_line_and_mem_mix():
    from keusim.model.calibrate import mem_mix_model_cycles
    prof = load_profile("host")
    exp = expected_state(prof)
    assert exp.line_rt_ns == pytest.approx(2 * prof.param("coherence.core_to_core").value
                                           / prof.ghz)
    # 16 memory ops at the profile's rate: what calibration fitted it to (fixed point).
    assert exp.mix_cycles == mem_mix_model_cycles(prof)
    assert exp.mix_cycles == pytest.approx(16 / prof.param("pipeline.memory_ops").value,
                                           rel=0.01)


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(ValidationError, match="unknown workload"):
        validate(workloads=("nope",), progress=False)
    with pytest.raises(ValidationError, match="message size"):
        validate(sizes=(8192,), progress=False)
    with pytest.raises(ValidationError, match="can be validated on this host"):
        validate(profile="neoverse-n1", sizes=(64,), progress=False)


def test_host_profile_cycles_are_deterministic(arch):
    p = {"messages": 30, "size": 256}
    a = run("pingpong", arch=arch, params=p, profile="host", quantum=5_000)
    b = run("pingpong", arch=arch, params=p, profile="host", quantum=5_000)
    c = run("pingpong", arch=arch, params=p, profile="host", quantum=2_000_000)
    assert a.to_json() == b.to_json() == c.to_json()
    assert a.channel(0).producer_stats["rt_cycles"] > 0
    assert a.cores[0].coherence_cycles > 0


def test_calibrated_here_only_on_the_cpu_it_was_measured_on(monkeypatch):
    """The report says "calibrated here" for a profile measured on this CPU (vendor, family,
    model), "NOT calibrated here" with the reason for one measured elsewhere, and neither
    for published figures."""
    from keusim.model import hostcpu
    from keusim.model.validate import machine_facts
    here = load_profile("host")
    fp = dict(here.machine)
    cpu = hostcpu.HostCPU(fp["vendor"], int(fp["family"]), int(fp["model"]), "x", True)
    monkeypatch.setattr(hostcpu, "detect", lambda *a: cpu)
    facts = machine_facts(here)
    assert facts["profile_calibrated_here"] and not facts["profile_mismatch"]
    other = hostcpu.HostCPU("GenuineIntel", 6, 143, "Intel Xeon", True)
    monkeypatch.setattr(hostcpu, "detect", lambda *a: other)
    facts = machine_facts(here)
    assert not facts["profile_calibrated_here"] and "keusim calibrate" in facts["profile_mismatch"]
    assert facts["core_profile"] == "goldencove-server"
    rep = ValidationReport("host", "", here.ghz, 2.4e9, (0, 1), (), machine=facts)
    assert "NOT calibrated here" in rep.table() and "calibrated here (" not in rep.table()
    pub = ValidationReport("zen3", "", 3.24, 2.4e9, (0, 1), (),
                           machine=machine_facts(load_profile("zen3")))
    assert "published figures, not calibrated" in pub.table()


def test_keusim_validate_rejects_bad_sizes_in_one_line(capsys):
    from keusim.cli import main
    assert main(["validate", "--sizes", "8,big"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("keusim: error:") and "--sizes" in err[0]
