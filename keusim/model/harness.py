"""The native harness: the guests' ring and Linux IPC baselines, measured on the host.

The C programs in ``native/`` are built with the pinned zig cc for the host from the
same ring and copy code the guests run (``guests/lib/ring.c``, ``guests/lib/string.c``),
with the x86-64 guests' ISA flags (:data:`HOST_CFLAGS`), so both run the same
instructions. Each program runs one benchmark per invocation and prints one JSON
object of raw integer samples; this module turns them into :class:`NativeResult` records.

Method (see docs/host-baselines.md for the reasons):

* two-process benchmarks fork a partner, and the two are pinned to two CPUs (the first
  two allowed, or ``cpus=``); with one CPU both share it, poll loops yield, and every
  result says ``single_cpu=True``;
* operations are timed in batches (``ops_per_sample`` per sample) with
  ``lfence; rdtsc`` ... ``rdtscp; lfence``, after a warm-up; ns are ticks divided by
  the TSC frequency measured against ``CLOCK_MONOTONIC`` (:func:`tsc_hz`). Per-op
  figures include the timer pair's cost (``timer_pair``, about 50 ticks) divided by
  ``ops_per_sample``;
* every payload byte is compared at the receiver (``verified_bytes``, ``errors``);
* a run during which other tasks used more than :data:`BUSY_FRACTION` of the CPU time is
  re-run, up to ``max_reruns`` times; ``busy`` says whether the kept run was still busy;
* a configuration is repeated ``runs`` times (new processes each time); the statistics
  pool all samples, and ``run_medians_ns`` shows the run-to-run spread.

Compare medians, and ratios taken in the same run; never assert an absolute time.

``keusim native`` runs the full set and prints it as a table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

from keusim.errors import BuildError, KeusimError
from keusim.progress import progress_bar
from keusim.toolchain import ROOT, host_executable

NATIVE_DIR = ROOT / "native"
GUESTS_DIR = ROOT / "guests"

HOST_CFLAGS: tuple[str, ...] = (
    "-O2", "-g", "-fno-stack-protector", "-fno-builtin", "-fno-omit-frame-pointer",
    "-mno-red-zone", "-Wall", "-Werror=implicit-function-declaration",
    # The x86-64 guests build for -mcpu=baseline-sse-sse2 (keusim/arch/x86_64_facts.py).
    # Asking zig for that CPU in a hosted build makes it rebuild compiler_rt without
    # SSE, which fails; turning the features off in clang's front end instead leaves the
    # runtime alone and makes ring.c and string.c compile to the guest's instructions
    # (tests/test_ring_host.py checks). The harness C therefore uses no floating point.
    "-Xclang", "-target-feature", "-Xclang", "-sse",
    "-Xclang", "-target-feature", "-Xclang", "-sse2",
)
"""Flags for host builds of the ring library and the harness."""

HOST_INCLUDE_DIRS: tuple[Path, ...] = (
    GUESTS_DIR / "include", GUESTS_DIR / "arch" / "x86_64" / "include", NATIVE_DIR,
)

PROGRAMS: dict[str, str] = {
    "ring_bench": "ring_bench.c",
    "ipc_bench": "ipc_bench.c",
    "micro_bench": "micro_bench.c",
}
"""Program name -> its main source in ``native/``; each links the common sources."""

COMMON_SOURCES = (NATIVE_DIR / "bench.c", NATIVE_DIR / "ring_mem.c",
                  GUESTS_DIR / "lib" / "ring.c", GUESTS_DIR / "lib" / "string.c")

RING_SIZES: tuple[int, ...] = (8, 64, 256, 1024, 4096)
RING_CAPACITY = 16384
BASELINES: tuple[str, ...] = ("pipe", "eventfd", "unix_dgram", "unix_stream", "futex",
                              "syscall_getppid", "funccall", "funccall_dep")
MICRO: tuple[str, ...] = ("timer_pair", "mul_chain", "alu_chain", "load_chain",
                          "cacheline_pingpong",
                          "bulk_handoff", "bulk_handoff_narrow", "mem_mix", "syscall_getppid")
LOAD_CHAIN_SIZES: tuple[int, ...] = (4 << 10, 128 << 10, 4 << 20, 128 << 20)
"""Pointer-chase working sets: L1 (32 KiB/core on Zen 3), L2 (512 KiB), L3 (32 MiB), DRAM."""
BULK_SIZES: tuple[int, ...] = (4 << 10, 16 << 10)
"""bulk_handoff buffers: 64 and 256 consecutive lines handed between two CPUs."""

BUSY_FRACTION = 0.05
"""A run is busy when other tasks used more than this share of the CPU time available."""
BUSY_FLOOR_TICKS = 3
"""... and more than this many clock ticks (absorbs /proc tick-sampling jitter)."""
TIMEOUT_S = 120.0
"""Wall-clock limit of one benchmark invocation."""


class NativeHarnessError(KeusimError):
    """A native benchmark could not be built or run, or printed something unreadable."""


@dataclass(frozen=True)
class _Bench:
    """How to run one benchmark: its program, what one op is, and default counts."""

    program: str
    unit: str
    iters: int        # timed ops at the reference size
    batch: int        # ops per sample
    two_cpus: bool
    scale_by_size: bool = False  # fewer ops for bigger messages (copy time grows)
    fixed_batch: bool = False    # the batch is part of the definition (timer_pair: 1)


_BENCHES: dict[str, _Bench] = {
    "ring_pingpong": _Bench("ring_bench", "round_trip", 200_000, 100, True, True),
    "ring_stream": _Bench("ring_bench", "message", 400_000, 100, True, True),
    "pipe": _Bench("ipc_bench", "round_trip", 10_000, 100, True),
    "eventfd": _Bench("ipc_bench", "round_trip", 10_000, 100, True),
    "unix_dgram": _Bench("ipc_bench", "round_trip", 10_000, 100, True),
    "unix_stream": _Bench("ipc_bench", "round_trip", 10_000, 100, True),
    "futex": _Bench("ipc_bench", "round_trip", 10_000, 100, True),
    "funccall": _Bench("ipc_bench", "call", 200_000, 100, False),
    "funccall_dep": _Bench("ipc_bench", "call", 200_000, 100, False),
    "timer_pair": _Bench("micro_bench", "timer_pair", 20_000, 1, False, fixed_batch=True),
    "mul_chain": _Bench("micro_bench", "mul", 10_000_000, 100_000, False),
    "alu_chain": _Bench("micro_bench", "add", 20_000_000, 100_000, False),
    "load_chain": _Bench("micro_bench", "load", 2_000_000, 10_000, False),
    "cacheline_pingpong": _Bench("micro_bench", "round_trip", 200_000, 100, True),
    "bulk_handoff": _Bench("micro_bench", "round_trip", 200_000, 100, True, True),
    "bulk_handoff_narrow": _Bench("micro_bench", "round_trip", 200_000, 100, True, True),
    "mem_mix": _Bench("micro_bench", "iteration", 5_000_000, 10_000, False),
    "syscall_getppid": _Bench("micro_bench", "call", 100_000, 100, False),
}


BOOST_NICE = -20
"""The nice value :func:`boost` falls back to when it may not use a real-time policy."""
BOOST_RT_PRIORITY = 1
"""The SCHED_FIFO priority :func:`boost` asks for (the lowest real-time one)."""


def boost() -> None:
    """In a benchmark's child process before exec: take the CPU from other tenants.

    On a shared machine other tenants' tasks preempt a busy-polling benchmark and inflate
    it 10-100x. Nice values do not help when each tenant runs in its own cgroup (the fair
    scheduler shares the CPU between groups first: measured here, nice -20 native twins
    were still 87 % "busy" at a load average of 12), so this asks for SCHED_FIFO at the
    lowest real-time priority, which runs ahead of every normal task; the kernel's
    real-time throttling (sched_rt_runtime_us, 95 % by default) still leaves the others a
    share, and a benchmark run lasts milliseconds. Without the privilege (root or
    CAP_SYS_NICE) it falls back to nice -20, then to nothing; the run is flagged busy as
    usual. Hypervisor steal is not affected. Forked partners inherit the policy.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(BOOST_RT_PRIORITY))
        return
    except (OSError, AttributeError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, BOOST_NICE)
    except OSError:
        pass


def uses_two_cpus(name: str) -> bool:
    """Whether benchmark ``name`` runs two processes on two CPUs (a ping-pong, a hand-off)."""
    b = _BENCHES.get(name)
    if b is None:
        raise NativeHarnessError(f"unknown benchmark {name!r}")
    return b.two_cpus


@dataclass(frozen=True)
class NativeResult:
    """One benchmark at one size, over all its runs. Times are per op (see ``unit``)."""

    name: str
    """Benchmark: ``ring_pingpong``, ``ring_stream``, ``pipe``, ``load_chain``, ..."""
    size: int
    """Message bytes (ring, IPC, funccall), working-set bytes (load_chain), else 0."""
    unit: str
    """What one op is: ``round_trip``, ``message``, ``call``, ``add``, ``load``, ..."""
    median_ns: float
    p10_ns: float
    p90_ns: float
    median_ticks: float
    p10_ticks: float
    p90_ticks: float
    samples: int
    """Timed samples, pooled over all runs."""
    ops_per_sample: int
    runs: int
    run_medians_ns: tuple[float, ...]
    busy: bool
    """Other tasks used the CPUs during a kept run even after ``busy_reruns`` re-runs."""
    busy_reruns: int
    busy_share: float
    """The largest share of CPU time other tasks used during a kept run (0..1)."""
    verified_bytes: int
    """Payload bytes compared with what was sent (0 where nothing is sent)."""
    errors: int
    """Mismatched bytes, wrong lengths, or a failed self-check; 0 in a good run."""
    cpus: tuple[int, int]
    single_cpu: bool
    samples_ns: tuple[float, ...] = field(default=(), repr=False, compare=False)
    """Per-op ns of every sample, for distribution plots."""
    extra: Mapping[str, float] = field(default_factory=dict, compare=False, hash=False)
    """Derived figures: ``median_ns_clock`` (the median per-op time by CLOCK_MONOTONIC,
    which includes two clock reads per sample), ``ns_per_transfer`` (cacheline_pingpong),
    ``lines`` (bulk_handoff). The core clock is not derived here: it depends on the
    instruction latencies of the core (keusim.model.calibrate.fit_clock)."""

    @property
    def spread(self) -> float:
        """(max - min) / median of the run medians: placement noise between runs."""
        if len(self.run_medians_ns) < 2 or self.median_ns <= 0:
            return 0.0
        return (max(self.run_medians_ns) - min(self.run_medians_ns)) / self.median_ns


@dataclass(frozen=True)
class NativeReport:
    """A set of results measured together, with the TSC frequency they were taken at."""

    tsc_hz: float
    results: tuple[NativeResult, ...]
    seed: int = 1
    capacity: int = RING_CAPACITY

    def find(self, name: str, size: int | None = None) -> NativeResult:
        """The result named ``name`` (and of ``size``, if given); KeyError if absent."""
        for r in self.results:
            if r.name == name and (size is None or r.size == size):
                return r
        raise KeyError(f"no native result {name!r}" + (f" of size {size}" if size else ""))

    def table(self) -> str:
        """The results as a fixed-width text table."""
        return format_table(self.results, tsc_hz=self.tsc_hz, capacity=self.capacity,
                            seed=self.seed)

    def to_json(self, indent: int | None = 1) -> str:
        """Every result with its samples, derived figures and run-to-run spread."""
        d = dataclasses.asdict(self)
        for r, res in zip(d["results"], self.results, strict=True):
            r["extra"] = dict(res.extra)
            r["spread"] = res.spread
        return json.dumps(d, indent=indent)


# --------------------------------------------------------------------------- build


@cache
def build_program(program: str) -> Path:
    """Build one harness program (cached by content hash) and return its path."""
    if program not in PROGRAMS:
        raise NativeHarnessError(f"unknown native program {program!r}; "
                                 f"choose one of: {', '.join(PROGRAMS)}")
    sources = (NATIVE_DIR / PROGRAMS[program], *COMMON_SOURCES)
    try:
        return host_executable(sources, program, cflags=HOST_CFLAGS,
                               include_dirs=HOST_INCLUDE_DIRS)
    except BuildError as e:
        raise NativeHarnessError(f"cannot build the native harness program {program}: {e}") from e


def build_programs() -> dict[str, Path]:
    """Build every harness program; returns name -> executable path."""
    return {p: build_program(p) for p in PROGRAMS}


# --------------------------------------------------------------------------- run

_EXIT_MEANING = {
    2: "rejected its command line",
    3: "could not set up (a system call failed)",
    4: "stopped making progress (its watchdog fired)",
    5: "got an error from the ring library",
    6: "lost its partner process",
}


def _invoke(program: str, args: Sequence[str], timeout: float, boost_priority: bool = False
            ) -> dict:
    """Run one benchmark program; return its JSON object or raise NativeHarnessError.
    ``boost_priority``: at the highest CPU priority allowed (:func:`boost`)."""
    exe = build_program(program)
    cmd = [str(exe), *args, "--timeout", str(max(1, int(timeout) - 2))]
    what = f"{program} {' '.join(args)}"
    # A new session, so that on timeout the program and its forked partner die together.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=boost if boost_priority else None)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise NativeHarnessError(
            f"native benchmark `{what}` did not finish within {timeout:.0f} s; "
            "lower the iteration count or check that the machine is not overloaded"
        ) from None
    detail = err.strip().splitlines()[-1] if err.strip() else "no message"
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        raise NativeHarnessError(
            f"native benchmark `{what}` crashed with signal {sig} "
            f"(exit status {proc.returncode}): {detail}")
    if proc.returncode != 0:
        meaning = _EXIT_MEANING.get(proc.returncode, "failed")
        raise NativeHarnessError(
            f"native benchmark `{what}` {meaning} (exit status {proc.returncode}): {detail}")
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        raise NativeHarnessError(
            f"native benchmark `{what}` printed output that is not one JSON object ({e})"
        ) from None


@lru_cache(maxsize=8)
def tsc_hz(duration_ms: int = 100) -> float:
    """The TSC frequency in Hz, measured against CLOCK_MONOTONIC over ``duration_ms``.

    Cached per process (the TSC of this machine type is invariant: ``constant_tsc``).
    """
    d = _invoke("micro_bench", ["--bench", "tsc", "--ms", str(duration_ms)],
                timeout=TIMEOUT_S)
    if d["tsc_ns"] <= 0 or d["tsc_ticks"] <= 0:
        raise NativeHarnessError("TSC calibration measured no elapsed time; is rdtsc usable?")
    return d["tsc_ticks"] * 1e9 / d["tsc_ns"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of already sorted values."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _busy_share(d: Mapping) -> float:
    """Share of the CPU time available during the timed region that other tasks used.

    Returns a value in [0, 1]; 0 when the region was too short for tick accounting
    (under :data:`BUSY_FLOOR_TICKS` of others' time).
    """
    a = d.get("acct")
    if not a:
        return 0.0
    other = a["sys_busy_ticks"] - a["own_ticks"]
    available = a["wall_ns"] / 1e9 * a["clk_tck"] * max(1, a["ncpu"])
    if other <= BUSY_FLOOR_TICKS or available <= 0:
        return 0.0
    return min(1.0, other / available)


def _measure(job: _Job, seed: int, capacity: int, cpus: tuple[int, int] | None,
             max_reruns: int, boost_priority: bool = False) -> tuple[dict, int]:
    """One run of a job, re-run while the machine was busy; returns (kept run, re-runs).

    The kept run is the least busy one.
    """
    args = ["--bench", job.name, "--size", str(job.size), "--iters", str(job.iters),
            "--batch", str(job.batch), "--warmup", str(job.warmup), "--seed", str(seed),
            "--capacity", str(capacity)]
    if cpus is not None:
        args += ["--cpus", f"{cpus[0]},{cpus[1]}"]
    best: dict | None = None
    reruns = 0
    while True:
        d = _invoke(_BENCHES[job.name].program, args, timeout=TIMEOUT_S,
                    boost_priority=boost_priority)
        d["_busy_share"] = _busy_share(d)
        if best is None or d["_busy_share"] < best["_busy_share"]:
            best = d
        if d["_busy_share"] <= BUSY_FRACTION or reruns >= max_reruns:
            return best, reruns
        reruns += 1


def _summarize(name: str, size: int, runs: Sequence[dict], reruns: int,
               hz: float) -> NativeResult:
    """Pool the samples of several runs into one NativeResult."""
    per_ns: list[float] = []
    per_ticks: list[float] = []
    clock_ns: list[float] = []
    run_medians: list[float] = []
    for d in runs:
        ops = d["ops_per_sample"]
        ticks = [t / ops for t in d["samples_ticks"]]
        # ns come from ticks: the rdtsc bracket is tight, while each CLOCK_MONOTONIC
        # window also holds two clock_gettime calls (~40 ns a sample). The clock-based
        # figure is kept as a cross-check of the TSC conversion.
        ns = [t * 1e9 / hz for t in ticks]
        if not d.get("ns_from_ticks"):
            clock_ns += [n / ops for n in d["samples_ns"]]
        per_ns += ns
        per_ticks += ticks
        run_medians.append(percentile(sorted(ns), 0.5))
    sns, sticks = sorted(per_ns), sorted(per_ticks)
    first = runs[0]
    median_ticks = percentile(sticks, 0.5)
    extra: dict[str, float] = {}
    if clock_ns:
        extra["median_ns_clock"] = percentile(sorted(clock_ns), 0.5)
    if name == "cacheline_pingpong":
        extra["ns_per_transfer"] = percentile(sns, 0.5) / 2
    if name in ("bulk_handoff", "bulk_handoff_narrow"):
        extra["lines"] = size / 64
    return NativeResult(
        name=name, size=size, unit=_BENCHES[name].unit,
        median_ns=percentile(sns, 0.5), p10_ns=percentile(sns, 0.1),
        p90_ns=percentile(sns, 0.9), median_ticks=median_ticks,
        p10_ticks=percentile(sticks, 0.1), p90_ticks=percentile(sticks, 0.9),
        samples=len(per_ns), ops_per_sample=first["ops_per_sample"], runs=len(runs),
        run_medians_ns=tuple(run_medians),
        busy=any(d["_busy_share"] > BUSY_FRACTION for d in runs), busy_reruns=reruns,
        busy_share=max(d["_busy_share"] for d in runs),
        verified_bytes=sum(d["verified_bytes"] for d in runs),
        errors=sum(d["errors"] for d in runs),
        cpus=(first["cpus"][0], first["cpus"][1]), single_cpu=bool(first["single_cpu"]),
        samples_ns=tuple(per_ns), extra=extra,
    )


@dataclass(frozen=True)
class _Job:
    name: str
    size: int
    iters: int
    batch: int
    warmup: int


def _job(name: str, size: int, iterations: int | None, batch: int | None,
         warmup: int | None, scale: float) -> _Job:
    """Counts for one benchmark: the ones given, else its defaults times ``scale``."""
    if scale <= 0:
        raise NativeHarnessError(f"scale must be positive, got {scale}")
    b = _BENCHES[name]
    bt = batch if batch is not None and not b.fixed_batch else b.batch
    if iterations is not None:
        n = iterations
    else:
        n = b.iters
        if b.scale_by_size and size > 256:
            n = n * 256 // size     # copy time grows with size: keep about the same time
        n = max(5 * bt, int(n * scale))
    if bt <= 0 or n < bt:
        raise NativeHarnessError(f"{name}: iterations ({n}) must be at least batch ({bt}) > 0")
    if name in ("alu_chain", "mul_chain") and bt % 100:
        raise NativeHarnessError(f"{name}: batch must be a multiple of 100 instructions")
    w = warmup if warmup is not None else max(bt, n // 10)
    return _Job(name, size, n - n % bt, bt, w)


def _run_jobs(jobs: Sequence[_Job], *, runs: int, seed: int, capacity: int,
              cpus: tuple[int, int] | None, max_reruns: int, progress: bool | None,
              desc: str, hz: float | None = None, boost_priority: bool = False
              ) -> tuple[NativeResult, ...]:
    for j in jobs:
        if j.name not in _BENCHES:
            raise NativeHarnessError(f"unknown native benchmark {j.name!r}; choose one of: "
                                     f"{', '.join(_BENCHES)}")
    if runs < 1:
        raise NativeHarnessError(f"runs must be at least 1, got {runs}")
    hz = hz or tsc_hz()
    bar = progress_bar(len(jobs) * runs, desc, "bench", progress)
    out: list[NativeResult] = []
    # Re-running helps against a transient load. Once two runs in a row stayed busy
    # through all their re-runs, the load is not transient: stop re-running until a
    # run is quiet again, rather than triple the run time for nothing.
    budget, busy_streak = max_reruns, 0
    try:
        for j in jobs:
            kept: list[dict] = []
            reruns = 0
            for r in range(runs):
                if bar is not None:
                    bar.set_postfix_str(f"{j.name} {j.size}")
                d, n = _measure(j, seed + r, capacity, cpus, budget, boost_priority)
                kept.append(d)
                reruns += n
                if d["_busy_share"] > BUSY_FRACTION:
                    busy_streak += 1
                    if busy_streak >= 2:
                        budget = 0
                else:
                    busy_streak, budget = 0, max_reruns
                if bar is not None:
                    bar.update(1)
            out.append(_summarize(j.name, j.size, kept, reruns, hz))
    finally:
        if bar is not None:
            bar.close()
    return tuple(out)


# --------------------------------------------------------------------------- API


def run_ring(kind: str = "pingpong", sizes: Iterable[int] = RING_SIZES, *,
             iterations: int | None = None, batch: int | None = None,
             warmup: int | None = None, scale: float = 1.0, capacity: int = RING_CAPACITY, runs: int = 3,
             seed: int = 1, cpus: tuple[int, int] | None = None, max_reruns: int = 2,
             progress: bool | None = None, boost_priority: bool = False
             ) -> tuple[NativeResult, ...]:
    """Measure the guests' ring between two pinned processes, one result per size.

    Args:
        kind: ``"pingpong"`` (one op = a round trip of two messages of ``size`` bytes)
            or ``"stream"`` (one op = one message, sent back to back).
        sizes: message sizes in bytes (each at most ``capacity - 8``).
        iterations: timed ops per run; default 200k round trips / 400k messages for
            sizes up to 256 B, scaled down in proportion to size above that.
        batch: ops per timed sample (default 100).
        warmup: untimed ops first (default a tenth of ``iterations``).
        scale: multiplies the default ``iterations`` (ignored when it is given).
        capacity: ring data bytes, a power of two in [4096, 1 MiB].
        runs: independent runs (new processes) per size; samples are pooled.
        seed: payload PRNG seed (run r uses ``seed + r``).
        cpus: the two CPUs to pin to; default the first two allowed.
        max_reruns: re-runs of a run during which the machine was busy.
        progress: show a tqdm bar on stderr (default: when stderr is a terminal).
        boost_priority: run at the highest CPU priority allowed (:func:`boost`).

    Raises:
        NativeHarnessError: a bad argument, a build failure, or a program that failed.
    """
    if kind not in ("pingpong", "stream"):
        raise NativeHarnessError(f"ring kind {kind!r} is not one of: pingpong, stream")
    if capacity & (capacity - 1) or not 4096 <= capacity <= 1 << 20:
        raise NativeHarnessError(f"ring capacity {capacity} must be a power of two "
                                 "in [4096, 1048576]")
    sizes = tuple(sizes)
    for s in sizes:
        if not 0 <= s <= capacity - 8:
            raise NativeHarnessError(f"message size {s} does not fit a ring of capacity "
                                     f"{capacity} (at most capacity - 8 = {capacity - 8})")
    name = f"ring_{kind}"
    jobs = [_job(name, s, iterations, batch, warmup, scale) for s in sizes]
    return _run_jobs(jobs, runs=runs, seed=seed, capacity=capacity, cpus=cpus,
                     max_reruns=max_reruns, progress=progress, desc=name,
                     boost_priority=boost_priority)


def run_baselines(names: Iterable[str] = BASELINES, *, size: int = 64,
                  iterations: int | None = None, batch: int | None = None,
                  warmup: int | None = None, scale: float = 1.0, runs: int = 3, seed: int = 1,
                  cpus: tuple[int, int] | None = None, max_reruns: int = 2,
                  progress: bool | None = None, boost_priority: bool = False
                  ) -> tuple[NativeResult, ...]:
    """Measure Linux IPC baselines with ``size``-byte messages, one result per name.

    ``names`` come from :data:`BASELINES`: ``pipe``, ``eventfd`` (shared-memory payload),
    ``unix_dgram``, ``unix_stream``, ``futex`` (round trips between two pinned
    processes), ``syscall_getppid`` (one call), ``funccall`` / ``funccall_dep`` (a
    noinline call copying ``size`` bytes; independent or dependent calls). Other
    arguments as :func:`run_ring`.
    """
    names = tuple(names)
    for n in names:
        if n not in BASELINES:
            raise NativeHarnessError(f"unknown baseline {n!r}; choose from: {', '.join(BASELINES)}")
    if not 1 <= size <= 65536:
        raise NativeHarnessError(f"baseline message size {size} must be in 1..65536")
    jobs = [_job(n, 0 if n == "syscall_getppid" else size, iterations, batch, warmup,
                 scale)
            for n in names]
    return _run_jobs(jobs, runs=runs, seed=seed, capacity=RING_CAPACITY, cpus=cpus,
                     max_reruns=max_reruns, progress=progress, desc="baselines",
                     boost_priority=boost_priority)


def run_calibration_micro(names: Iterable[str] = MICRO, *,
                          load_sizes: Iterable[int] = LOAD_CHAIN_SIZES,
                          bulk_sizes: Iterable[int] = BULK_SIZES,
                          iterations: int | None = None, batch: int | None = None,
                          warmup: int | None = None, scale: float = 1.0, runs: int = 1, seed: int = 1,
                          cpus: tuple[int, int] | None = None, max_reruns: int = 2,
                          progress: bool | None = None, boost_priority: bool = False
                          ) -> tuple[NativeResult, ...]:
    """Measure the cycle model's calibration microbenchmarks (:data:`MICRO`).

    ``timer_pair`` (the cost of the timing brackets), ``mul_chain`` and ``alu_chain``
    (dependent IMULs and register ADDs: the core clock and its cross-check), ``load_chain`` at each of ``load_sizes`` (a
    random pointer chase; ns per load), ``cacheline_pingpong`` (one line bounced between
    two CPUs; ns per round trip), ``bulk_handoff`` at each of ``bulk_sizes`` (a buffer of
    consecutive lines written by one CPU and read by the other, then a flag round trip;
    ns per round), ``bulk_handoff_narrow`` (the same with 4-byte words: twice the
    accesses per line), ``mem_mix`` (8 independent loads and 8 stores per iteration: the
    load/store unit's memory operations per cycle) and ``syscall_getppid``. Times are per op;
    ``boost_priority`` runs them at the highest CPU priority allowed (:func:`boost`);
    arguments otherwise as :func:`run_ring`.
    """
    names = tuple(names)
    jobs: list[_Job] = []
    for n in names:
        if n not in MICRO:
            raise NativeHarnessError(f"unknown microbenchmark {n!r}; choose from: {', '.join(MICRO)}")
        if n == "load_chain":
            for s in load_sizes:
                if s < 128 or s % 64:
                    raise NativeHarnessError(f"load_chain size {s} must be a multiple of "
                                             "64 bytes, at least 128")
                jobs.append(_job(n, s, iterations, batch, warmup, scale))
        elif n in ("bulk_handoff", "bulk_handoff_narrow"):
            for s in bulk_sizes:
                if s < 64 or s % 64:
                    raise NativeHarnessError(f"{n} size {s} must be a multiple of "
                                             "64 bytes, at least 64")
                jobs.append(_job(n, s, iterations, batch, warmup, scale))
        else:
            jobs.append(_job(n, 0, iterations, batch, warmup, scale))
    return _run_jobs(jobs, runs=runs, seed=seed, capacity=RING_CAPACITY, cpus=cpus,
                     max_reruns=max_reruns, progress=progress, desc="micro",
                     boost_priority=boost_priority)


GROUPS: tuple[str, ...] = ("ring", "baselines", "micro")


def run_all(groups: Iterable[str] = GROUPS, *, capacity: int = RING_CAPACITY, seed: int = 1,
            runs: int = 3, scale: float = 1.0, cpus: tuple[int, int] | None = None,
            progress: bool | None = None) -> NativeReport:
    """The full native set: ring ping-pong and streaming at :data:`RING_SIZES`, the
    baselines, and the calibration microbenchmarks (``groups`` picks among them).

    ``scale`` multiplies every default iteration count (0.05 for a quick look). The full
    set takes about a minute on a 2-CPU machine at ``scale=1``.
    """
    groups = tuple(groups)
    for g in groups:
        if g not in GROUPS:
            raise NativeHarnessError(f"unknown group {g!r}; choose from: {', '.join(GROUPS)}")
    hz = tsc_hz()
    common = dict(seed=seed, cpus=cpus, progress=progress, scale=scale)
    results: tuple[NativeResult, ...] = ()
    if "ring" in groups:
        for kind in ("pingpong", "stream"):
            results += run_ring(kind, capacity=capacity, runs=runs, **common)
    if "baselines" in groups:
        results += run_baselines(runs=runs, **common)
    if "micro" in groups:
        results += run_calibration_micro(**common)
    return NativeReport(tsc_hz=hz, results=results, seed=seed, capacity=capacity)


# --------------------------------------------------------------------------- table


def _fmt_size(name: str, size: int) -> str:
    if name in ("load_chain", "bulk_handoff", "bulk_handoff_narrow"):
        for unit, shift in (("M", 20), ("K", 10)):
            if size >= 1 << shift and size % (1 << shift) == 0:
                return f"{size >> shift}{unit}"
    return str(size) if size else "-"


def _fmt_ns(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.0f}" if v >= 1000 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def format_table(results: Sequence[NativeResult], *, tsc_hz: float | None = None,
                 capacity: int | None = None, seed: int | None = None) -> str:
    """A fixed-width table of results (times per op), with a header line of context."""
    head = ["native harness:"]
    if tsc_hz:
        head.append(f"TSC {tsc_hz / 1e6:.1f} MHz")
    if results:
        r0 = results[0]
        head.append(f"CPUs {r0.cpus[0]},{r0.cpus[1]}"
                    + (" (ONE CPU: both sides share it, polls yield)" if r0.single_cpu else ""))
    if capacity:
        head.append(f"ring capacity {capacity}")
    if seed is not None:
        head.append(f"seed {seed}")
    cols = ("benchmark", "size", "op", "median ns", "p10 ns", "p90 ns", "med ticks",
            "samples", "runs", "spread", "busy", "verified B", "errors")
    rows = []
    for r in results:
        rows.append((r.name, _fmt_size(r.name, r.size), r.unit, _fmt_ns(r.median_ns),
                     _fmt_ns(r.p10_ns), _fmt_ns(r.p90_ns), _fmt_ns(r.median_ticks),
                     str(r.samples), str(r.runs), f"{100 * r.spread:.0f}%",
                     (f"yes {100 * r.busy_share:.0f}%" if r.busy else "no")
                     + (f" ({r.busy_reruns} rerun)" if r.busy_reruns else ""),
                     str(r.verified_bytes), str(r.errors)))
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
              for i, c in enumerate(cols)]
    left = {0, 2, 10}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [", ".join(head[1:]).join([head[0] + " ", ""]), line(cols),
           line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    notes = [f"{r.name}: {r.extra['ns_per_transfer']:.1f} ns per cache-line transfer"
              for r in results if "ns_per_transfer" in r.extra]
    busy = [r for r in results if r.busy]
    if busy:
        notes.append(f"WARNING: other tasks used more than {100 * BUSY_FRACTION:.0f}% of the "
                     f"CPU time during {len(busy)} of {len(results)} results (busy column: "
                     "their largest share); those figures are inflated. Re-run on a quiet "
                     "machine before comparing them.")
    if notes:
        out += [""] + notes
    return "\n".join(out)
