"""A fuzzing campaign: many seeded runs, invariants checked on each, failures
minimized and saved as regression cases (docs/fuzzing.md)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from keusim.errors import KeusimError
from keusim.fuzz import target as T
from keusim.fuzz.gen import generate, run_seed
from keusim.fuzz.minimize import minimize_program
from keusim.fuzz.program import Program
from keusim.report import RunReport

CASE_VERSION = 1


@dataclass
class RunOutcome:
    index: int
    arch: str
    seed: int
    violations: list[T.Violation]
    attacker: str               # how the attacker ended: a fault kind, "exit N" or "running"


@dataclass
class Summary:
    """What a campaign found. Counts are runs (a run counts once per invariant)."""

    runs: int = 0
    host_seconds: float = 0.0       # the runs and their determinism re-runs
    minimize_seconds: float = 0.0   # minimizing and saving cases (not in runs_per_second)
    determinism_checked: int = 0
    by_invariant: Counter = field(default_factory=Counter)
    by_arch: dict[str, Counter] = field(default_factory=dict)   # arch -> invariant -> runs
    attacker_outcomes: Counter = field(default_factory=Counter)
    failures: list[RunOutcome] = field(default_factory=list)
    saved: list[Path] = field(default_factory=list)

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.host_seconds if self.host_seconds else 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        inv = {k: self.by_invariant.get(k, 0) for k in T.INVARIANTS}
        lines = [f"fuzz: {self.runs} runs in {self.host_seconds:.1f} host s "
                 f"({self.runs_per_second:.2f} runs/s); determinism re-checked on "
                 f"{self.determinism_checked} runs; minimizing took {self.minimize_seconds:.1f} s",
                 f"  machine stops {inv['machine-stop']}, kernel panics {inv['kernel-panic']}, "
                 f"honest processes harmed {inv['honest-harmed']}, determinism failures "
                 f"{inv['determinism']}",
                 "  runs failing each invariant: " + ", ".join(f"{k} {v}" for k, v in inv.items())]
        for arch, c in sorted(self.by_arch.items()):
            lines.append(f"    {arch}: runs {c['runs']}, " + ", ".join(
                f"{k} {c.get(k, 0)}" for k in T.INVARIANTS))
        lines.append("  attacker ended by: " + ", ".join(
            f"{k} {v}" for k, v in sorted(self.attacker_outcomes.items(),
                                          key=lambda kv: (-kv[1], kv[0]))))
        seen: dict[str, RunOutcome] = {}
        for f in self.failures:
            seen.setdefault(T.primary(f.violations).key(), f)
        if seen:
            lines.append(f"  {len(seen)} distinct failures (first run of each):")
            for f in seen.values():
                p = T.primary(f.violations)
                lines.append(f"    run {f.index} ({f.arch}, seed {f.seed:#x}): "
                             f"{p.invariant}: {p.detail}")
        for p in self.saved:
            lines.append(f"  saved regression case {p}")
        return "\n".join(lines)


def attacker_outcome(rep: RunReport) -> str:
    a = next(p for p in rep.processes if p.name == T.ATTACKER)
    if a.fault is not None:
        return a.fault.kind
    return f"exit {a.exit_code}" if a.exit_code is not None else "running"


def run_checked(t: T.Target, prog: Program, determinism: bool = False,
                kernel_flags: int = 0) -> tuple[RunReport, list[T.Violation]]:
    """Run prog once (twice with determinism) and check every invariant."""
    rep = T.run_program(t, prog, kernel_flags)
    vs = T.check_run(t, rep, prog)
    if determinism:
        again = T.run_program(t, prog, kernel_flags)
        if again.to_json() != rep.to_json():
            vs.append(T.Violation("determinism", "the same program gave a different report"))
    return rep, vs


def fails_like(t: T.Target, key: str, kernel_flags: int = 0) -> Callable[[Program], bool]:
    """A predicate: prog's run shows the violation with this key (Violation.key)."""
    det = key.startswith("determinism")

    def fails(prog: Program) -> bool:
        _, vs = run_checked(t, prog, det, kernel_flags)
        return any(v.key() == key for v in vs)
    return fails


def save_case(path: Path, t: T.Target, outcome: RunOutcome, prog: Program, original: Program,
              kernel_flags: int = 0) -> Path:
    """Write a regression case: the minimized program and what it broke."""
    p = T.primary(outcome.violations)
    md = t.facts.disasm()

    def described(d: dict) -> dict:
        if d["op"] == "exec":    # the snippet as it now is, not as the generator named it
            d["note"] = "; ".join(f"{i.mnemonic} {i.op_str}".strip()
                                  for u in d["code"] for i in md.disasm(bytes.fromhex(u), 0)
                                  ) or "(no decodable instruction)"
        return d
    doc = {"version": CASE_VERSION, "arch": t.arch, "seed": f"{outcome.seed:#x}",
           "kernel_flags": kernel_flags, "invariant": p.invariant, "violation": p.detail,
           "key": p.key(), "original_ops": len(original.ops),
           "program": [described(d) for d in prog.as_json()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load_case(path: Path) -> dict:
    """A saved case: its fields, with "program" as a Program."""
    try:
        doc = json.loads(Path(path).read_text())
        doc["program"] = Program.from_json(doc["program"])
        doc["arch"], doc["key"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KeusimError(f"{path}: not a fuzz regression case ({e}); cases are written by "
                          f"`keusim fuzz` (docs/fuzzing.md)") from e
    return doc


def replay_case(path: Path, targets: dict[str, T.Target] | None = None
                ) -> tuple[RunReport, list[T.Violation]]:
    """Run a saved case (with the determinism check) and return its violations."""
    doc = load_case(path)
    targets = targets if targets is not None else {}
    t = targets.get(doc["arch"]) or targets.setdefault(doc["arch"], T.build_target(doc["arch"]))
    return run_checked(t, doc["program"], True, int(doc.get("kernel_flags", 0)))


def minimize_run(t: T.Target, seed: int, save_dir: Path, max_ops: int = 40,
                 kernel_flags: int = 0, index: int = -1) -> Path | None:
    """Re-generate the program of seed on t, minimize its most severe failure and
    save it under save_dir. Returns the case path, or None if the run passes."""
    prog = generate(t, seed, max_ops)
    rep, vs = run_checked(t, prog, True, kernel_flags)
    if not vs:
        return None
    p = T.primary(vs)
    small = minimize_program(prog, fails_like(t, p.key(), kernel_flags))
    out = RunOutcome(index, t.arch, seed, vs, attacker_outcome(rep))
    return save_case(Path(save_dir) / f"{t.arch}-{p.invariant}-{seed:016x}.json", t, out, small,
                     prog, kernel_flags)


def fuzz(runs: int, seed: int, archs: tuple[str, ...] = ("x86_64", "arm64"),
         determinism_every: int = 50, minimize: bool = True, save_dir: Path | None = None,
         max_saves: int = 8, kernel_flags: int = 0, max_ops: int = 40,
         progress: Callable[[int, int], None] | None = None) -> Summary:
    """Run a campaign of `runs` runs from `seed`, alternating over archs.

    Run i uses seed run_seed(seed, i) on archs[i % len(archs)]; every
    determinism_every-th run (0: none; 1: all) is run twice and the JSON reports
    compared. The first failure of each distinct kind (Violation.key) is minimized
    (if minimize) and saved under save_dir (if given), up to max_saves cases.
    progress(i, failures) is called after every run.
    """
    if runs < 0:
        raise KeusimError(f"--runs {runs}: must be 0 or more")
    targets = {a: T.build_target(a) for a in archs}
    s = Summary()
    seen: set[str] = set()
    t0 = time.perf_counter()
    for i in range(runs):
        arch = archs[i % len(archs)]
        t = targets[arch]
        rseed = run_seed(seed, i)
        prog = generate(t, rseed, max_ops)
        det = determinism_every > 0 and i % determinism_every == 0
        rep, vs = run_checked(t, prog, det, kernel_flags)
        s.runs += 1
        s.determinism_checked += det
        per = s.by_arch.setdefault(arch, Counter())
        per["runs"] += 1
        s.attacker_outcomes[attacker_outcome(rep)] += 1
        if vs:
            out = RunOutcome(i, arch, rseed, vs, attacker_outcome(rep))
            s.failures.append(out)
            for inv in {v.invariant for v in vs}:
                s.by_invariant[inv] += 1
                per[inv] += 1
            key = T.primary(vs).key()
            if key not in seen and save_dir is not None and len(s.saved) < max_saves:
                seen.add(key)
                m0 = time.perf_counter()
                small = minimize_program(prog, fails_like(t, key, kernel_flags)) if minimize else prog
                name = f"{arch}-{T.primary(vs).invariant}-{rseed:016x}.json"
                s.saved.append(save_case(Path(save_dir) / name, t, out, small, prog, kernel_flags))
                s.minimize_seconds += time.perf_counter() - m0
        if progress:
            progress(i + 1, len(s.failures))
    s.host_seconds = time.perf_counter() - t0 - s.minimize_seconds
    return s
