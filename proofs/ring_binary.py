"""The ring proved on the object code guests link (both ISAs): refinement and ordering.

guests/lib/ring.c is compiled exactly as :func:`keusim.toolchain.builds.guest_image`
compiles it for every guest (same zig, target, flags and include folders; one
translation unit, no LTO, so the linked bytes are the object's bytes:
tests/test_ring_binary.py checks that against a linked guest). Each function is lifted
to Z3 through Ghidra P-code (keusim.proof.lift) and executed symbolically over every
path, for every capacity, index, length and memory content.

**Refinement** (``ring.bin.<arch>.<function>``). Each path's observable effect is
compared with the model step of proofs/ring_invariants.py (``produce_core`` and
``peek_core``, the step those proofs show keeps the ring a FIFO):

* the return value, the final ``ep`` fields, ``*out``/``*len``;
* every store to the shared pages: the index (value and count) and data bytes (offset,
  size, value);
* every load of the peer's index and of data is *fresh* (the peer may change it at any
  time), so a compiled double fetch shows up as a result that disagrees with the model;
* no access outside the stack, ``*ep``, the two index words, ``data[0, capacity)`` and
  the out-parameters; no store to the peer's index (single writer, from the binary);
  no store to data by the consumer (its mapping is read-only).

**Ordering** (``ordering.bin.<arch>.*``). From the same paths, the order of the
ordering-relevant accesses (index loads/stores, header and marker accesses, barriers,
acquire/release forms, address and control dependencies) becomes litmus tests for
keusim.proof.memmodel: every publish path (ring_commit, ring_reserve's lone WRAP) against
every consume path that reads a header (both ring_peek passes), as message passing; and
every free path (ring_release, ring_peek's WRAP pass) against every reserve path that
may then overwrite, as load buffering. A publish observable before its record, or an
overwrite observable before the read it overwrites, is a counterexample.

What is assumed is listed in docs/proofs.md ("Proofs about the binary").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import z3

from keusim.proof import lift
from keusim.proof.lift import Env, Event, Executor, Insn, PathEnd, Region, State, Violation
from keusim.proof.prove import Outcome, Proof, load_module, run_as_script

ARCHES = ("x86_64", "arm64")
PRODUCER = ("ring_reserve", "ring_commit")
CONSUMER = ("ring_peek", "ring_release")
FUNCS = PRODUCER + CONSUMER

# struct ring_ep (guests/include/keusim/ring.h), offsets checked against DWARF by
# tests/test_ring_binary.py.
EP_FIELDS = {"head": (0, 8), "tail": (8, 8), "data": (16, 8), "capacity": (24, 4),
             "mask": (28, 4), "local": (32, 4), "pending": (36, 4)}
EP_SIZE = 40
STACK_BELOW = 512          # bytes below the entry stack pointer a leaf may use

E_AGAIN, E_TOOBIG, E_CORRUPT_INDEX, E_CORRUPT_LEN = -1, -2, -4, -5


def _ri() -> Any:
    return load_module("ring_invariants")


def B32(x: int) -> Any:
    return z3.BitVecVal(x & 0xFFFFFFFF, 32)


# --------------------------------------------------------------------------------------
# Building the object guests link
# --------------------------------------------------------------------------------------

def ring_object(arch: str, root: Path | None = None) -> Path:
    """ring.c compiled with the guests' flags (cached by content hash)."""
    from keusim.arch import toolchain
    from keusim.toolchain import ROOT, BuildSpec, build

    r = Path(root or ROOT)
    tc = toolchain(arch)
    spec = BuildSpec(
        sources=(r / "guests" / "lib" / "ring.c",), target=tc.zig_target,
        cflags=tuple(tc.cflags) + ("-c",),
        include_dirs=(r / "guests" / "include", r / "guests" / "arch" / arch / "include",
                      r / "kernel" / "include"))
    return build(spec, name=f"ring-{arch}")


# --------------------------------------------------------------------------------------
# The environment: what a ring function may touch
# --------------------------------------------------------------------------------------

class RingEnv(Env):
    """Memory around one ring function, for the producer or the consumer side."""

    def __init__(self, arch: str, side: str) -> None:
        self.arch = arch
        self.side = side
        b64 = lambda n: z3.BitVec(n, 64)  # noqa: E731
        self.EP, self.HEADP, self.TAILP, self.DATAP = b64("ep"), b64("headp"), b64("tailp"), \
            b64("datap")
        self.OUTP, self.LENP, self.SP0, self.RET = b64("outp"), b64("lenp"), b64("sp0"), \
            b64("ret")
        self.CAP, self.MASK = z3.BitVec("capacity", 32), z3.BitVec("mask", 32)
        self.LOCAL, self.PENDING = z3.BitVec("local", 32), z3.BitVec("pending", 32)
        self.OWN0 = z3.BitVec("own_index", 32)
        self.LEN = z3.BitVec("len", 32)
        own, peer = (self.HEADP, self.TAILP) if side == "producer" else (self.TAILP, self.HEADP)
        self.regions = [
            Region("stack", self.SP0 - STACK_BELOW, STACK_BELOW + 16),
            Region("ep", self.EP, EP_SIZE),
            Region("own", own, 4),
            Region("peer", peer, 4),
            Region("out", self.OUTP, 8),
            Region("len", self.LENP, 4),
            Region("data", self.DATAP, z3.ZeroExt(32, self.CAP)),
        ]

    def pre(self) -> list[Any]:
        """ring_init's guarantees on ep, and disjoint, non-wrapping regions."""
        # A disjunction of the nine capacities bit-blasts far smaller than 1 << k.
        pre = [z3.Or(*[self.CAP == (1 << k) for k in range(12, 21)]),
               self.MASK == self.CAP - 1, self.DATAP & 7 == 0]
        spans = []
        for r in self.regions:
            size = r.size if not isinstance(r.size, int) else z3.BitVecVal(r.size, 64)
            pre.append(z3.ULE(r.base, r.base + size))           # does not wrap 2^64
            spans.append((r.base, size))
        for i, (a, sa) in enumerate(spans):
            for b, sb in spans[i + 1:]:
                pre.append(z3.Or(z3.ULE(a + sa, b), z3.ULE(b + sb, a)))
        return pre

    def ep_bytes(self) -> dict[int, Any]:
        vals = {"head": self.HEADP, "tail": self.TAILP, "data": self.DATAP,
                "capacity": self.CAP, "mask": self.MASK, "local": self.LOCAL,
                "pending": self.PENDING}
        out: dict[int, Any] = {}
        for f, (off, size) in EP_FIELDS.items():
            for i in range(size):
                out[off + i] = z3.Extract(8 * i + 7, 8 * i, vals[f])
        return out

    def initial(self, ex: Executor, entry: int, args: Sequence[Any]) -> State:
        st = State(entry)
        regs = ("RDI", "RSI", "RDX", "RCX") if self.arch == "x86_64" else ("x0", "x1", "x2", "x3")
        for r, v in zip(regs, args, strict=False):
            ex.reg_init(r, v, st)
        if self.arch == "x86_64":
            ex.reg_init("RSP", self.SP0, st)
            for i in range(8):                                # the return address
                st.stack[STACK_BELOW + i] = z3.Extract(8 * i + 7, 8 * i, self.RET)
        else:
            ex.reg_init("sp", self.SP0, st)
            ex.reg_init("x30", self.RET, st)
        st.data["ep"] = self.ep_bytes()
        st.data["own"] = self.OWN0
        st.data["out"] = {}
        st.data["len"] = {}
        return st

    # -- memory ---------------------------------------------------------------------
    def load(self, ex: Executor, st: State, addr: Any, size: int, insn: Insn) -> Any:
        r, off = lift.classify(ex, st, addr, size, self.regions)
        deps = ex.deps_of(addr)
        k = off.as_long() if z3.is_bv_value(off) else None
        if r.name == "stack":
            v = [st.stack.get(k + i) for i in range(size)]
            v = [b if b is not None else ex.fresh("stack", 8) for b in v]
            return _cat(v)
        if r.name == "ep":
            return _cat([st.data["ep"][k + i] for i in range(size)])
        if r.name in ("out", "len"):
            raise Violation(f"reads the out-parameter *{r.name}")
        if r.name == "own":
            if k != 0 or size != 4:
                raise Violation(f"{size}-byte load at own index + {k}")
            v = st.data["own"]
        else:                                           # peer index, data: the peer's
            v = ex.fresh(r.name, 8 * size)
            ex.load_syms[v.decl().name()] = len(st.events)
        st.events.append(Event("ld", insn, r.name, off, size, v, deps, st.ctrl))
        return v

    def store(self, ex: Executor, st: State, addr: Any, size: int, value: Any,
              insn: Insn) -> None:
        r, off = lift.classify(ex, st, addr, size, self.regions)
        k = off.as_long() if z3.is_bv_value(off) else None
        deps = ex.deps_of(addr)
        if r.name == "stack":
            for i in range(size):
                st.stack[k + i] = z3.Extract(8 * i + 7, 8 * i, value)
            return
        if r.name in ("ep", "out", "len"):
            m = dict(st.data[r.name])
            for i in range(size):
                m[k + i] = value if size == 1 else z3.Extract(8 * i + 7, 8 * i, value)
            st.data[r.name] = m
            return
        if r.name == "peer":
            raise Violation("stores the peer's index: an index written by the wrong side")
        if r.name == "data" and self.side == "consumer":
            raise Violation("the consumer stores into the data window (read-only to it)")
        if r.name == "own":
            if k != 0 or size != 4:
                raise Violation(f"{size}-byte store at own index + {k}")
            st.data["own"] = value
        st.events.append(Event("st", insn, r.name, off, size, value, deps, st.ctrl))

    def call(self, ex: Executor, st: State, target: int | str, insn: Insn) -> bool | None:
        raise Violation(f"calls {target}; the four ring functions are leaves")


def _cat(bs: list[Any]) -> Any:
    return lift.join_bytes(bs)


# --------------------------------------------------------------------------------------
# Running a function
# --------------------------------------------------------------------------------------

@dataclass
class Run:
    """Every path of one function, with the environment they ran in."""

    arch: str
    func: str
    env: RingEnv
    ex: Executor
    ends: list[PathEnd]
    insns: int


def _side(func: str) -> str:
    return "producer" if func in PRODUCER else "consumer"


@lru_cache(maxsize=32)
def run_function(arch: str, func: str, obj: str) -> Run:
    """Lift and run ``func`` of the object at ``obj`` over every path (cached)."""
    lf = lift.lifter_for(arch, obj)
    if func not in lf.image.funcs:
        raise lift.LiftError(f"{func} is not a function of {Path(obj).name} "
                             "(inlined away or renamed?)")
    env = RingEnv(arch, _side(func))
    pre = env.pre()
    if func == "ring_commit":      # what ring_reserve left in ep (goal_reserve proves it)
        pre.append(producer_ep_ok(env, env.LOCAL, env.PENDING))
    # ring_peek: two passes of its loop (see docs/proofs.md, "the peek loop").
    ex = Executor(lf, env, pre, max_visits=2)
    args = {"ring_reserve": (env.EP, z3.ZeroExt(32, env.LEN), env.OUTP),
            "ring_commit": (env.EP, z3.ZeroExt(32, env.LEN)),
            "ring_peek": (env.EP, env.OUTP, env.LENP),
            "ring_release": (env.EP,)}[func]
    # The upper halves of 32-bit arguments are unspecified by both ABIs: leave them free.
    if func in ("ring_reserve", "ring_commit"):
        args = (args[0], z3.Concat(z3.BitVec("len_hi", 32), env.LEN)) + args[2:]
    st = env.initial(ex, lf.image.funcs[func].addr, args)
    ends = ex.run(st)
    return Run(arch, func, env, ex, ends, len(lf._cache))


# --------------------------------------------------------------------------------------
# The model's step, and the refinement check per path
# --------------------------------------------------------------------------------------

def _ret(arch: str, ex: Executor, st: State) -> Any:
    return z3.Extract(31, 0, ex.read_reg(st, "RAX" if arch == "x86_64" else "x0"))


def _field(st: State, name: str) -> Any:
    off, size = EP_FIELDS[name]
    return _cat([st.data["ep"][off + i] for i in range(size)])


def _written(st: State, region: str, size: int) -> Any | None:
    m = st.data[region]
    if not m:
        return None
    if sorted(m) != list(range(size)):
        return z3.BitVecVal(0, 1)    # a partial write: never equal to the model's value
    return _cat([m[i] for i in range(size)])


def _stores(st: State, region: str) -> list[Event]:
    return [e for e in st.events if e.kind == "st" and e.region == region]


def _loads(st: State, region: str) -> list[Event]:
    return [e for e in st.events if e.kind == "ld" and e.region == region]


def _exactly(evs: list[Event], want: Any, facts: Any) -> Any:
    """evs (a path's stores to one place) match "one store when ``want``, with facts"."""
    if len(evs) == 0:
        return z3.Not(want)
    if len(evs) == 1:
        return z3.And(want, facts(evs[0]))
    return z3.BoolVal(False)


def _unchanged(st: State, env: RingEnv, names: Sequence[str]) -> list[Any]:
    init = {"head": env.HEADP, "tail": env.TAILP, "data": env.DATAP, "capacity": env.CAP,
            "mask": env.MASK, "local": env.LOCAL, "pending": env.PENDING}
    return [_field(st, n) == init[n] for n in names]


def _out_goal(st: State, region: str, size: int, want: Any, value: Any) -> Any:
    w = _written(st, region, size)
    if w is None:
        return z3.Not(want)
    if w.size() != value.size():
        return z3.BoolVal(False)
    return z3.And(want, w == value)


def producer_ep_ok(env: RingEnv, local: Any, pending: Any) -> Any:
    """What ring_commit relies on when something is reserved: the record starts 8-aligned
    and fits before the end of data."""
    return z3.Implies(pending != 0, z3.And(
        local & 7 == 0, pending & 7 == 0, z3.ULE(8, pending),
        z3.ULE(z3.ZeroExt(32, local & env.MASK) + z3.ZeroExt(32, pending),
               z3.ZeroExt(32, env.CAP))))


def goal_reserve(run: Run, st: State) -> tuple[Any, dict[str, Any]]:
    env, ex = run.env, run.ex
    dm = _ri().BVDom()
    h = env.OWN0
    peers = _loads(st, "peer")
    if len(peers) > 1:
        return z3.BoolVal(False), {"why": "reads the consumer's tail more than once"}
    t = peers[0].value if peers else z3.BitVec("tail_unread", 32)
    core = _ri().produce_core(dm, env.CAP, h - t, h & env.MASK, _ri().aligned(h), env.LEN,
                              env.LEN)
    off = h & env.MASK
    ret = z3.If(core.toobig, B32(E_TOOBIG), z3.If(core.corrupt, B32(E_CORRUPT_INDEX),
                z3.If(core.full, B32(E_AGAIN), B32(0))))
    marker = z3.Or(core.wrap, core.lone_wrap)
    start = h + core.hp
    pos = start & env.MASK
    goals = [
        _ret(run.arch, ex, st) == ret,
        _exactly(_stores(st, "own"), core.lone_wrap,
                 lambda e: e.value == h + core.contig),
        _exactly(_stores(st, "data"), marker,
                 lambda e: z3.And(e.size == 4, e.offset == z3.ZeroExt(32, off),
                                  e.value == B32(0xFFFFFFFF))),
        _field(st, "pending") == z3.If(core.reserved, core.rec, B32(0)),
        _field(st, "local") == z3.If(core.reserved, start, env.LOCAL),
        _out_goal(st, "out", 8, core.reserved,
                  env.DATAP + z3.ZeroExt(32, pos) + 4),
        _out_goal(st, "len", 4, z3.BoolVal(False), B32(0)),
        producer_ep_ok(env, _field(st, "local"), _field(st, "pending")),
        *_unchanged(st, env, ("head", "tail", "data", "capacity", "mask")),
    ]
    show = {"len": env.LEN, "head": h, "tail read": t, "capacity": env.CAP,
            "returned": _ret(run.arch, ex, st), "model returns": ret,
            "pending": _field(st, "pending"), "model pending": z3.If(core.reserved, core.rec,
                                                                      B32(0))}
    return z3.And(*goals), show


def goal_commit(run: Run, st: State) -> tuple[Any, dict[str, Any]]:
    env, ex = run.env, run.ex
    dm = _ri().BVDom()
    clen_ok = dm.le(env.LEN, env.CAP - 8)
    crec = dm.rec(env.LEN, "rec_size(len)")
    ok = z3.And(clen_ok, z3.ULE(crec, env.PENDING))
    ret = z3.If(ok, B32(0), B32(E_TOOBIG))
    goals = [
        _ret(run.arch, ex, st) == ret,
        _exactly(_stores(st, "data"), ok,
                 lambda e: z3.And(e.size == 4, e.offset == z3.ZeroExt(32, env.LOCAL & env.MASK),
                                  e.value == env.LEN)),
        _exactly(_stores(st, "own"), ok, lambda e: e.value == env.LOCAL + crec),
        _field(st, "local") == z3.If(ok, env.LOCAL + crec, env.LOCAL),
        _field(st, "pending") == z3.If(ok, B32(0), env.PENDING),
        _out_goal(st, "out", 8, z3.BoolVal(False), z3.BitVecVal(0, 64)),
        *_unchanged(st, env, ("head", "tail", "data", "capacity", "mask")),
    ]
    show = {"len": env.LEN, "local": env.LOCAL, "pending": env.PENDING, "capacity": env.CAP,
            "returned": _ret(run.arch, ex, st), "model returns": ret}
    return z3.And(*goals), show


def goal_release(run: Run, st: State) -> tuple[Any, dict[str, Any]]:
    env = run.env
    some = env.PENDING != 0
    goals = [
        _exactly(_stores(st, "own"), some, lambda e: e.value == env.LOCAL + env.PENDING),
        _field(st, "local") == z3.If(some, env.LOCAL + env.PENDING, env.LOCAL),
        _field(st, "pending") == B32(0),
        _out_goal(st, "out", 8, z3.BoolVal(False), z3.BitVecVal(0, 64)),
        *_unchanged(st, env, ("head", "tail", "data", "capacity", "mask")),
    ]
    return z3.And(*goals), {"local": env.LOCAL, "pending": env.PENDING}


def _passes(st: State) -> list[list[Event]]:
    """ring_peek's events split at each load of head (one pass of its loop each)."""
    out: list[list[Event]] = []
    for e in st.events:
        if e.kind == "ld" and e.region == "peer":
            out.append([])
        if out:
            out[-1].append(e)
    return out


def goal_peek(run: Run, st: State, complete: bool = True) -> tuple[Any, dict[str, Any]]:
    """Every pass but the last follows a WRAP marker exactly as the model does; the last
    pass returns what the model returns. ``complete=False`` (a path cut by the unrolling
    bound) checks the passes so far only."""
    env, ex = run.env, run.ex
    dm = _ri().BVDom()
    if _loads(st, "own") and any(e.kind == "st" and e.region == "own" for e in st.events
                                 if st.events.index(e) < st.events.index(_loads(st, "own")[-1])):
        return z3.BoolVal(False), {"why": "re-reads its own tail after storing it"}
    t = env.OWN0
    goals: list[Any] = []
    show: dict[str, Any] = {"tail": env.OWN0, "capacity": env.CAP}
    passes = _passes(st)
    if not passes:
        return z3.BoolVal(False), {"why": "returns without loading head"}
    last_core = None
    for n, evs in enumerate(passes):
        h = evs[0].value
        datas = [e for e in evs if e.kind == "ld" and e.region == "data"]
        stores = [e for e in evs if e.kind == "st"]
        if len([e for e in evs if e.region == "peer"]) != 1 or len(datas) > 1:
            return z3.BoolVal(False), {"why": f"pass {n}: reads head or the header twice"}
        off = t & env.MASK
        hdr = datas[0].value if datas else z3.BitVec(f"hdr_unread{n}", 32)
        core = _ri().peek_core(dm, env.CAP, h - t, off, hdr, _ri().aligned(h | t))
        if datas:
            goals.append(z3.And(datas[0].size == 4,
                                datas[0].offset == z3.ZeroExt(32, off)))
        show[f"head (pass {n})"] = h
        show[f"header (pass {n})"] = hdr
        last = n == len(passes) - 1
        if not last or not complete:
            if not last or stores:
                goals.append(_exactly(stores, core.ok_wrap,
                                      lambda e, t=t, core=core: e.value == t + core.skip))
            t = t + core.skip
        else:
            goals.append(_exactly(stores, z3.BoolVal(False), lambda e: z3.BoolVal(False)))
            last_core = core
            last_off = off
            last_t = t
    if complete and last_core is not None:
        c = last_core
        ret = z3.If(c.empty, B32(E_AGAIN), z3.If(c.corrupt_index, B32(E_CORRUPT_INDEX),
                    z3.If(c.corrupt_len, B32(E_CORRUPT_LEN), B32(0))))
        hdr = show[f"header (pass {len(passes) - 1})"]
        rec32 = z3.Extract(31, 0, dm.rec_wide(hdr))
        goals += [
            z3.Not(c.ok_wrap),
            _ret(run.arch, ex, st) == ret,
            _field(st, "pending") == z3.If(c.ok_data, rec32, B32(0)),
            _field(st, "local") == z3.If(c.ok_data, last_t, env.LOCAL),
            _out_goal(st, "out", 8, c.ok_data, env.DATAP + z3.ZeroExt(32, last_off) + 4),
            _out_goal(st, "len", 4, c.ok_data, hdr),
        ]
        show["returned"] = _ret(run.arch, ex, st)
        show["model returns"] = ret
    goals += _unchanged(st, env, ("head", "tail", "data", "capacity", "mask"))
    return z3.And(*goals), show


GOALS = {"ring_reserve": goal_reserve, "ring_commit": goal_commit,
         "ring_peek": goal_peek, "ring_release": goal_release}


def check_refinement(arch: str, func: str, root: Path | None = None) -> Outcome:
    """Proved when every path of the compiled ``func`` refines the model step."""
    try:
        run = run_function(arch, func, str(ring_object(arch, root)))
    except lift.LiftError as e:
        return Outcome("error", str(e))
    ex = run.ex
    paths = cut = 0
    for end in run.ends:
        if end.kind == "violation":
            vals = lift.counterexample(ex, end.state, {"len": run.env.LEN,
                                                      "capacity": run.env.CAP,
                                                      "own index": run.env.OWN0})
            return Outcome("counterexample", f"{func} ({arch}): {end.why}\n" +
                           "\n".join(f"{k} = {v:#x}" if isinstance(v, int) else f"{k} = {v}"
                                     for k, v in vals.items()), {"why": end.why, **vals})
        if end.kind == "cut" and func != "ring_peek":
            return Outcome("unknown", f"{func} ({arch}): {end.why}")
        if end.kind not in ("ret", "cut"):
            return Outcome("counterexample", f"{func} ({arch}): path ends by {end.kind}")
        st = end.state
        if end.kind == "ret":
            ret_ok = end.ret == run.env.RET
            if not ex.valid(st, ret_ok):
                return Outcome("counterexample", f"{func} ({arch}): returns elsewhere than "
                               "to its caller")
        goal, show = GOALS[func](run, st) if end.kind == "ret" else goal_peek(run, st, False)
        if "why" in show:
            return Outcome("counterexample", f"{func} ({arch}): {show['why']}", show)
        if not ex.valid(st, goal):
            vals = lift.counterexample(ex, st, show, z3.Not(goal))
            where = " -> ".join(str(e.insn) for e in st.events if e.kind == "st") or "no store"
            return Outcome("counterexample",
                           f"{func} ({arch}) differs from the model step on a path "
                           f"(stores: {where})\n" +
                           "\n".join(f"{k} = {v:#x}" if isinstance(v, int) else f"{k} = {v}"
                                     for k, v in vals.items()), vals)
        paths += 1
        cut += end.kind == "cut"
    note = f" ({cut} paths cut after 3 WRAP follows; passes checked)" if cut else ""
    return Outcome("proved", None, {"paths": paths, "cut": cut, "note": note})


# --------------------------------------------------------------------------------------
# Ordering from the binary
# --------------------------------------------------------------------------------------

REL = ("stlr", "stlrb", "stlrh", "stlur", "stlurb", "stlurh")
ACQ = ("ldar", "ldarb", "ldarh")
ACQPC = ("ldapr", "ldaprb", "ldaprh", "ldapur", "ldapurb", "ldapurh")
FENCE = {"ish": "full", "sy": "full", "osh": "full", "ishst": "st", "st": "st",
         "oshst": "st", "ishld": "ld", "ld": "ld", "oshld": "ld"}


def _tag(e: Event) -> str:
    m = e.insn.mnemonic
    if e.kind == "st":
        return ".rel" if m in REL else ""
    return ".acq" if m in ACQ else ".acqpc" if m in ACQPC else ""


def _fence(e: Event) -> str | None:
    m, body = e.insn.mnemonic, e.insn.body.strip().lower()
    if m in ("dmb", "dsb"):
        return FENCE.get(body.split()[0] if body else "sy", "full")
    if m == "isb":
        return "isb"
    if m == "mfence":
        return "full"
    return None


def _number(st: State) -> list[Event]:
    for n, e in enumerate(st.events):
        e.__dict__["_idx"] = n
    return st.events


def _thread(events: list[Event], names: dict[str, str], values: dict[str, int],
            prefix: int) -> tuple[str, dict[str, str]]:
    """(litmus text, {what: reg}) for events; loads get registers r{prefix}.."""
    regs: dict[int, str] = {}
    body: list[str] = []
    which: dict[str, str] = {}
    k = prefix
    for e in events:
        if e.kind == "fence":
            f = _fence(e)
            if f:
                body.append(f"fence {f}")
            continue
        if e.region not in names:
            continue
        loc = names[e.region]
        deps = []
        ad = sorted({regs[d] for d in e.addr_deps if d in regs})
        cd = sorted({regs[d] for d in e.ctrl_deps if d in regs})
        if ad:
            deps.append(f"addr({','.join(ad)})")
        if cd:
            deps.append(f"ctrl({','.join(cd)})")
        if e.kind == "ld":
            r = f"r{k}"
            k += 1
            regs[e.__dict__["_idx"]] = r
            which.setdefault(loc, r)
            body.append(" ".join([f"ld{_tag(e)} {r} {loc}"] + deps))
        else:
            body.append(" ".join([f"st{_tag(e)} {loc} {values[loc]}"] + deps))
    return " ; ".join(body), which


@dataclass(frozen=True)
class Shape:
    """A shared-access sequence, turned into a litmus thread, and the paths that have it
    (feasibility is checked only when a test built from the shape fails)."""

    func: str
    text: str
    regs: tuple[tuple[str, str], ...]
    how: str
    paths: tuple[tuple[Any, State], ...] = ()

    def feasible(self) -> bool:
        return any(run.ex.feasible(st) for run, st in self.paths)


def _ok_paths(run: Run) -> list[State]:
    """The paths that returned (or were cut), events numbered. Some may be infeasible
    (the executor prunes lazily); Shape.feasible decides when it matters."""
    return [_numbered(e.state) for e in run.ends if e.kind in ("ret", "cut")]


def _numbered(st: State) -> State:
    _number(st)
    return st


def publish_shapes(arch: str, obj: str) -> list[Shape]:
    """Producer paths that publish head: ring_commit's, and ring_reserve's lone WRAP.
    The payload the caller wrote before ring_commit is a plain store first."""
    out = []
    for func in ("ring_commit", "ring_reserve"):
        run = run_function(arch, func, obj)
        for st in _ok_paths(run):
            evs = [e for e in st.events if e.kind == "fence" or e.region in ("own", "data")]
            if not any(e.kind == "st" and e.region == "own" for e in evs):
                continue
            # Everything up to and including the publishing store.
            last = max(n for n, e in enumerate(evs) if e.kind == "st" and e.region == "own")
            evs = evs[:last + 1]
            text, regs = _thread(evs, {"own": "head", "data": "hdr"},
                                 {"head": 1, "hdr": 1}, 10)
            if func == "ring_commit":
                text = "st payload 1 ; " + text
            out.append(Shape(func, text, tuple(regs.items()),
                             " -> ".join(str(e.insn) for e in evs if e.kind != "ld"),
                             ((run, st),)))
    return _dedupe(out)


def consume_shapes(arch: str, obj: str) -> list[Shape]:
    """Each ring_peek pass that loads head and then a header (or WRAP marker). A pass
    that returns a message is followed by the caller's plain payload read."""
    out = []
    run = run_function(arch, "ring_peek", obj)
    for st in _ok_paths(run):
        for evs in _passes(st):
            if not any(e.kind == "ld" and e.region == "data" for e in evs):
                continue
            first_data = next(n for n, e in enumerate(evs) if e.kind == "ld" and e.region == "data")
            seq = [e for e in evs[:first_data + 1]]
            text, regs = _thread(seq, {"peer": "head", "data": "hdr"}, {}, 0)
            ends_ok = not any(e.kind == "st" for e in evs)
            if ends_ok:
                text += " ; ld r9 payload"
                regs["payload"] = "r9"
            out.append(Shape("ring_peek", text, tuple(regs.items()),
                             " -> ".join(str(e.insn) for e in seq), ((run, st),)))
    return _dedupe(out)


def free_shapes(arch: str, obj: str) -> list[Shape]:
    """Consumer paths that free bytes by storing tail, after reading what they free:
    ring_peek's WRAP pass (marker read, then tail), and a message read (peek's header
    load, the caller's payload read) followed by ring_release."""
    out = []
    run = run_function(arch, "ring_peek", obj)
    for st in _ok_paths(run):
        for evs in _passes(st):
            if any(e.kind == "st" and e.region == "own" for e in evs):
                seq = [e for e in evs if e.kind == "fence" or e.region in ("data", "own")]
                text, regs = _thread(seq, {"data": "hdr", "own": "tail"}, {"tail": 1}, 0)
                out.append(Shape("ring_peek", text, tuple(regs.items()), "WRAP pass",
                                 ((run, st),)))
    rel = run_function(arch, "ring_release", obj)
    for st in _ok_paths(rel):
        evs = [e for e in st.events if e.kind == "fence" or e.region == "own"]
        if not any(e.kind == "st" for e in evs):
            continue
        text, regs = _thread(evs, {"own": "tail"}, {"tail": 1}, 2)
        text = "ld r0 hdr ; ld r1 payload ; " + text
        regs = {"hdr": "r0", "payload": "r1", **regs}
        out.append(Shape("ring_release", text, tuple(regs.items()), "release", ((rel, st),)))
    return _dedupe(out)


def reuse_shapes(arch: str, obj: str) -> list[Shape]:
    """Producer paths that read tail and then may overwrite freed bytes: ring_reserve's
    WRAP marker store, or (on success) the caller's payload store and the header."""
    out = []
    run = run_function(arch, "ring_reserve", obj)
    for st in _ok_paths(run):
        evs = [e for e in st.events if e.kind == "fence" or e.region in ("peer", "data")]
        if not any(e.kind == "ld" and e.region == "peer" for e in evs):
            continue
        text, regs = _thread(evs, {"peer": "tail", "data": "hdr"}, {"hdr": 2}, 10)
        ok = not any(e.kind == "st" and e.region == "own" for e in st.events)
        text += " ; st payload 2 ; st hdr 2" if ok else ""
        out.append(Shape("ring_reserve", text, tuple(regs.items()), "reserve", ((run, st),)))
    return _dedupe(out)


def _dedupe(shapes: list[Shape]) -> list[Shape]:
    """One shape per litmus text, carrying every path that has it."""
    seen: dict[str, Shape] = {}
    for s in shapes:
        if s.text in seen:
            old = seen[s.text]
            seen[s.text] = Shape(old.func, old.text, old.regs, old.how, old.paths + s.paths)
        else:
            seen[s.text] = s
    return list(seen.values())


def litmus_pairs(arch: str, obj: str) -> list[tuple[str, str, Shape, Shape]]:
    """(name, litmus text, shape, shape) for every publish x consume and free x reuse
    pair of shapes."""
    tests = []
    for p in publish_shapes(arch, obj):
        for c in consume_shapes(arch, obj):
            cr = dict(c.regs)
            stale = [f"1:{cr['hdr']}=0"]
            if "payload" in cr and p.func == "ring_commit":
                stale.append(f"1:{cr['payload']}=0")
            cond = f"1:{cr['head']}=1 /\\ (" + OR.join(stale) + ")"
            tests.append((f"publish {p.func} / {c.func}",
                          f"litmus {p.func}-publish-vs-{c.func}\n"
                          f"P0: {p.text}\nP1: {c.text}\nexists {cond}", p, c))
    for f in free_shapes(arch, obj):
        fr = dict(f.regs)
        for r in reuse_shapes(arch, obj):
            rr = dict(r.regs)
            saw = [f"1:{fr[k]}=2" for k in ("hdr", "payload") if k in fr]
            cond = f"0:{rr['tail']}=1 /\\ (" + OR.join(saw) + ")"
            tests.append((f"reuse {f.func} / {r.func}",
                          f"litmus {f.func}-free-vs-{r.func}-overwrite\n"
                          f"P0: {r.text}\nP1: {f.text}\nexists {cond}", r, f))
    return tests


def litmus_tests(arch: str, obj: str) -> list[tuple[str, str]]:
    """(name, litmus text) for every publish x consume and free x reuse pair."""
    return [(n, t) for n, t, _, _ in litmus_pairs(arch, obj)]


OR = " \\/ "
MODEL = {"x86_64": "x86-tso", "arm64": "armv8"}


def check_ordering(arch: str, root: Path | None = None) -> Outcome:
    """Proved when no extracted litmus test allows its bad outcome on the ISA's model."""
    from keusim.proof import memmodel

    try:
        obj = str(ring_object(arch, root))
        tests = litmus_pairs(arch, obj)
    except lift.LiftError as e:
        return Outcome("error", str(e))
    if not tests:
        return Outcome("counterexample", "found no publish/consume path pair: the extraction "
                       "is out of date with the code")
    for name, text, a, b in tests:
        v = memmodel.check(text, MODEL[arch])
        # Both threads' shapes must come from feasible paths (the two functions' paths
        # are independent, so the pair is feasible when each is).
        if v.allowed and a.feasible() and b.feasible():
            assert v.witness is not None
            return Outcome("counterexample", f"{name}:\n{text}\n{v.witness.render()}",
                           {"test": text})
    return Outcome("proved", None, {"tests": [t for _, t, _, _ in tests]})


def proofs_for(root: Path | None = None, arches: Sequence[str] = ARCHES) -> list[Proof]:
    """The binary proofs for the tree at ``root`` (the mutation harness passes a copy)."""
    out = []
    for a in arches:
        for f in FUNCS:
            out.append(Proof(f"ring.bin.{a}.{f}",
                             f"compiled {f} ({a}) refines the model step; accesses stay in "
                             "its windows; the peer's index is never written",
                             lambda a=a, f=f: check_refinement(a, f, root)))
        out.append(Proof(f"ordering.bin.{a}",
                         f"compiled ring ({a}, {MODEL[a]}): no publish seen before its "
                         "record, no overwrite seen before the read it frees, on any path",
                         lambda a=a: check_ordering(a, root)))
    return out


def proofs() -> list[Proof]:
    return proofs_for()


if __name__ == "__main__":
    sys.exit(run_as_script(proofs()))
