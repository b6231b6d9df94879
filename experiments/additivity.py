"""Are the paper's three costs additive? Trap ~1000 + copy ~200 + lock ~200 = 1400 cycles.

    python experiments/additivity.py [--quick] [--out DIR] [--workers N] [--no-native]

Each of the three costs is a build-time switch of one ping-pong (guests/src/exp_ipc.c,
experiments/systems/exp-ipc.toml) over the SPSC ring:
  trap  a system call (ks_nop) before each send and after each receive: two crossings
        per message, both on the round trip's critical path;
  copy  each message copied into a private bounce buffer before it is sent;
  lock  a spinlock (atomic xchg) per channel, in a page both processes map, held around
        each send and each receive.
All 8 combinations run at 64 B and 4 KiB, on profiles `raptorlake` and `host`, with the
poll loops' PAUSE off (so a round trip is not quantized to PAUSE's 140 cycles). The
native counterpart (experiments/native/exp_ipc_native.c: getppid, the same memcpy, the
same lock) runs the same 8 combinations between two pinned processes.

For every source the overhead of a combination (its round trip minus the plain ring's)
is compared with the sum of its parts' overheads.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._common import (  # noqa: E402
    NATIVE_SRC,
    Experiment,
    Measurement,
    Row,
    Timer,
    fmt,
    host_clock,
    log,
    native_bench,
    native_program,
    parallel,
    provenance,
    rt_cycles,
    save,
    script_main,
    sim,
)

NAME = "additivity"
TITLE = "Additivity of trap, copy and lock (docs/paper.md: 1,000 + 200 + 200 = 1,400 cycles)"
PROFILES = ("raptorlake", "host")
SIZES = (64, 4096)
COMBOS = tuple(itertools.product((0, 1), repeat=3))   # (trap, copy, lock)
PARTS = ("trap", "copy", "lock")
PAPER = {"trap": 1000, "copy": 200, "lock": 200}


def label(combo: tuple[int, int, int]) -> str:
    on = [p for p, v in zip(PARTS, combo, strict=True) if v]
    return "ring" if not on else "ring+" + "+".join(on)


def counts(size: int, quick: bool) -> dict:
    """Timed and warm-up round trips: the warm-up wraps the 16 KiB ring once, so every
    line is in its steady coherence state when timing starts."""
    if size <= 256:
        return {"messages": 100 if quick else 1000, "warmup": 232 if quick else 256}
    return {"messages": 20 if quick else 150, "warmup": 8}


def simulate(profiles, sizes, quick: bool, workers: int | None) -> dict:
    jobs, keys = [], []
    for prof, size, combo in itertools.product(profiles, sizes, COMBOS):
        params = {"size": size, "trap": combo[0], "copy": combo[1], "lock": combo[2],
                  "relax": 0, **counts(size, quick)}
        jobs.append(dict(system="exp-ipc", profile=prof, params=params))
        keys.append((f"keusim {prof}", size, combo))
    log(f"[{NAME}] {len(jobs)} simulations")
    return {k: rt_cycles(r) for k, r in zip(keys, parallel(sim, jobs, workers), strict=True)}


def measure_native(sizes, quick: bool, clock) -> dict:
    """Median ns per round trip -> cycles. The eight combinations alternate every 100
    round trips inside one pair of processes (exp_ipc_native.c), so they share a
    placement; each run is a new pair, and the median over runs is kept."""
    from keusim.model.harness import COMMON_SOURCES

    exe = native_program("exp-ipc-native", (NATIVE_SRC / "exp_ipc_native.c",
                                            *COMMON_SOURCES))
    runs = 1 if quick else 3
    per_run: dict = {}
    log(f"[{NAME}] native: {len(COMBOS)} interleaved combinations x {len(sizes)} sizes x {runs} runs")
    for _ in range(runs):
        for size in sizes:
            iters = (4000 if quick else 40000) if size <= 256 else (800 if quick else 8000)
            d = native_bench(exe, "ipc_all", size=size, iters=iters, batch=100, warmup=1600)
            if d["errors"]:
                raise RuntimeError(f"native exp_ipc {size} B: {d['errors']} bad bytes")
            ops = d["ops_per_sample"]
            for i, combo in enumerate(COMBOS):
                ticks = sorted(t / ops for k, t in enumerate(d["samples_ticks"]) if k % 8 == i)
                per_run.setdefault((size, combo), []).append(ticks[len(ticks) // 2])
    out = {}
    for (size, combo), meds in per_run.items():
        meds.sort()
        out[("native host", size, combo)] = meds[len(meds) // 2] / clock.tsc_ghz * clock.ghz
    return out


def analyse(rt: dict) -> dict:
    """For each (source, size): overheads of every combination, measured and predicted."""
    out = {}
    for src, size in sorted({(k[0], k[1]) for k in rt}):
        base = rt[(src, size, (0, 0, 0))]
        single = {p: rt[(src, size, tuple(int(i == j) for j in range(3)))] - base
                  for i, p in enumerate(PARTS)}
        rows = []
        for combo in COMBOS:
            meas = rt[(src, size, combo)]
            pred = base + sum(single[p] for p, v in zip(PARTS, combo, strict=True) if v)
            over = meas - base
            rows.append({"combination": label(combo), "trap": combo[0], "copy": combo[1],
                         "lock": combo[2], "measured": meas, "predicted": pred,
                         "overhead": over, "error": meas - pred,
                         "error_of_round_trip": (meas - pred) / meas,
                         "error_of_overhead": (meas - pred) / (pred - base) if pred != base else 0.0})
        worst = max((r for r in rows if sum((r["trap"], r["copy"], r["lock"])) > 1),
                    key=lambda r: abs(r["error"]))
        out[(src, size)] = {"base": base, "single": single, "rows": rows, "worst": worst}
    return out


def run(quick: bool = False, out: str | Path | None = None, workers: int | None = None,
        native: bool = True) -> Experiment:
    profiles = PROFILES[:1] if quick else PROFILES
    sizes = SIZES[:1] if quick else SIZES
    with Timer() as t:
        rt = {}
        clock = None
        if native:
            clock = host_clock()
            rt.update(measure_native(sizes, quick, clock))
        rt.update(simulate(profiles, sizes, quick, workers))
    an = analyse(rt)
    ms = [Measurement(f"paper {p}", "paper", v, "cycles per message") for p, v in PAPER.items()]
    ms.append(Measurement("paper sum", "paper", sum(PAPER.values()), "cycles per message"))
    for (src, size, combo), v in rt.items():
        kind, prof = src.split(" ", 1)
        ms.append(Measurement(f"round trip {label(combo)}", kind, v, "cycles per round trip",
                              profile=prof, arch="x86_64" if kind == "keusim" else "host",
                              size=size))
    for (src, size), a in an.items():
        kind, prof = src.split(" ", 1)
        for r in a["rows"][1:]:
            ms.append(Measurement(f"overhead {r['combination']}", kind, r["overhead"] / 2,
                                  "cycles per message", profile=prof, size=size,
                                  note=f"predicted {(r['predicted'] - a['base']) / 2:.1f}"))

    big = max(sizes)
    srcs = [s for s in ([f"keusim {p}" for p in profiles] + (["native host"] if native else []))]

    def per_msg(src: str, part: str, size: int = big) -> float:
        return an[(src, size)]["single"][part] / 2

    def cell(part: str, src_kind: str) -> str:
        cs = [f"{fmt(per_msg(s, part))} ({s.split(' ', 1)[1]})" for s in srcs
              if s.startswith(src_kind)]
        return " / ".join(cs) if cs else "n/a"

    def sum_cell(src_kind: str) -> str:
        cs = []
        for s in srcs:
            if s.startswith(src_kind):
                a = an[(s, big)]
                allr = a["rows"][-1]
                cs.append(f"{fmt(allr['overhead'] / 2)} measured vs {fmt((allr['predicted'] - a['base']) / 2)} "
                          f"summed ({s.split(' ', 1)[1]})")
        return " / ".join(cs) if cs else "n/a"

    def add_cell(src_kind: str) -> str:
        cs = []
        for s in srcs:
            if s.startswith(src_kind):
                for size in sizes:
                    w = an[(s, size)]["worst"]
                    cs.append(f"{s.split(' ', 1)[1]} {size} B: {w['error']:+,.0f} cycles "
                              f"({100 * w['error_of_round_trip']:+.1f}% of RT, {w['combination']})")
        return "; ".join(cs) if cs else "n/a"

    sz = f"{big} B" if big < 1024 else f"{big // 1024} KiB"
    from keusim.model.profiles import load_profile

    traps = ", ".join(f"{p} {load_profile(p).cycles('trap.syscall_entry')}/"
                      f"{load_profile(p).cycles('trap.syscall_exit')}" for p in PROFILES)
    # The lock's xchg is priced by each profile's `atomic` class (an estimate in all of them).
    xchg = ", ".join(f"{p} {load_profile(p).classes['atomic'].latency:g}"
                     + (" estimate" if load_profile(p).classes["atomic"].estimate else "")
                     for p in profiles)
    rows = [
        Row(f"Trap: two user/kernel crossings per message ({sz})", "~1,000", cell("trap", "keusim"),
            cell("trap", "native"),
            "keusim's crossing is SYSCALL + the kernel's dispatch of an empty call + SYSRET; "
            f"the profiles' entry/exit cycles ({traps}) are estimates for raptorlake and this "
            "VM's getppid fit for host (mitigations, virtualization). No page-table switch, no "
            "scheduling, no cache/TLB pollution. The paper's 1,000 includes switching to "
            "another process."),
        Row(f"Copy through a bounce buffer, per message ({sz})", "~200 (4 KiB)", cell("copy", "keusim"),
            cell("copy", "native"),
            "The guests' memcpy (guests/lib/string.c, also in the native build) moves 8 bytes per "
            "iteration without SIMD: 512 iterations for 4 KiB. A libc memcpy with AVX or REP "
            "MOVSB copies 4 KiB in ~100-200 cycles, the paper's figure. keusim has no cache "
            "model: the bounce buffer never misses."),
        Row(f"Lock on the shared channel, per message ({sz})", "~200", cell("lock", "keusim"),
            cell("lock", "native"),
            "Uncontended here (ping-pong). keusim charges every acquisition its xchg (the "
            f"profile's atomic class, cycles: {xchg}) plus a transfer of the lock line; the "
            "xchg's store is posted like a "
            "plain one (docs/cycle-model.md §7: a real locked instruction waits for the line). "
            "A real core overlaps the lock line's miss with the data lines' misses, so natively "
            "the lock costs little; the paper's 200 assumes contention."),
        Row(f"Trap + copy + lock, per message ({sz})", "1,400 (sum)", sum_cell("keusim"),
            sum_cell("native"),
            "Measured: the round trip with all three on minus the plain ring, halved; summed: "
            "the three single overheads added."),
        Row("The three costs are additive (worst combination vs the sum of its parts)",
            "yes (asserted)", add_cell("keusim"),
            add_cell("native"),
            "Largest deviation of a combination's round trip from the plain ring plus its parts' "
            "overheads. keusim adds block costs and per-access coherence charges with no "
            "overlap across blocks and no cache, TLB or predictor state, so additivity nearly "
            "holds by construction; a real core can overlap the costs (sub-additive) or have "
            "one pollute state the next needs (super-additive)."),
    ]
    lines = []
    for (src, size), a in an.items():
        lines.append(f"{src}, {size} B: round trip of the plain ring {fmt(a['base'])} cycles")
        lines.append(f"  {'combination':<22}{'measured':>10}{'predicted':>11}{'error':>9}"
                     f"{'of RT':>8}{'of overhead':>13}")
        for r in a["rows"]:
            lines.append(f"  {r['combination']:<22}{fmt(r['measured']):>10}{fmt(r['predicted']):>11}"
                         f"{r['error']:>+9.0f}{100 * r['error_of_round_trip']:>+7.1f}%"
                         f"{100 * r['error_of_overhead']:>+12.1f}%")
    notes = ["per message = round-trip overhead / 2 (a round trip carries two messages)."]
    if clock:
        notes.append(f"native cycles = median ns x {clock.ghz:.2f} GHz ({clock.source}); the 8 "
                     "combinations alternate every 100 round trips within one process pair; "
                     f"median over {1 if quick else 3} pairs")
    prov = provenance(NAME, profiles=profiles, arches=("x86_64",), quick=quick,
                      parameters={"sizes": list(sizes), "combinations": [label(c) for c in COMBOS],
                                  "counts": {s: counts(s, quick) for s in sizes}, "relax": 0,
                                  "host_core_ghz": clock.ghz if clock else None})
    details = {f"{src}/{size}": a for (src, size), a in an.items()}
    exp = Experiment(NAME, TITLE, rows, ms, prov, details=details, notes=notes,
                     appendix="\n".join(lines) + "\n", seconds=t.seconds)
    return save(exp, out, figure)


def figure(exp: Experiment):
    import matplotlib.pyplot as plt

    srcs = sorted({k.rsplit("/", 1)[0] for k in exp.details})
    sizes = sorted({int(k.rsplit("/", 1)[1]) for k in exp.details})
    fig, axes = plt.subplots(len(sizes), len(srcs), figsize=(3.6 * len(srcs), 3.3 * len(sizes)),
                             squeeze=False)
    for i, size in enumerate(sizes):
        for j, src in enumerate(srcs):
            ax = axes[i][j]
            a = exp.details.get(f"{src}/{size}")
            if a is None:
                ax.axis("off")
                continue
            rows = a["rows"][1:]
            xs = range(len(rows))
            ax.bar([x - 0.2 for x in xs], [r["overhead"] for r in rows], 0.4, label="measured")
            ax.bar([x + 0.2 for x in xs], [r["predicted"] - a["base"] for r in rows], 0.4,
                   label="sum of parts")
            ax.set_xticks(list(xs), [r["combination"].replace("ring+", "").replace("+", "+\n")
                                     for r in rows], fontsize=6)
            ax.set_title(f"{src}, {size} B (ring {a['base']:,.0f} cycles)", fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
        axes[i][0].set_ylabel("overhead, cycles / round trip", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Overhead over the plain ring: measured vs the sum of its parts", fontsize=9)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    return fig


def main(argv=None) -> int:
    return script_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
