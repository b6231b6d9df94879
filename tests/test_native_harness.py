"""The native harness (keusim.model.harness) with tiny counts.

These check behaviour: every byte sent arrives and is verified, the statistics are
well formed, failures become clear errors, and a busy machine is re-run. They never
assert an absolute time.
"""

from __future__ import annotations

import dataclasses
import os
import stat

import pytest

from keusim.errors import KeusimError
from keusim.model import harness
from keusim.model.harness import NativeHarnessError, NativeResult

TINY = dict(iterations=200, batch=20, warmup=20, runs=1, max_reruns=0, progress=False)


def sane(r: NativeResult, samples: int) -> None:
    assert r.errors == 0, f"{r.name} {r.size}: {r.errors} bad bytes"
    assert r.samples == samples and len(r.samples_ns) == samples
    assert 0 < r.p10_ns <= r.median_ns <= r.p90_ns
    assert 0 < r.p10_ticks <= r.median_ticks <= r.p90_ticks
    assert r.runs == len(r.run_medians_ns) and all(m > 0 for m in r.run_medians_ns)
    assert r.cpus[0] >= 0 and r.cpus[1] >= 0
    assert r.single_cpu == (r.cpus[0] == r.cpus[1])


def test_tsc_frequency_is_measured():
    hz = harness.tsc_hz()
    assert 1e8 < hz < 1e11


def test_ring_pingpong_verifies_every_byte():
    sizes = harness.RING_SIZES
    res = harness.run_ring("pingpong", sizes, seed=3, **TINY)
    assert [r.size for r in res] == list(sizes)
    for r in res:
        sane(r, samples=200 // 20)
        assert (r.name, r.unit, r.ops_per_sample) == ("ring_pingpong", "round_trip", 20)
        # every request and every reply, warm-up included, compared byte for byte
        assert r.verified_bytes == 2 * (20 + 200) * r.size


def test_ring_stream_verifies_every_byte_with_a_small_ring():
    res = harness.run_ring("stream", (8, 2040, 4088), capacity=4096, **TINY)
    for r in res:
        sane(r, samples=10)
        assert r.unit == "message" and r.verified_bytes == (20 + 200) * r.size


def test_ring_runs_are_pooled():
    (r,) = harness.run_ring("pingpong", (64,), iterations=100, batch=10, warmup=10, runs=2,
                            max_reruns=0, progress=False)
    sane(r, samples=20)
    assert r.runs == 2 and r.verified_bytes == 2 * 2 * 110 * 64
    assert r.spread >= 0


def test_ring_on_one_cpu_still_delivers():
    cpu = sorted(os.sched_getaffinity(0))[0]
    (r,) = harness.run_ring("pingpong", (256,), cpus=(cpu, cpu), **TINY)
    sane(r, samples=10)
    assert r.single_cpu and r.verified_bytes == 2 * 220 * 256
    assert "ONE CPU" in harness.format_table([r])


def test_baselines_verify_payloads():
    res = harness.run_baselines(size=64, iterations=60, batch=20, warmup=5, runs=1,
                                max_reruns=0, progress=False)
    by = {r.name: r for r in res}
    assert set(by) == set(harness.BASELINES)
    for name in ("pipe", "eventfd", "unix_dgram", "unix_stream", "futex"):
        sane(by[name], samples=3)
        assert by[name].verified_bytes == 2 * 65 * 64, name
    for name in ("funccall", "funccall_dep"):
        sane(by[name], samples=3)
        assert by[name].unit == "call" and by[name].verified_bytes == 3 * 2 * 64
    sane(by["syscall_getppid"], samples=3)
    assert by["syscall_getppid"].size == 0


def test_calibration_micro():
    res = harness.run_calibration_micro(load_sizes=(4096, 65536), iterations=20_000,
                                        batch=1000, warmup=1000, max_reruns=0, progress=False)
    by = {(r.name, r.size): r for r in res}
    assert {n for n, _ in by} == set(harness.MICRO)
    for r in res:
        sane(r, samples=20_000 if r.name == "timer_pair" else 20)   # one pair per sample
    alu = by[("alu_chain", 0)]
    assert alu.unit == "add" and by[("mul_chain", 0)].unit == "mul"
    assert by[("cacheline_pingpong", 0)].extra["ns_per_transfer"] > 0
    assert by[("load_chain", 4096)].unit == "load"
    assert by[("timer_pair", 0)].ops_per_sample == 1


def test_results_are_frozen_and_the_table_lists_them():
    (r,) = harness.run_ring("stream", (64,), **TINY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.median_ns = 0.0  # type: ignore[misc]
    report = harness.NativeReport(tsc_hz=harness.tsc_hz(), results=(r,))
    assert report.find("ring_stream", 64) is r
    text = report.table()
    assert "ring_stream" in text and "median ns" in text and "MHz" in text


def test_keusim_native_prints_a_table_and_writes_json(capsys, tmp_path):
    from keusim.cli import main
    out_json = tmp_path / "native.json"
    assert main(["native", "--only", "ring", "--scale", "0.0001", "--runs", "1",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert out.count("ring_pingpong") == len(harness.RING_SIZES)
    assert out.count("ring_stream") == len(harness.RING_SIZES)
    import json
    d = json.loads(out_json.read_text())
    assert len(d["results"]) == 2 * len(harness.RING_SIZES) and d["tsc_hz"] > 0
    assert all(r["errors"] == 0 and r["verified_bytes"] > 0 for r in d["results"])


def test_keusim_native_rejects_bad_cpus(capsys):
    from keusim.cli import main
    assert main(["native", "--cpus", "zero,one"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keusim: error:") and "--cpus" in err


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call", [
    lambda: harness.run_ring("sideways", (64,)),
    lambda: harness.run_ring("pingpong", (16384 - 7,)),
    lambda: harness.run_ring("pingpong", (64,), capacity=5000),
    lambda: harness.run_baselines(["smoke_signals"]),
    lambda: harness.run_calibration_micro(["load_chain"], load_sizes=(100,)),
    lambda: harness.run_ring("pingpong", (64,), iterations=10, batch=20),
    lambda: harness.run_all(["everything"]),
])
def test_bad_arguments_are_keusim_errors(call):
    with pytest.raises(KeusimError):
        call()


def test_program_rejecting_arguments_is_named():
    with pytest.raises(NativeHarnessError, match=r"ring_bench .*exit status 2.*unknown --bench"):
        harness._invoke("ring_bench", ["--bench", "nope"], timeout=30)


def _script(tmp_path, body: str):
    p = tmp_path / "fake_bench"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return p


def test_crash_is_reported_with_its_signal(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "build_program", lambda name: _script(tmp_path, "kill -SEGV $$"))
    with pytest.raises(NativeHarnessError, match=r"ring_bench .*crashed with signal SIGSEGV"):
        harness._invoke("ring_bench", ["--bench", "ring_pingpong"], timeout=30)


def test_hang_is_killed_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "build_program", lambda name: _script(tmp_path, "sleep 30"))
    with pytest.raises(NativeHarnessError, match="did not finish within"):
        harness._invoke("micro_bench", ["--bench", "tsc"], timeout=0.5)


def test_garbage_output_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "build_program", lambda name: _script(tmp_path, "echo hello"))
    with pytest.raises(NativeHarnessError, match="not one JSON object"):
        harness._invoke("ipc_bench", ["--bench", "pipe"], timeout=30)


# --------------------------------------------------------------------------- busy machine


def _acct(wall_s: float, sys_busy: int, own: int) -> dict:
    return {"acct": {"wall_ns": int(wall_s * 1e9), "sys_busy_ticks": sys_busy,
                     "own_ticks": own, "clk_tck": 100, "ncpu": 2}}


def test_busy_share_counts_other_tasks_only():
    assert harness._busy_share(_acct(1.0, 200, 200)) == 0.0     # all ours
    assert harness._busy_share(_acct(1.0, 150, 100)) == 0.25    # others: 50 of 200 ticks
    assert harness._busy_share(_acct(0.01, 2, 0)) == 0.0        # below tick resolution


def test_busy_runs_are_rerun_and_the_quietest_kept(monkeypatch):
    shares = iter([0.6, 0.3, 0.0])
    calls = []

    def fake(program, args, timeout, **kw):
        calls.append(args)
        share = next(shares)
        return {**_acct(1.0, int(200 * share) + 10, 10), "marker": share}

    monkeypatch.setattr(harness, "_invoke", fake)
    job = harness._job("pipe", 64, 100, 10, 10, 1.0)
    d, reruns = harness._measure(job, seed=1, capacity=16384, cpus=None, max_reruns=5)
    assert (reruns, d["marker"], len(calls)) == (2, 0.0, 3)

    shares = iter([0.6, 0.3, 0.5])
    d, reruns = harness._measure(job, seed=1, capacity=16384, cpus=None, max_reruns=2)
    assert (reruns, d["marker"]) == (2, 0.3)     # gave up after 2 re-runs: kept the quietest


def test_persistent_load_stops_the_reruns(monkeypatch):
    calls = []

    def always_busy(program, args, timeout, **kw):
        calls.append(args)
        return {**_acct(1.0, 150, 10), "ops_per_sample": 10, "samples_ticks": [100, 120],
                "samples_ns": [40, 50], "verified_bytes": 0, "errors": 0, "cpus": [0, 1],
                "single_cpu": False}

    monkeypatch.setattr(harness, "_invoke", always_busy)
    jobs = [harness._job("futex", 64, 100, 10, 10, 1.0) for _ in range(4)]
    res = harness._run_jobs(jobs, runs=1, seed=1, capacity=16384, cpus=None, max_reruns=2,
                            progress=False, desc="t", hz=1e9)
    # two runs exhaust their re-runs (3 calls each); then the load counts as persistent
    assert len(calls) == 3 + 3 + 1 + 1
    assert [r.busy_reruns for r in res] == [2, 2, 0, 0]
    assert all(r.busy and r.busy_share == pytest.approx(0.7) for r in res)
    assert "WARNING" in harness.format_table(res)


def test_boost_raises_priority_when_allowed_and_is_harmless_otherwise():
    """harness.boost runs in a benchmark's child before exec: SCHED_FIFO where the user may
    set it (root), else nice -20 where allowed, else nothing; never an error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # child: boost, report policy and nice
        os.close(r)
        harness.boost()
        os.write(w, f"{os.sched_getscheduler(0)} {os.getpriority(os.PRIO_PROCESS, 0)}".encode())
        os._exit(0)
    os.close(w)
    policy, nice = (int(x) for x in os.read(r, 64).decode().split())
    os.waitpid(pid, 0)
    if os.geteuid() == 0:
        assert policy == os.SCHED_FIFO
    else:
        assert policy == os.sched_getscheduler(0)
        assert nice in (harness.BOOST_NICE, os.getpriority(os.PRIO_PROCESS, 0))
    (res,) = harness.run_calibration_micro(["alu_chain"], iterations=20_000, batch=1000,
                                           warmup=1000, max_reruns=0, progress=False,
                                           boost_priority=True)
    sane(res, samples=20)
