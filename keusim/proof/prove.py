"""The proof runner: discovers the Z3 proofs in ``proofs/`` and runs them.

A proof module is a plain Python file in ``proofs/`` (under :data:`keusim.toolchain.ROOT`)
that defines ``PROOFS``, a sequence of :class:`Proof`, and/or ``proofs()``, a function
returning one (for proofs that are built from run-time data, such as a kernel's page-table
dump). Files whose names start with ``_`` are skipped. Modules are loaded by path, so
``proofs/`` needs no ``__init__.py``; each also runs on its own
(``python proofs/ring_invariants.py``) through :func:`run_as_script`.

Code that builds proofs elsewhere (a notebook, a future gate-policy checker) can add them
with :func:`register`; they then appear in :func:`list_proofs` and :func:`run_proofs`.

    >>> from keusim.proof import prove
    >>> results = prove.run_proofs(["ring.produce"])   # a name, a dotted prefix or a file stem
    >>> print(prove.render_table(results))
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from keusim.errors import KeusimError

OUTCOMES = ("proved", "counterexample", "unknown", "error")
DEFAULT_BUDGET = 120.0
"""Seconds one proof may take under ``keusim prove`` before it is stopped (``unknown``)."""


@dataclass(frozen=True)
class Outcome:
    """What a proof's check returns.

    ``details`` carries the counterexample as data (values by name) for tests and
    notebooks; ``counterexample`` is the same thing rendered for people.
    """

    outcome: str
    counterexample: str | None = None
    details: Any = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")


@dataclass(frozen=True)
class Proof:
    """One named property and the function that checks it.

    ``expected`` is ``"proved"`` for a property that must hold, or ``"counterexample"``
    for one that must fail (a mutant of the ring, a bug in the paper's pseudo-code).
    """

    name: str
    property: str
    check: Callable[[], Outcome]
    expected: str = "proved"
    module: str = ""


@dataclass(frozen=True)
class ProofResult:
    """The result of running one proof; ``ok`` means the outcome was the expected one."""

    name: str
    property: str
    expected: str
    outcome: str
    ok: bool
    seconds: float
    counterexample: str | None = None


_REGISTERED: dict[str, Proof] = {}
_MODULES: dict[Path, ModuleType] = {}


def proofs_dir() -> Path:
    from keusim.toolchain import ROOT

    return ROOT / "proofs"


def register(*proofs: Proof) -> None:
    """Add proofs built outside ``proofs/`` (names must be unique)."""
    for p in proofs:
        _REGISTERED[p.name] = p


def load_module(stem: str, folder: Path | None = None) -> ModuleType:
    """Import ``proofs/<stem>.py`` by path (cached); tests use it to reach helpers."""
    path = ((folder or proofs_dir()) / f"{stem}.py").resolve()
    if path in _MODULES:
        return _MODULES[path]
    if not path.is_file():
        raise KeusimError(f"no proof module {path}; the proofs live in {path.parent}")
    spec = importlib.util.spec_from_file_location(f"keusim_proofs.{stem}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered while it runs
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    _MODULES[path] = mod
    return mod


def _module_proofs(mod: ModuleType, stem: str) -> list[Proof]:
    found: list[Proof] = list(getattr(mod, "PROOFS", ()))
    fn = getattr(mod, "proofs", None)
    if callable(fn):
        found.extend(fn())
    return [dataclasses.replace(p, module=p.module or stem) for p in found]


def discover(folder: Path | None = None) -> list[Proof]:
    """Every proof: those in ``proofs/*.py`` (file order, then definition order), then
    the registered ones. Raises KeusimError on a duplicate name."""
    folder = folder or proofs_dir()
    out: dict[str, Proof] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        for p in _module_proofs(load_module(path.stem, folder), path.stem):
            if p.name in out:
                raise KeusimError(f"proof name {p.name!r} is defined twice "
                                  f"({out[p.name].module} and {p.module})")
            out[p.name] = p
    for name, p in _REGISTERED.items():
        if name in out:
            raise KeusimError(f"registered proof {name!r} clashes with one in {out[name].module}")
        out[name] = p
    return list(out.values())


def list_proofs() -> list[str]:
    """The names of every proof, in run order."""
    return [p.name for p in discover()]


def select(names: Sequence[str] | None, proofs: Sequence[Proof]) -> list[Proof]:
    """Proofs matching ``names``: exact names, dotted prefixes (``ring.produce``) or the
    stems of proof files (``paper_produce``). ``None`` or empty selects all."""
    if not names:
        return list(proofs)
    chosen: dict[str, Proof] = {}
    for n in names:
        hit = [p for p in proofs
               if p.name == n or p.name.startswith(n + ".") or p.module == n]
        if not hit:
            known = ", ".join(sorted({p.name.split(".")[0] for p in proofs} |
                                     {p.module for p in proofs}))
            raise KeusimError(f"no proof named {n!r}; give a proof name, a dotted prefix "
                              f"or a file (groups and files: {known})")
        for p in hit:
            chosen.setdefault(p.name, p)
    return [p for p in proofs if p.name in chosen]


def _check(p: Proof) -> tuple[str, str | None]:
    try:
        o = p.check()
        return o.outcome, o.counterexample
    except Exception as e:  # a broken model must not hide the other results
        return "error", f"{type(e).__name__}: {e}"


def _child(p: Proof, conn: Any) -> None:
    conn.send(_check(p))
    conn.close()


def run_one(p: Proof, budget: float | None = None) -> ProofResult:
    """Run one proof. An exception becomes outcome ``error`` with its message.

    With a ``budget`` (seconds) the proof runs in a forked child that is killed when
    the budget is spent; the outcome is then ``unknown`` ("exceeded its budget"). A guest
    that spins, a Z3 query that never returns or a lifter loop cannot hang the runner.
    """
    t0 = time.perf_counter()
    if budget is None:
        outcome, cex = _check(p)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        recv, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child, args=(p, send), daemon=True)
        child.start()
        send.close()
        if recv.poll(budget):
            try:
                outcome, cex = recv.recv()
            except EOFError:
                outcome, cex = "error", "the proof process died without a result"
        else:
            outcome, cex = "unknown", f"exceeded its budget of {budget:g} s; stopped"
        child.kill()
        child.join()
    dt = time.perf_counter() - t0
    return ProofResult(p.name, p.property, p.expected, outcome, outcome == p.expected, dt, cex)


def _batch_child(ps: Sequence[Proof], conn: Any) -> None:
    for p in ps:
        t0 = time.perf_counter()
        outcome, cex = _check(p)
        conn.send((outcome, cex, time.perf_counter() - t0))
    conn.close()


def run_batch(ps: Sequence[Proof], budget: float, stop_on_fail: bool = False
               ) -> list[ProofResult]:
    """Run proofs of one module in one forked child (so they share its caches: the
    ordering proofs reuse the refinement proofs' lifted paths), waiting at most
    ``budget`` seconds for each result. A proof over budget is ``unknown``; the child is
    killed and a new one runs the rest."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    out: list[ProofResult] = []
    todo = list(ps)
    while todo:
        recv, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_batch_child, args=(todo, send), daemon=True)
        child.start()
        send.close()
        done = 0
        for p in todo:
            t0 = time.perf_counter()
            if recv.poll(budget):
                try:
                    outcome, cex, dt = recv.recv()
                except EOFError:
                    outcome, cex, dt = ("error", "the proof process died without a result",
                                        time.perf_counter() - t0)
                    done += 1
                    out.append(ProofResult(p.name, p.property, p.expected, outcome, False, dt,
                                           cex))
                    break
            else:
                outcome, cex, dt = ("unknown", f"exceeded its budget of {budget:g} s; stopped",
                                    time.perf_counter() - t0)
                done += 1
                out.append(ProofResult(p.name, p.property, p.expected, outcome, False, dt, cex))
                break
            done += 1
            out.append(ProofResult(p.name, p.property, p.expected, outcome,
                                   outcome == p.expected, dt, cex))
            if stop_on_fail and outcome != p.expected:
                break
        child.kill()
        child.join()
        if stop_on_fail and out and not out[-1].ok:
            return out
        todo = todo[done:]
    return out


def run_proofs(names: list[str] | None = None, budget: float | None = None,
               proofs: Sequence[Proof] | None = None) -> list[ProofResult]:
    """Run the named proofs (all when ``names`` is None) and return their results.

    ``budget`` (seconds per proof): the proofs of each module run in a child process
    and any proof still running after ``budget`` seconds is stopped and reported
    ``unknown`` (see :func:`run_batch`). Without it they run in this process.
    """
    chosen = select(names, list(proofs or discover()))
    if budget is None:
        return [run_one(p) for p in chosen]
    out: list[ProofResult] = []
    i = 0
    while i < len(chosen):
        j = i
        while j < len(chosen) and chosen[j].module == chosen[i].module:
            j += 1
        out.extend(run_batch(chosen[i:j], budget))
        i = j
    return out


def render_table(results: Iterable[ProofResult], counterexamples: bool = True) -> str:
    """A fixed-width table, a summary line, then each counterexample."""
    rs = list(results)
    w = max([len(r.name) for r in rs] + [5])
    lines = [f"{'proof':<{w}}  {'expected':<14}  {'outcome':<14}  ok   {'time':>7}  property"]
    for r in rs:
        lines.append(f"{r.name:<{w}}  {r.expected:<14}  {r.outcome:<14}  "
                     f"{'yes' if r.ok else 'NO ':<3}  {r.seconds:6.2f}s  {r.property}")
    bad = sum(not r.ok for r in rs)
    total = sum(r.seconds for r in rs)
    lines.append(f"{len(rs)} proofs, {len(rs) - bad} ok, {bad} not ok, {total:.2f} s")
    if counterexamples:
        for r in rs:
            if r.counterexample:
                lines.append("")
                lines.append(f"{r.name} ({r.outcome}):")
                lines.extend("    " + ln for ln in r.counterexample.splitlines())
    return "\n".join(lines)


def run_as_script(proofs: Sequence[Proof], argv: Sequence[str] | None = None) -> int:
    """``python proofs/<file>.py [NAME...]``: run this file's proofs, print the table."""
    args = list(sys.argv[1:] if argv is None else argv)
    results = [run_one(p) for p in select(args, list(proofs))]
    print(render_table(results))
    return 0 if all(r.ok for r in results) else 1


# ----------------------------------------------------------------------------------------
# Helpers for proof modules
# ----------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    import z3

    if z3.is_bv_value(v):
        return hex(v.as_long())
    if z3.is_int_value(v):
        return str(v.as_long())
    if z3.is_true(v) or z3.is_false(v):
        return str(z3.is_true(v)).lower()
    return str(v)


def solve(hyps: Sequence[Any], goal: Any, show: Mapping[str, Any] | None = None,
          timeout_ms: int = 600_000, explain: Callable[[dict[str, int]], str] | None = None
          ) -> Outcome:
    """Prove ``hyps -> goal`` with Z3: ``proved`` when ``hyps /\\ ~goal`` is unsat.

    The hypotheses are first checked to be satisfiable; if not, the outcome is
    ``error`` (a vacuous proof), never ``proved``.

    On a counterexample, the ``show`` terms are evaluated in Z3's model; ``details`` maps
    each name to its value (ints for bit-vectors and integers, bools for Bools) and
    ``explain``, if given, turns that into the first line of the rendered text.
    """
    import z3

    # A proof whose hypotheses contradict each other holds vacuously: refuse it. (A
    # separate solver, so that the query below, and the counterexample it finds, do not
    # depend on this check.)
    hs = z3.Solver()
    hs.set("timeout", timeout_ms)
    hs.set("random_seed", 0)
    hs.add(*hyps)
    sat = hs.check()
    if sat == z3.unsat:
        return Outcome("error", "the hypotheses are unsatisfiable, so the goal would hold "
                       "vacuously: the model is over-constrained")
    if sat == z3.unknown:
        return Outcome("unknown", f"Z3 could not decide the hypotheses: {hs.reason_unknown()}")
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.set("random_seed", 0)
    s.add(*hyps)
    s.add(z3.Not(goal))
    r = s.check()
    if r == z3.unsat:
        return Outcome("proved")
    if r == z3.unknown:
        return Outcome("unknown", f"Z3: {s.reason_unknown()}")
    m = s.model()
    vals: dict[str, Any] = {}
    text: list[str] = []
    for name, term in (show or {}).items():
        v = m.eval(term, model_completion=True)
        if z3.is_bv_value(v) or z3.is_int_value(v):
            vals[name] = v.as_long()
        elif z3.is_true(v) or z3.is_false(v):
            vals[name] = z3.is_true(v)
        else:
            vals[name] = str(v)
        text.append(f"{name} = {_fmt(v)}")
    head = explain(vals) + "\n" if explain else ""
    return Outcome("counterexample", head + "\n".join(text), vals)
