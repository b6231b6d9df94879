"""Calibration on both machine types, from recorded data (no host timing involved).

tests/data/hosts/ holds what each machine type keusim sessions run on gave:
- ``amd-epyc-zen4-kvm.json``: every calibration microbenchmark as ``keusim calibrate
  --boost --allow-busy`` measured it on the AMD machine type (a Zen 4 EPYC KVM guest) on
  2026-12-04 while other tenants loaded it (its busy flags are kept), raw per-op ticks;
- ``intel-spr-kvm.json``: the figures recorded on the Intel machine type (a Sapphire
  Rapids-class KVM guest), including its ADD-immediate chain that Golden Cove runs at
  rename, plus the two clock chains derived from its recorded L1 latency (labelled).

Each file is fed to the same fit the host would run, starting from the profile its
recorded /proc/cpuinfo selects.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keusim.model import hostcpu
from keusim.model.calibrate import (
    check_warnings,
    fit_clock,
    fit_profile,
    model_checks,
    not_measured,
)
from keusim.model.harness import NativeResult
from keusim.model.profiles import ProfileError, load_profile

DATA = Path(__file__).parent / "data" / "hosts"


def native(name: str, size: int, ticks: float, ops: int, *, p10: float | None = None,
           single_cpu: bool = False, run_medians_ns: tuple[float, ...] = (),
           busy: bool = False) -> NativeResult:
    return NativeResult(
        name=name, size=size, unit="op", median_ns=0.0, p10_ns=0.0, p90_ns=0.0,
        median_ticks=ticks, p10_ticks=ticks if p10 is None else p10, p90_ticks=ticks,
        samples=100, ops_per_sample=ops, runs=1, run_medians_ns=run_medians_ns, busy=busy,
        busy_reruns=0, busy_share=0.5 if busy else 0.0, verified_bytes=0, errors=0,
        cpus=(0, 0) if single_cpu else (0, 1), single_cpu=single_cpu)


def amd() -> tuple[hostcpu.HostCPU, float, list[NativeResult]]:
    d = json.loads((DATA / "amd-epyc-zen4-kvm.json").read_text())
    cpu = hostcpu.parse_cpuinfo((DATA / d["cpuinfo"]).read_text())
    res = [native(r["name"], r["size"], r["median_ticks"], r["ops_per_sample"],
                  p10=r["p10_ticks"], single_cpu=r["single_cpu"],
                  run_medians_ns=tuple(r["run_medians_ns"]), busy=r["busy"])
           for r in d["results"]]
    return cpu, d["tsc_hz"], res


def intel(alu: str = "alu_chain") -> tuple[hostcpu.HostCPU, float, list[NativeResult]]:
    """The Intel record; ``alu`` picks the ADD chain: the derived register chain, or
    ``alu_chain_add_immediate``, the recorded chain Golden Cove executes at rename."""
    d = json.loads((DATA / "intel-spr-kvm.json").read_text())
    cpu = hostcpu.parse_cpuinfo((DATA / d["cpuinfo"]).read_text())
    hz = d["tsc_hz"]
    ns = {**d["recorded_ns"], **{k: v for k, v in d["derived_ns"].items() if k != "note"}}
    ops = {"load_chain": 10_000, "mem_mix": 10_000, "cacheline_pingpong": 100,
           "syscall_getppid": 100, "mul_chain": 100_000, "alu_chain": 100_000}
    res = []
    for key in ("load_chain 4096", "load_chain 131072", "load_chain 4194304",
                "load_chain 134217728", "cacheline_pingpong", "syscall_getppid", "mem_mix",
                "mul_chain"):
        name, _, size = key.partition(" ")
        res.append(native(name, int(size or 0), ns[key] * hz / 1e9, ops[name]))
    res.append(native("alu_chain", 0, ns[alu] * hz / 1e9, ops["alu_chain"]))
    return cpu, hz, res


# --------------------------------------------------------------------------- AMD


def test_amd_record_fits_from_zen3_with_a_nearest_profile_warning():
    cpu, hz, res = amd()
    match = hostcpu.core_family(cpu)
    assert (match.profile, match.core) == ("zen3", "Zen 4")
    prof, fits, warnings = fit_profile(res, hz, match.profile,
                                       {**cpu.fingerprint(), "cpu": cpu.describe()})
    assert prof.inherits == "zen3" and cpu.same_cpu(prof.machine)
    clock = fit_clock(res, hz, load_profile("zen3"),
                      next(r.median_ticks for r in res if r.name == "timer_pair"))
    assert prof.ghz == pytest.approx(clock.ghz, rel=1e-4)
    assert clock.disagreement < 0.05               # IMUL and ADD chains agree on Zen 4
    assert 2.0 < prof.ghz < 4.5
    # The fitted profile reproduces every microbenchmark's own loop on this core: the
    # ADD chain (priced by the class table alone) included.
    checks = model_checks(prof, res, hz)
    assert {c.name.split()[0] for c in checks} == {"mul_chain", "alu_chain", "load_chain",
                                                   "mem_mix"}
    assert check_warnings(checks) == ()
    # Zen 4's L2 is slower than Zen 3's 12 cycles (AnandTech/Chips and Cheese: 14).
    assert prof.cycles("memory.l2") >= 13 > load_profile("zen3").cycles("memory.l2")
    # What no benchmark measured stays an estimate, and is listed.
    assert "trap.ipi" in not_measured(prof) and "memory.l1" not in not_measured(prof)
    # The record was taken on a shared machine: what other tenants disturbed is named and
    # keeps zen3's value rather than being fitted from an inflated figure.
    busy = {r.name for r in res if r.busy}
    assert busy and any("other tasks used the CPUs" in w for w in warnings)
    if "cacheline_pingpong" in busy:
        assert prof.param("coherence.core_to_core").source == \
            load_profile("zen3").param("coherence.core_to_core").source


# --------------------------------------------------------------------------- Intel


def test_intel_record_selects_the_golden_cove_server_profile():
    cpu, _, _ = intel()
    assert hostcpu.core_family(cpu).profile == "goldencove-server"


def test_intel_add_immediate_chain_is_refused_as_a_clock():
    """The recorded ADD-immediate chain (0.05 ns an add: a "20 GHz" core) beside the IMUL
    chain: the fit refuses with both clocks in the message, instead of converting every
    native figure with a 20 GHz clock."""
    cpu, hz, res = intel("alu_chain_add_immediate")
    with pytest.raises(ProfileError, match="disagree") as e:
        fit_profile(res, hz, hostcpu.core_family(cpu).profile)
    assert "mul_chain gives 3.60 GHz" in str(e.value) and "alu_chain 20.00 GHz" in str(e.value)


def test_intel_record_fits_golden_cove_and_checks_its_class_table():
    cpu, hz, res = intel()
    prof, _, warnings = fit_profile(res, hz, hostcpu.core_family(cpu).profile)
    assert prof.inherits == "goldencove-server"
    assert prof.ghz == pytest.approx(3.6, rel=1e-3)
    # The recorded L1 chase at that clock is Golden Cove's published 5 cycles.
    assert prof.param("memory.l1").value == pytest.approx(5.0, abs=0.02)
    assert prof.cycles("memory.l3") == round(39.7 * prof.ghz)
    checks = {c.name.split()[0]: c for c in model_checks(prof, res, hz)}
    assert checks["load_chain"].model_cycles == pytest.approx(5.0, abs=0.02)
    # mem_mix: 3.6 cycles recorded for 8 loads + 8 stores, where the class table's two
    # store ports allow 4 -- within the check's tolerance, and reported as measured.
    mix = checks["mem_mix"]
    assert mix.measured_cycles == pytest.approx(3.6, rel=1e-3)
    assert mix.model_cycles == pytest.approx(4.0, abs=0.01)
    assert check_warnings(list(checks.values())) == ()
    assert not any("disagree" in w for w in warnings)
