"""The paper's open question: poll or wake up the receiver, by message rate.

    python experiments/poll_wakeup.py [--quick] [--out DIR] [--workers N]

The paper (docs/paper.md, "Multi-core wakeup") wakes a sleeping receiver with an IPI
(~1 us) and has "a polling mode under evaluation" that "increases CPU usage but brings
the round-trip down". This measures both, and a hybrid, over message rates, with the
`poll-wakeup` scenario (guests/src/poll_wakeup.c): a sender on core 0 sends a 64-byte
message every `interval` model cycles on a verified notify-mode channel and spins for
the echo; the receiver on core 1

  poll    spins on the ring (the sender sends no notification);
  wake    sleeps in wait() whenever the ring is empty; the sender's notify wakes it
          with an IPI (profile `machine.ipi`);
  hybrid  spins for `spin` cycles, then sleeps as wake. `spin` is set, per arch and
          profile, to the wake receiver's own CPU cost per message at the lowest rate:
          spinning as long as a sleep costs is the classic two-phase waiting rule
          (Karlin, Li, Manasse, Owicki, SOSP 1991: within 2x of the better choice).

Per run: the round trip (sender's mean, send to echo) and the receiver's CPU time,
its core's cycles minus the cycles it spent halted (keusim.analysis.attribution:
``CoreSplit.idle_cycles``), per message. The crossover is where polling stops costing
more CPU than waking: a polling receiver burns the whole interval, a waking one its
fixed cost per message, so polling wins above 1 / (wake CPU per message) messages per
cycle; the grid shows where the two measured curves meet.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._common import (  # noqa: E402
    Experiment,
    Measurement,
    Row,
    Timer,
    fmt,
    log,
    parallel,
    provenance,
    save,
    script_main,
)

NAME = "poll_wakeup"
TITLE = "Poll versus wake-up: round trip and receiver CPU by message rate (64 B)"
SYSTEM = "poll-wakeup"
MODES = {"poll": 0, "wake": 1, "hybrid": 2}
ARCHES = ("x86_64", "arm64")
PROFILES = ("raptorlake", "host")
INTERVALS = (500, 1000, 2000, 4000, 8000, 16000, 32000, 64000)
SIZE = 64


def _run(arch: str, profile: str, params: dict):
    from keusim.analysis.attribution import attribute

    a = attribute(SYSTEM, arch=arch, profile=profile, params=params)
    r = a.report
    if not r.ok or any(not c.intact for c in r.channels):
        raise RuntimeError(f"{SYSTEM} {arch} {profile} {params} did not run cleanly:\n"
                           f"{r.summary()}")
    rx = a.cores[1]
    return r, rx.cycles - rx.idle_cycles, rx.cycles


def point(arch: str, profile: str, mode: str, interval: int, messages: int, spin: int) -> dict:
    """Round trip and the receiver core's busy cycles per message (picklable), each the
    difference of a 2N- and an N-message run divided by N, so that boot, start-up and
    exit cancel out."""
    base = {"mode": MODES[mode], "interval": interval, "size": SIZE, "spin": spin}
    r1, busy1, end1 = _run(arch, profile, {**base, "messages": messages})
    r2, busy2, end2 = _run(arch, profile, {**base, "messages": 2 * messages})
    s1, s2 = r1.channel(0).producer_stats, r2.channel(0).producer_stats
    return {"arch": arch, "profile": profile, "mode": mode, "interval": interval, "spin": spin,
            "messages": messages, "rt_cycles": (s2["rt_cycles"] - s1["rt_cycles"]) / messages,
            "rx_busy_per_msg": (busy2 - busy1) / messages,
            "period": (end2 - end1) / messages,
            "waits": r2.channel(0).consumer_stats.get("notified", 0),
            "notified": r2.channel(0).notifications.get("accepted", 0)}


def _share(p: dict) -> float:
    """The receiver core's busy share while messages flow: busy cycles per message over
    the cycles per message (its clock's advance per message: the interval, or more when
    the round trip and the sender's own work per message take longer, since the sender
    waits for each echo)."""
    return p["rx_busy_per_msg"] / p["period"]


def crossover(points: list[dict]) -> tuple[float | None, float]:
    """(interval where the measured poll and wake CPU-per-message curves meet, the wake
    receiver's CPU per message at the lowest rate). The meeting point is interpolated
    (log-linear) where poll's minus wake's busy cycles changes sign; None when it does
    not on the grid."""
    poll = {p["interval"]: p["rx_busy_per_msg"] for p in points if p["mode"] == "poll"}
    wake = {p["interval"]: p["rx_busy_per_msg"] for p in points if p["mode"] == "wake"}
    grid = sorted(poll)
    c_wake = wake[grid[-1]]
    gap = [(i, (poll[i] - wake[i]) / poll[i]) for i in grid]
    for (i0, g0), (i1, g1) in zip(gap, gap[1:], strict=False):
        if g0 <= 0 < g1:
            f = -g0 / (g1 - g0)
            return math.exp(math.log(i0) + f * (math.log(i1) - math.log(i0))), c_wake
    return (grid[0] if gap and gap[0][1] > 0 else None), c_wake


def run(quick: bool = False, out: str | Path | None = None, workers: int | None = None,
        native: bool = True) -> Experiment:
    from keusim.model.profiles import load_profile

    arches = ARCHES[:1] if quick else ARCHES
    profiles = PROFILES[:1] if quick else PROFILES
    intervals = (1000, 16000) if quick else INTERVALS
    messages = 10 if quick else 40
    combos = [(a, p) for a in arches for p in profiles]
    with Timer() as t:
        jobs = [dict(arch=a, profile=p, mode=m, interval=i, messages=messages, spin=0)
                for a, p in combos for m in ("poll", "wake") for i in intervals]
        log(f"[{NAME}] {len(jobs)} simulations: poll and wake")
        pts = parallel(point, jobs, workers)
        spin = {}
        for a, p in combos:
            mine = [x for x in pts if (x["arch"], x["profile"]) == (a, p)]
            spin[(a, p)] = int(round(crossover(mine)[1], -2))
        jobs = [dict(arch=a, profile=p, mode="hybrid", interval=i, messages=messages,
                     spin=spin[(a, p)]) for a, p in combos for i in intervals]
        log(f"[{NAME}] {len(jobs)} simulations: hybrid")
        pts += parallel(point, jobs, workers)
    ghz = {p: load_profile(p).ghz for p in profiles}
    ipi_us = {p: load_profile(p).ipi_cycles / ghz[p] / 1000 for p in profiles}
    ms: list[Measurement] = [
        Measurement("IPI wake-up", "paper", 1000.0, "ns", note="docs/paper.md: ~1 us"),
        Measurement("poll round trip", "paper", 150.0, "cycles",
                    note="the 150-cycle data-plane cost polling brings the round trip to")]
    summary = {}
    for a, p in combos:
        mine = [x for x in pts if (x["arch"], x["profile"]) == (a, p)]
        for x in mine:
            x["share"] = _share(x)
            x["rate_per_s"] = ghz[p] * 1e9 / x["period"]
            for q, unit in (("rt_cycles", "cycles"), ("rx_busy_per_msg", "cycles"),
                            ("share", "fraction")):
                ms.append(Measurement(f"{x['mode']} {q}", "keusim", x[q], unit, profile=p,
                                      arch=a, size=SIZE, note=f"interval {x['interval']} cycles"))
        by = {(x["mode"], x["interval"]): x for x in mine}
        lo, hi = max(intervals), min(intervals)
        cross, c_wake = crossover(mine)
        summary[f"{a}/{p}"] = s = {
            "ghz": ghz[p], "spin": spin[(a, p)], "crossover_interval": cross,
            "crossover_rate_per_s": ghz[p] * 1e9 / cross if cross else None,
            "wake_cpu_per_msg": c_wake,
            "rt_poll": by[("poll", lo)]["rt_cycles"], "rt_wake": by[("wake", lo)]["rt_cycles"],
            "rt_hybrid_fast": by[("hybrid", hi)]["rt_cycles"],
            "rt_hybrid_slow": by[("hybrid", lo)]["rt_cycles"],
            "share_poll": by[("poll", lo)]["share"], "share_wake": by[("wake", lo)]["share"],
            "share_hybrid": by[("hybrid", lo)]["share"], "slow_interval": lo, "fast_interval": hi}
        ms.append(Measurement("crossover interval", "keusim", cross or 0.0, "cycles", profile=p,
                              arch=a, size=SIZE))
        ms.append(Measurement("wake penalty", "keusim", s["rt_wake"] - s["rt_poll"], "cycles",
                              profile=p, arch=a, size=SIZE, note=f"interval {lo}"))

    def cell(fn) -> str:
        return "; ".join(f"{k}: {fn(v)}" for k, v in summary.items())

    def span(values) -> str:
        v = list(values)
        lo, hi = fmt(min(v)), fmt(max(v))
        return lo if lo == hi else f"{lo}-{hi}"

    rows = [
        Row("Polling brings the round trip down to the data-plane cost", "150 cycles",
            cell(lambda s: f"{fmt(s['rt_poll'])} cycles"), "n/a",
            "The polling receiver's round trip at the lowest rate, "
            f"{span(s['rt_poll'] for s in summary.values())} cycles here, is the ring's "
            "own round trip (docs/experiments.md, paper table): the two line hand-offs per "
            "direction alone cost more than 150 cycles."),
        Row("Waking the receiver costs an IPI, ~1 us", "~1 us per wake-up",
            cell(lambda s: f"+{fmt(s['rt_wake'] - s['rt_poll'])} cycles "
                           f"({fmt((s['rt_wake'] - s['rt_poll']) / s['ghz'], 'ns')})"),
            "n/a",
            "Round trip of wake minus poll at the lowest rate: the IPI (the profile's "
            "trap.ipi: " + ", ".join(f"{ipi_us[p]:.2g} us on {p}" for p in profiles)
            + "), the notify system call with its SipHash check, and the receiver's return "
            "from wait()."),
        Row("Polling increases CPU usage", "yes (unquantified)",
            cell(lambda s: f"receiver busy {100 * s['share_poll']:.0f}% polling, "
                           f"{100 * s['share_wake']:.0f}% waking, "
                           f"{100 * s['share_hybrid']:.0f}% hybrid at one message per "
                           f"{s['slow_interval']:,} cycles"),
            "n/a",
            "Busy = the receiver core's cycles minus its halted cycles. A polling core is "
            "never idle; a waking one pays wait(), the interrupt entry and the return per "
            "message."),
        Row("Crossover: poll above this message rate", "open question",
            cell(lambda s: (f"{fmt(s['crossover_rate_per_s'] / 1e6, 'M msg/s')} (one per "
                            f"{fmt(s['crossover_interval'])} cycles)")
                 if s["crossover_interval"] else "not on the grid"),
            "n/a",
            "Where polling's CPU per message (the whole interval) falls below waking's on "
            "the measured grid (interpolated); waking costs "
            + cell(lambda s: f"{fmt(s['wake_cpu_per_msg'])} cycles") + " of receiver CPU per "
            "message, so at higher rates a waking receiver rarely sleeps and saves nothing."),
        Row("Hybrid: spin, then sleep", "not discussed",
            cell(lambda s: f"spin {s['spin']:,}: round trip {fmt(s['rt_hybrid_fast'])} "
                           f"(fast) / {fmt(s['rt_hybrid_slow'])} (slow)"),
            "n/a",
            "Spinning as long as a sleep costs (the wake CPU per message) keeps polling's "
            "round trip while messages come faster than the spin, and wake-up's CPU bound "
            "(at most spin + wake cost per message) when they come slower."),
    ]
    hdr = (f"{'arch/profile':<20}{'interval':>9}{'offered':>11}" + "".join(
        f"{m + ' RT':>12}" for m in MODES) + "".join(f"{m + ' CPU':>12}" for m in MODES))
    lines = ["Round trip (cycles) and receiver CPU per message (busy cycles, % of the core):",
             hdr]
    for a, p in combos:
        by = {(x["mode"], x["interval"]): x for x in pts if (x["arch"], x["profile"]) == (a, p)}
        for i in intervals:
            rate = ghz[p] * 1e9 / i
            lines.append(f"{a + '/' + p:<20}{i:>9,}{rate / 1e6:>9.2f} M"
                         + "".join(f"{by[(m, i)]['rt_cycles']:>12,.0f}" for m in MODES)
                         + "".join(f"{by[(m, i)]['rx_busy_per_msg']:>7,.0f} {100 * by[(m, i)]['share']:>3.0f}%"
                                   for m in MODES))
    notes = [f"{SIZE} B messages; per-message figures are (2N run - N run) / N with N = "
             f"{messages}; the sender waits for each echo, so a mode's rate is one message per "
             "interval or per round trip plus the sender's own work, whichever is longer; rates are at each profile's clock "
             f"({', '.join(f'{p} {g} GHz' for p, g in ghz.items())}); lookahead 20 cycles "
             "(keusim.analysis.attribution runs at the library default)",
             "A notification the receiver did not wait for stays pending: its next wait() "
             "returns at once, one extra system call, never a lost message "
             "(guests/src/poll_wakeup.c)."]
    prov = provenance(NAME, profiles=profiles, arches=arches, quick=quick,
                      parameters={"intervals": list(intervals), "messages": messages,
                                  "size": SIZE, "spin": {f"{a}/{p}": v for (a, p), v in spin.items()}})
    exp = Experiment(NAME, TITLE, rows, ms, prov, details={"points": pts, "summary": summary},
                     notes=notes, appendix="\n".join(lines), seconds=t.seconds)
    return save(exp, out, figure)


def figure(exp: Experiment):
    import matplotlib.pyplot as plt

    pts = exp.details["points"]
    combos = sorted({(x["arch"], x["profile"]) for x in pts})
    fig, axes = plt.subplots(2, len(combos), figsize=(3.2 * len(combos) + 1, 5.6),
                             squeeze=False, sharex="col")
    colors = {"poll": "tab:red", "wake": "tab:blue", "hybrid": "tab:green"}
    for j, (a, p) in enumerate(combos):
        s = exp.details["summary"][f"{a}/{p}"]
        for m in MODES:
            xs = sorted((x for x in pts if (x["arch"], x["profile"], x["mode"]) == (a, p, m)),
                        key=lambda x: -x["interval"])
            r = [x["rate_per_s"] / 1e6 for x in xs]
            axes[0][j].plot(r, [x["rt_cycles"] for x in xs], "o-", ms=3, color=colors[m], label=m)
            axes[1][j].plot(r, [100 * x["share"] for x in xs], "o-", ms=3, color=colors[m],
                            label=m)
        if s["crossover_rate_per_s"]:
            for ax in (axes[0][j], axes[1][j]):
                ax.axvline(s["crossover_rate_per_s"] / 1e6, color="0.5", ls="--", lw=1)
        axes[0][j].set_title(f"{a}, {p}", fontsize=9)
        axes[0][j].set_xscale("log")
        axes[0][j].set_yscale("log")
        axes[1][j].set_xlabel("messages per second achieved (M, at the profile clock)",
                              fontsize=7)
        axes[1][j].set_ylim(0, 105)
    axes[0][0].set_ylabel("round trip (cycles)")
    axes[1][0].set_ylabel("receiver CPU busy (%)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Poll vs wake-up (dashed: crossover, poll above it)", fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    return fig


def main(argv=None) -> int:
    return script_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
