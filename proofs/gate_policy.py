"""Gate policy on the live system: Z3 proofs over the page tables the kernel built.

The kernel lays out each ring so that the MMU enforces the single-writer property
(docs/design.md, "ring layout"; kernel/channel.c, ``map_endpoint``). These proofs check
the layout the kernel *actually built in a run*, not a model of it:

1. keusim boots a system on x86-64 or arm64. ``run(..., dump_mappings=True)`` then reads
   every process's page tables back from emulated RAM (``keusim.system._dump_mappings``,
   ``keusim.machine.pagetable.walk_all``).
2. The dump becomes Z3 facts:
   - ``mapped(p, v)``, ``pa(p, v)``, ``R/W/X/U(p, v)`` and ``row(p, v)``: the relation
     from (process, virtual page) to (physical page, permissions). The dump's rows
     define it under a closed-world reading: a page that no row covers is unmapped;
   - ``prod(c)``, ``cons(c)``, ``win(c)``, ``cap(c)``, ``head(c)``, ``tail(c)`` and
     ``data(c)``: the kernel's own set-up record of each channel (KLOG_CHAN_IDX/DATA);
   - ``forbidden(pa)``: the physical pages no user mapping may reach. These are the
     kernel image (from the kernel ELF), everything the loader put below ``free_pa``,
     the control pages (the channel table with the keys), every page-table page and the
     device page.
3. Each property is checked by asking Z3 for a violation: a process, a page and, where
   the rule is about channels, a channel. ``unsat`` proves the property over every row
   of the dump. A model is a counterexample. The checker then enumerates every violation
   (each found one is blocked and Z3 is asked again) and names each violating mapping
   by process, va range, pa, permissions and owner.

The facts are instantiated only at the query's symbolic points, in the Skolem style of
ring_invariants.py, so every query is quantifier-free (QF_UFBV) and takes milliseconds.

Permissions are the leaf entries'. Both kernels build table entries without
restrictions ("the leaf decides": ``arch_pte_table`` in kernel/arch/*/), so the leaf's
rights are the effective rights.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import z3

from keusim.proof.prove import Outcome, Proof, run_as_script

ARCHES = ("x86_64", "arm64")
# The live systems the proofs check, per architecture. notify-attacks adds verified
# channels (keys on producers' info pages), processes that own no channel, and attackers
# the kernel kills. ring-attacks (six channels, about 1 s more per architecture) can be
# added here; it exercises no mapping path the other two do not.
SYSTEMS: tuple[tuple[str, dict], ...] = (
    ("pingpong", {"messages": 2}),
    ("notify-attacks", {"messages": 2}),
)
BROKEN_SYSTEM = ("pingpong", {"messages": 2})
# Model-time budget of each boot. The scenarios allow up to 1e11 cycles for long runs;
# two messages take far fewer, and a kernel or guest bug that makes a side spin must end
# the boot (then the incomplete dump is an error), not hang `keusim prove`.
GATE_MAX_CYCLES = 2_000_000_000

# Mirrored from kernel/include/memlayout.h (tests/test_gate_policy.py fails on drift).
PAGE = 0x1000
KERNBASE = 0xFFFFFFFF80000000
INFO_VA = 0x10000000
CHAN_VA_BASE = 0x20000000
CHAN_STRIDE = 0x400000
CHAN_HEAD_OFF = 0x1000
CHAN_TAIL_OFF = 0x2000
CHAN_DATA_OFF = 0x4000
USER_TOP = 0x800000000000
DEV_PA = 0x40000000
# Guard pages of a window: +0, +0x3000, and the page after the data (+0x4000+capacity).
GUARD_OFFS = (0, 0x3000)

MAX_WITNESSES = 32  # violations listed per (system, property)


def _up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


# --------------------------------------------------------------------------------------
# Facts: the mapping dump, read into plain data
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One row of the dump: pages [va, end) of ``proc`` mapped to [pa, ...) with perm."""

    proc: str
    va: int
    end: int
    pa: int
    perm: str   # 'rw- u' style: r/w/x, then u (user) or k (supervisor)
    owner: str

    @property
    def r(self) -> bool:
        return self.perm[0] == "r"

    @property
    def w(self) -> bool:
        return self.perm[1] == "w"

    @property
    def x(self) -> bool:
        return self.perm[2] == "x"

    @property
    def u(self) -> bool:
        return self.perm.endswith("u")

    def describe(self) -> str:
        return f"{self.proc}: {self.va:#x}-{self.end:#x} -> {self.pa:#x}  {self.perm}  ({self.owner})"


@dataclass(frozen=True)
class Chan:
    """The kernel's set-up record of one channel."""

    id: int
    producer: str
    consumer: str
    capacity: int
    head_pa: int
    tail_pa: int
    data_pa: int

    @property
    def window(self) -> int:
        return CHAN_VA_BASE + self.id * CHAN_STRIDE


@dataclass(frozen=True)
class Facts:
    """Everything one run's dump says, ready to encode."""

    system: str
    arch: str
    procs: tuple[str, ...]
    rows: tuple[Row, ...]
    chans: tuple[Chan, ...]
    forbidden: tuple[tuple[int, int, str], ...]   # [lo, hi) pa ranges no user page may reach

    def pid(self, name: str) -> int:
        return self.procs.index(name)

    def forbidden_labels(self, pa: int) -> list[str]:
        return [what for lo, hi, what in self.forbidden if lo <= pa < hi]


def _int(s: str | int) -> int:
    return s if isinstance(s, int) else int(s, 16)


def _runs(pages: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted pages -> [lo, hi) runs of contiguous pages."""
    out: list[tuple[int, int]] = []
    for p in sorted(set(pages)):
        if out and out[-1][1] == p:
            out[-1] = (out[-1][0], p + PAGE)
        else:
            out.append((p, p + PAGE))
    return out


def facts_from_dump(system: str, arch: str, dump: Mapping, kernel_image: Sequence[tuple[int, int]]
                    ) -> Facts:
    """Facts from a mapping dump (``RunReport.mappings``) and the kernel image's pa ranges.

    Tests mutate a copy of a dump and rebuild the facts from it.
    """
    for key in ("_channels", "_boot", "_page_tables", "_kernel_half_user"):
        if key not in dump:
            raise ValueError(f"the mapping dump has no {key!r}; it comes from "
                             f"keusim.system._dump_mappings (run with dump_mappings=True)")
    procs = tuple(k for k in dump if not k.startswith("_"))
    rows = []
    for p in procs:
        for d in list(dump[p]) + list(dump["_kernel_half_user"].get(p, ())):
            rows.append(Row(p, _int(d["va"]), _int(d["end"]), _int(d["pa"]), d["perm"],
                            d.get("owner", "?")))
    # The closed-world encoding needs each (process, page) in at most one row: rows that
    # overlapped would contradict each other and make every query vacuously unsat.
    for p in procs:
        mine = sorted((r for r in rows if r.proc == p), key=lambda r: r.va)
        for a, b in zip(mine, mine[1:], strict=False):
            if b.va < a.end:
                raise ValueError(f"{system}: overlapping rows for {p}: {a.describe()} and "
                                 f"{b.describe()}")
    chans = tuple(Chan(c["id"], c["producer"], c["consumer"], c["capacity"], _int(c["head_pa"]),
                       _int(c["tail_pa"]), _int(c["data_pa"])) for c in dump["_channels"])
    forbidden: list[tuple[int, int, str]] = []
    forbidden += [(lo, hi, "kernel image") for lo, hi in kernel_image]
    forbidden.append((0, _int(dump["_boot"]["free_pa"]),
                      "loader area below free_pa (boot-info, kernel image, boot modules, "
                      "boot stacks, boot page tables)"))
    forbidden += [(lo, hi, "kernel control page (channel table, keys)")
                  for lo, hi in _runs([_int(x) for x in dump["_kernel_control_pages"]])]
    forbidden += [(lo, hi, "page-table page")
                  for lo, hi in _runs([_int(x) for x in dump["_page_tables"]])]
    forbidden.append((DEV_PA, DEV_PA + PAGE, "platform device page"))
    return Facts(system, arch, procs, tuple(rows), chans, tuple(forbidden))


@functools.cache
def kernel_image_ranges(arch: str) -> tuple[tuple[int, int], ...]:
    """The kernel ELF's loadable segments as physical page ranges (pa = vaddr - KERNBASE)."""
    from keusim import arch as archmod
    from keusim.machine.loader import ElfImage
    from keusim.toolchain import builds

    a = archmod.get(arch)
    assert a.kernbase == KERNBASE, (a.kernbase, KERNBASE)
    img = ElfImage(builds.kernel_image(arch), a.elf_machine, "kernel")
    return tuple(sorted(((s.vaddr - KERNBASE) & ~(PAGE - 1), _up(s.vaddr - KERNBASE + s.memsz))
                        for s in img.segments))


@functools.cache
def live_run(arch: str, system: str, kernel_flags: int = 0):
    """Run a system once per module (cached) with the mapping dump; returns the report."""
    from keusim.system import run

    params = dict(SYSTEMS + (BROKEN_SYSTEM,))[system]
    rep = run(system, arch=arch, params=params, dump_mappings=True, kernel_flags=kernel_flags,
              max_cycles=GATE_MAX_CYCLES)
    m = rep.mappings or {}
    missing = [p.name for p in rep.processes if p.name not in m]
    unset = [c.id for c in rep.channels if c.id not in {d["id"] for d in m.get("_channels", ())}]
    if missing or unset:  # a partial dump would make the proofs vacuous
        raise RuntimeError(f"{system} on {arch}: incomplete mapping dump (status {rep.status}; "
                           f"processes without tables: {missing}; channels not set up: {unset})")
    return rep


@functools.cache
def live_facts(arch: str, system: str, kernel_flags: int = 0) -> Facts:
    rep = live_run(arch, system, kernel_flags)
    return facts_from_dump(system, arch, rep.mappings, kernel_image_ranges(arch))


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------
# Addresses are encoded as page numbers (va >> 12, pa >> 12) over Z3 integers: every fact
# and rule is linear in them (range bounds, a row's pa = pa0 + (v - va0)), and the
# integer solver decides these queries in milliseconds where 64-bit bit-vectors took
# most of a second each.

INT = z3.IntSort()


def _pg(x: int) -> int:
    return x >> 12


class Enc:
    """The facts as Z3 functions, defined at the points a query names (closed world).

    Processes and channels are integers indexing ``Facts.procs`` and ``Facts.chans``;
    ``v`` and ``pa`` are page numbers.
    """

    B = z3.BoolSort()
    mapped = z3.Function("mapped", INT, INT, B)
    pa = z3.Function("pa", INT, INT, INT)
    R = z3.Function("R", INT, INT, B)
    W = z3.Function("W", INT, INT, B)
    X = z3.Function("X", INT, INT, B)
    U = z3.Function("U", INT, INT, B)
    row = z3.Function("row", INT, INT, INT)
    prod = z3.Function("prod", INT, INT)
    cons = z3.Function("cons", INT, INT)
    win = z3.Function("win", INT, INT)
    cap = z3.Function("cap", INT, INT)       # in pages
    head = z3.Function("head", INT, INT)
    tail = z3.Function("tail", INT, INT)
    data = z3.Function("data", INT, INT)     # first data page

    def __init__(self, f: Facts):
        self.f = f
        self.hyps: list[z3.BoolRef] = []
        self._done: set[tuple[int, ...]] = set()

    def proc(self, name: str) -> z3.ArithRef:
        p = z3.Int(name)
        self.hyps.append(z3.And(p >= 0, p < len(self.f.procs)))
        return p

    def at(self, p: z3.ArithRef, v: z3.ArithRef) -> None:
        """Instantiate the mapping relation at (p, v): the dump's rows, closed world."""
        key = (p.get_id(), v.get_id())
        if key not in self._done:
            self._done.add(key)
            self.hyps.append(z3.substitute(_relation(self.f), (_P, p), (_V, v)))

    def chan(self, name: str = "c") -> z3.ArithRef:
        """A symbolic channel, with every channel's set-up record as its possible values."""
        c = z3.Int(name)
        self.hyps.append(z3.substitute(_channels(self.f), (_C, c)))
        return c

    def forbidden(self, pa: z3.ArithRef) -> z3.BoolRef:
        return z3.Or([z3.And(pa >= _pg(lo), pa < _pg(_up(hi))) for lo, hi, _ in self.f.forbidden])

    def perm_is(self, p, v, perm: str) -> z3.BoolRef:
        """(p, v) is mapped with exactly ``perm`` ('rw- u' style)."""
        return z3.And(self.mapped(p, v), self.R(p, v) == (perm[0] == "r"),
                      self.W(p, v) == (perm[1] == "w"), self.X(p, v) == (perm[2] == "x"),
                      self.U(p, v) == perm.endswith("u"))


# Each Facts' relation and channel table is built once, over placeholder constants, and
# substituted at every point a query names (building terms is most of a query's cost).
_P, _V, _C = z3.Ints("__p __v __c")


@functools.lru_cache(maxsize=32)
def _relation(f: Facts) -> z3.BoolRef:
    """The dump's rows as the definition of the relation at (_P, _V), closed world."""
    e, p, v = Enc, _P, _V
    hyps, inside = [], []
    for i, r in enumerate(f.rows):
        cond = z3.And(p == f.pid(r.proc), v >= _pg(r.va), v < _pg(r.end))
        inside.append(cond)
        hyps.append(z3.Implies(cond, z3.And(
            e.mapped(p, v), e.row(p, v) == i, e.pa(p, v) == _pg(r.pa) + (v - _pg(r.va)),
            e.R(p, v) == r.r, e.W(p, v) == r.w, e.X(p, v) == r.x, e.U(p, v) == r.u)))
    hyps.append(z3.Implies(z3.Not(z3.Or(inside)),
                           z3.And(z3.Not(e.mapped(p, v)), e.row(p, v) == -1)))
    return z3.And(hyps)


@functools.lru_cache(maxsize=32)
def _channels(f: Facts) -> z3.BoolRef:
    """Every channel's set-up record, as the possible values at channel _C."""
    e, c = Enc, _C
    hyps = [c >= 0, c < len(f.chans)]
    for i, ch in enumerate(f.chans):
        hyps.append(z3.Implies(c == i, z3.And(
            e.prod(c) == f.pid(ch.producer), e.cons(c) == f.pid(ch.consumer),
            e.win(c) == _pg(ch.window), e.cap(c) == _pg(ch.capacity),
            e.head(c) == _pg(ch.head_pa), e.tail(c) == _pg(ch.tail_pa),
            e.data(c) == _pg(ch.data_pa))))
    return z3.And(hyps)


@dataclass(frozen=True)
class Query:
    """A property's violation: the mapping at ``subject`` breaks a rule when a case holds.

    ``cases`` pairs each way to break it with a reason; ``{proc}``, ``{chan}``,
    ``{producer}``, ``{consumer}``, ``{other}`` and ``{pa_what}`` in a reason are filled
    from the model.
    """

    subject: tuple[z3.ArithRef, z3.ArithRef]
    cases: tuple[tuple[z3.BoolRef, str], ...]
    chan: z3.ArithRef | None = None
    other: z3.ArithRef | None = None


def q_data_rw_nx(e: Enc) -> Query:
    c, p, v = e.chan(), e.proc("p"), z3.Int("v")
    k, prod_side = z3.Int("k"), z3.Bool("producer_side")
    e.at(p, v)
    slot = z3.And(k >= 0, k < e.cap(c), p == z3.If(prod_side, e.prod(c), e.cons(c)),
                  v == e.win(c) + _pg(CHAN_DATA_OFF) + k)
    good = z3.And(e.perm_is(p, v, "rw- u"), e.pa(p, v) == e.data(c) + k)
    of_data = z3.And(e.mapped(p, v), e.pa(p, v) >= e.data(c), e.pa(p, v) < e.data(c) + e.cap(c))
    return Query((p, v), (
        (z3.And(slot, z3.Not(good)),
         "{proc}, an endpoint of channel {chan}, does not map this data page RW-NX (user) "
         "to the channel's data"),
        (z3.And(of_data, z3.Or(e.X(p, v), z3.Not(e.W(p, v)), z3.Not(e.R(p, v)))),
         "a mapping of channel {chan}'s data pages is executable or not RW"),
    ), chan=c)


def _index_query(e: Enc, which: str) -> Query:
    c, p, v = e.chan(), e.proc("p"), z3.Int("v")
    e.at(p, v)
    off, pa = ((CHAN_HEAD_OFF, e.head(c)) if which == "head" else (CHAN_TAIL_OFF, e.tail(c)))
    writer, reader = ((e.prod(c), e.cons(c)) if which == "head" else (e.cons(c), e.prod(c)))
    wname, rname = ("producer", "consumer") if which == "head" else ("consumer", "producer")
    at_slot = v == e.win(c) + _pg(off)
    return Query((p, v), (
        (z3.And(p == writer, at_slot,
                z3.Not(z3.And(e.perm_is(p, v, "rw- u"), e.pa(p, v) == pa))),
         f"the {wname} of channel {{chan}} ({{{wname}}}) cannot write its {which} page here"),
        (z3.And(p == reader, at_slot,
                z3.Not(z3.And(e.perm_is(p, v, "r-- u"), e.pa(p, v) == pa))),
         f"the {rname} of channel {{chan}} ({{{rname}}}) does not map its {which} page "
         f"read-only"),
        (z3.And(e.mapped(p, v), e.pa(p, v) == pa, e.W(p, v), p != writer),
         f"channel {{chan}}'s {which} page is writable by {{proc}}, not only by its {wname} "
         f"({{{wname}}})"),
    ), chan=c)


def q_head(e: Enc) -> Query:
    return _index_query(e, "head")


def q_tail(e: Enc) -> Query:
    return _index_query(e, "tail")


def q_no_kernel_reach(e: Enc) -> Query:
    p, v = e.proc("p"), z3.Int("v")
    e.at(p, v)
    user = z3.And(e.mapped(p, v), e.U(p, v))
    return Query((p, v), (
        (z3.And(user, e.forbidden(e.pa(p, v))), "a user mapping reaches a kernel page: {pa_what}"),
        (z3.And(user, v >= _pg(USER_TOP)), "a user-accessible va at or above USER_TOP "
                                          "(the kernel half)"),
    ))


def q_guards(e: Enc) -> Query:
    c, p, v = e.chan(), e.proc("p"), z3.Int("v")
    e.at(p, v)
    guard = z3.Or([v == e.win(c) + _pg(o) for o in GUARD_OFFS]
                  + [v == e.win(c) + _pg(CHAN_DATA_OFF) + e.cap(c)])
    return Query((p, v), (
        (z3.And(guard, e.mapped(p, v)),
         "a guard page of channel {chan}'s window is mapped in {proc}"),
    ), chan=c)


def q_wx(e: Enc) -> Query:
    p, v = e.proc("p"), z3.Int("v")
    e.at(p, v)
    return Query((p, v), ((z3.And(e.mapped(p, v), e.W(p, v), e.X(p, v)),
                           "the mapping is writable and executable"),))


def q_isolation(e: Enc) -> Query:
    c, p, v = e.chan(), e.proc("p"), z3.Int("v")
    e.at(p, v)
    pa = e.pa(p, v)
    endpoint = z3.Or(p == e.prod(c), p == e.cons(c))
    is_data = z3.And(pa >= e.data(c), pa < e.data(c) + e.cap(c))
    ring = z3.Or(pa == e.head(c), pa == e.tail(c), is_data)
    slot = z3.If(pa == e.head(c), e.win(c) + _pg(CHAN_HEAD_OFF),
                 z3.If(pa == e.tail(c), e.win(c) + _pg(CHAN_TAIL_OFF),
                       e.win(c) + _pg(CHAN_DATA_OFF) + (pa - e.data(c))))
    in_window = z3.And(v >= e.win(c), v < e.win(c) + _pg(CHAN_STRIDE))
    mapped = e.mapped(p, v)
    return Query((p, v), (
        (z3.And(mapped, ring, z3.Not(endpoint)),
         "a ring page of channel {chan} is mapped in {proc}, which is not one of its endpoints"),
        (z3.And(mapped, ring, v != slot),
         "a ring page of channel {chan} is mapped outside its own slot in the channel's window"),
        (z3.And(mapped, in_window, z3.Not(endpoint)),
         "{proc} maps a page in channel {chan}'s window but is not one of its endpoints"),
    ), chan=c)


def q_info_private(e: Enc) -> Query:
    owner, p, v = e.proc("owner"), e.proc("p"), z3.Int("v")
    info = z3.IntVal(_pg(INFO_VA))
    e.at(owner, info)
    e.at(p, v)
    return Query((p, v), (
        (z3.And(p == owner, v == info, z3.Not(e.perm_is(p, v, "r-- u"))),
         "{proc}'s info page is not mapped read-only, NX, user"),
        (z3.And(e.mapped(owner, info), e.mapped(p, v), e.pa(p, v) == e.pa(owner, info),
                z3.Or(p != owner, v != info)),
         "{other}'s info page (its endpoint list and key copies) is also mapped here"),
    ), other=owner)


PROPERTIES: dict[str, tuple[str, Callable[[Enc], Query]]] = {
    "data_rw_nx": ("every data page of every ring is mapped RW and NX, to the channel's own "
                   "data pages, in both endpoints; no mapping of a data page is executable",
                   q_data_rw_nx),
    "head_producer_only": ("each head page is writable by exactly one process, the producer; "
                           "the consumer maps it read-only", q_head),
    "tail_consumer_only": ("each tail page is writable by exactly one process, the consumer; "
                           "the producer maps it read-only", q_tail),
    "no_kernel_reach": ("no user mapping reaches the kernel image, the loader's pages, the "
                        "control pages (channel table, keys), a page table or the device; "
                        "no user va in the kernel half", q_no_kernel_reach),
    "guards_unmapped": ("the guard pages of every ring window (+0, +0x3000, after the data) "
                        "are unmapped in every process", q_guards),
    "w_xor_x": ("no mapping is both writable and executable", q_wx),
    "channel_isolation": ("a channel's ring pages are mapped only in its two endpoints, each "
                          "in its own slot; no other process maps its window",
                          q_isolation),
    "info_private": ("each info page (a verified producer's key copy) is mapped read-only "
                     "and NX in its own process, and nowhere else", q_info_private),
}


# --------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Violation:
    """One violating mapping (or unmapped page) and why it breaks the rule."""

    system: str
    process: str
    va: int
    end: int
    pa: int | None
    perm: str
    owner: str
    reasons: tuple[str, ...]

    def describe(self) -> str:
        where = f"{self.va:#x}-{self.end:#x}"
        to = f"-> {self.pa:#x}  {self.perm}  ({self.owner})" if self.pa is not None else "unmapped"
        return f"[{self.system}] {self.process}: {where} {to}\n      " + "\n      ".join(
            self.reasons)

    def as_dict(self) -> dict:
        return {"system": self.system, "process": self.process, "va": self.va, "end": self.end,
                "pa": self.pa, "perm": self.perm, "owner": self.owner,
                "reasons": list(self.reasons)}


def _value(m: z3.ModelRef, t: z3.ExprRef) -> int:
    return m.eval(t, model_completion=True).as_long()


def find_violations(f: Facts, prop: str, limit: int = MAX_WITNESSES,
                    timeout_ms: int = 600_000) -> tuple[str, list[Violation]]:
    """('proved', []) or ('counterexample', violations) or ('unknown', [])."""
    e = Enc(f)
    q = PROPERTIES[prop][1](e)
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.set("random_seed", 0)
    s.add(*e.hyps)
    if s.check() != z3.sat:  # the facts alone must be consistent, or unsat proves nothing
        raise RuntimeError(f"{f.system} ({f.arch}): the facts for {prop} are inconsistent")
    s.add(z3.Or([b for b, _ in q.cases]))
    sp, sv = q.subject
    found: list[Violation] = []
    while len(found) < limit:
        r = s.check()
        if r == z3.unknown:
            return "unknown", found
        if r == z3.unsat:
            break
        m = s.model()
        val = functools.partial(_value, m)
        pv, vv, rv = val(sp), val(sv) << 12, val(e.row(sp, sv))
        names = {"proc": f.procs[pv]}
        if q.chan is not None:
            ch = f.chans[val(q.chan)]
            names.update(chan=ch.id, producer=ch.producer, consumer=ch.consumer)
        if q.other is not None:
            names["other"] = f.procs[val(q.other)]
        if rv >= 0:
            row = f.rows[rv]
            names["pa_what"] = ", ".join(f.forbidden_labels(row.pa + vv - row.va)) or "?"
            reasons = tuple(t.format(**names) for b, t in q.cases if z3.is_true(m.eval(b, model_completion=True)))
            found.append(Violation(f.system, row.proc, row.va, row.end, row.pa, row.perm,
                                   row.owner, reasons))
            s.add(e.row(sp, sv) != rv)
        else:
            reasons = tuple(t.format(**names) for b, t in q.cases if z3.is_true(m.eval(b, model_completion=True)))
            found.append(Violation(f.system, f.procs[pv], vv, vv + PAGE, None, "unmapped", "",
                                   reasons))
            s.add(z3.Not(z3.And(sp == pv, sv == vv >> 12)))
    if not found:
        return "proved", []
    return "counterexample", sorted(found, key=lambda x: (x.system, x.process, x.va))


def check(facts: Sequence[Facts], prop: str) -> Outcome:
    """The property over every run in ``facts``; ``details`` lists the violations."""
    bad: list[Violation] = []
    for f in facts:
        status, vs = find_violations(f, prop)
        if status == "unknown":
            return Outcome("unknown", f"Z3 gave up on {f.system} ({f.arch})")
        bad += vs
    if not bad:
        return Outcome("proved")
    text = f"{len(bad)} violating mapping(s):\n" + "\n".join("  " + v.describe() for v in bad)
    return Outcome("counterexample", text, [v.as_dict() for v in bad])


def check_live(arch: str, prop: str) -> Outcome:
    return check([live_facts(arch, name) for name, _ in SYSTEMS], prop)


def check_broken(arch: str) -> Outcome:
    """The head rule on the broken layout: must name each consumer's writable head page."""
    from keusim.machine.loader import BOOT_FLAG_BROKEN_LAYOUT

    f = live_facts(arch, BROKEN_SYSTEM[0], BOOT_FLAG_BROKEN_LAYOUT)
    o = check([f], "head_producer_only")
    if o.outcome != "counterexample":
        return o
    named = {(v["process"], v["owner"]) for v in o.details if v["perm"] == "rw- u"}
    want = {(c.consumer, f"channel {c.id} head") for c in f.chans}
    if not want <= named:  # caught, but not for the reason the broken layout plants
        raise RuntimeError(f"the broken layout's consumer head mappings {sorted(want - named)} "
                           f"were not named; got:\n{o.counterexample}")
    return o


def proofs() -> list[Proof]:
    out = []
    for arch in ARCHES:
        for prop, (text, _) in PROPERTIES.items():
            out.append(Proof(f"gate.{arch}.{prop}", f"{text} ({arch}, live page tables)",
                             functools.partial(check_live, arch, prop)))
        out.append(Proof(f"gate.{arch}.broken_layout_caught",
                         f"with BOOT_FLAG_BROKEN_LAYOUT the consumer can write head: the head "
                         f"rule must name that mapping ({arch})",
                         functools.partial(check_broken, arch), expected="counterexample"))
    return out


if __name__ == "__main__":
    sys.exit(run_as_script(proofs()))
