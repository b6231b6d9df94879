"""Axiomatic memory models for litmus tests, checked with Z3 over bounded executions.

A litmus test is a few threads of loads, stores and fences and a final condition. A
*candidate execution* fixes, for every load, the store it reads from (``rf``) and, for
every location, a total coherence order on its stores (``co``); ``fr = rf^-1; co``. A
model is a set of acyclicity axioms over relations built from those and the static
program relations (``po``, dependencies, fences, acquire/release tags). The outcome in the
test's ``exists`` clause is *allowed* when some candidate satisfies both the axioms and the
clause; Z3 searches all candidates at once and returns one as a witness. This is the
"candidate execution + consistency predicate" style of herd7 (Alglave, Maranget,
Tautschnig, "Herding cats", TOPLAS 2014); the models are transcriptions of published
``.cat`` files:

* ``sc``: Lamport's sequential consistency, ``acyclic(po | rf | co | fr)``.
* ``x86-tso``: herd7 ``x86tso.cat`` (Owens, Sarkar, Sewell, "A better x86 memory model:
  x86-TSO", TPHOLs 2009): uniproc plus ``acyclic(mfence | ppo | rfe | fr | co)`` with
  ``ppo = po & (W*W | R*M)``.
* ``armv8``: AArch64 other-multi-copy-atomic (Pulte, Flur, Deacon, French, Sarkar, Sewell,
  "Simplifying ARM concurrency", POPL 2018; herd7 ``aarch64.cat``): internal visibility
  ``acyclic(po-loc | fr | co | rf)`` and external visibility ``acyclic(obs | dob | aob |
  bob)``.

The litmus text format (see ``docs/proofs.md`` for the full grammar)::

    litmus MP+rel+acq                 # optional name
    init x=0 y=0                      # optional; every location starts at 0
    P0: st x 1 ; st.rel y 1
    P1: ld.acq r0 y ; ld r1 x
    exists 1:r0=1 /\\ 1:r1=0

Instructions: ``st[.rel] LOC VAL``, ``ld[.acq|.acqpc] REG LOC``, ``fence full|st|ld|isb``,
each optionally followed by ``addr(REG,..)``, ``data(REG,..)`` or ``ctrl(REG,..)``: the
instruction depends on the latest earlier load into REG in its thread; ``ctrl`` also
covers every later instruction (a branch on REG). Conditions combine ``T:REG=V`` and
``LOC=V`` (final memory) with ``/\\``, ``\\/``, ``~`` and parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import z3

from keusim.errors import KeusimError


class LitmusError(KeusimError):
    """A litmus test text could not be parsed or refers to something undefined."""


# --------------------------------------------------------------------------------------
# Litmus tests
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instr:
    """One instruction of a litmus thread.

    ``op`` is ``ld``, ``st`` or ``fence``; ``order`` is ``""``, ``acq``, ``acqpc`` (loads)
    or ``rel`` (stores); ``fence`` is ``full``, ``st``, ``ld`` or ``isb``.
    """

    op: str
    loc: str | None = None
    reg: str | None = None
    value: int | None = None
    order: str = ""
    fence: str | None = None
    addr: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    ctrl: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class RegAtom:
    """``tid:reg=value`` in a final condition."""

    tid: int
    reg: str
    value: int


@dataclass(frozen=True)
class MemAtom:
    """``loc=value`` (the final, coherence-last value of ``loc``) in a final condition."""

    loc: str
    value: int


@dataclass(frozen=True)
class BoolOp:
    """``and``/``or`` over ``args``, or ``not`` of ``args[0]``."""

    op: str
    args: tuple[Cond, ...]


Cond = RegAtom | MemAtom | BoolOp


@dataclass(frozen=True)
class Litmus:
    """A parsed litmus test: threads, initial memory and the ``exists`` condition."""

    name: str
    threads: tuple[tuple[Instr, ...], ...]
    condition: Cond
    init: tuple[tuple[str, int], ...] = ()

    def locations(self) -> tuple[str, ...]:
        seen: dict[str, None] = {k: None for k, _ in self.init}
        for th in self.threads:
            for ins in th:
                if ins.loc is not None:
                    seen.setdefault(ins.loc, None)
        return tuple(seen)

    def init_value(self, loc: str) -> int:
        return dict(self.init).get(loc, 0)


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DEP = re.compile(rf"^(addr|data|ctrl)\(\s*({_IDENT}(?:\s*,\s*{_IDENT})*)\s*\)$")
_FENCES = ("full", "st", "ld", "isb")


def _parse_int(tok: str, where: str) -> int:
    try:
        return int(tok, 0)
    except ValueError:
        raise LitmusError(f"{where}: expected an integer, got {tok!r}") from None


def _parse_instr(text: str, where: str) -> Instr:
    toks = text.split()
    if not toks:
        raise LitmusError(f"{where}: empty instruction")
    head, rest = toks[0], toks[1:]
    deps: dict[str, list[str]] = {"addr": [], "data": [], "ctrl": []}
    while rest and _DEP.match(rest[-1]):
        m = _DEP.match(rest.pop())
        assert m
        deps[m[1]][:0] = [r.strip() for r in m[2].split(",")]
    kw = {k: tuple(v) for k, v in deps.items()}
    op, _, order = head.partition(".")
    if op == "st":
        if order not in ("", "rel"):
            raise LitmusError(f"{where}: stores take .rel only, not .{order}")
        if len(rest) != 2:
            raise LitmusError(f"{where}: expected `st[.rel] LOC VALUE`, got {text!r}")
        return Instr("st", loc=rest[0], value=_parse_int(rest[1], where), order=order,
                     text=text, **kw)
    if op == "ld":
        if order not in ("", "acq", "acqpc"):
            raise LitmusError(f"{where}: loads take .acq or .acqpc, not .{order}")
        if kw["data"]:
            raise LitmusError(f"{where}: a load cannot carry a data dependency; use addr()")
        if len(rest) != 2:
            raise LitmusError(f"{where}: expected `ld[.acq] REG LOC`, got {text!r}")
        return Instr("ld", reg=rest[0], loc=rest[1], order=order, text=text, **kw)
    if op == "fence":
        if order or len(rest) != 1 or rest[0] not in _FENCES:
            raise LitmusError(f"{where}: expected `fence full|st|ld|isb`, got {text!r}")
        if kw["addr"] or kw["data"]:
            raise LitmusError(f"{where}: a fence takes only ctrl() dependencies")
        return Instr("fence", fence=rest[0], text=text, **kw)
    raise LitmusError(f"{where}: unknown instruction {head!r} (st, ld or fence)")


def _tokenize_cond(s: str) -> list[str]:
    return re.findall(r"/\\|\\/|~|\(|\)|[^\s()~/\\]+", s)


def _parse_cond(s: str, where: str) -> Cond:
    toks = _tokenize_cond(s)
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise LitmusError(f"{where}: condition ends early: {s!r}")
        pos += 1
        return toks[pos - 1]

    def atom() -> Cond:
        t = take()
        if t == "(":
            c = disj()
            if take() != ")":
                raise LitmusError(f"{where}: missing ')' in {s!r}")
            return c
        if t == "~":
            return BoolOp("not", (atom(),))
        m = re.fullmatch(rf"(?:(\d+):)?({_IDENT})=(-?(?:0x[0-9a-fA-F]+|\d+))", t)
        if not m:
            raise LitmusError(f"{where}: bad condition atom {t!r} (want T:REG=V or LOC=V)")
        val = int(m[3], 0)
        return RegAtom(int(m[1]), m[2], val) if m[1] is not None else MemAtom(m[2], val)

    def conj() -> Cond:
        parts = [atom()]
        while peek() == "/\\":
            take()
            parts.append(atom())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def disj() -> Cond:
        parts = [conj()]
        while peek() == "\\/":
            take()
            parts.append(conj())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    c = disj()
    if pos != len(toks):
        raise LitmusError(f"{where}: unexpected {toks[pos]!r} in condition {s!r}")
    return c


def parse_litmus(text: str, name: str | None = None) -> Litmus:
    """Parse the litmus text format (module docstring); raise LitmusError on bad input."""
    threads: dict[int, list[Instr]] = {}
    cur: int | None = None
    cond: Cond | None = None
    init: list[tuple[str, int]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        where = f"{name or 'litmus'}:{lineno}"
        if not line:
            continue
        if cond is not None:
            raise LitmusError(f"{where}: nothing may follow the exists clause")
        if line.startswith("litmus "):
            name = name or line.split(None, 1)[1].strip()
            continue
        if line.startswith("init "):
            for item in line.split()[1:]:
                k, eq, v = item.partition("=")
                if not eq or not re.fullmatch(_IDENT, k):
                    raise LitmusError(f"{where}: expected LOC=VALUE in init, got {item!r}")
                init.append((k, _parse_int(v, where)))
            continue
        if line.startswith("exists"):
            cond = _parse_cond(line[len("exists"):].strip(), where)
            continue
        m = re.match(r"^P(\d+)\s*:(.*)$", line)
        if m:
            cur = int(m[1])
            if cur in threads:
                raise LitmusError(f"{where}: thread P{cur} defined twice")
            threads[cur] = []
            line = m[2]
        elif cur is None:
            raise LitmusError(f"{where}: expected `P0:` before instructions, got {line!r}")
        for part in line.split(";"):
            if part.strip():
                threads[cur].append(_parse_instr(part.strip(), where))
    if cond is None:
        raise LitmusError(f"{name or 'litmus'}: missing `exists` condition")
    if sorted(threads) != list(range(len(threads))) or not threads:
        raise LitmusError(f"{name or 'litmus'}: threads must be P0, P1, ... without gaps")
    lit = Litmus(name or "litmus", tuple(tuple(threads[i]) for i in range(len(threads))),
                 cond, tuple(init))
    _check_condition_names(lit, cond)
    return lit


def _check_condition_names(lit: Litmus, c: Cond) -> None:
    if isinstance(c, RegAtom):
        if not 0 <= c.tid < len(lit.threads) or not any(
            i.op == "ld" and i.reg == c.reg for i in lit.threads[c.tid]
        ):
            raise LitmusError(f"{lit.name}: condition names {c.tid}:{c.reg}, which no load sets")
    elif isinstance(c, MemAtom):
        if c.loc not in lit.locations():
            raise LitmusError(f"{lit.name}: condition names unknown location {c.loc!r}")
    else:
        for a in c.args:
            _check_condition_names(lit, a)


# --------------------------------------------------------------------------------------
# Events and relations
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """A memory event. ``tid`` is -1 for the initial write of a location.

    ``tags`` holds ``A`` (acquire), ``Q`` (acquirePC), ``L`` (release), or the fence kind
    (``full``, ``st``, ``ld``, ``isb``) for an ``F`` event.
    """

    eid: int
    tid: int
    index: int
    kind: str
    loc: str | None
    value: int | None
    tags: frozenset[str]
    reg: str | None
    label: str


Entry = bool | z3.BoolRef


def _and2(a: Entry, b: Entry) -> Entry:
    if a is True:
        return b
    if b is True:
        return a
    return z3.And(a, b)


def _or(terms: list[Entry]) -> Entry:
    if any(t is True for t in terms):
        return True
    if len(terms) == 1:
        return terms[0]
    return z3.Or(*terms)


class Rel:
    """A binary relation over events: pair -> ``True`` or a Z3 Bool (absent = false).

    Operators follow the cat language: ``|`` union, ``&`` intersection, ``-`` difference,
    ``@`` sequence (cat's ``;``), ``.inv()`` inverse. Static relations stay Python
    ``True`` so the Z3 formulas only mention the dynamic ``rf``/``co`` choices.
    """

    __slots__ = ("m",)

    def __init__(self, m: dict[tuple[int, int], Entry] | None = None):
        self.m: dict[tuple[int, int], Entry] = {k: v for k, v in (m or {}).items()
                                                 if v is not False}

    @staticmethod
    def of(pairs: Iterable[tuple[int, int]]) -> Rel:
        return Rel({p: True for p in pairs})

    @staticmethod
    def ident(ids: Iterable[int]) -> Rel:
        return Rel({(i, i): True for i in ids})

    def __or__(self, o: Rel) -> Rel:
        m = dict(self.m)
        for k, v in o.m.items():
            m[k] = _or([m[k], v]) if k in m else v
        return Rel(m)

    def __and__(self, o: Rel) -> Rel:
        return Rel({k: _and2(v, o.m[k]) for k, v in self.m.items() if k in o.m})

    def __sub__(self, o: Rel) -> Rel:
        m: dict[tuple[int, int], Entry] = {}
        for k, v in self.m.items():
            if k not in o.m:
                m[k] = v
            elif o.m[k] is not True:
                m[k] = _and2(v, z3.Not(o.m[k]))
        return Rel(m)

    def __matmul__(self, o: Rel) -> Rel:
        by_src: dict[int, list[tuple[int, Entry]]] = {}
        for (k, j), v in o.m.items():
            by_src.setdefault(k, []).append((j, v))
        acc: dict[tuple[int, int], list[Entry]] = {}
        for (i, k), v in self.m.items():
            for j, w in by_src.get(k, ()):
                acc.setdefault((i, j), []).append(_and2(v, w))
        return Rel({k: _or(v) for k, v in acc.items()})

    def inv(self) -> Rel:
        return Rel({(j, i): v for (i, j), v in self.m.items()})

    def __bool__(self) -> bool:
        return bool(self.m)


def acyclic(r: Rel, tag: str) -> z3.BoolRef:
    """``acyclic r`` as a ranking: every edge that is present goes up in rank."""
    nodes = sorted({i for k in r.m for i in k})
    rank = {i: z3.Int(f"{tag}.rank.{i}") for i in nodes}
    cs: list[z3.BoolRef] = []
    for (i, j), v in r.m.items():
        if i == j:
            cs.append(z3.BoolVal(False) if v is True else z3.Not(v))
        elif v is True:
            cs.append(rank[i] < rank[j])
        else:
            cs.append(z3.Implies(v, rank[i] < rank[j]))
    return z3.And(*cs) if cs else z3.BoolVal(True)


class Candidate:
    """Events of a litmus test, its static relations, and Z3 variables for rf and co.

    Attribute names follow cat: ``po``, ``rf``, ``co``, ``fr`` and their ``e``/``i``
    (external/internal) restrictions, ``addr``, ``data``, ``ctrl``, ``po_loc``; event
    sets ``R``, ``W``, ``F``, ``M``, ``A``, ``Q``, ``L``, ``ISB``, ``DMB_FULL``,
    ``DMB_LD``, ``DMB_ST`` (fences by kind). ``wellformed`` constrains rf and co.
    """

    def __init__(self, test: Litmus):
        self.test = test
        evs: list[Event] = []
        labels = iter("abcdefghijklmnopqrstuvwxyz")
        for loc in test.locations():
            evs.append(Event(len(evs), -1, 0, "W", loc, test.init_value(loc), frozenset(),
                             None, f"init.{loc}"))
        # deps[eid] = (addr, data, ctrl) source event ids
        deps: dict[int, tuple[set[int], set[int], set[int]]] = {}
        for tid, th in enumerate(test.threads):
            last_load: dict[str, int] = {}
            ctrl_from: set[int] = set()
            for idx, ins in enumerate(th):
                eid = len(evs)
                lab = next(labels, f"e{eid}")

                def src(reg: str, ins: Instr = ins, tid: int = tid,
                        last_load: dict[str, int] = last_load) -> int:
                    if reg not in last_load:
                        raise LitmusError(
                            f"{test.name}: P{tid} `{ins.text}` depends on {reg}, "
                            "which no earlier load in that thread sets")
                    return last_load[reg]

                a = {src(r) for r in ins.addr}
                d = {src(r) for r in ins.data}
                ctrl_from |= {src(r) for r in ins.ctrl}
                deps[eid] = (a, d, set(ctrl_from))
                if ins.op == "st":
                    tags = frozenset({"L"} if ins.order == "rel" else ())
                    evs.append(Event(eid, tid, idx, "W", ins.loc, ins.value, tags, None, lab))
                elif ins.op == "ld":
                    tags = frozenset({"acq": {"A"}, "acqpc": {"Q"}}.get(ins.order, set()))
                    evs.append(Event(eid, tid, idx, "R", ins.loc, None, tags, ins.reg, lab))
                    last_load[ins.reg] = eid  # type: ignore[index]
                else:
                    evs.append(Event(eid, tid, idx, "F", None, None,
                                     frozenset({ins.fence}), None, lab))  # type: ignore[arg-type]
        self.events: tuple[Event, ...] = tuple(evs)
        E = self.events
        n = len(E)
        self.n = n
        ids = range(n)
        self.R = frozenset(e.eid for e in E if e.kind == "R")
        self.W = frozenset(e.eid for e in E if e.kind == "W")
        self.F = frozenset(e.eid for e in E if e.kind == "F")
        self.M = self.R | self.W
        self.IW = frozenset(e.eid for e in E if e.tid < 0)
        self.A = frozenset(e.eid for e in E if "A" in e.tags)
        self.Q = frozenset(e.eid for e in E if "Q" in e.tags)
        self.L = frozenset(e.eid for e in E if "L" in e.tags)
        self.DMB_FULL = frozenset(e for e in self.F if "full" in E[e].tags)
        self.DMB_LD = frozenset(e for e in self.F if "ld" in E[e].tags)
        self.DMB_ST = frozenset(e for e in self.F if "st" in E[e].tags)
        self.ISB = frozenset(e for e in self.F if "isb" in E[e].tags)

        self.po = Rel.of((i, j) for i in ids for j in ids
                         if E[i].tid >= 0 and E[i].tid == E[j].tid and E[i].index < E[j].index)
        self.loc = Rel.of((i, j) for i in self.M for j in self.M if E[i].loc == E[j].loc)
        self.ext = Rel.of((i, j) for i in ids for j in ids if E[i].tid != E[j].tid)
        self.int = Rel.of((i, j) for i in ids for j in ids if E[i].tid == E[j].tid)
        self.po_loc = self.po & self.loc
        self.addr = Rel.of((s, e) for e, (a, _, _) in deps.items() for s in a)
        self.data = Rel.of((s, e) for e, (_, d, _) in deps.items() for s in d)
        self.ctrl = Rel.of((s, e) for e, (_, _, c) in deps.items() for s in c)
        self.rmw = Rel()  # no atomic read-modify-writes in this litmus dialect

        # rf: each read picks exactly one same-location write.
        rf: dict[tuple[int, int], Entry] = {}
        wf: list[z3.BoolRef] = []
        self.read_value: dict[int, z3.ArithRef] = {}
        for r in sorted(self.R):
            choices = [(w, z3.Bool(f"rf.{E[w].label}.{E[r].label}"))
                       for w in sorted(self.W) if E[w].loc == E[r].loc]
            for w, b in choices:
                rf[(w, r)] = b
            wf.append(z3.PbEq([(b, 1) for _, b in choices], 1))
            val: z3.ArithRef = z3.IntVal(0)
            for w, b in choices:
                val = z3.If(b, z3.IntVal(E[w].value), val)  # type: ignore[arg-type]
            self.read_value[r] = val
        self.rf = Rel(rf)
        # co: a position per write; the initial write comes first.
        self.co_pos: dict[int, z3.ArithRef] = {}
        for w in sorted(self.W):
            self.co_pos[w] = z3.IntVal(0) if w in self.IW else z3.Int(f"co.{E[w].label}")
        for loc in test.locations():
            ws = [w for w in sorted(self.W) if E[w].loc == loc]
            real = [self.co_pos[w] for w in ws if w not in self.IW]
            wf.extend(p > 0 for p in real)
            if len(real) > 1:
                wf.append(z3.Distinct(*real))
        co: dict[tuple[int, int], Entry] = {}
        for i in sorted(self.W):
            for j in sorted(self.W):
                if i != j and E[i].loc == E[j].loc and j not in self.IW:
                    co[(i, j)] = True if i in self.IW else self.co_pos[i] < self.co_pos[j]
        self.co = Rel(co)
        self.fr = self.rf.inv() @ self.co
        self.wellformed = z3.And(*wf) if wf else z3.BoolVal(True)
        for name in ("rf", "co", "fr"):
            r = getattr(self, name)
            setattr(self, name + "e", r & self.ext)
            setattr(self, name + "i", r & self.int)

    def id(self, s: Iterable[int]) -> Rel:
        """cat's ``[S]``: the identity on an event set."""
        return Rel.ident(s)

    def final_value(self, loc: str) -> z3.ArithRef:
        """The value of the coherence-last write to ``loc``."""
        E = self.events
        ws = [w for w in sorted(self.W) if E[w].loc == loc]
        val: z3.ArithRef = z3.IntVal(self.test.init_value(loc))
        for w in ws:
            if w in self.IW:
                continue
            last = z3.And(*[self.co_pos[w] > self.co_pos[v] for v in ws if v != w
                            and v not in self.IW]) if len(ws) > 2 else z3.BoolVal(True)
            val = z3.If(last, z3.IntVal(E[w].value), val)  # type: ignore[arg-type]
        return val

    def register_value(self, tid: int, reg: str) -> z3.ArithRef:
        """The value of ``reg`` at the end of thread ``tid`` (its last load into ``reg``)."""
        loads = [e for e in self.events if e.tid == tid and e.kind == "R" and e.reg == reg]
        return self.read_value[loads[-1].eid]

    def condition(self, c: Cond) -> z3.BoolRef:
        if isinstance(c, RegAtom):
            return self.register_value(c.tid, c.reg) == c.value
        if isinstance(c, MemAtom):
            return self.final_value(c.loc) == c.value
        args = [self.condition(a) for a in c.args]
        if c.op == "and":
            return z3.And(*args)
        if c.op == "or":
            return z3.Or(*args)
        return z3.Not(args[0])


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryModel:
    """A named set of acyclicity axioms; ``axioms(c)`` returns ``(name, relation)``s."""

    name: str
    title: str
    source: str
    axioms: Callable[[Candidate], list[tuple[str, Rel]]]


def _sc(c: Candidate) -> list[tuple[str, Rel]]:
    po = c.id(c.M) @ c.po @ c.id(c.M)
    return [("sc", po | c.rf | c.co | c.fr)]


def _tso(c: Candidate) -> list[tuple[str, Rel]]:
    # herd7 x86tso.cat: uniproc; ghb = mfence | implied | po_ghb | rfe | fr | co.
    # sfence/lfence order nothing for write-back memory in TSO (Owens et al. 2009, §2),
    # so `fence st|ld|isb` are no-ops here; acquire/release tags are plain MOVs.
    # `implied` needs locked instructions, which this dialect does not have.
    R, W, M = c.id(c.R), c.id(c.W), c.id(c.M)
    po_ghb = (W @ c.po @ W) | (R @ c.po @ M)
    mfence = M @ c.po @ c.id(c.DMB_FULL) @ c.po @ M
    return [
        ("uniproc", c.po_loc | c.rf | c.fr | c.co),
        ("tso", mfence | po_ghb | c.rfe | c.fr | c.co),  # type: ignore[attr-defined]
    ]


def _armv8(c: Candidate) -> list[tuple[str, Rel]]:
    # Pulte et al. POPL 2018, Fig. 5 / herd7 aarch64.cat (the v01 catalogue version),
    # without the single-copy-atomicity and exclusive/atomic clauses (no mixed sizes, no
    # RMWs in this dialect, so rmw and aob's rmw terms are empty).
    po, W, R = c.po, c.id(c.W), c.id(c.R)
    obs = c.rfe | c.fre | c.coe  # type: ignore[attr-defined]
    dob = (c.addr | c.data
           | c.ctrl @ W
           | (c.ctrl | c.addr @ po) @ c.id(c.ISB) @ po @ R
           | c.addr @ po @ W
           | (c.ctrl | c.data) @ c.coi  # type: ignore[attr-defined]
           | (c.addr | c.data) @ c.rfi)  # type: ignore[attr-defined]
    aob = c.rmw | (c.id(()) @ c.rfi @ c.id(c.A | c.Q))  # type: ignore[attr-defined]
    bob = (po @ c.id(c.DMB_FULL) @ po
           | c.id(c.L) @ po @ c.id(c.A)
           | R @ po @ c.id(c.DMB_LD) @ po
           | c.id(c.A | c.Q) @ po
           | W @ po @ c.id(c.DMB_ST) @ po @ W
           | po @ c.id(c.L)
           | po @ c.id(c.L) @ c.coi)  # type: ignore[attr-defined]
    M = c.id(c.M)
    return [
        ("internal", c.po_loc | c.fr | c.co | c.rf),
        ("external", M @ (obs | dob | aob | bob) @ M),
    ]


SC = MemoryModel("sc", "Sequential consistency", "Lamport 1979", _sc)
TSO = MemoryModel("x86-tso", "x86-TSO",
                  "Owens, Sarkar, Sewell, TPHOLs 2009; herd7 x86tso.cat", _tso)
ARMV8 = MemoryModel("armv8", "ARMv8 AArch64 (other-multi-copy-atomic)",
                    "Pulte et al., POPL 2018; herd7 aarch64.cat", _armv8)
MODELS: dict[str, MemoryModel] = {m.name: m for m in (SC, TSO, ARMV8)}
_MODEL_ALIASES = {"tso": "x86-tso", "x86": "x86-tso", "x86_64": "x86-tso",
                  "arm64": "armv8", "aarch64": "armv8", "arm": "armv8"}


def model(name: str | MemoryModel) -> MemoryModel:
    """Look a model up by name or alias (``sc``, ``x86-tso``/``tso``, ``armv8``/``arm64``)."""
    if isinstance(name, MemoryModel):
        return name
    key = _MODEL_ALIASES.get(name.lower(), name.lower())
    if key not in MODELS:
        raise LitmusError(f"unknown memory model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[key]


# --------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Execution:
    """A witness: every read's source, every location's coherence order, final state."""

    test: str
    model: str
    events: tuple[Event, ...]
    rf: tuple[tuple[int, int], ...]  # (write eid, read eid)
    co: tuple[tuple[str, tuple[int, ...]], ...]  # location -> writes in coherence order
    read_values: tuple[tuple[int, int], ...]
    registers: tuple[tuple[int, str, int], ...]
    final: tuple[tuple[str, int], ...]

    def render(self) -> str:
        E = self.events
        rv = dict(self.read_values)
        src = {r: w for w, r in self.rf}
        lines = [f"execution of {self.test} allowed by {self.model}:"]
        for e in E:
            if e.tid < 0:
                continue
            suffix = "".join(f".{t}" for t in sorted(e.tags)) if e.kind != "F" else ""
            if e.kind == "W":
                desc = f"W{suffix} {e.loc}={e.value}"
            elif e.kind == "R":
                w = E[src[e.eid]]
                frm = "initial value" if w.tid < 0 else f"{w.label} (P{w.tid})"
                desc = f"R{suffix} {e.loc}={rv[e.eid]} -> {e.reg}   reads from {frm}"
            else:
                desc = f"F {next(iter(e.tags))}"
            lines.append(f"  P{e.tid} {e.label}: {desc}")
        for loc, ws in self.co:
            order = " -> ".join(
                f"{'init' if E[w].tid < 0 else E[w].label}({E[w].value})" for w in ws)
            lines.append(f"  co {loc}: {order}")
        regs = " ".join(f"{t}:{r}={v}" for t, r, v in self.registers)
        mem = " ".join(f"{k}={v}" for k, v in self.final)
        lines.append(f"  final: {regs}  memory: {mem}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    """The answer for one test under one model."""

    test: str
    model: str
    allowed: bool
    witness: Execution | None
    forbidden_by: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return "allowed" if self.allowed else "forbidden"

    def __str__(self) -> str:
        why = f" (by {', '.join(self.forbidden_by)})" if self.forbidden_by else ""
        return f"{self.test} under {self.model}: {self.verdict}{why}"


def _witness(c: Candidate, m: z3.ModelRef, model_name: str) -> Execution:
    E = c.events
    rf = tuple(sorted((w, r) for (w, r), v in c.rf.m.items()
                      if v is True or z3.is_true(m.eval(v, model_completion=True))))
    rv = tuple((r, m.eval(c.read_value[r], model_completion=True).as_long())
               for r in sorted(c.R))
    co = []
    for loc in c.test.locations():
        ws = [w for w in sorted(c.W) if E[w].loc == loc]
        ws.sort(key=lambda w: m.eval(c.co_pos[w], model_completion=True).as_long())
        co.append((loc, tuple(ws)))
    rvd = dict(rv)
    regs: dict[tuple[int, str], int] = {}
    for e in E:
        if e.kind == "R":
            regs[(e.tid, e.reg)] = rvd[e.eid]  # type: ignore[index]
    final = tuple((loc, E[ws[-1]].value) for loc, ws in co)
    return Execution(c.test.name, model_name, E, rf, tuple(co), rv,
                     tuple((t, r, v) for (t, r), v in sorted(regs.items())), final)  # type: ignore[misc]


def check(test: Litmus | str, mm: MemoryModel | str, timeout_ms: int = 20_000) -> Verdict:
    """Is the test's ``exists`` outcome allowed under ``mm``? Returns a Verdict.

    When allowed, ``witness`` is one execution that reaches the outcome; when forbidden,
    ``forbidden_by`` names the axioms in Z3's unsat core.
    """
    import time

    t0 = time.perf_counter()
    lit = parse_litmus(test) if isinstance(test, str) else test
    mm = model(mm)
    c = Candidate(lit)
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.add(c.wellformed)
    s.add(c.condition(lit.condition))
    guards = []
    for name, rel in mm.axioms(c):
        g = z3.Bool(f"axiom.{name}")
        s.add(z3.Implies(g, acyclic(rel, name)))
        guards.append(g)
    res = s.check(*guards)
    dt = time.perf_counter() - t0
    if res == z3.sat:
        return Verdict(lit.name, mm.name, True, _witness(c, s.model(), mm.name), (), dt)
    if res == z3.unsat:
        core = tuple(sorted(str(g).removeprefix("axiom.") for g in s.unsat_core()))
        return Verdict(lit.name, mm.name, False, None, core, dt)
    raise LitmusError(f"{lit.name}: Z3 gave up under {mm.name} ({s.reason_unknown()})")


def check_all(test: Litmus | str, models: Iterable[str | MemoryModel] = ("sc", "x86-tso", "armv8")
              ) -> dict[str, Verdict]:
    """``check`` under several models; keyed by model name."""
    lit = parse_litmus(test) if isinstance(test, str) else test
    out = {}
    for mm in models:
        v = check(lit, mm)
        out[v.model] = v
    return out


def outcomes(test: Litmus | str, mm: MemoryModel | str) -> set[tuple[tuple[str, int], ...]]:
    """Every final state (registers ``T:REG`` and memory) the model allows, ignoring
    the ``exists`` clause. Useful for exploring a test; exponential only in its size."""
    lit = parse_litmus(test) if isinstance(test, str) else test
    mm = model(mm)
    c = Candidate(lit)
    s = z3.Solver()
    s.add(c.wellformed)
    for name, rel in mm.axioms(c):
        s.add(acyclic(rel, name))
    keys: list[tuple[str, z3.ArithRef]] = []
    for tid, th in enumerate(lit.threads):
        for reg in dict.fromkeys(i.reg for i in th if i.op == "ld"):
            keys.append((f"{tid}:{reg}", c.register_value(tid, reg)))  # type: ignore[arg-type]
    keys += [(loc, c.final_value(loc)) for loc in lit.locations()]
    found: set[tuple[tuple[str, int], ...]] = set()
    while s.check() == z3.sat:
        m = s.model()
        vals = tuple((k, m.eval(t, model_completion=True).as_long()) for k, t in keys)
        found.add(vals)
        s.add(z3.Or(*[t != v for (_, t), (_, v) in zip(keys, vals, strict=True)]))
    return found
