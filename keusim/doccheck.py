"""Documented tables that must reproduce: regenerate them and compare.

A markdown table in docs/ whose numbers come from keusim itself carries a marker on the
line before it::

    <!-- docs-check: notify-split -->
    | | trap | tag | routing | total |
    |---|---|---|---|---|
    | x86_64, instructions | 49 | ...

The name picks a generator in :data:`TABLES`, which reruns what produced the table (the
command is written beside the table in the doc) and returns the table's lines.
:func:`check` compares every marked table with its regenerated lines and returns what
differs; ``make docs-check`` runs it over docs/*.md and README.md, and
``tests/test_docs.py`` runs its quick form (the cheap rows of each table, which must
appear verbatim) in the test suite.

Only deterministic tables are marked: simulated cycles, instruction counts, profile
numbers. Native measurements (validation, host baselines) vary from run to run and
carry their command and date instead. The experiment tables of docs/experiments.md
mix both, so :func:`experiment_cells` checks only their simulated column against a fresh
``--no-native`` run of each experiment (part of ``make docs-check``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from keusim.errors import KeusimError

MARKER = re.compile(r"^<!--\s*docs-check:\s*([\w-]+)\s*-->\s*$")


class DocCheckError(KeusimError):
    """A marker names no known table, or is not followed by a table."""


@dataclass(frozen=True)
class Mismatch:
    """A documented table that no longer reproduces."""

    path: str
    line: int
    """Line of the marker (1-based)."""
    table: str
    documented: tuple[str, ...]
    regenerated: tuple[str, ...]

    def describe(self) -> str:
        """The table, and each documented line beside what keusim gives now."""
        doc, new = set(self.documented), set(self.regenerated)
        out = [f"{self.path}:{self.line}: table {self.table!r} no longer reproduces:"]
        out += [f"  documented:  {ln}" for ln in self.documented if ln not in new]
        out += [f"  regenerated: {ln}" for ln in self.regenerated if ln not in doc]
        return "\n".join(out)


# --------------------------------------------------------------------------- generators


def _fmt_int(v: float) -> str:
    return f"{round(v):,}"


def profiles_table(quick: bool = False) -> list[str]:
    """docs/cycle-model.md §2: key numbers of every packaged profile (the packaged files,
    not a calibrated ``host`` that shadows them)."""
    from keusim.model.profiles import PROFILE_DIR, list_profiles, load_profile

    head = ["| profile | ISA | GHz | memory ops/cycle | L1 | L2 | L3 | DRAM | core-to-core "
            "| xfer/inval/fill | stream | posted writes | syscall in/out | IPI | estimates |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|---:|---:|"]
    rows = []
    for n in list_profiles():
        p = load_profile(PROFILE_DIR / f"{n}.toml")
        x, i, f = p.coherence()
        est = sum(q.estimate for q in p.params.values()) + \
            sum(c.estimate for c in p.classes.values())
        rows.append(f"| `{p.name}` | {p.isa} | {p.ghz:g} | {p.memory_ops:g} | "
                    + " | ".join(str(p.cycles(f"memory.{k}")) for k in ("l1", "l2", "l3", "dram"))
                    + f" | {p.cycles('coherence.core_to_core')} | {x}/{i}/{f} | "
                    f"{p.coherence_stream() or '-'} | {'yes' if p.coherence_posted() else 'no'} | "
                    f"{p.cycles('trap.syscall_entry')}/{p.cycles('trap.syscall_exit')} | "
                    f"{p.ipi_cycles} | {est} |")
    return head + rows


NOTIFY_SPLIT = (("x86_64", "zen3"), ("arm64", "neoverse-n1"))


def notify_split_table(quick: bool = False) -> list[str]:
    """docs/notify.md: the kernel's cost of one verified notify, split (N = 200).

    ``keusim.analysis.notifycost.measure(arch, 200, profile)``: an instructions row and a
    cycles row per architecture (instructions do not depend on the profile); quick: the
    first architecture only."""
    from keusim.analysis.notifycost import measure

    lines = ["| | trap | tag | routing | total |", "|---|---|---|---|---|"]
    for arch, prof in NOTIFY_SPLIT[:1] if quick else NOTIFY_SPLIT:
        c = measure(arch, 200, prof)
        sip = c.functions.get("siphash24", {}).get("instructions", 0)
        lines.append(f"| {arch}, instructions | {c.trap.instructions:.0f} | "
                     f"{c.tag.instructions:.0f} (`siphash24` {sip:.0f}) | "
                     f"{c.routing.instructions:.0f} | {c.total.instructions:.0f} |")
        lines.append(f"| {arch}, cycles, profile `{prof}` | {c.trap.cycles:.0f} | "
                     f"{c.tag.cycles:.0f} | {c.routing.cycles:.0f} | {c.total.cycles:.0f} |")
    return lines


PINGPONG_ROWS = (("x86_64", None), ("x86_64", "zen3"), ("arm64", None),
                 ("arm64", "neoverse-n1"))


def pingpong_modes_table(quick: bool = False) -> list[str]:
    """docs/notify.md: model cycles per pingpong round trip (1000 round trips, 64 B), poll
    mode beside verified notify mode. ``keusim run pingpong --messages 1000 --size 64
    [--verified] --arch A --profile P``; quick: the x86-64 flat row."""
    from keusim.system import run

    lines = ["| pingpong, 1000 round trips, 64 B | poll | notify + verified |",
             "|---|---|---|"]
    for arch, prof in PINGPONG_ROWS:
        if quick and (arch, prof) != ("x86_64", None):
            continue
        cells = []
        for verified in (False, True):
            r = run("pingpong", arch=arch, profile=prof, verified=verified,
                    params={"messages": 1000, "size": 64})
            if not r.ok:
                raise DocCheckError(f"pingpong on {arch} ({prof or 'flat'}) did not finish: "
                                    f"{r.status} {r.message}")
            st = r.channel(0).producer_stats
            cells.append(f"{_fmt_int(st['rt_cycles'] / st['round_trips'])} cycles")
        lines.append(f"| {arch}, {f'`{prof}`' if prof else 'flat'} | {cells[0]} | {cells[1]} |")
    return lines


NETD_ROWS = (("x86_64", "raptorlake"), ("arm64", "neoverse-n1"))


def netd_table(quick: bool = False) -> list[str]:
    """docs/experiments.md: cycles per packet and system calls per 1,000 packets on the
    emulated NIC, 64-byte UDP echo, for NetD with an application, NetD alone and the
    kernel-mediated path (``keusim.net.pathcost.measure(arch, profile, path, 64, 64)``;
    ``python experiments/netd_table.py`` prints the same and more); quick: x86-64 only."""
    from keusim.net.pathcost import PATHS, measure

    lines = ["| 64 B UDP echo | " + " | ".join(f"{p}: cycles / calls per 1,000" for p in PATHS) + " |",
             "|---|" + "---|" * len(PATHS)]
    for arch, prof in NETD_ROWS[:1] if quick else NETD_ROWS:
        cells = []
        for path in PATHS:
            c = measure(arch, prof, path, 64, 64)
            cells.append(f"{_fmt_int(c.cycles)} / {_fmt_int(c.calls_per_1000)}")
        lines.append(f"| {arch}, `{prof}` | " + " | ".join(cells) + " |")
    return lines


def readme_claims_table(quick: bool = False) -> list[str]:
    """README.md "What it measured": the paper's headline claims beside keusim's simulated
    figures, each with the command that prints it. The pingpong cells are what ``keusim run
    pingpong --profile raptorlake [--verified]`` prints (the guest's integer mean over 1000
    round trips); the hand-off floor is twice the profile's ``coherence.core_to_core``; the
    tag check is ``keusim notifycost --profile zen3``'s tag part. Quick: the header and
    the first row."""
    from keusim.analysis.notifycost import measure
    from keusim.model.profiles import load_profile
    from keusim.system import run

    def rt(verified: bool) -> int:
        r = run("pingpong", profile="raptorlake", verified=verified)
        if not r.ok:
            raise DocCheckError(f"pingpong (raptorlake) did not finish: {r.status} {r.message}")
        st = r.channel(0).producer_stats
        return st["rt_cycles"] // st["round_trips"]

    c2c = load_profile("raptorlake").cycles("coherence.core_to_core")
    lines = ["| claim (seed 003, KeuOS) | paper | keusim | command |", "|---|---:|---:|---|",
             f"| SPSC round trip, 64 B, i7-13700K | 150 cycles | {rt(False):,} cycles "
             f"(`raptorlake` profile); two line hand-offs alone are ~{2 * c2c:,} | "
             "`keusim run pingpong --profile raptorlake` |"]
    if quick:
        return lines
    c = measure("x86_64", 200, "zen3")
    lines += [
        f"| same, with proof verification | 175 cycles | {rt(True):,} cycles: 4 kernel entries "
        "+ 2 IPI wake-ups per round trip | `keusim run pingpong --profile raptorlake --verified` |",
        f"| SipHash tag check | ~15 cycles (\"CRC extension\") | {c.tag.instructions:.0f} kernel "
        f"instructions, {c.tag.cycles:.0f} cycles (zen3); SipHash has no CRC instruction | "
        "`keusim notifycost --profile zen3` |",
        "| the paper's `produce()` is safe | (Z3-verified) | counterexamples: a full ring reads "
        "as empty; the copy runs past the 4 KiB buffer | `keusim prove paper` |",
        "| \"no sync needed\" for the indices | | stale payload allowed on ARMv8 without "
        "release/acquire | `keusim prove ordering` |",
        "| trap + copy + lock add up (4 KiB message) | 1,000 + 200 + 200 = 1,400 | additive "
        "(asserted); per-part cycles on `raptorlake` and `host` and the native twin in "
        "docs/experiments.md §2 | `python experiments/additivity.py` |"]
    return lines


TABLES: dict[str, Callable[[bool], list[str]]] = {
    "profiles": profiles_table,
    "notify-split": notify_split_table,
    "pingpong-modes": pingpong_modes_table,
    "netd-table": netd_table,
    "readme-claims": readme_claims_table,
}
"""Marker name -> generator(quick) of the table's lines (header and separator first)."""


# --------------------------------------------------------------------------- checking


def marked_tables(text: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(marker line, table name, the table's lines) for every marker in ``text``.

    Raises:
        DocCheckError: a marker names no generator, or no table follows it.
    """
    lines = text.splitlines()
    out = []
    for i, ln in enumerate(lines):
        m = MARKER.match(ln.strip())
        if not m:
            continue
        name = m[1]
        if name not in TABLES:
            raise DocCheckError(f"line {i + 1}: docs-check marker names no table {name!r}; "
                                f"known: {', '.join(TABLES)}")
        body = []
        for nxt in lines[i + 1:]:
            if not nxt.lstrip().startswith("|"):
                break
            body.append(nxt.strip())
        if len(body) < 2:
            raise DocCheckError(f"line {i + 1}: docs-check marker {name!r} is not followed by "
                                "a markdown table")
        out.append((i + 1, name, tuple(body)))
    return out


def check(paths: Iterable[str | Path], quick: bool = False,
          only: Iterable[str] | None = None) -> list[Mismatch]:
    """Regenerate every marked table in ``paths`` and return those that differ.

    Full: the regenerated table must equal the documented one line for line. Quick: every
    line the generator gives in its quick form (header and the cheap rows) must appear in
    the documented table, verbatim. ``only`` restricts to these table names.
    """
    wanted = set(only) if only is not None else None
    out: list[Mismatch] = []
    cache: dict[str, tuple[str, ...]] = {}
    for path in paths:
        p = Path(path)
        for line, name, doc in marked_tables(p.read_text()):
            if wanted is not None and name not in wanted:
                continue
            if name not in cache:
                cache[name] = tuple(TABLES[name](quick))
            new = cache[name]
            same = set(new) <= set(doc) if quick else new == doc
            if not same:
                out.append(Mismatch(str(path), line, name, doc, new))
    return out


def update(paths: Iterable[str | Path]) -> list[str]:
    """Regenerate every marked table in ``paths`` (full form) and write it in place.
    Returns ``path:line name`` of each table that changed. The prose around a table is
    not touched: read what changed before committing it."""
    changed: list[str] = []
    cache: dict[str, tuple[str, ...]] = {}
    for path in paths:
        p = Path(path)
        lines = p.read_text().splitlines(keepends=True)
        for line, name, doc in reversed(marked_tables("".join(lines))):
            if name not in cache:
                cache[name] = tuple(TABLES[name](False))
            if cache[name] != doc:
                lines[line:line + len(doc)] = [ln + "\n" for ln in cache[name]]
                changed.append(f"{p}:{line} {name}")
        p.write_text("".join(lines))
    return changed


# ----------------------------------------------------- experiment tables' simulated cells

EXPERIMENT_TABLES = ("paper_table", "additivity", "tag_check", "coherence", "claim_56ns")
"""docs/experiments.md sections 1-5: tables written from each experiment's JSON."""

_CELL_SPLIT = re.compile(r"(?<!\\) \| ")


def _cells(row: str) -> list[str]:
    return _CELL_SPLIT.split(row.strip()[2:-2])


def experiment_cells(doc: str | Path | None = None, names: Iterable[str] = EXPERIMENT_TABLES,
                     results: dict[str, dict] | None = None) -> list[Mismatch]:
    """The simulated ("keusim") cell of every row of the experiment tables in
    docs/experiments.md against a fresh ``python experiments/<name>.py --no-native`` run.

    The native cells move with the host and the "why" cells quote native numbers, so only
    the keusim cells are compared (simulated figures are deterministic). A row of the
    fresh run that the doc's table lacks is reported too. ``results`` (name -> the
    experiment's JSON) skips the runs (tests)."""
    import json
    import subprocess
    import sys
    import tempfile

    from keusim.toolchain import ROOT

    path = Path(doc) if doc else ROOT / "docs" / "experiments.md"
    lines = path.read_text().splitlines()
    out: list[Mismatch] = []
    for name in names:
        if results is not None and name in results:
            data = results[name]
        else:
            with tempfile.TemporaryDirectory() as d:
                subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"),
                                "--no-native", "--out", d], check=True, capture_output=True,
                               cwd=ROOT)
                data = json.loads(next(Path(d).rglob(f"{name}.json")).read_text())
        head = next((i for i, ln in enumerate(lines)
                     if ln.startswith(f"`python experiments/{name}.py` ")), None)
        if head is None:
            raise DocCheckError(f"{path}: no table headed `python experiments/{name}.py` ...")
        rows, i = {}, head + 2
        while i < len(lines) and lines[i].startswith("|"):
            c = _cells(lines[i])
            if len(c) >= 3:
                rows[c[0]] = (i + 1, c[2])
            i += 1
        for r in data["comparison"]:
            claim = str(r["claim"]).replace("|", "\\|")
            want = str(r["keusim"]).replace("|", "\\|")
            line, got = rows.get(claim, (head + 1, None))
            if got != want:
                out.append(Mismatch(str(path), line, f"{name}: {r['claim']}",
                                    (f"keusim cell: {got}",), (f"keusim cell: {want}",)))
    return out


def doc_files(root: Path | None = None) -> list[Path]:
    """The markdown files the check reads: README.md and docs/*.md."""
    from keusim.toolchain import ROOT

    root = root or ROOT
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def run(quick: bool = False) -> int:
    """``make docs-check``: check every documented table and (full form) the simulated
    cells of docs/experiments.md's experiment tables; print what differs; 0 if none."""
    bad = check(doc_files(), quick=quick)
    if not quick:
        cells = experiment_cells()
        print(f"docs-check: experiment tables' simulated cells: {len(cells)} differ")
        bad += cells
    for m in bad:
        print(m.describe())
    n = sum(len(marked_tables(p.read_text())) for p in doc_files())
    print(f"docs-check: {n} marked tables, {len(bad)} no longer reproduce"
          + (" (quick form)" if quick else ""))
    return 1 if bad else 0


__all__ = ["DocCheckError", "MARKER", "Mismatch", "TABLES", "check", "doc_files",
           "marked_tables", "run", "update"]
