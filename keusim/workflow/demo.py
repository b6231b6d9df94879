"""``make demo``: the paper's headline claims reproduced on this host, in one table.

    keusim demo [--full] [--no-native] [--out DIR] [--workers N]

    >>> import keusim
    >>> d = keusim.demo()          # quick mode: well under a minute on 2 cores, warm cache
    >>> print(d.table())

Three parts, with progress on stderr:
  1. containment: ``hello`` and ``faults`` on x86-64 and arm64 (the kernel kills the
     misbehaving processes, records why, and the machine runs on);
  2. the paper's experiments (keusim.workflow.reproduce, quick mode unless ``full``):
     keusim simulated with the paper's profile ``raptorlake`` and the calibrated ``host``
     profile, native measurements on this host;
  3. one comparison table (claim | paper | keusim | native | why they differ) of the
     headline claims, every cell taken from the experiments' results (never typed in),
     written with the figures under ``<out>/`` (default ``results/``).
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from keusim.errors import KeusimError

ARCHES = ("x86_64", "arm64")
CONTAINMENT = ("hello", "faults")

HEADLINES: tuple[tuple[str, str], ...] = (
    ("paper_table", "Direct function call"),
    ("paper_table", "KeuOS SPSC"),
    ("paper_table", "KeuOS with proof verification"),
    ("tag_check", "Tag check: SipHash"),
    ("additivity", "Trap + copy + lock"),
    ("additivity", "are additive"),
    ("coherence", "on the index lines"),
    ("claim_56ns", "IPC latency, one way"),
)
"""The headline claims: (experiment, a phrase of its comparison row's claim). Each must
match exactly one row (tests/test_workflow.py checks it against a real quick run)."""

EXPERIMENTS = tuple(dict.fromkeys(e for e, _ in HEADLINES))
TITLE = ("The paper's headline claims (docs/paper.md) on this host: keusim simulated "
         "(profiles raptorlake and host) and native")


class DemoError(KeusimError):
    """The demo could not assemble its table (an experiment lacks a headline row)."""


@dataclass
class Containment:
    """One containment run: did every process end the way its manifest expects?"""

    scenario: str
    arch: str
    ok: bool
    line: str
    seconds: float


@dataclass
class Demo:
    """What :func:`demo` did: the containment runs, the headline rows, the files."""

    containment: list[Containment]
    rows: list
    notes: list[str]
    reproduction: object
    outdir: Path
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.containment)

    def figures(self) -> list[Path]:
        return self.reproduction.figures()

    def table(self) -> str:
        from experiments._common import render_table

        return render_table(TITLE, self.rows, self.notes, width=60)


def _first_sentences(text: str, limit: int = 240) -> str:
    """The leading sentences of ``text`` that fit in ``limit`` characters (at least one)."""
    # A sentence ends at a full stop and a space (the experiments' prose has no "e.g.").
    parts = re.split(r"(?<=\.)\s+", text.strip())
    out = parts[0]
    for p in parts[1:]:
        if len(out) + 1 + len(p) > limit:
            break
        out += " " + p
    return out


def _row(exp, phrase: str):
    hits = [r for r in exp.rows if phrase.lower() in r.claim.lower()]
    if len(hits) != 1:
        raise DemoError(f"experiment {exp.name!r} has {len(hits)} comparison rows whose claim "
                        f"contains {phrase!r}, need exactly one; update "
                        "keusim.workflow.demo.HEADLINES")
    return hits[0]


def headline_rows(experiments: dict) -> tuple[list, list[str]]:
    """The headline rows from the experiments' results, and notes on composed cells.

    Two native cells cannot be measured directly and are composed from this run's host
    measurements, said so in the cell: the verified round trip (keusim's kernel does not
    run natively) and the index lines' traffic (this VM has no PMU to count it).
    """
    from experiments._common import Row, fmt

    rows, notes = [], []
    for name, phrase in HEADLINES:
        exp = experiments[name]
        r = _row(exp, phrase)
        native = r.native
        if name == "paper_table" and "verification" in phrase and native.startswith("n/a"):
            try:
                ring = exp.value("spsc", "native")
                trap = exp.value("getppid", "native")
                tag = experiments["tag_check"].value("native desc_tag_ok (tag_ok_dep)", "native")
                native = (f"~{fmt(ring + 2 * (trap + tag))} composed: ring RT {fmt(ring)} + 2 x "
                          f"(getppid {fmt(trap)} + tag check {fmt(tag)})")
                notes.append("'composed' native cells add this run's host measurements; the "
                             "kernel's notify path does not run natively")
            except KeyError:
                pass
        if name == "coherence" and native.startswith("not countable"):
            try:
                ring = exp.value("ring ping-pong round trip 64 B", "native")
                line = exp.value("one-line ping-pong round trip", "native")
                native = (f"indirect: ring RT {fmt(ring)} = {ring / line:.1f}x a one-line RT "
                          f"({fmt(line)}), so more than one line moves each way")
            except KeyError:
                pass
        rows.append(Row(r.claim, r.paper, r.keusim, native, _first_sentences(r.why)))
    return rows, notes


def containment(progress: Callable[[str], None]) -> list[Containment]:
    """``hello`` and ``faults`` on both architectures, one summary line each."""
    from keusim.system import run

    out = []
    for arch in ARCHES:
        for name in CONTAINMENT:
            t = time.perf_counter()
            rep = run(name, arch=arch)
            secs = time.perf_counter() - t
            killed = [f"{p.name}: {p.fault.kind}" for p in rep.processes if p.fault]
            exited = [p.name for p in rep.processes if not p.fault]
            if name == "hello":
                what = rep.processes[0].console.strip().splitlines()[0] if rep.processes else ""
                line = f"{what!r}"
            else:
                line = (f"{len(killed)} killed and recorded ({', '.join(killed)}); "
                        f"{', '.join(exited) or 'none'} finished")
            c = Containment(name, arch, rep.ok, f"{'OK ' if rep.ok else 'NOT OK'} {line}", secs)
            progress(f"  {name:<7}{arch:<8}{c.line}  ({secs:.1f} s)")
            out.append(c)
    return out


def demo(*, quick: bool = True, out: str | Path | None = None, native: bool = True,
         workers: int | None = None, progress: Callable[[str], None] | None = None) -> Demo:
    """Run the demo and write ``<out>/demo/demo.{json,csv,md}``.

    Args:
        quick: the experiments' quick mode (the default; ``False`` runs the full counts,
            several minutes).
        out: results folder (default ``results/`` in the source tree).
        native: measure the native counterparts on this host.
        workers: simulation processes (default min(2, CPUs)).
        progress: called with each progress line (default: stderr).
    """
    from keusim.workflow.reproduce import experiments_package, reproduce

    experiments_package()
    from experiments._common import log, output_dir, provenance, render_markdown

    say = progress or log
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    say(f"demo part 1/3: containment ({', '.join(CONTAINMENT)} on {', '.join(ARCHES)})")
    cont = containment(say)
    secs["containment"] = time.perf_counter() - t0
    say(f"demo part 2/3: the paper's experiments{' (quick mode)' if quick else ''}: "
        + ", ".join(EXPERIMENTS))
    rep = reproduce(EXPERIMENTS, quick=quick, out=out, workers=workers, native=native,
                    progress=lambda s: say("  " + s))
    secs.update(rep.seconds)
    say("demo part 3/3: the comparison table")
    rows, notes = headline_rows(rep.experiments)
    notes = list(dict.fromkeys(notes))
    profs = rep.experiments["paper_table"].provenance.get("profiles", {})
    if "host" in profs:
        notes.append(f"profiles: raptorlake = the paper's i7-13700K from published figures; "
                     f"host = the calibrated profile {profs['host'].get('path')} (fitted on: "
                     f"{profs['host'].get('machine', {}).get('cpu', 'not recorded')}; "
                     "`keusim calibrate` fits it to this machine)")
    notes.append("every experiment's full table (the Linux rows are native only, Mach is "
                 "quoted) and the reasons: " + ", ".join(
                     str(e.outdir / f"{n}.csv") for n, e in rep.experiments.items()))
    base = Path(out) if out else None
    d = output_dir("demo", (base / "demo") if base else None)
    secs["total"] = time.perf_counter() - t0
    result = Demo(cont, rows, notes, rep, d, seconds=secs)
    prov = provenance("demo", profiles=("raptorlake", "host"), arches=ARCHES, quick=quick,
                      parameters={"native": native, "workers": workers,
                                  "experiments": list(EXPERIMENTS)})
    files = [d / "demo.json", d / "demo.csv", d / "demo.md"]
    files[0].write_text(json.dumps({
        "provenance": prov, "comparison": [asdict(r) for r in rows], "notes": notes,
        "containment": [asdict(c) for c in cont],
        "seconds": {k: round(v, 2) for k, v in secs.items()},
        "figures": [str(p) for p in result.figures()]}, indent=1) + "\n")
    with files[1].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["claim", "paper", "keusim", "native", "why"])
        for r in rows:
            w.writerow([r.claim, r.paper, r.keusim, r.native, r.why])
    files[2].write_text(f"{TITLE}\n\n{render_markdown(rows)}"
                        + "".join(f"\nnote: {n}\n" for n in notes))
    result.files = files
    return result


def command(ns) -> int:
    """``keusim demo``: run it, print the table, the figures and the time of each part."""
    d = demo(quick=not ns.full, out=ns.out, native=not ns.no_native, workers=ns.workers)
    print("Containment (the kernel kills misbehaving processes and records why):")
    for c in d.containment:
        print(f"  {c.scenario:<7}{c.arch:<8}{c.line}")
    print()
    print(d.table())
    print("figures:")
    for p in d.figures():
        print(f"  {p}")
    print(f"table: {', '.join(str(p) for p in d.files)}")
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in d.seconds.items()))
    print("demo:", "all scenarios behaved as expected" if d.ok else "SOMETHING WENT WRONG")
    sys.stdout.flush()
    return 0 if d.ok else 1


def add_arguments(ap) -> None:
    """The options of ``keusim demo`` (shared with keusim.cli)."""
    ap.add_argument("--full", action="store_true",
                    help="the experiments' full counts (minutes) instead of quick mode")
    ap.add_argument("--no-native", action="store_true", help="skip the native host measurements")
    ap.add_argument("--out", default=None, help="results folder (default results/)")
    ap.add_argument("--workers", type=int, default=None,
                    help="simulation processes (default min(2, CPUs))")
