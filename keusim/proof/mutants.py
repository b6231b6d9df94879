"""Mutation harness: do the proofs catch real bugs planted in the C sources?

Each :class:`Mutant` is one textual edit of ``guests/lib/ring.c``, ``kernel/notify.c`` or
``kernel/channel.c``. :func:`run_mutant` copies ``kernel/``, ``guests/`` and ``proofs/`` to a
temporary folder, applies the edit to the copy (the tree is never touched), rebuilds
from the copy, and runs the proofs that are about that file:

* ring.c: proofs/ring_binary.py (refinement and ordering, both ISAs), in this process
  with ``root=`` pointing at the copy;
* notify.c: proofs/notify_binary.py, the same way;
* channel.c: proofs/gate_policy.py, which boots the mutated kernel, in a child process
  with ``KEUSIM_SOURCE_ROOT`` set to the copy.

A behaviour-changing mutant is *caught* when at least one of those proofs does not get
its expected outcome. An ``equivalent`` mutant (renamed variable, reordered independent
statements) must still prove everything: that is the check that the proofs are about
behaviour, not text. An edit whose text no longer occurs exactly once is an error
(the catalogue is out of date), never a silent pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from keusim.errors import KeusimError

RING = "guests/lib/ring.c"
NOTIFY = "kernel/notify.c"
CHANNEL = "kernel/channel.c"


@dataclass(frozen=True)
class Mutant:
    """One edit: replace ``old`` (which must occur exactly once) by ``new`` in ``file``."""

    name: str
    file: str
    old: str
    new: str
    what: str
    equivalent: bool = False


CATALOGUE: tuple[Mutant, ...] = (
    # --- ring.c: bounds -------------------------------------------------------------
    Mutant("ring.capacity_off_by_record", RING,
           "if (need > ep->capacity - used) {", "if (need > ep->capacity - used + RING_ALIGN) {",
           "ring_reserve's capacity check lets a record more in"),
    Mutant("ring.toobig_off_by_one", RING,
           "    ep->pending = 0;\n    if (len > ep->capacity - RING_ALIGN)\n",
           "    ep->pending = 0;\n    if (len > ep->capacity - RING_ALIGN + 1)\n",
           "ring_reserve accepts len = capacity - 7"),
    Mutant("ring.peek_no_used_check", RING,
           "rec > ep->capacity - off || rec > used)", "rec > ep->capacity - off)",
           "ring_peek no longer checks the record against the published bytes"),
    Mutant("ring.peek_no_len_check", RING,
           "if (hdr > ep->capacity - RING_ALIGN || rec", "if (rec",
           "ring_peek no longer bounds the header's length"),
    Mutant("ring.peek_no_wrap_check", RING,
           "        if (skip > used)\n            return RING_ECORRUPT_LEN;\n", "",
           "ring_peek follows a WRAP marker past head"),
    Mutant("ring.peek_double_fetch", RING,
           "    *len = hdr;", "    *len = *hdr_at(ep, off);",
           "ring_peek validates one read of the header and returns another"),
    # --- ring.c: ordering -----------------------------------------------------------
    Mutant("ring.commit_relaxed_publish", RING,
           "    store_release(ep->head, ep->local);", "    *ep->head = ep->local;",
           "ring_commit publishes head with a plain store"),
    Mutant("ring.lone_wrap_relaxed_publish", RING,
           "store_release(ep->head, h + contig);", "*ep->head = h + contig;",
           "the lone-WRAP path publishes head with a plain store"),
    Mutant("ring.commit_header_after_publish", RING,
           "    *hdr_at(ep, ep->local & ep->mask) = len;\n    ep->local += rec;\n"
           "    ep->pending = 0;\n    store_release(ep->head, ep->local);",
           "    uint32_t at = ep->local & ep->mask;\n    ep->local += rec;\n"
           "    ep->pending = 0;\n    store_release(ep->head, ep->local);\n"
           "    *hdr_at(ep, at) = len;",
           "ring_commit writes the header after publishing head"),
    Mutant("ring.lone_wrap_marker_after_publish", RING,
           "            *hdr_at(ep, off) = RING_WRAP;\n            store_release(ep->head, h + contig);",
           "            store_release(ep->head, h + contig);\n            *hdr_at(ep, off) = RING_WRAP;",
           "the lone-WRAP path writes the marker after publishing head"),
    Mutant("ring.peek_relaxed_head", RING,
           "        h = load_acquire(ep->head);", "        h = *ep->head;",
           "ring_peek loads head without acquire"),
    Mutant("ring.acquire_on_wrong_index", RING,
           "    t = *ep->tail;                       // our own index\n    for (;;) {\n"
           "        h = load_acquire(ep->head);",
           "    t = load_acquire(ep->tail);          // our own index\n    for (;;) {\n"
           "        h = *ep->head;",
           "ring_peek's acquire is on its own index instead of head"),
    Mutant("ring.reserve_relaxed_tail", RING,
           "    t = load_acquire(ep->tail);          // the consumer is done",
           "    t = *ep->tail;          // the consumer is done",
           "ring_reserve loads tail without acquire"),
    Mutant("ring.release_relaxed_free", RING,
           "    store_release(ep->tail, ep->local);  // our reads", "    *ep->tail = ep->local;  // our reads",
           "ring_release frees with a plain store"),
    Mutant("ring.wrap_follow_writes_head", RING,
           "        store_release(ep->tail, t);", "        store_release(ep->head, t);",
           "ring_peek's WRAP follow writes head (the wrong side's index)"),
    # --- ring.c: equivalent by construction ---------------------------------------------
    Mutant("ring.equiv_renamed_variable", RING, "contig", "room_to_end",
           "every 'contig' renamed (all occurrences)", equivalent=True),
    Mutant("ring.equiv_reordered_statements", RING,
           "    ep->local += rec;\n    ep->pending = 0;\n    store_release(ep->head, ep->local);",
           "    ep->pending = 0;\n    ep->local += rec;\n    store_release(ep->head, ep->local);",
           "ring_commit's two independent ep updates swapped", equivalent=True),
    # --- notify.c -------------------------------------------------------------------
    Mutant("notify.window_off_by_one", NOTIFY,
           "back <= c->capacity &&", "back <= c->capacity + 1 &&",
           "in_window accepts a range starting capacity + 1 bytes before head"),
    Mutant("notify.no_length_check", NOTIFY,
           "           d->length <= back && ", "           ",
           "in_window no longer checks the range ends before head"),
    Mutant("notify.no_straddle_check", NOTIFY,
           " && pos + d->length <= c->capacity;", ";",
           "in_window accepts a range that straddles the end of data"),
    Mutant("notify.replay_equal_seq", NOTIFY,
           "if (d.seq <= p->notify_seq[d.channel])", "if (d.seq < p->notify_seq[d.channel])",
           "sys_notify accepts a repeated sequence number"),
    Mutant("notify.no_capability", NOTIFY,
           "if (!c || c->producer != p->pid - 1)", "if (!c)",
           "sys_notify accepts a caller that is not the producer"),
    # --- channel.c ------------------------------------------------------------------
    Mutant("channel.tail_writable_by_producer", CHANNEL,
           "int tail = role == EP_CONSUMER ? rw : ro;", "int tail = rw;",
           "map_endpoint maps tail writable for the producer too (a widened permission)"),
)

PROOFS_FOR = {RING: "ring_binary", NOTIFY: "notify_binary", CHANNEL: "gate_policy"}


@dataclass(frozen=True)
class MutantResult:
    mutant: Mutant
    caught: bool
    by: tuple[str, ...]          # proofs that did not get their expected outcome
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Caught if it changes behaviour; every proof passes if it is equivalent."""
        if self.error:
            return False
        return not self.caught if self.mutant.equivalent else self.caught


def copy_tree(dst: Path, root: Path | None = None) -> Path:
    """Copy the sources the proofs build (kernel/, guests/, proofs/) into dst."""
    from keusim.toolchain import ROOT

    src = Path(root or ROOT)
    for d in ("kernel", "guests", "proofs"):
        shutil.copytree(src / d, dst / d, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def apply(m: Mutant, root: Path) -> None:
    """Apply m to the copy at root. Raises KeusimError if its text does not occur once
    (all occurrences for a rename, which must occur at least once)."""
    f = root / m.file
    text = f.read_text()
    n = text.count(m.old)
    if n == 0 or (n > 1 and not m.equivalent):
        raise KeusimError(f"mutant {m.name}: its text occurs {n} times in {m.file} "
                          "(expected once); update keusim/proof/mutants.py")
    f.write_text(text.replace(m.old, m.new))


def select(names: Sequence[str] | None) -> list[Mutant]:
    if not names:
        return list(CATALOGUE)
    out = [m for m in CATALOGUE if any(m.name == n or m.name.startswith(n + ".") or
                                       m.name.startswith(n) for n in names)]
    if not out:
        raise KeusimError(f"no mutant matches {', '.join(names)}; "
                          f"known: {', '.join(m.name for m in CATALOGUE)}")
    return out


def run_mutant(m: Mutant, budget: float = 300.0) -> MutantResult:
    """Build the mutant in a temporary copy and run the proofs about its file."""
    from keusim.proof import prove

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keusim-mutant-") as tmp:
        root = copy_tree(Path(tmp))
        try:
            apply(m, root)
        except KeusimError as e:
            return MutantResult(m, False, (), time.perf_counter() - t0, str(e))
        stem = PROOFS_FOR[m.file]
        if stem == "gate_policy":
            env = dict(os.environ, KEUSIM_SOURCE_ROOT=str(root))
            try:
                res = subprocess.run([sys.executable, "-m", "keusim.cli", "prove", stem,
                                      "--budget", str(budget)], env=env, capture_output=True,
                                     text=True, timeout=budget * 4)
            except subprocess.TimeoutExpired:
                return MutantResult(m, False, (), time.perf_counter() - t0,
                                    "the proofs did not finish within the budget")
            bad = tuple(ln.split()[0] for ln in res.stdout.splitlines()
                        if len(ln.split()) > 3 and ln.split()[3] == "NO")
            caught = res.returncode != 0
            if caught and not bad:
                return MutantResult(m, False, (), time.perf_counter() - t0,
                                    (res.stderr or res.stdout).strip().splitlines()[-1:][0]
                                    if (res.stderr or res.stdout).strip() else "failed")
            return MutantResult(m, caught, bad, time.perf_counter() - t0)
        mod = prove.load_module(stem)
        # One child for the file's proofs (they share lifted paths); a bug mutant stops
        # at its first catch, an equivalent one runs everything.
        rs = prove.run_batch(mod.proofs_for(root), budget, stop_on_fail=not m.equivalent)
        bad_l = [f"{r.name} ({r.outcome})" for r in rs if not r.ok]
        return MutantResult(m, bool(bad_l), tuple(bad_l), time.perf_counter() - t0)


def run_all(names: Sequence[str] | None = None, budget: float = 300.0,
            progress: bool = False) -> list[MutantResult]:
    out = []
    for m in select(names):
        r = run_mutant(m, budget)
        if progress:
            print(f"  {m.name}: {'caught' if r.caught else 'not caught'} "
                  f"({r.seconds:.1f} s)", file=sys.stderr, flush=True)
        out.append(r)
    return out


def render(results: Iterable[MutantResult]) -> str:
    rs = list(results)
    w = max([len(r.mutant.name) for r in rs] + [6])
    lines = [f"{'mutant':<{w}}  {'kind':<10}  {'result':<12}  ok   {'time':>7}  caught by / what"]
    for r in rs:
        kind = "equivalent" if r.mutant.equivalent else "bug"
        res = "error" if r.error else ("caught" if r.caught else "not caught")
        detail = r.error or (", ".join(r.by) if r.by else r.mutant.what)
        lines.append(f"{r.mutant.name:<{w}}  {kind:<10}  {res:<12}  "
                     f"{'yes' if r.ok else 'NO ':<3}  {r.seconds:6.1f}s  {detail}")
    bugs = [r for r in rs if not r.mutant.equivalent]
    eq = [r for r in rs if r.mutant.equivalent]
    lines.append(f"{sum(r.caught for r in bugs)}/{len(bugs)} bug mutants caught by prove; "
                 f"{sum(r.ok for r in eq)}/{len(eq)} equivalent mutants still prove")
    return "\n".join(lines)
