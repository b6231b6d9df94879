"""Seed 000's claim: cross-language IPC "at just 56 nanoseconds" by bypassing the kernel.

    python experiments/claim_56ns.py [--quick] [--out DIR] [--workers N] [--no-native]

The claim names no metric, so it is set against the three a kernel-bypass shared-memory
channel can be measured by, each natively on this host and in keusim:
  one-way latency   a 64-byte ring ping-pong's round trip / 2;
  streaming         the time per 64-byte message sent back to back (a throughput);
  the floor         one cache line handed from one core to the other (a one-line
                    ping-pong's round trip / 2 natively; the profile's core_to_core and
                    exp-coh mode 2's round trip / 2 in keusim).
keusim cycles are converted to ns at each profile's clock; the stream figure is the
difference of a 2N- and an N-message run divided by N (steady state).
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
    log,
    parallel,
    provenance,
    rt_cycles,
    save,
    script_main,
    sim,
)

NAME = "claim_56ns"
TITLE = "Seed 000: 56 ns cross-language IPC, against one-way latency, streaming and the floor"
CLAIM_NS = 56.0
PROFILES = ("raptorlake", "zen3", "host")


def simulate(profiles, n: int, workers: int | None) -> dict:
    jobs, keys = [], []
    for p in profiles:
        for m in (n, 2 * n):
            jobs.append(dict(system="stream", profile=p, params={"messages": m, "size": 64}))
            keys.append(("stream", p, m))
        jobs.append(dict(system="pingpong", profile=p, params={"messages": n, "size": 64}))
        keys.append(("pingpong", p, n))
        jobs.append(dict(system="exp-coh", profile=p, params={"messages": n, "mode": 2}))
        keys.append(("one_line", p, n))
    log(f"[{NAME}] {len(jobs)} simulations")
    reps = dict(zip(keys, parallel(sim, jobs, workers), strict=True))
    from keusim.model.profiles import load_profile

    out = {}
    for p in profiles:
        prof = load_profile(p)
        a = reps[("stream", p, n)].channel(0).consumer_stats["rt_cycles"]
        b = reps[("stream", p, 2 * n)].channel(0).consumer_stats["rt_cycles"]
        cyc = {"stream": (b - a) / n, "one_way": rt_cycles(reps[("pingpong", p, n)]) / 2,
               "one_line": rt_cycles(reps[("one_line", p, n)]) / 2,
               "core_to_core": prof.cycles("coherence.core_to_core")}
        out[p] = {"ghz": prof.ghz, "cycles": cyc, "ns": {k: v / prof.ghz for k, v in cyc.items()}}
    return out


def measure_native(quick: bool) -> dict:
    from keusim.model import harness

    # Native runs at the highest CPU priority allowed (keusim.model.harness.boost).
    kw = dict(boost_priority=True,
              runs=1 if quick else 3, scale=0.05 if quick else 0.5, progress=False,
              max_reruns=0 if quick else 1)
    log(f"[{NAME}] native: ring stream, ring ping-pong, cache-line ping-pong (64 B)")
    st = harness.run_ring("stream", sizes=(64,), **kw)[0]
    pp = harness.run_ring("pingpong", sizes=(64,), **kw)[0]
    ln = harness.run_calibration_micro(["cacheline_pingpong"], **kw)[0]
    return {"stream": st.median_ns, "one_way": pp.median_ns / 2, "one_line": ln.median_ns / 2,
            "spread": {"stream": st.spread, "pingpong": pp.spread, "line": ln.spread},
            "busy": st.busy or pp.busy or ln.busy, "single_cpu": pp.single_cpu,
            "p10_p90": {"stream": (st.p10_ns, st.p90_ns), "one_way": (pp.p10_ns / 2, pp.p90_ns / 2)}}


def _ddio_cell() -> str:
    """The host's CPU as CPUID reports it, and whether it can have DDIO at all: Data
    Direct I/O is a feature of Intel Xeon server processors (Intel DDIO technology brief,
    Xeon E5 and later); no other vendor's parts have it."""
    from keusim.model import hostcpu

    cpu = hostcpu.detect()
    if cpu.vendor == "GenuineIntel":
        what = "an Intel core: DDIO is possible on a Xeon, but no device writes here"
    else:
        what = "no DDIO (an Intel Xeon feature)"
    return f"{cpu.describe()}: {what}"


def run(quick: bool = False, out: str | Path | None = None, workers: int | None = None,
        native: bool = True) -> Experiment:
    profiles = PROFILES[:1] if quick else PROFILES
    n = 240 if quick else 1000
    with Timer() as t:
        nat = measure_native(quick) if native else None
        k = simulate(profiles, n, workers)
    ms = [Measurement("cross-language IPC", "paper", CLAIM_NS, "ns",
                      note="seed 000; metric unstated; Intel DDIO + shared memory")]
    for p, v in k.items():
        for q, ns in v["ns"].items():
            ms.append(Measurement(q, "keusim", ns, "ns", profile=p, arch="x86_64", size=64,
                                  note=f"{v['cycles'][q]:.0f} cycles at {v['ghz']} GHz"))
    if nat:
        for q in ("stream", "one_way", "one_line"):
            ms.append(Measurement(q, "native", nat[q], "ns", profile="host", size=64))

    def kcell(q: str) -> str:
        return " / ".join(f"{fmt(v['ns'][q], 'ns')} ({p})" for p, v in k.items())

    def ncell(q: str) -> str:
        return f"{fmt(nat[q], 'ns')} ({nat[q] / CLAIM_NS:.1f}x the claim)" if nat else "n/a"

    rows = [
        Row("IPC latency, one way (64 B ring ping-pong / 2)", "56 ns", kcell("one_way"),
            ncell("one_way"),
            "One way takes at least one cross-core line hand-off plus the ring's own work; "
            "keusim's ring moves 4 lines per direction (coherence.py) and charges the head, "
            "tail and payload lines' hand-offs in sequence. 56 ns one way is plausible for a "
            "one-line mailbox on a fast ring bus, not for a round trip."),
        Row("Per message when streaming (64 B, back to back)", "56 ns (if this is what it means)",
            kcell("stream"), ncell("stream"),
            "Natively, streaming overlaps hand-offs (stores retire into the store buffer, the "
            "producer runs ahead), so per-message time is below the latency: a throughput "
            "quoted as a latency is the likeliest reading of 56 ns. keusim overlaps only runs of "
            "adjacent lines (coherence.stream_line) and still charges each message's head, "
            "tail and payload hand-offs in full and in sequence (docs/cycle-model.md section "
            "7), so its streaming figure stays near, or above, its one-way latency."),
        Row("Floor: one cache line handed to the other core", "below 56 ns (implied)",
            " / ".join(f"{fmt(v['ns']['core_to_core'], 'ns')} profile, "
                       f"{fmt(v['ns']['one_line'], 'ns')} one-line mailbox ({p})"
                       for p, v in k.items()),
            ncell("one_line"),
            "No cross-core channel can beat its line hand-off. keusim's first figure is the "
            "profile's core_to_core (a published or calibrated number, not a simulation result); "
            "the second is exp_coh mode 2's round trip / 2, which can come out below it because "
            "the model charges the writer's invalidation off the reader's path."),
        Row("Needs Intel DDIO; cross-language", "yes", "not modelled",
            _ddio_cell() if nat else "n/a",
            "DDIO steers a device's DMA writes into the last-level cache; between two processes "
            "there is no device, and cache coherence already moves the lines. The language on "
            "either side does not change the memory path (the native harness and the guests run "
            "the same C ring)."),
    ]
    notes = []
    if nat:
        notes.append("native figures depend on where the two vCPUs land (placement moves the "
                     "one-line hand-off 2-5x between runs, docs/host-baselines.md); run-to-run "
                     "spread within this run: " + ", ".join(
            f"{a} {100 * b:.0f}%" for a, b in nat["spread"].items())
            + ("; some results were taken on a busy machine" if nat["busy"] else ""))
    notes.append(f"keusim: stream per message = (2N - N message runs) / N with N = {n}; one way = "
                 "pingpong round trip / 2 (lookahead 10 cycles)")
    prov = provenance(NAME, profiles=profiles, arches=("x86_64",), quick=quick,
                      parameters={"size": 64, "n": n, "native_runs": 1 if quick else 3})
    exp = Experiment(NAME, TITLE, rows, ms, prov, details={"keusim": k, "native": nat},
                     notes=notes, seconds=t.seconds)
    return save(exp, out, figure)


def figure(exp: Experiment):
    import matplotlib.pyplot as plt

    k, nat = exp.details["keusim"], exp.details["native"]
    qs = [("one_way", "one-way latency\n(ping-pong / 2)"), ("stream", "per message,\nstreaming"),
          ("one_line", "one line\nhanded off")]
    series = {f"keusim {p}": [v["ns"][q] for q, _ in qs] for p, v in k.items()}
    if nat:
        series["native host"] = [nat[q] for q, _ in qs]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    w = 0.8 / len(series)
    for i, (name, vals) in enumerate(series.items()):
        ax.bar([j + (i - (len(series) - 1) / 2) * w for j in range(len(qs))], vals, w, label=name)
    ax.axhline(CLAIM_NS, color="r", ls="--", lw=1.2)
    ax.text(2.45, CLAIM_NS * 1.04, "seed 000: 56 ns", color="r", fontsize=8, ha="right")
    ax.set_xticks(range(len(qs)), [lbl for _, lbl in qs])
    ax.set_ylabel("ns")
    ax.set_title("56 ns against what a shared-memory channel can be measured by (64 B)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def main(argv=None) -> int:
    return script_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
