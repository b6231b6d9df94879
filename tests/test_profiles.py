"""Microarchitecture profiles (keusim.model.profiles) and calibration fitting (keusim.model.calibrate).

Fitting is tested on synthetic harness results with known parameters; one tiny real
calibration run checks the plumbing and never asserts a host timing.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from keusim.errors import ArchError, KeusimError
from keusim.model import calibrate as calibrate_mod
from keusim.model.calibrate import CalibrationReport, calibrate, fit_profile, model_checks
from keusim.model.harness import NativeResult
from keusim.model.profiles import (
    CLASS_NAMES,
    REQUIRED,
    TRAP_CLASSES,
    Param,
    ProfileError,
    describe,
    list_profiles,
    load_profile,
    parse_profile,
)

PROFILES = ("host", "zen3", "raptorlake", "goldencove-server", "neoverse-n1", "cortex-a76")


# --------------------------------------------------------------------------- loading


def test_packaged_profiles_are_listed():
    assert set(PROFILES) <= set(list_profiles())


@pytest.mark.parametrize("name", PROFILES)
def test_profile_loads_and_every_number_has_a_source(name):
    p = load_profile(name)
    assert p.name == name and p.isa in ("x86_64", "arm64")
    for sec, keys in REQUIRED.items():
        for k in keys:
            assert p.param(f"{sec}.{k}").value >= 0
    assert set(CLASS_NAMES) <= set(p.classes)
    sources = p.sources()
    assert len(sources) == len(p.params) + len(p.classes)
    for key, src in sources.items():
        assert isinstance(src, str) and len(src.strip()) >= 10, f"{name}: {key} lacks a source"
    for key in TRAP_CLASSES.values():
        assert p.cycles(key) > 0


@pytest.mark.parametrize("name", PROFILES)
def test_machine_parameters_are_integer_cycles(name):
    p = load_profile(name)
    xfer, inval, fill = p.coherence()
    assert all(isinstance(v, int) and v >= 0 for v in (xfer, inval, fill))
    assert xfer + inval == p.cycles("coherence.core_to_core")
    assert isinstance(p.ipi_cycles, int) and p.ipi_cycles > 0
    assert p.cycles_per_ns == p.ghz > 0


def test_profiles_say_what_they_describe():
    assert load_profile("raptorlake").ghz == 5.4            # the paper's machine
    for arm in ("neoverse-n1", "cortex-a76"):
        assert load_profile(arm).isa == "arm64"
    # Published profiles record no machine; the calibrated host records its CPU.
    for name in ("zen3", "raptorlake", "goldencove-server", "neoverse-n1"):
        assert not load_profile(name).machine
    host = load_profile("host").machine
    assert {"cpu", "vendor", "family", "model", "date", "tsc_hz"} <= set(host)


def test_the_golden_cove_server_profile_shares_golden_coves_class_table():
    gc, rl = load_profile("goldencove-server"), load_profile("raptorlake")
    assert gc.inherits == "raptorlake"
    assert {k: c for k, c in gc.classes.items() if k != "load"} == \
        {k: c for k, c in rl.classes.items() if k != "load"}
    assert gc.cycles("memory.l1") == 5 and gc.classes["mul"].latency == 3
    # Its own numbers are sourced; the mesh figures are marked estimates.
    assert gc.param("clock.ghz").origin == "goldencove-server"
    for key in ("memory.l3", "memory.dram", "coherence.core_to_core", "trap.ipi"):
        assert gc.param(key).estimate, key
    for key in ("calibration.linux_getppid_kernel_cycles", "calibration.syscall_entry_share"):
        assert key in gc.params


def test_ns_numbers_convert_with_the_profile_clock():
    p = load_profile("zen3")
    dram = p.param("memory.dram")
    assert dram.unit == "ns" and math.isclose(dram.value, dram.given * p.ghz)
    faster = p.with_params({"clock.ghz": dataclasses.replace(p.param("clock.ghz"), value=4.0,
                                                             given=4.0)})
    assert math.isclose(faster.param("memory.dram").value, dram.given * 4.0)
    assert faster.cycles("memory.l1") == p.cycles("memory.l1")   # given in cycles


def test_inheritance_keeps_the_parents_numbers_and_sources():
    host, zen3 = load_profile("host"), load_profile("zen3")
    assert host.inherits == "zen3"
    assert host.classes["alu"] == zen3.classes["alu"]
    assert host.param("trap.mmu_switch") == zen3.param("trap.mmu_switch")
    assert host.param("memory.l1").origin == "host"
    a76 = load_profile("cortex-a76")
    assert a76.classes["mul"].origin == "neoverse-n1" and a76.ghz == 2.4


@pytest.mark.parametrize("name", PROFILES)
def test_toml_round_trip(name):
    p = load_profile(name)
    q = parse_profile(p.to_toml(), where=f"{name} round trip")
    assert {k: v.value for k, v in q.params.items()} == \
        pytest.approx({k: v.value for k, v in p.params.items()})
    assert {k: (c.latency, c.rthroughput, c.pipe, c.source) for k, c in q.classes.items()} == \
        {k: (c.latency, c.rthroughput, c.pipe, c.source) for k, c in p.classes.items()}
    assert (q.isa, dict(q.machine)) == (p.isa, dict(p.machine))


def test_describe_has_a_row_per_profile():
    rows = describe(PROFILES).splitlines()
    assert len(rows) == len(PROFILES) + 1 and all(n in describe() for n in PROFILES)


# --------------------------------------------------------------------------- errors

_MINIMAL = """
[profile]
name = "t"
isa = "x86_64"
inherits = "zen3"
"""


def test_a_number_without_a_source_is_rejected():
    with pytest.raises(ProfileError, match="memory.l1 has no source"):
        parse_profile(_MINIMAL + "[memory]\nl1 = { cycles = 4 }\n")


def test_bad_entries_are_one_clear_sentence():
    cases = {
        "[memory]\nl1 = 4\n": "must be an inline table",
        "[memory]\nl1 = { cycles = 4, ns = 1, source = 'x' }\n": "exactly one of",
        "[memory]\nl1 = { cycles = -1, source = 'x' }\n": "non-negative",
        "[classes]\nfoo = { latency = 1, rthroughput = 1, pipe = 'alu', source = 'x' }\n":
            "unknown instruction class 'foo'",
        "[classes]\nalu = { latency = 1, rthroughput = 1, pipe = 'fpu', source = 'x' }\n":
            "pipe must be one of",
        "[coherence]\ninvalidate_share = { value = 2, source = 'x' }\n": r"in \[0, 1\]",
    }
    for text, msg in cases.items():
        with pytest.raises(ProfileError, match=msg):
            parse_profile(_MINIMAL + text)


def test_a_profile_lacking_a_class_or_parameter_is_rejected():
    text = load_profile("zen3").to_toml()
    without_div = "\n".join(ln for ln in text.splitlines() if not ln.startswith("div = "))
    with pytest.raises(ProfileError, match="lacks classes: div"):
        parse_profile(without_div)
    without_ipi = "\n".join(ln for ln in text.splitlines() if not ln.startswith("ipi = "))
    with pytest.raises(ProfileError, match="lacks trap.ipi"):
        parse_profile(without_ipi)


def test_unknown_profiles_and_cycles_are_errors(tmp_path):
    with pytest.raises(ProfileError, match="unknown profile 'pentium'") as e:
        load_profile("pentium")
    assert isinstance(e.value, ArchError) and isinstance(e.value, KeusimError)
    (tmp_path / "a.toml").write_text('[profile]\nname = "a"\ninherits = "b"\n')
    (tmp_path / "b.toml").write_text('[profile]\nname = "b"\ninherits = "a"\n')
    with pytest.raises(ProfileError, match="inherits itself"):
        load_profile(tmp_path / "a.toml")
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "missing.toml")


# --------------------------------------------------------------------------- calibration

TSC_HZ = 2.5e9
TIMER = 50.0        # ticks per timer pair


def result(name: str, size: int, ns_per_op: float, ops: int, *, busy: bool = False,
           single_cpu: bool = False) -> NativeResult:
    """A synthetic harness result whose per-op time is ``ns_per_op`` once the timer
    pair's share (TIMER ticks per sample of ``ops``) is removed, as the harness reports."""
    ticks = ns_per_op * TSC_HZ / 1e9 + TIMER / ops
    ns = ticks * 1e9 / TSC_HZ
    return NativeResult(
        name=name, size=size, unit="op", median_ns=ns, p10_ns=ns, p90_ns=ns,
        median_ticks=ticks, p10_ticks=ticks, p90_ticks=ticks, samples=100,
        ops_per_sample=ops, runs=1, run_medians_ns=(ns,), busy=busy, busy_reruns=0,
        busy_share=0.5 if busy else 0.0, verified_bytes=0, errors=0,
        cpus=(0, 0) if single_cpu else (0, 1), single_cpu=single_cpu)


def synthetic(ghz: float, l1: float, l2: float, l3: float, dram: float, c2c: float,
              syscall_rt: float, **flags) -> list[NativeResult]:
    """Results of a machine with these parameters (all in core cycles but ghz)."""
    tp = result("timer_pair", 0, TIMER * 1e9 / TSC_HZ, 1)
    tp = dataclasses.replace(tp, median_ticks=TIMER)
    # Clock chains: IMUL latency 3, register ADD latency 1 (every profiled x86-64 core).
    out = [tp, result("mul_chain", 0, 3 / ghz, 100_000), result("alu_chain", 0, 1 / ghz, 100_000)]
    for size, cyc in ((4 << 10, l1), (128 << 10, l2), (4 << 20, l3), (128 << 20, dram)):
        out.append(result("load_chain", size, cyc / ghz, 10_000, **flags.get("load", {})))
    out.append(result("cacheline_pingpong", 0, 2 * c2c / ghz, 100, **flags.get("pp", {})))
    out.append(result("syscall_getppid", 0, syscall_rt / ghz, 100))
    return out


def test_memory_ops_is_fitted_from_mem_mix():
    """16 memory operations in 5.5 cycles: 2.91 per cycle, and the model prices the
    benchmark's own loop at that bound (above the separate store pipe's 4 cycles)."""
    res = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600)
    res.append(result("mem_mix", 0, 5.5 / 3.0, 10_000))
    prof, fits, warnings = fit_profile(res, TSC_HZ, "host")
    assert not warnings
    assert prof.memory_ops == pytest.approx(16 / 5.5, rel=1e-3)
    assert "mem_mix" in prof.param("pipeline.memory_ops").source
    checks = {c.name: c for c in calibrate_mod.model_checks(prof, res, TSC_HZ)}
    mix = checks["mem_mix (cycles per 8 loads + 8 stores)"]
    assert mix.model_cycles == pytest.approx(5.5, abs=1 / 256)
    assert mix.measured_cycles == pytest.approx(5.5, rel=1e-3)
    # With loads and stores on separate pipes only (memory_ops large) the loop is 4.
    wide = prof.with_params({"pipeline.memory_ops": dataclasses.replace(
        prof.param("pipeline.memory_ops"), value=8.0)})
    assert {c.name: c for c in calibrate_mod.model_checks(wide, res, TSC_HZ)}[
        "mem_mix (cycles per 8 loads + 8 stores)"].model_cycles == 4


def test_fitting_recovers_known_parameters():
    res = synthetic(2.8, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600)
    prof, fits, warnings = fit_profile(res, TSC_HZ, "host", {"cpu": "synthetic"})
    assert not warnings
    assert prof.ghz == pytest.approx(2.8, rel=1e-4)
    for key, cyc in (("memory.l1", 4), ("memory.l2", 12), ("memory.l3", 46),
                     ("memory.dram", 400), ("coherence.core_to_core", 120)):
        assert prof.param(key).value == pytest.approx(cyc, rel=1e-3), key
        assert prof.param(key).origin == "host" and "measured" in prof.param(key).source
    kwork = load_profile("host").param("calibration.linux_getppid_kernel_cycles").value
    share = load_profile("host").param("calibration.syscall_entry_share").value
    entry, exit_ = prof.cycles("trap.syscall_entry"), prof.cycles("trap.syscall_exit")
    assert entry + exit_ == pytest.approx(600 - kwork, abs=1)
    assert entry == pytest.approx((600 - kwork) * share, abs=1)
    assert prof.name == "host" and prof.inherits == "zen3" and prof.machine["cpu"] == "synthetic"
    assert {f.key for f in fits} >= {"clock.ghz", "memory.l1", "coherence.core_to_core"}
    # Not measured: kept from the base (an ns figure is re-converted at the new clock).
    ipi, base_ipi = prof.param("trap.ipi"), load_profile("host").param("trap.ipi")
    assert (ipi.given, ipi.source) == (base_ipi.given, base_ipi.source)
    assert ipi.value == pytest.approx(base_ipi.given * 2.8, rel=1e-4)
    zen3 = load_profile("zen3").classes
    assert {k: c for k, c in prof.classes.items() if k != "load"} == \
        {k: c for k, c in zen3.items() if k != "load"}
    assert prof.classes["load"].latency == prof.param("memory.l1").value   # the L1 hit


def test_fitted_profile_reproduces_its_microbenchmarks():
    res = synthetic(3.1, l1=5, l2=14, l3=50, dram=450, c2c=100, syscall_rt=700)
    prof, _, _ = fit_profile(res, TSC_HZ, "zen3")
    checks = {c.name.split()[0]: c for c in model_checks(prof, res, TSC_HZ)}
    assert checks["alu_chain"].model_cycles == pytest.approx(checks["alu_chain"].measured_cycles)
    assert checks["load_chain"].model_cycles == pytest.approx(
        checks["load_chain"].measured_cycles)


def test_busy_or_single_cpu_results_keep_the_base_values():
    base = load_profile("host")
    res = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600,
                    load={"busy": True}, pp={"single_cpu": True})
    prof, _, warnings = fit_profile(res, TSC_HZ, base)
    assert prof.param("memory.l3").source == base.param("memory.l3").source
    assert prof.param("coherence.core_to_core").source == \
        base.param("coherence.core_to_core").source
    assert any("other tasks" in w for w in warnings) and any("one CPU" in w for w in warnings)
    forced, _, _ = fit_profile(res, TSC_HZ, base, allow_busy=True)
    assert forced.param("memory.l3").value == pytest.approx(46, rel=1e-3)


def test_fitted_profile_written_without_inherited_numbers_loads_back(tmp_path):
    res = synthetic(3.3, l1=4, l2=12, l3=48, dram=500, c2c=150, syscall_rt=620)
    prof, _, _ = fit_profile(res, TSC_HZ, "zen3", {"cpu": "x", "date": "d"})
    path = tmp_path / "host.toml"
    text = prof.to_toml(flatten=False)
    assert "[classes]" not in text and 'inherits = "zen3"' in text
    path.write_text(text)
    again = load_profile(path)
    assert again.ghz == pytest.approx(3.3, rel=1e-4)
    assert again.coherence() == prof.coherence() and dict(again.machine) == {"cpu": "x",
                                                                             "date": "d"}


def test_a_broken_clock_measurement_is_an_error():
    res = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600)
    with pytest.raises(ProfileError, match="mul_chain"):
        fit_profile([r for r in res if r.name != "mul_chain"], TSC_HZ, "zen3")
    slow = [dataclasses.replace(r, median_ticks=1000.0, p10_ticks=1000.0)
            if r.name in ("mul_chain", "alu_chain") else r for r in res]
    with pytest.raises(ProfileError, match="GHz"):
        fit_profile(slow, TSC_HZ, "zen3")


def test_a_chain_run_faster_than_its_latency_is_caught():
    """A core that executes the ADD chain at rename (Golden Cove with ADD-immediates) makes
    the two clock estimates disagree: calibration refuses, naming both and the fix."""
    res = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600)
    fast = [result("alu_chain", 0, 0.25 / 3.0, 100_000) if r.name == "alu_chain" else r
            for r in res]
    with pytest.raises(ProfileError) as e:
        fit_profile(fast, TSC_HZ, "zen3")
    msg = str(e.value)
    assert "disagree" in msg and "mul_chain gives 3.00 GHz" in msg
    assert "alu_chain 12.00 GHz" in msg and "--base" in msg
    # Noise well inside the tolerance still fits, at the IMUL chain's clock.
    noisy = [result("alu_chain", 0, 1.15 / 3.0, 100_000) if r.name == "alu_chain" else r
             for r in res]
    assert fit_profile(noisy, TSC_HZ, "zen3")[0].ghz == pytest.approx(3.0, rel=1e-4)


def test_param_records_are_frozen():
    p = Param(1.0, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.value = 2.0  # type: ignore[misc]


def test_tiny_real_calibration_run(tmp_path):
    """One short run of the real harness: the plumbing, not the numbers."""
    out = tmp_path / "host.toml"
    prof, report = calibrate(out, progress=False, runs=1, scale=0.01)
    assert isinstance(report, CalibrationReport) and report.out_path == out
    assert load_profile(out).ghz == prof.ghz
    assert {"cpu", "kernel", "date", "tsc_hz"} <= set(prof.machine)
    assert report.tsc_hz > 0 and len(report.checks) == 4
    # It started from this host's family profile and says which.
    from keusim.model import hostcpu
    assert prof.inherits == hostcpu.core_family(hostcpu.detect()).profile == report.base
    assert hostcpu.detect().same_cpu(prof.machine)
    assert "keusim calibrate" in report.table()


def test_stream_line_is_fitted_from_the_bulk_handoff():
    ghz, c2c, stream = 3.0, 120.0, 18.0
    res = synthetic(ghz, l1=4, l2=12, l3=46, dram=400, c2c=c2c, syscall_rt=600)
    base = load_profile("host")
    loops = calibrate_mod.bulk_loop_cycles(base)      # fill + sum, model cycles per line
    assert loops >= 6, "8 stores at 2/cycle + 8 loads at 3/cycle cannot take less"
    xfer = 60                                         # c2c 120, invalidate_share 0.5
    for size in (4 << 10, 16 << 10):
        lines = size // 64
        # What the model charges (posted writes): the flag's round trip, the reader's
        # first line in full and the first line's loops, the other line events streamed
        # (the loops overlap with them: each is shorter than a line event).
        round_cycles = 2 * c2c + xfer + 2 * (lines - 1) * stream + loops
        res.append(result("bulk_handoff", size, round_cycles / ghz, 100))
    prof, fits, warnings = fit_profile(res, TSC_HZ, base)
    assert not warnings
    assert prof.param("coherence.stream_line").value == pytest.approx(stream, rel=1e-3)
    assert prof.coherence_stream() == 18 and "bulk_handoff" in \
        prof.param("coherence.stream_line").source
    assert "coherence.stream_line" in {f.key for f in fits}
    # Without a two-CPU ping-pong there is no single hand-off to subtract: keep the base.
    solo = [r for r in res if r.name != "cacheline_pingpong"]
    prof2, _, warnings2 = fit_profile(solo, TSC_HZ, base)
    assert prof2.param("coherence.stream_line").source == \
        load_profile("host").param("coherence.stream_line").source
    assert any("bulk_handoff" in w for w in warnings2)


def test_stream_access_is_fitted_from_the_two_bulk_widths():
    """bulk_handoff (8 accesses per line) and bulk_handoff_narrow (16) give the per-line
    and the per-access parts of a streamed line event, and the fitted model charges the
    rounds they measured."""
    ghz, c2c, line_cyc, access_cyc = 3.0, 120.0, 6.0, 1.5
    res = synthetic(ghz, l1=4, l2=12, l3=46, dram=400, c2c=c2c, syscall_rt=600)
    base = load_profile("host")
    xfer = 60
    wide_ns = {}
    for name, narrow, k in (("bulk_handoff", False, 8), ("bulk_handoff_narrow", True, 16)):
        loops = calibrate_mod.bulk_loop_cycles(base, narrow=narrow)
        assert loops >= (8 if narrow else 6)
        assert max(calibrate_mod.bulk_loop_parts(base, narrow)) < line_cyc + k * access_cyc
        for size in (4 << 10, 16 << 10):
            lines = size // 64
            round_cycles = (2 * c2c + xfer + 2 * (lines - 1) * (line_cyc + k * access_cyc)
                            + loops)
            res.append(result(name, size, round_cycles / ghz, 100))
            if not narrow:
                wide_ns[size] = round_cycles / ghz
    prof, fits, warnings = fit_profile(res, TSC_HZ, base)
    assert not warnings
    assert prof.param("coherence.stream_access").value == pytest.approx(access_cyc, rel=1e-3)
    assert prof.param("coherence.stream_line").value == pytest.approx(line_cyc, rel=1e-3)
    assert prof.coherence_stream_access() == pytest.approx(1.5, rel=1e-3)
    assert {"coherence.stream_line", "coherence.stream_access"} <= {f.key for f in fits}
    assert "bulk_handoff_narrow" in prof.param("coherence.stream_access").source
    # A narrow round no slower than the wide one cannot split the two: warned, and the
    # per-access part stays the base profile's.
    flat = [r for r in res if r.name != "bulk_handoff_narrow"] + [
        result("bulk_handoff_narrow", size, ns, 100) for size, ns in wide_ns.items()]
    prof2, _, warnings2 = fit_profile(flat, TSC_HZ, base)
    assert any("no slower" in w for w in warnings2)
    assert prof2.coherence_stream_access() == base.coherence_stream_access()


def test_calibrate_prices_the_loops_the_benchmark_runs():
    """calibrate.py prices micro_bench's bulk_fill, bulk_sum and mem_mix loops from byte
    constants: they must be the bytes the built benchmark really runs."""
    from keusim.model import harness
    elf = harness.build_program("micro_bench").read_bytes()
    for name in ("_BULK_FILL", "_BULK_SUM", "_BULK_FILL4", "_BULK_SUM4", "_MEM_MIX"):
        assert getattr(calibrate_mod, name) in elf, name


def test_a_far_placement_of_the_pingpong_is_flagged():
    """A hand-off several times the previous profile's (vCPUs placed far apart) is fitted
    but draws a warning naming the fix; an ordinary one does not."""
    base = load_profile("host")
    c2c = base.param("coherence.core_to_core").value
    ok = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=c2c, syscall_rt=600)
    assert not fit_profile(ok, TSC_HZ, base)[2]
    far = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=4.5 * c2c, syscall_rt=600)
    prof, _, warnings = fit_profile(far, TSC_HZ, base)
    assert prof.param("coherence.core_to_core").value == pytest.approx(4.5 * c2c, rel=1e-3)
    assert any("placed far apart" in w and "re-run keusim calibrate" in w for w in warnings)


def test_calibration_fits_the_fastest_round_and_flags_a_shared_machine():
    """A neighbour on the core for one round doubles mem_mix there: the fit takes the
    fastest round, and the report says the rounds differed."""
    quiet = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600)
    quiet.append(result("mem_mix", 0, 5.5 / 3.0, 10_000))
    noisy = [result("mem_mix", 0, 11.0 / 3.0, 10_000) if r.name == "mem_mix" else r
             for r in quiet]
    best, notes = calibrate_mod.pick_rounds([noisy, quiet, noisy])
    assert [(r.name, r.size) for r in best] == [(r.name, r.size) for r in quiet]
    mix = next(r for r in best if r.name == "mem_mix")
    assert mix.median_ticks == next(r for r in quiet if r.name == "mem_mix").median_ticks
    assert len(notes) == 1 and notes[0].startswith("mem_mix varied 2.0x between the 3 rounds")
    assert "fastest round" in notes[0]
    prof, _, _ = fit_profile(best, TSC_HZ, "host")
    assert prof.memory_ops == pytest.approx(16 / 5.5, rel=1e-3)
    assert calibrate_mod.pick_rounds([quiet, quiet])[1] == ()


def test_calibration_fits_the_median_round_of_a_two_cpu_benchmark():
    """A line hand-off moves both ways with vCPU placement: the median round is fitted."""
    rounds = []
    for c2c in (120, 60, 400):       # usual, SMT siblings, far apart
        rounds.append(synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=c2c, syscall_rt=600))
    best, notes = calibrate_mod.pick_rounds(rounds)
    prof, _, _ = fit_profile(best, TSC_HZ, "host")
    assert prof.param("coherence.core_to_core").value == pytest.approx(120, rel=1e-3)
    assert any(n.startswith("cacheline_pingpong varied") and "median round" in n for n in notes)


# --------------------------------------------------------------------------- host match


def _calibrated_on(tmp_path, fingerprint: dict, name: str = "host.toml"):
    res = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600)
    prof, _, _ = fit_profile(res, TSC_HZ, "zen3", {"cpu": "recorded CPU", **fingerprint})
    path = tmp_path / name
    path.write_text(prof.to_toml(flatten=False))
    return path


def test_a_host_profile_measured_on_another_cpu_warns_how_to_calibrate(tmp_path, monkeypatch):
    from keusim.model import hostcpu
    from keusim.model.profiles import ProfileWarning, host_mismatch
    amd = hostcpu.HostCPU("AuthenticAMD", 25, 1, "AMD EPYC", True)
    intel = hostcpu.HostCPU("GenuineIntel", 6, 143, "Intel Xeon", True)
    monkeypatch.setattr(hostcpu, "detect", lambda *a: amd)
    foreign = _calibrated_on(tmp_path, intel.fingerprint(), "intel.toml")
    with pytest.warns(ProfileWarning, match="not on this host .*Run `keusim calibrate`"):
        prof = load_profile(foreign)
    assert "recorded CPU" in host_mismatch(prof, amd) and host_mismatch(prof, intel) is None
    # Measured here: no warning, and nothing to say.
    here = _calibrated_on(tmp_path, amd.fingerprint(), "amd.toml")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProfileWarning)
        assert host_mismatch(load_profile(here)) is None
        # Published figures describe no particular host.
        assert host_mismatch(load_profile("raptorlake"), amd) is None
    # A profile recording only a CPU name (no vendor/family/model) is not taken as here.
    legacy = _calibrated_on(tmp_path, {}, "legacy.toml")
    with pytest.warns(ProfileWarning, match="no vendor/family/model recorded"):
        load_profile(legacy)


def test_a_calibration_marks_what_it_carried_without_measuring():
    """trap.ipi of a hand-written host profile is carried through a calibration, but as an
    estimate with a note; a calibration from a published base only inherits."""
    from keusim.model.calibrate import CARRIED_NOTE, not_measured
    res = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=120, syscall_rt=600)
    base = parse_profile(_MINIMAL.replace('name = "t"', 'name = "host"') + """
[trap]
ipi = { ns = 5000, source = "hand-written estimate for a VM" }
""")
    assert base.param("trap.ipi").origin == "host" and not base.param("trap.ipi").estimate
    prof, _, _ = fit_profile(res, TSC_HZ, base)
    ipi = prof.param("trap.ipi")
    assert ipi.estimate and ipi.note == CARRIED_NOTE and ipi.given == 5000
    assert "trap.ipi" in not_measured(prof)
    assert "estimate = true" in prof.to_toml(flatten=False).split("ipi = ", 1)[1].split("\n")[0]
    fresh, _, _ = fit_profile(res, TSC_HZ, "zen3")
    z_ipi = load_profile("zen3").param("trap.ipi")      # inherited, re-converted at 3 GHz
    assert (fresh.param("trap.ipi").source, fresh.param("trap.ipi").given) == \
        (z_ipi.source, z_ipi.given) and fresh.param("trap.ipi").estimate
    assert fresh.param("memory.l1").origin == "host" and "memory.l1" not in not_measured(fresh)


def test_a_published_base_does_not_raise_the_placement_warning():
    """A VM's hand-off is always several times a published one-CCX figure (zen3: 18 ns):
    measured against a published base it is fitted without the far-placement warning."""
    zen3 = load_profile("zen3")
    c2c = 3 * zen3.param("coherence.core_to_core").value
    res = synthetic(3.0, l1=4, l2=12, l3=46, dram=400, c2c=c2c, syscall_rt=600)
    assert not any("placed far apart" in w for w in fit_profile(res, TSC_HZ, zen3)[2])
