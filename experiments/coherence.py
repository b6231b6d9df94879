"""Coherence traffic per round trip: "zero coherence traffic for the index variables".

    python experiments/coherence.py [--quick] [--out DIR] [--workers N] [--no-native]

keusim counts, per core, the coherence events on the ring pages (a transfer of a line
another core holds modified, or an invalidation of copies other cores hold). To split
them by line class, four ping-pongs with the same two 16 KiB rings run:
  pingpong  the `pingpong` scenario, 64 B (index and data lines);
  mode 0    guests/src/exp_coh.c: the ring's index accesses alone (head, tail);
  mode 1    indices alone, with the producer caching the consumer's tail;
  mode 2    no index at all: each message is one line with a sequence number.
Data lines = pingpong - mode 0. Every count is a difference of a run with 2N and one
with N round trips, divided by N: per round trip, steady state, set-up removed.
The counting profile is raptorlake with invalidations priced 1 cycle below transfers,
free first touches and no pipelining discount (experiments/profiles/
raptorlake-cohprobe.toml), which makes the two kinds countable apart: transfers =
coherence_cycles - 80 x events. Round-trip cycles come from `raptorlake` itself.
native: one cache line bounced between two pinned CPUs (the physical minimum of a round
trip: two transfers) and the ring's 64-byte ping-pong, from keusim.model.harness.
"""

from __future__ import annotations

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
    host_clock,
    log,
    parallel,
    provenance,
    save,
    script_main,
    sim,
)

NAME = "coherence"
TITLE = "Coherence traffic per 64-byte round trip (docs/paper.md: 'zero coherence traffic for the index variables')"
PROFILE = "raptorlake-cohprobe"
INVAL = 80        # the probe profile's invalidation price; transfers cost INVAL + 1
VARIANTS = {
    "pingpong": ("pingpong", {"size": 64}),
    "mode 0: indices only": ("exp-coh", {"mode": 0}),
    "mode 1: indices, cached tail": ("exp-coh", {"mode": 1}),
    "mode 2: one line per message": ("exp-coh", {"mode": 2}),
}


def _counts(report) -> dict:
    events = sum(c.coherence_transfers for c in report.cores)
    xfers = sum(c.coherence_cycles - INVAL * c.coherence_transfers for c in report.cores)
    s = report.channel(0).producer_stats
    return {"events": events, "transfers": xfers, "invalidations": events - xfers,
            "rt_total": s["rt_cycles"], "round_trips": s["round_trips"]}


def simulate(n: int, workers: int | None) -> dict:
    """Per round trip, for each variant: events, transfers and invalidations (probe
    profile) and cycles (raptorlake), each a (2N - N) / N difference."""
    jobs, keys = [], []
    for name, (system, params) in VARIANTS.items():
        for prof in (PROFILE, "raptorlake"):
            for m in (n, 2 * n):
                jobs.append(dict(system=system, profile=prof, params={**params, "messages": m}))
                keys.append((name, prof, m))
    log(f"[{NAME}] {len(jobs)} simulations")
    c = {k: _counts(r) for k, r in zip(keys, parallel(sim, jobs, workers), strict=True)}
    out = {}
    for name in VARIANTS:
        a, b = c[(name, PROFILE, n)], c[(name, PROFILE, 2 * n)]
        out[name] = {k: (b[k] - a[k]) / n for k in ("events", "transfers", "invalidations")}
        a, b = c[(name, "raptorlake", n)], c[(name, "raptorlake", 2 * n)]
        out[name]["rt_cycles"] = (b["rt_total"] - a["rt_total"]) / (b["round_trips"] - a["round_trips"])
        out[name]["events_raptorlake"] = (b["events"] - a["events"]) / n
    idx = out["mode 0: indices only"]
    out["data lines (pingpong - mode 0)"] = {k: out["pingpong"][k] - idx[k]
                                             for k in ("events", "transfers", "invalidations")}
    return out


def measure_native(quick: bool, clock) -> dict:
    from keusim.model import harness

    # Native runs at the highest CPU priority allowed (keusim.model.harness.boost).
    kw = dict(boost_priority=True,
              runs=1 if quick else 3, scale=0.05 if quick else 0.5, progress=False,
              max_reruns=0 if quick else 1)
    log(f"[{NAME}] native: cache-line ping-pong, ring ping-pong 64 B")
    line = harness.run_calibration_micro(["cacheline_pingpong"], **kw)[0]
    ring = harness.run_ring("pingpong", sizes=(64,), **kw)[0]
    return {"line_rt_ns": line.median_ns, "ring_rt_ns": ring.median_ns,
            "line_rt_cycles": line.median_ns * clock.ghz, "ring_rt_cycles": ring.median_ns * clock.ghz,
            "spread": {"line": line.spread, "ring": ring.spread},
            "busy": line.busy or ring.busy, "single_cpu": line.single_cpu}


def run(quick: bool = False, out: str | Path | None = None, workers: int | None = None,
        native: bool = True) -> Experiment:
    from keusim.model.profiles import load_profile

    n = 240 if quick else 1000     # > 228: a 16 KiB ring of 72-byte records has wrapped
    with Timer() as t:
        nat, clock = None, None
        if native:
            clock = host_clock()
            nat = measure_native(quick, clock)
        k = simulate(n, workers)
    rl = load_profile("raptorlake")
    c2c = rl.cycles("coherence.core_to_core")
    ms = [Measurement("index-line coherence traffic", "paper", 0, "events per round trip")]
    for name, v in k.items():
        for q in ("events", "transfers", "invalidations", "rt_cycles", "events_raptorlake"):
            if q in v:
                ms.append(Measurement(f"{name}: {q}", "keusim", v[q],
                                      "cycles" if q == "rt_cycles" else "per round trip",
                                      profile="raptorlake" if q in ("rt_cycles", "events_raptorlake")
                                      else PROFILE, arch="x86_64", size=64))
    if nat:
        ms.append(Measurement("one-line ping-pong round trip", "native", nat["line_rt_cycles"],
                              "cycles", profile="host", note=f"{nat['line_rt_ns']:.1f} ns"))
        ms.append(Measurement("ring ping-pong round trip 64 B", "native", nat["ring_rt_cycles"],
                              "cycles", profile="host", note=f"{nat['ring_rt_ns']:.1f} ns"))

    def tc(name: str) -> str:
        v = k[name]
        rt = f", round trip {fmt(v['rt_cycles'])} cycles" if "rt_cycles" in v else ""
        return f"{v['transfers']:.2f} transfers + {v['invalidations']:.2f} invalidations{rt}"

    idx, data, pp = k["mode 0: indices only"], k["data lines (pingpong - mode 0)"], k["pingpong"]
    one = k["mode 2: one line per message"]
    rows = [
        Row("Coherence traffic on the index lines (head, tail) per round trip", "zero",
            tc("mode 0: indices only"),
            "not countable (no PMU in this VM)",
            "Each index is written by one side and read by the other: the consumer learns of a "
            "message by reading head, so head's line must move to it, and tail's line back to "
            "the producer, on every message. Separate lines remove false sharing between head "
            "and tail, not this true sharing: 4 index lines x (1 transfer + 1 invalidation)."),
        Row("Coherence traffic on the data lines per round trip", "not stated ('cache-hot for "
            "both sides')", tc("data lines (pingpong - mode 0)"), "not countable",
            "A 64-byte message is a 72-byte record (4-byte header, padding to 8): 2 lines per "
            "message, 2 messages per round trip, each line written on one core and read on the "
            "other."),
        Row("Whole ring round trip (pingpong, 64 B)", "150 cycles", tc("pingpong"),
            (f"{fmt(nat['ring_rt_cycles'])} cycles = {nat['ring_rt_ns'] / nat['line_rt_ns']:.1f}x "
             "the one-line round trip") if nat else "n/a",
            f"Index lines carry {100 * idx['transfers'] / pp['transfers']:.0f}% of the ring's "
            f"transfers. On raptorlake a hand-off is {c2c} cycles "
            f"({rl.param('coherence.core_to_core').value / rl.ghz:g} ns), so 150 cycles is "
            "less than one; the model's round trip is its hand-offs plus the ring's own "
            "instructions."),
        Row("Physical minimum: one line per direction (mode 2)", ">= 2 transfers (not in the paper)",
            tc("mode 2: one line per message"),
            (f"{fmt(nat['line_rt_cycles'])} cycles ({fmt(nat['line_rt_ns'], 'ns')}) for a one-line "
             "round trip") if nat else "n/a",
            "A round trip must carry information to the other core and back: at least 2 line "
            "transfers (and, for a line the reader had cached, 2 invalidations). A message that "
            "fits one line with its own sequence number needs no index at all."),
        Row("Cached tail (mode 1): index traffic without per-message tail reads", "n/a",
            tc("mode 1: indices, cached tail"), "n/a",
            "The producer re-reads tail only when its cached copy says the ring is full (cached "
            "indices, as in MCRingBuffer, Lee et al., ANCS 2009, and Rigtorp's SPSCQueue): "
            "tail's line stops moving, head's still must. Mode 2 is FastForward's idea "
            "(Giacomoni et al., PPoPP 2008): the slot itself says it is full."),
    ]
    notes = [f"keusim counts are differences of {2 * n}- and {n}-round-trip runs divided by {n} "
             f"(steady state); counts from profile {PROFILE} (raptorlake with invalidate 80 / "
             "transfer 81 / fill 0 cycles, no pipelining discount), round-trip cycles from "
             f"raptorlake. Total events per round trip: pingpong {pp['events']:.2f}, indices "
             f"{idx['events']:.2f}, data {data['events']:.2f}, one line {one['events']:.2f}."]
    drift = [name for name, v in k.items() if "events_raptorlake" in v
             and abs(v["events_raptorlake"] - v["events"]) > 0.1]
    notes.append("event counts under raptorlake itself: " + (
        "the same as under the probe (they depend on the protocol, not on prices)" if not drift
        else "DIFFERENT from the probe for " + ", ".join(drift)))
    if nat:
        notes.append(f"native cycles = median ns x {clock.ghz:.2f} GHz ({clock.source}); run-to-run "
                     f"spread: line {100 * nat['spread']['line']:.0f}%, ring "
                     f"{100 * nat['spread']['ring']:.0f}% (placement-dependent)")
    prov = provenance(NAME, profiles=[str(Path(__file__).parent / "profiles" / f"{PROFILE}.toml"),
                                      "raptorlake"],
                      arches=("x86_64",), quick=quick,
                      parameters={"round_trips_n": n, "variants": {k2: {"system": v[0], **v[1]}
                                                                  for k2, v in VARIANTS.items()},
                                  "host_core_ghz": clock.ghz if clock else None})
    exp = Experiment(NAME, TITLE, rows, ms, prov, details={"per_round_trip": k, "native": nat},
                     notes=notes, seconds=t.seconds)
    return save(exp, out, figure)


def figure(exp: Experiment):
    import matplotlib.pyplot as plt

    k = exp.details["per_round_trip"]
    names = ["pingpong", "mode 0: indices only", "data lines (pingpong - mode 0)",
             "mode 1: indices, cached tail", "mode 2: one line per message"]
    labels = ["ring\n(pingpong)", "index lines", "data lines", "index lines,\ncached tail",
              "one line per\nmessage"]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    xf = [k[n]["transfers"] for n in names]
    iv = [k[n]["invalidations"] for n in names]
    ax.bar(labels, xf, label="transfers")
    ax.bar(labels, iv, bottom=xf, label="invalidations")
    ax.axhline(2, color="k", ls="--", lw=1)
    ax.text(4.45, 2.2, "minimum: 2 transfers", fontsize=7, ha="right")
    ax.axhline(0.05, color="r", lw=2)
    ax.text(0.6, 0.3, "paper: index lines 0", fontsize=7, color="r")
    ax.set_ylabel("coherence events per round trip")
    ax.set_title("Where a 64-byte ring round trip's coherence traffic goes (keusim, raptorlake)",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def main(argv=None) -> int:
    return script_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
