"""Unbounded Z3 proofs of the SPSC ring (guests/lib/ring.c, guests/include/keusim/ring.h).

Every proof is inductive. It assumes the invariant in an arbitrary state, takes one step
of one side, and shows the invariant again. It covers every capacity ``1 << k`` with
RING_MIN_CAPACITY <= 1 << k <= RING_MAX_CAPACITY symbolically, in one query. The
quantified parts of the invariant (over ring positions) are stated for one arbitrary
(Skolem) position and instantiated where the step needs them, so every query is
quantifier-free.

Three layers, each a refinement of the next:

1. **ring.c itself**, over 32-bit bit-vectors like the C code:
   - the indices: ``0 <= head - tail <= capacity``;
   - every access is inside ``data[0, capacity)``, against a malicious peer too;
   - no unconsumed byte is overwritten, no unpublished byte is read;
   - each index has one writer: proved of the compiled functions by
     proofs/ring_binary.py (a store to the peer's index is a counterexample there).
2. **Ring array vs byte queue** (bit-vectors). ``Q[a]`` is the unconsumed byte at
   ``tail + a``, and the relation is ``D[(tail + a) & mask] == Q[a]`` for ``a < head -
   tail``. Produce appends exactly the bytes written; consume reads exactly the queue's
   front bytes. These are byte-exact FIFO ("ring.*.byte_queue").
3. **Byte queue vs message queue** (integers). Ghost state over queue offsets says:
   - where records start (``Rs``) and where head once was (``IsPub``);
   - each message's sequence number (``IdAt``) and content as committed (``GLen``,
     ``GB``).
   The invariant says the queue is a well-framed sequence of WRAP markers and records,
   numbered consecutively from the consumed count. ``consume`` returning exactly
   ``GLen[0]``/``GB[0]`` with ``IdAt(0) == consumed`` is message-level FIFO.

   This layer's arithmetic is over window offsets, which never wrap, so it runs in
   linear integer arithmetic: bit-blasting those inequalities took minutes; the
   integer solver takes well under a second. Steps 1 and 3 use the *same* step code
   (``peek_core``/``produce_core``), written over an arithmetic domain. "ring.link.no_wrap"
   proves that none of the 32-bit operations in that code wraps, so the 32-bit and the
   integer instances compute the same results.

Concurrency, rely-guarantee style (Jones 1983):
- The producer's view of ``tail`` may be stale: it saw ``t``, and the consumer has since
  advanced tail to ``T`` in ``[t, head]``.
- The consumer's ``h`` may lag ``head``, but ``h`` was once a value of head.
- Each side's writes (its index, and for the producer the payload) stay out of what
  the other side may read.
So each step is proved against every interleaving of the other side's steps. Hardware
reordering is a separate question: proofs/ring_ordering.py.

Each modelled step cites the line of ring.c it models (SOURCE_MAP).
tests/test_proofs.py checks the citations against ring.c, and checks the constants below
against ring.h.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from keusim.proof.prove import Outcome, Proof, run_as_script, solve

# Mirrored from guests/include/keusim/ring.h (tests/test_proofs.py fails on drift).
RING_HDR_SIZE = 4
RING_ALIGN = 8
RING_WRAP = 0xFFFFFFFF
RING_MIN_CAPACITY = 4096
RING_MAX_CAPACITY = 1 << 20

RING_C = "guests/lib/ring.c"



@dataclass(frozen=True)
class SourceStep:
    """A modelled step and the line of ring.c it models (``snippet`` is on that line)."""

    step: str
    function: str
    line: int
    snippet: str


SOURCE_MAP: tuple[SourceStep, ...] = (
    SourceStep("reserve: len > cap-8 -> TOOBIG", "ring_reserve", 85,
               "len > ep->capacity - RING_ALIGN"),
    SourceStep("reserve: h = own head", "ring_reserve", 87, "h = *ep->head"),
    SourceStep("reserve: t = tail (acquire)", "ring_reserve", 88, "load_acquire(ep->tail)"),
    SourceStep("reserve: used = h - t", "ring_reserve", 89, "used = h - t"),
    SourceStep("reserve: used > cap or h & 7 -> CORRUPT_INDEX", "ring_reserve", 90,
               "used > ep->capacity"),
    SourceStep("reserve: rec = (4 + len + 7) & ~7", "ring_reserve", 92, "rec_size(len)"),
    SourceStep("reserve: off = h & mask", "ring_reserve", 93, "off = h & ep->mask"),
    SourceStep("reserve: contig = cap - off", "ring_reserve", 94, "contig = ep->capacity - off"),
    SourceStep("reserve: need = rec > contig ? contig + rec : rec", "ring_reserve", 95,
               "contig + rec : rec"),
    SourceStep("reserve: need > cap - used -> EAGAIN", "ring_reserve", 96,
               "need > ep->capacity - used"),
    SourceStep("reserve: lone WRAP marker published on EAGAIN", "ring_reserve", 100,
               "contig <= ep->capacity - used"),
    SourceStep("reserve: lone WRAP: head = h + contig (release)", "ring_reserve", 102,
               "store_release(ep->head, h + contig)"),
    SourceStep("reserve: WRAP marker at data[off]", "ring_reserve", 107, "= RING_WRAP"),
    SourceStep("reserve: h += contig", "ring_reserve", 108, "h += contig"),
    SourceStep("reserve: payload at data[(h & mask) + 4]", "ring_reserve", 112,
               "(h & ep->mask) + RING_HDR_SIZE"),
    SourceStep("commit: len > cap-8 -> TOOBIG", "ring_commit", 124,
               "len > ep->capacity - RING_ALIGN"),
    SourceStep("commit: rec(len) > reserved -> TOOBIG", "ring_commit", 127,
               "rec > ep->pending"),
    SourceStep("commit: header len at data[h & mask]", "ring_commit", 129,
               "*hdr_at(ep, ep->local & ep->mask) = len"),
    SourceStep("commit: head = h + rec (release)", "ring_commit", 132,
               "store_release(ep->head, ep->local)"),
    SourceStep("peek: t = own tail", "ring_peek", 148, "t = *ep->tail"),
    SourceStep("peek: h = head (acquire)", "ring_peek", 150, "h = load_acquire(ep->head)"),
    SourceStep("peek: used = h - t", "ring_peek", 151, "used = h - t"),
    SourceStep("peek: used == 0 -> EAGAIN", "ring_peek", 152, "used == 0"),
    SourceStep("peek: used > cap or (h|t) & 7 -> CORRUPT_INDEX", "ring_peek", 154,
               "used > ep->capacity"),
    SourceStep("peek: off = t & mask", "ring_peek", 156, "off = t & ep->mask"),
    SourceStep("peek: hdr = data[off], read once", "ring_peek", 157, "hdr = *hdr_at(ep, off)"),
    SourceStep("peek: WRAP: skip = cap - off", "ring_peek", 160, "skip = ep->capacity - off"),
    SourceStep("peek: WRAP: skip > used -> CORRUPT_LEN", "ring_peek", 161, "skip > used"),
    SourceStep("peek: WRAP: tail = t + skip (release), retry", "ring_peek", 164,
               "store_release(ep->tail, t)"),
    SourceStep("peek: rec = rec_size(hdr) in 64 bits", "ring_peek", 166, "rec = rec_size(hdr)"),
    SourceStep("peek: hdr > cap-8, rec > cap-off, rec > used -> CORRUPT_LEN", "ring_peek", 167,
               "rec > used"),
    SourceStep("peek: payload at data[off + 4], len = hdr", "ring_peek", 171,
               "off + RING_HDR_SIZE"),
    SourceStep("release: tail = t + rec (release)", "ring_release", 184,
               "store_release(ep->tail, ep->local)"),
)

# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------

BV = z3.BitVecRef
Bool = z3.BoolRef
Mem = Callable[[Any], Any]  # position -> byte
F = z3.BoolVal(False)
T_ = z3.BoolVal(True)


def U(x: int) -> BV:
    return z3.BitVecVal(x, 32)


def capacity(name: str = "log2cap") -> tuple[BV, list[Bool]]:
    """A symbolic power-of-two capacity over the whole allowed range."""
    k = z3.BitVec(name, 32)
    lo, hi = RING_MIN_CAPACITY.bit_length() - 1, RING_MAX_CAPACITY.bit_length() - 1
    return U(1) << k, [z3.ULE(U(lo), k), z3.ULE(k, U(hi))]


def int_capacity(name: str = "capacity") -> tuple[z3.ArithRef, list[Bool]]:
    C = z3.Int(name)
    lo, hi = RING_MIN_CAPACITY.bit_length() - 1, RING_MAX_CAPACITY.bit_length() - 1
    return C, [z3.Or(*[C == 2 ** i for i in range(lo, hi + 1)])]


def le_byte(word: BV, j: BV) -> BV:
    """Byte j (0..3) of a little-endian 32-bit word."""
    return z3.Extract(7, 0, z3.LShR(word, j << 3))


def rd32(mem: Mem, off: BV) -> BV:
    return z3.Concat(mem(off + 3), mem(off + 2), mem(off + 1), mem(off))


def aligned(x: BV) -> Bool:
    return x & U(RING_ALIGN - 1) == 0


def in_range(x: BV, lo: BV, n: BV) -> Bool:
    """x in [lo, lo + n) modulo 2^32."""
    return z3.ULT(x - lo, n)


# --------------------------------------------------------------------------------------
# Arithmetic domains: the step code below is written once and instantiated twice
# --------------------------------------------------------------------------------------


class BVDom:
    """ring.c's arithmetic: 32-bit unsigned, rec_size in 64 bits in ring_peek.

    ``sub``/``add``/``rec`` record, as ``side``, the condition under which the operation
    does not wrap (guarded by the path it is on). ring.link.no_wrap proves them all.
    """

    def __init__(self, rec64: bool = True):
        self.side: list[tuple[str, Bool]] = []
        self.rec64 = rec64

    def c(self, x: int) -> BV:
        return U(x)

    def sub(self, x, y, why: str, when: Bool = T_):
        self.side.append((why, z3.Implies(when, z3.ULE(y, x))))
        return x - y

    def add(self, x, y, why: str, when: Bool = T_):
        self.side.append((why, z3.Implies(when, z3.BVAddNoOverflow(x, y, False))))
        return x + y

    def rec(self, n, why: str, when: Bool = T_):
        """rec_size(n) = (4 + n + 7) & ~7, cast to 32 bits (ring.c:41-45, :92, :126)."""
        self.side.append((why, z3.Implies(when, z3.ULE(n, U(0xFFFFFFFF - 11)))))
        return (U(RING_HDR_SIZE) + n + U(RING_ALIGN - 1)) & ~U(RING_ALIGN - 1)

    def rec_wide(self, n):
        """rec_size(hdr) in 64 bits, as ring_peek keeps it (ring.c:145, :166)."""
        if not self.rec64:
            return self.rec(n, "MUTANT: 32-bit rec_size")
        x = z3.ZeroExt(32, n)
        return (z3.BitVecVal(RING_HDR_SIZE + RING_ALIGN - 1, 64) + x) & ~z3.BitVecVal(7, 64)

    def wide(self, x):
        return z3.ZeroExt(32, x) if self.rec64 else x

    def narrow(self, x, why: str, when: Bool = T_):
        if not self.rec64:
            return x
        self.side.append((why, z3.Implies(when, z3.Extract(63, 32, x) == 0)))
        return z3.Extract(31, 0, x)

    def lt(self, x, y):
        return z3.ULT(x, y)

    def le(self, x, y):
        return z3.ULE(x, y)

    def gt(self, x, y):
        return z3.UGT(x, y)

    def is_aligned(self, x):
        return aligned(x)


class IntDom:
    """The same operations on mathematical integers (no wrap-around)."""

    side: list[tuple[str, Bool]] = []
    rec64 = True

    def c(self, x: int):
        return z3.IntVal(x)

    def sub(self, x, y, why: str = "", when: Bool = T_):
        return x - y

    def add(self, x, y, why: str = "", when: Bool = T_):
        return x + y

    def rec(self, n, why: str = "", when: Bool = T_):
        return ((n + RING_HDR_SIZE + RING_ALIGN - 1) / RING_ALIGN) * RING_ALIGN

    def rec_wide(self, n):
        return self.rec(n)

    def wide(self, x):
        return x

    def narrow(self, x, why: str = "", when: Bool = T_):
        return x

    def lt(self, x, y):
        return x < y

    def le(self, x, y):
        return x <= y

    def gt(self, x, y):
        return x > y

    def is_aligned(self, x):
        return x % RING_ALIGN == 0


@dataclass(frozen=True)
class Variant:
    """Which checks of ring.c the model keeps; the mutants drop one each."""

    capacity_check: bool = True   # ring.c:96  need > cap - used -> EAGAIN
    wrap: bool = True             # ring.c:106 WRAP marker when the record would straddle
    used_check: bool = True       # ring.c:167 rec > used -> CORRUPT_LEN
    rec64: bool = True            # ring.c:166 rec_size in 64 bits
    len_check: bool = True        # ring.c:167 hdr > cap - 8 -> CORRUPT_LEN


HONEST = Variant()


@dataclass(frozen=True)
class PeekCore:
    """ring_peek's decisions for one pass of its loop, then ring_release's advance."""

    empty: Bool
    corrupt_index: Bool
    corrupt_len: Bool
    ok_wrap: Bool
    ok_data: Bool
    skip: Any
    advance: Any


def peek_core(dm, C, used, off, hdr, idx_aligned: Bool, v: Variant = HONEST) -> PeekCore:
    """ring_peek after ``used = h - t`` (ring.c:151), ``off = t & mask`` (:156) and
    ``hdr = *hdr_at(ep, off)`` (:157, read once); ``idx_aligned`` is (h|t) & 7 == 0."""
    empty = used == dm.c(0)                                                  # ring.c:152
    corrupt_index = z3.And(z3.Not(empty),
                           z3.Or(dm.gt(used, C), z3.Not(idx_aligned)))       # ring.c:154
    go = z3.And(z3.Not(empty), z3.Not(corrupt_index))
    is_wrap = hdr == dm.c(RING_WRAP)                                         # ring.c:158
    skip = dm.sub(C, off, "skip = cap - off")                                # ring.c:160
    wrap_bad = dm.gt(skip, used)                                             # ring.c:161
    rec = dm.rec_wide(hdr)                                                   # ring.c:166
    room = dm.sub(C, off, "cap - off")
    data_bad = z3.Or(dm.gt(hdr, dm.sub(C, dm.c(RING_ALIGN), "cap - 8")) if v.len_check else F,
                     dm.gt(rec, dm.wide(room)),
                     dm.gt(rec, dm.wide(used)) if v.used_check else F)       # ring.c:167
    corrupt_len = z3.And(go, z3.If(is_wrap, wrap_bad, data_bad))
    ok_wrap = z3.And(go, is_wrap, z3.Not(wrap_bad))
    ok_data = z3.And(go, z3.Not(is_wrap), z3.Not(data_bad))
    advance = z3.If(ok_wrap, skip,                                           # ring.c:163
                    z3.If(ok_data, dm.narrow(rec, "(uint32_t)rec", ok_data), dm.c(0)))  # :182
    return PeekCore(empty, corrupt_index, corrupt_len, ok_wrap, ok_data, skip, advance)


@dataclass(frozen=True)
class ProduceCore:
    """ring_reserve(len) then ring_commit(clen), as decisions and sizes.

    ``reserved``: reserve returned 0. ``ok``: commit published the message.
    ``lone_wrap``: reserve returned EAGAIN after publishing a lone WRAP marker
    (ring.c:100-102). ``hp``: the header's distance from old head (contig if wrapped).
    ``grow``: how far head moves.
    """

    toobig: Bool
    corrupt: Bool
    full: Bool
    lone_wrap: Bool
    reserved: Bool
    ok: Bool
    rec: Any
    contig: Any
    wrap: Bool
    hp: Any
    crec: Any
    grow: Any


def produce_core(dm, C, used, off, h_aligned: Bool, length, clen,
                 v: Variant = HONEST) -> ProduceCore:
    """ring_reserve after ``used = h - t`` (ring.c:89) and ``off = h & mask`` (:93)."""
    cap8 = dm.sub(C, dm.c(RING_ALIGN), "cap - 8")
    toobig = dm.gt(length, cap8)                                             # ring.c:85
    corrupt = z3.And(z3.Not(toobig), z3.Or(dm.gt(used, C), z3.Not(h_aligned)))  # :90
    go = z3.And(z3.Not(toobig), z3.Not(corrupt))
    rec = dm.rec(length, "rec_size(len)", z3.Not(toobig))                    # ring.c:92
    contig = dm.sub(C, off, "contig = cap - off")                            # ring.c:94
    straddle = dm.gt(rec, contig) if v.wrap else F
    need = z3.If(straddle, dm.add(contig, rec, "contig + rec", z3.And(go, straddle)),
                 rec)                                                        # ring.c:95
    free = dm.sub(C, used, "cap - used", go)
    full = z3.And(go, dm.gt(need, free)) if v.capacity_check else F          # ring.c:96
    lone_wrap = z3.And(full, straddle, dm.le(contig, free))                  # ring.c:100
    reserved = z3.And(go, z3.Not(full))                                      # ring.c:113
    clen_ok = dm.le(clen, cap8)                                              # ring.c:124
    crec = dm.rec(clen, "rec_size(clen)", clen_ok)                           # ring.c:126
    ok = z3.And(reserved, clen_ok, dm.le(crec, rec))                         # ring.c:127
    wrap = z3.And(reserved, straddle)                                        # ring.c:106
    hp = z3.If(wrap, contig, dm.c(0))                                        # ring.c:108
    grow = z3.If(ok, dm.add(hp, crec, "h + rec", ok),                        # ring.c:130
                 z3.If(lone_wrap, contig, dm.c(0)))                          # ring.c:102
    return ProduceCore(toobig, corrupt, full, lone_wrap, reserved, ok, rec, contig, wrap,
                       hp, crec, grow)


# --------------------------------------------------------------------------------------
# ring.c over 32-bit bit-vectors: indices, ring offsets, reads and writes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """``length`` bytes at ``start``; byte j is ``byte(j)``; only if ``guard``."""

    what: str
    start: Any
    length: Any
    byte: Callable[[Any], Any]
    guard: Bool


@dataclass(frozen=True)
class Read:
    what: str
    start: BV
    length: BV
    guard: Bool


def apply_writes(mem: Mem, writes: tuple[Write, ...], lt: Callable = z3.ULT) -> Mem:
    """Memory after the writes, in program order (a later write wins)."""

    def m2(i):
        v = mem(i)
        for w in writes:
            v = z3.If(z3.And(w.guard, lt(i - w.start, w.length)), w.byte(i - w.start), v)
        return v

    return m2


@dataclass(frozen=True)
class Produce:
    core: ProduceCore
    used: BV
    off: BV
    pos: BV
    plen: BV
    msg: Mem
    clen: BV
    new_head: BV
    writes: tuple[Write, ...]

    def __getattr__(self, name: str):
        return getattr(self.core, name)


def produce(C: BV, H: BV, t: BV, length: BV, plen: BV, clen: BV, msg: Mem,
            v: Variant = HONEST) -> Produce:
    """ring_reserve + the caller's ``plen`` payload bytes + ring_commit(clen)."""
    mask = C - 1
    used = H - t                                                             # ring.c:89
    off = H & mask                                                           # ring.c:93
    core = produce_core(BVDom(), C, used, off, aligned(H), length, clen, v)
    pos = (H + core.hp) & mask                                               # ring.c:112
    writes = (
        Write("WRAP marker", off, U(RING_HDR_SIZE), lambda j: le_byte(U(RING_WRAP), j),
              z3.Or(core.wrap, core.lone_wrap)),                             # :101 / :107
        Write("payload", pos + RING_HDR_SIZE, plen, msg, core.reserved),     # ring.c:112
        Write("header", pos, U(RING_HDR_SIZE), lambda j: le_byte(clen, j), core.ok),  # :129
    )
    return Produce(core, used, off, pos, plen, msg, clen, H + core.grow, writes)  # :132


def window_writes(pr: Produce, base: BV) -> tuple[Write, ...]:
    """The producer's writes as queue offsets: the same bytes as ``pr.writes``, placed
    at ``base`` (= head - tail) instead of at ring offsets. ring.produce.byte_queue
    proves the two placements agree."""
    return (
        Write("WRAP marker", base, U(RING_HDR_SIZE), lambda j: le_byte(U(RING_WRAP), j),
              z3.Or(pr.wrap, pr.lone_wrap)),
        Write("payload", base + pr.hp + RING_HDR_SIZE, pr.plen, pr.msg, pr.reserved),
        Write("header", base + pr.hp, U(RING_HDR_SIZE), lambda j: le_byte(pr.clen, j), pr.ok),
    )


@dataclass(frozen=True)
class Peek:
    core: PeekCore
    used: BV
    off: BV
    hdr: BV
    new_tail: BV
    reads: tuple[Read, ...]

    def __getattr__(self, name: str):
        return getattr(self.core, name)


def peek(C: BV, T: BV, h: BV, mem: Mem, v: Variant = HONEST) -> Peek:
    """One pass of ring_peek's loop with head snapshot h, then ring_release."""
    used = h - T                                                             # ring.c:151
    off = T & (C - 1)                                                        # ring.c:156
    hdr = rd32(mem, off)                                                     # ring.c:157
    core = peek_core(BVDom(v.rec64), C, used, off, hdr, aligned(h | T), v)
    reads = (Read("header", off, U(RING_HDR_SIZE),
                  z3.And(z3.Not(core.empty), z3.Not(core.corrupt_index))),  # ring.c:157
             Read("payload", off + RING_HDR_SIZE, hdr, core.ok_data))        # ring.c:171
    return Peek(core, used, off, hdr, T + core.advance, reads)               # :164 / :184


def offset_facts(C: BV, *xs: BV) -> list[Bool]:
    """Facts about capacity-masked offsets, valid for every x (ring.lemma.offsets proves
    them). The capacity has no bits at 2^21 and above, and is 8-aligned. Also,
    x & (C-1) < C, and an aligned x has an aligned offset <= C - 8. Proofs add them for
    the offsets they use, so the SAT solver need not rediscover them through the
    shifter."""
    out = [z3.Extract(31, 21, C) == 0, aligned(C), z3.UGE(C, U(RING_MIN_CAPACITY))]
    for x in xs:
        m = x & (C - 1)
        out += [z3.ULT(m, C), z3.Implies(aligned(x), z3.And(aligned(m), z3.ULE(m, C - 8)))]
    return out


def small(*xs: BV) -> list[Bool]:
    """x < 2^21: bit-level hints for values that the hypotheses already bound by the
    capacity (each use says why they are implied)."""
    return [z3.Extract(31, 21, x) == 0 for x in xs]


def ring_array(name: str = "D") -> Mem:
    return z3.Function(name, z3.BitVecSort(32), z3.BitVecSort(8))


def mask_add(C: BV, x: BV, j: BV) -> Bool:
    """(x + j) & mask == (x & mask) + j when that stays below C (no wrap); valid for
    every x and j (ring.lemma.offsets)."""
    m = C - 1
    return z3.Implies(z3.ULT((x & m) + j, C), (x + j) & m == (x & m) + j)


def prove_offsets() -> Outcome:
    """The offset facts the other proofs instantiate hold for every x, j and capacity."""
    C, cap_ok = capacity()
    x, j = z3.BitVec("x", 32), z3.BitVec("j", 32)
    m = C - 1
    goal = z3.And(*offset_facts(C, x), mask_add(C, x, j), (x + (C - (x & m))) & m == 0)
    return solve(cap_ok, goal, {"capacity": C, "x": x, "j": j})


def prove_link_no_wrap() -> Outcome:
    """No 32-bit operation in ring_peek's and ring_reserve/ring_commit's window arithmetic
    wraps, for any index, header or length a peer can produce. Hence the 32-bit code
    computes exactly what the integer instance of the same code computes (layer 3)."""
    C, cap_ok = capacity()
    used, off, hdr, length, clen = (z3.BitVec(n, 32) for n in
                                    ("used", "off", "hdr", "len", "clen"))
    dp, dq = BVDom(), BVDom()
    peek_core(dp, C, used, off, hdr, z3.Bool("aligned"))
    produce_core(dq, C, used, off, z3.Bool("aligned"), length, clen)
    hyps = cap_ok + [z3.ULT(off, C), aligned(off)]
    side = dp.side + dq.side
    bad = z3.Or(*[z3.Not(f) for _, f in side])
    return solve(hyps, z3.Not(bad), {"capacity": C, "used": used, "off": off, "hdr": hdr,
                                     "len": length, "clen": clen},
                 explain=lambda s: "a 32-bit operation wraps")


def _bv_producer(v: Variant = HONEST):
    """An arbitrary invariant state (indices only) and one producer step from it."""
    C, cap_ok = capacity()
    T, Uw, lag = z3.BitVec("tail", 32), z3.BitVec("used", 32), z3.BitVec("lag", 32)
    length, plen, clen = z3.BitVec("len", 32), z3.BitVec("plen", 32), z3.BitVec("clen", 32)
    msg = z3.Function("msg", z3.BitVecSort(32), z3.BitVecSort(8))
    H, t = T + Uw, T - lag
    pr = produce(C, H, t, length, plen, clen, msg, v)
    hyps = cap_ok + [
        z3.ULE(Uw, C), aligned(T), aligned(Uw),          # the index invariant
        # rely: the producer saw tail t = T - lag; the consumer moved it forward since
        z3.ULE(Uw + lag, C), z3.ULE(lag, C), aligned(lag),
        # the caller writes its payload inside the record it reserved
        z3.Implies(pr.reserved, z3.ULE(plen, pr.rec - RING_HDR_SIZE)),
    ] + offset_facts(C, H, H + pr.hp) + small(Uw, lag)  # Uw, lag <= C < 2^21
    # ring.lemma.offsets: skipping to the end of data lands on ring offset 0
    hyps.append((H + (C - (H & (C - 1)))) & (C - 1) == 0)
    show = {"capacity": C, "head": H, "tail": T, "tail seen": t, "len": length,
            "committed len": clen, "head after": pr.new_head, "wrapped": pr.wrap,
            "lone WRAP": pr.lone_wrap}
    return C, T, Uw, lag, H, t, pr, hyps, show


def prove_produce_index_bound(v: Variant = HONEST) -> Outcome:
    C, T, Uw, lag, H, t, pr, hyps, show = _bv_producer(v)
    H2 = pr.new_head
    goal = z3.And(
        z3.Not(pr.corrupt),                  # an honest tail never looks corrupt
        z3.ULE(H2 - T, C),                   # 0 <= head - tail <= capacity
        aligned(H2),
        z3.ULE(Uw, H2 - T),                  # head only moves forward
    )
    return solve(hyps, goal, {**show, "head - tail after": H2 - T},
                 explain=lambda s: "head - tail exceeds the capacity after a produce"
                 if s["head - tail after"] > s["capacity"] else "index invariant broken")


def prove_produce_in_bounds(v: Variant = HONEST) -> Outcome:
    """Every producer write is inside data[0, capacity), whatever tail the consumer wrote."""
    C, cap_ok = capacity()
    H, t = z3.BitVec("head", 32), z3.BitVec("tail seen", 32)
    length, plen, clen = z3.BitVec("len", 32), z3.BitVec("plen", 32), z3.BitVec("clen", 32)
    msg = z3.Function("msg", z3.BitVecSort(32), z3.BitVecSort(8))
    pr = produce(C, H, t, length, plen, clen, msg, v)
    j = z3.BitVec("j", 32)
    bad = [z3.And(w.guard, z3.ULT(j, w.length), z3.UGE(w.start + j, C)) for w in pr.writes]
    hyps = cap_ok + [aligned(H), z3.Implies(pr.reserved, z3.ULE(plen, pr.rec - RING_HDR_SIZE))]
    idx = z3.If(bad[0], pr.writes[0].start + j,
                z3.If(bad[1], pr.writes[1].start + j, pr.writes[2].start + j))
    return solve(hyps, z3.Not(z3.Or(*bad)),
                 {"capacity": C, "head": H, "tail seen": t, "len": length,
                  "wrapped": pr.wrap, "write index": idx},
                 explain=lambda s: f"write at data[{s['write index']:#x}] is past the end "
                 f"(capacity {s['capacity']:#x})")


def _no_overwrite_clash(C, H, t, pr, j, d) -> list[Bool]:
    return [z3.And(w.guard, z3.ULT(j, w.length), z3.ULT(d, H - t),
                   w.start + j == (t + d) & (C - 1)) for w in pr.writes]


def prove_produce_no_overwrite(v: Variant = HONEST) -> Outcome:
    """No producer write lands on an unconsumed byte: the writes avoid the ring offsets
    of [t, head), which contain [tail, head) for every tail the consumer has reached."""
    C, cap_ok = capacity()
    H, t = z3.BitVec("head", 32), z3.BitVec("tail seen", 32)
    length, plen, clen = z3.BitVec("len", 32), z3.BitVec("plen", 32), z3.BitVec("clen", 32)
    msg = z3.Function("msg", z3.BitVecSort(32), z3.BitVecSort(8))
    pr = produce(C, H, t, length, plen, clen, msg, v)
    j, d = z3.BitVec("j", 32), z3.BitVec("d", 32)
    hyps = cap_ok + [z3.ULE(H - t, C), aligned(H), aligned(t),
                     z3.Implies(pr.reserved, z3.ULE(plen, pr.rec - RING_HDR_SIZE))]
    mask = C - 1
    return solve(hyps, z3.Not(z3.Or(*_no_overwrite_clash(C, H, t, pr, j, d))),
                 {"capacity": C, "head": H, "tail seen": t, "len": length,
                  "head after": pr.new_head, "wrapped": pr.wrap,
                  "unconsumed position": t + d, "its offset": (t + d) & mask},
                 explain=lambda s: "the producer overwrites unconsumed byte "
                 f"data[{s['its offset']:#x}]")


def _solve_cases(cases: list[tuple[str, list[Bool], Bool]], show: dict) -> Outcome:
    """Prove each (name, hypotheses, goal); the first failure is the result."""
    for name, hyps, goal in cases:
        o = solve(hyps, goal, show)
        if o.outcome != "proved":
            return Outcome(o.outcome, f"case: {name}\n{o.counterexample}", o.details)
    return Outcome("proved")


def prove_produce_byte_queue(v: Variant = HONEST) -> Outcome:
    """Layer 2 for produce: the ring array still holds the byte queue. The old bytes are
    untouched, and the bytes appended are exactly those written, in order.

    The new window [0, used') splits into the old window [0, used), the part from head
    (WRAP marker and skipped bytes, or a lone WRAP), and the committed record. Each
    part is proved on its own, indexed from its own start, and then the split itself.
    """
    C, T, Uw, lag, H, t, pr, hyps, show = _bv_producer(v)
    mask = C - 1
    Q = z3.Function("Q", z3.BitVecSort(32), z3.BitVecSort(8))
    D = ring_array()
    U2 = Uw + pr.grow
    Q2 = apply_writes(lambda i: z3.If(z3.ULT(i, Uw), Q(i), D((T + i) & mask)),
                      window_writes(pr, Uw))
    D2 = apply_writes(D, pr.writes)
    a, j = z3.BitVec("a", 32), z3.BitVec("j", 32)
    x = (T + a) & mask
    # Old window: ring.produce.no_overwrite's statement at d = lag + a says no write
    # touches the old byte's offset.
    no_ow = [z3.Not(_no_overwrite_clash(C, H, t, pr, x - w.start, lag + a)[i])
             for i, w in enumerate(pr.writes)]
    old = z3.Implies(z3.And(z3.ULT(a, Uw), D(x) == Q(a)), D2(x) == Q2(a))
    # From head: the WRAP marker and the bytes it skips (contig of them for a lone
    # WRAP, hp before a record). ring.lemma.offsets: (H + j) & mask = off + j.
    head_part = z3.If(pr.lone_wrap, pr.contig, pr.hp)
    from_head = z3.Implies(z3.ULT(j, head_part),
                           D2((H + j) & mask) == Q2(Uw + j))
    at_head = [mask_add(C, H, j)]
    # The committed record: pos + crec <= capacity (ring.produce.in_bounds covers the
    # header and payload writes; the padding after them is inside the same record).
    rec_part = z3.Implies(z3.And(pr.ok, z3.ULT(j, pr.crec)),
                          D2((H + pr.hp + j) & mask) == Q2(Uw + pr.hp + j))
    at_rec = [mask_add(C, H + pr.hp, j)]
    # The split: every a < used' is in one of the three parts.
    split = z3.Implies(z3.ULT(a, U2), z3.Or(
        z3.ULT(a, Uw), z3.ULT(a - Uw, head_part),
        z3.And(pr.ok, z3.ULT(a - Uw - pr.hp, pr.crec))))
    return _solve_cases([
        ("old window", hyps + no_ow, old),
        ("WRAP marker and skipped bytes", hyps + at_head, from_head),
        ("committed record", hyps + at_rec, rec_part),
        ("the three parts cover the new window", hyps, split),
    ], show)


def _bv_consumer(v: Variant = HONEST):
    C, cap_ok = capacity()
    T, Uw, seen = z3.BitVec("tail", 32), z3.BitVec("used", 32), z3.BitVec("seen", 32)
    h = T + seen                         # the head value the consumer loaded
    hyps = cap_ok + [z3.ULE(Uw, C), aligned(T), aligned(Uw),
                     # rely: h was once the value of head (so aligned), not past it
                     z3.ULE(seen, Uw), aligned(seen)] + offset_facts(C, T) + small(Uw, seen)
    return C, T, Uw, seen, h, hyps


def prove_consume_index_bound(v: Variant = HONEST) -> Outcome:
    """Consume keeps 0 <= head - tail <= capacity and tail aligned; tail only moves
    forward, and never past head. (Header contents are arbitrary here.)"""
    C, T, Uw, seen, h, hyps = _bv_consumer(v)
    pk = peek(C, T, h, ring_array(), v)
    T2 = pk.new_tail
    goal = z3.And(z3.ULE(T + Uw - T2, C), aligned(T2), z3.ULE(T2 - T, Uw))
    return solve(hyps, goal, {"capacity": C, "tail": T, "head seen": h, "header": pk.hdr,
                              "tail after": T2})


def prove_consume_byte_queue(v: Variant = HONEST) -> Outcome:
    """Layer 2 for consume: every byte read is the byte queue's byte at the same distance
    from tail, so bytes come out in the order they went in. Afterwards the ring array
    still holds the (shorter) queue."""
    C, T, Uw, seen, h, hyps = _bv_consumer(v)
    mask = C - 1
    Q = z3.Function("Q", z3.BitVecSort(32), z3.BitVecSort(8))
    D = ring_array()
    pk = peek(C, T, h, D, v)
    a, j = z3.BitVec("a", 32), z3.BitVec("j", 32)

    def view(T_: BV, Uw_: BV, Q_: Mem, a_: BV) -> Bool:
        return z3.Implies(z3.ULT(a_, Uw_), D((T_ + a_) & mask) == Q_(a_))

    wrong = [z3.And(r.guard, z3.ULT(j, r.length), D(r.start + j) != Q(r.start + j - pk.off))
             for r in pk.reads]
    d = pk.advance
    # The relation's instances this step needs (the bytes read, and a), with
    # ring.lemma.offsets' mask_add for the bytes read.
    inst = [view(T, Uw, Q, r.start + j - pk.off) for r in pk.reads]
    inst += [view(T, Uw, Q, a + d)] + [mask_add(C, T, r.start + j - pk.off) for r in pk.reads]
    goal = z3.And(z3.Not(z3.Or(*wrong)), view(T + d, Uw - d, lambda i: Q(i + d), a))
    return solve(hyps + inst, goal, {"capacity": C, "tail": T, "head seen": h,
                                     "header": pk.hdr, "tail after": pk.new_tail})


def _bv_any_producer(v: Variant):
    """The consumer against an arbitrary producer: head and every data byte arbitrary."""
    C, cap_ok = capacity()
    T, h = z3.BitVec("tail", 32), z3.BitVec("head seen", 32)
    pk = peek(C, T, h, ring_array(), v)
    hyps = cap_ok + [aligned(T)]      # the consumer's own index stays aligned
    show = {"capacity": C, "tail": T, "head seen": h, "header": pk.hdr,
            "tail after": pk.new_tail}
    return C, T, h, pk, hyps, show


def prove_consume_in_bounds(v: Variant = HONEST) -> Outcome:
    """Whatever head and headers a malicious producer writes, every consumer read is in
    data[0, capacity), and tail stays 8-aligned and never passes the head it saw."""
    C, T, h, pk, hyps, show = _bv_any_producer(v)
    j = z3.BitVec("j", 32)
    oob = [z3.And(r.guard, z3.ULT(j, r.length), z3.UGE(r.start + j, C)) for r in pk.reads]
    T2 = pk.new_tail
    goal = z3.And(z3.Not(z3.Or(*oob)), aligned(T2), z3.ULE(T2 - T, h - T))
    idx = z3.If(oob[0], pk.reads[0].start + j, pk.reads[1].start + j)
    return solve(hyps, goal, {**show, "read index": idx},
                 explain=lambda s: f"reads data[{s['read index']:#x}] with capacity "
                 f"{s['capacity']:#x}")


def prove_consume_no_unpublished_read(v: Variant = HONEST) -> Outcome:
    """Every byte the consumer reads is at tail + d with d < h - tail (published by the
    head it saw), at ring offset off + d (no wrap inside a record). Holds against any
    producer."""
    C, T, h, pk, hyps, show = _bv_any_producer(v)
    j = z3.BitVec("j", 32)
    bad = []
    for r in pk.reads:
        d = r.start + j - pk.off
        bad.append(z3.And(r.guard, z3.ULT(j, r.length),
                          z3.Or(z3.UGE(d, pk.used), z3.UGE(pk.off + d, C))))
    d = z3.If(bad[0], pk.reads[0].start + j - pk.off, pk.reads[1].start + j - pk.off)
    return solve(hyps, z3.Not(z3.Or(*bad)), {**show, "bytes published": pk.used,
                                              "read at tail +": d},
                 explain=lambda s: f"reads byte tail+{s['read at tail +']:#x} but only "
                 f"{s['bytes published']:#x} are published")


# --------------------------------------------------------------------------------------
# Layer 3: byte queue vs message queue, over integers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IState:
    """The byte queue and the message-level ghost state, indexed by queue offset.

    ``RO(a)`` is the ring offset of queue offset a, ``(tail + a) & mask`` in ring.c;
    here it is uninterpreted except for the facts ``ro_facts`` states (proved for the
    real thing by ring.lemma.offsets). A consumer step shifts every function by the
    bytes consumed; a producer step extends them past head.
    """

    C: Any
    Uw: Any                          # head - tail
    RO: Callable[[Any], Any]
    Q: Callable[[Any], Any]          # the byte queue (bytes as integers 0..255)
    Rs: Callable[[Any], Bool]        # a record (header or WRAP marker) starts here
    IsPub: Callable[[Any], Bool]     # head has (had) this value
    IdAt: Callable[[Any], Any]       # sequence number here (WRAP: the next message's;
                                     # at head: the next to be produced)
    GLen: Callable[[Any], Any]       # the message here, as committed
    GB: Callable[[Any, Any], Any]
    Cc: Any                          # messages consumed


def fresh_istate() -> tuple[IState, list[Bool]]:
    I_ = z3.IntSort()
    C, cap_ok = int_capacity()
    Uw, Pc = z3.Int("used"), z3.Int("produced")
    RO = z3.Function("RO", I_, I_)
    Q = z3.Function("Q", I_, I_)
    Rs = z3.Function("Rs", I_, z3.BoolSort())
    Pub = z3.Function("Pub", I_, z3.BoolSort())
    Id = z3.Function("Id", I_, I_)
    GLen = z3.Function("GLen", I_, I_)
    GB = z3.Function("GB", I_, I_, I_)
    st = IState(C, Uw, RO, Q, Rs, IsPub=lambda x: z3.Or(Pub(x), x == Uw),
                IdAt=lambda x: z3.If(x == Uw, Pc, Id(x)), GLen=GLen, GB=GB,
                Cc=z3.Int("consumed"))
    return st, cap_ok


def word(Q: Callable, a) -> Any:
    """The little-endian 32-bit header at queue offset a."""
    return Q(a) + 256 * Q(a + 1) + 65536 * Q(a + 2) + 16777216 * Q(a + 3)


def ro_facts(st: IState, *xs) -> list[Bool]:
    """What layer 3 knows of ring offsets: in [0, C); aligned and <= C - 8 at aligned
    queue offsets (tail is aligned). ring.lemma.offsets proves these of (tail+x)&mask."""
    out = []
    for x in xs:
        r = st.RO(x)
        out += [0 <= r, r < st.C,
                z3.Implies(x % RING_ALIGN == 0, z3.And(r % RING_ALIGN == 0, r <= st.C - 8))]
    return out


def inv_global(st: IState) -> Bool:
    return z3.And(0 <= st.Uw, st.Uw <= st.C, st.Uw % RING_ALIGN == 0,
                  z3.Or(st.Uw == 0, st.Rs(0)), st.IdAt(0) == st.Cc)


def inv_local_parts(st: IState, a, b, k) -> list[tuple[str, Bool]]:
    """Layer 3's quantified invariant, clause by clause, for the record at queue offset a,
    the publish point b and payload byte k."""
    C, Uw = st.C, st.Uw
    off = st.RO(a)
    w = word(st.Q, a)
    is_rec = z3.And(0 <= a, a < Uw, st.Rs(a))
    wr = z3.And(is_rec, w == RING_WRAP)
    dr = z3.And(is_rec, w != RING_WRAP)
    nxw = a + C - off
    rec = IntDom().rec(w)
    nxd = a + rec

    def inside(nx) -> Bool:
        return z3.Not(z3.And(st.IsPub(b), a < b, b < nx))

    return [
        ("record aligned", z3.Implies(is_rec, a % RING_ALIGN == 0)),
        ("header bytes are bytes",
         z3.Implies(is_rec, z3.And(*[z3.And(0 <= st.Q(a + i), st.Q(a + i) <= 255)
                                     for i in range(RING_HDR_SIZE)]))),
        ("wrap: skip inside window", z3.Implies(wr, nxw <= Uw)),
        ("wrap: next is a record or head", z3.Implies(wr, z3.Or(nxw == Uw, st.Rs(nxw)))),
        ("wrap: next has its sequence number", z3.Implies(wr, st.IdAt(nxw) == st.IdAt(a))),
        ("wrap: no publish point inside", z3.Implies(wr, inside(nxw))),
        ("data: len <= cap - 8", z3.Implies(dr, w <= C - RING_ALIGN)),
        ("data: record before the end of data", z3.Implies(dr, rec <= C - off)),
        ("data: record inside window", z3.Implies(dr, nxd <= Uw)),
        ("data: ends at a publish point", z3.Implies(dr, st.IsPub(nxd))),
        ("data: next is a record or head", z3.Implies(dr, z3.Or(nxd == Uw, st.Rs(nxd)))),
        ("data: next sequence number", z3.Implies(dr, st.IdAt(nxd) == st.IdAt(a) + 1)),
        ("data: no publish point inside", z3.Implies(dr, inside(nxd))),
        ("data: length is the message's", z3.Implies(dr, w == st.GLen(a))),
        ("data: bytes are the message's",
         z3.Implies(z3.And(dr, 0 <= k, k < w), st.Q(a + RING_HDR_SIZE + k) == st.GB(a, k))),
        ("publish points aligned",
         z3.Implies(z3.And(st.IsPub(b), 0 <= b, b <= Uw), b % RING_ALIGN == 0)),
    ]


def inv_local(st: IState, a, b, k) -> Bool:
    return z3.And(*[f for _, f in inv_local_parts(st, a, b, k)])


def _solve_parts(hyps: list[Bool], goals: list[tuple[str, Bool]], show: dict) -> Outcome:
    """Prove a conjunction; on failure, name the first clause that fails."""
    o = solve(hyps, z3.And(*[g for _, g in goals]), show)
    if o.outcome != "counterexample":
        return o
    for name, g in goals:
        oo = solve(hyps, g, show)
        if oo.outcome == "counterexample":
            return Outcome("counterexample", f"clause broken: {name}\n{oo.counterexample}",
                           oo.details)
    return o


def prove_consume_refines(v: Variant = HONEST) -> Outcome:
    """Layer 3 for consume: the step keeps the framing, returns exactly the oldest message
    (its length, its bytes, sequence number ``consumed``), and never reports an honest
    producer as corrupt."""
    st, cap_ok = fresh_istate()
    C = st.C
    seen = z3.Int("seen")                       # head snapshot, as its distance from tail
    off, hdr = st.RO(0), word(st.Q, 0)
    pk = peek_core(IntDom(), C, seen, off, hdr, seen % RING_ALIGN == 0, v)  # tail aligned
    d = pk.advance
    a, b, k = z3.Ints("a b k")
    st2 = IState(C, st.Uw - d, lambda x: st.RO(x + d), lambda x: st.Q(x + d),
                 lambda x: st.Rs(x + d), lambda x: st.IsPub(x + d), lambda x: st.IdAt(x + d),
                 lambda x: st.GLen(x + d), lambda x, j: st.GB(x + d, j),
                 z3.If(pk.ok_data, st.Cc + 1, st.Cc))
    hyps = cap_ok + [inv_global(st), st.IsPub(seen), 0 <= seen, seen <= st.Uw,
                     inv_local(st, a + d, b + d, k), inv_local(st, 0, seen, k)]
    hyps += ro_facts(st, 0, a + d)
    delivered = z3.Implies(pk.ok_data, z3.And(
        st.IdAt(0) == st.Cc, hdr == st.GLen(0),
        z3.Implies(z3.And(0 <= k, k < hdr), st.Q(RING_HDR_SIZE + k) == st.GB(0, k))))
    goals = [("global invariant", inv_global(st2))] + inv_local_parts(st2, a, b, k) + [
        ("delivers the oldest message", delivered),
        ("no false alarm", z3.And(z3.Not(pk.corrupt_index), z3.Not(pk.corrupt_len),
                                  pk.empty == (seen == 0)))]
    return _solve_parts(hyps, goals, {"capacity": C, "used": st.Uw, "head seen": seen,
                                      "header": hdr, "advance": d, "queue offset": a})


def prove_produce_refines(v: Variant = HONEST) -> Outcome:
    """Layer 3 for produce: the byte queue still frames the message queue, with the new
    message (its committed bytes, the next sequence number) appended."""
    st, cap_ok = fresh_istate()
    C, Uw = st.C, st.Uw
    I_ = z3.IntSort()
    lag, length, plen, clen = z3.Ints("lag len plen clen")
    msg = z3.Function("msg", I_, I_)
    junk = z3.Function("junk", I_, I_)      # whatever the ring held in padding bytes
    off = st.RO(Uw)
    pc = produce_core(IntDom(), C, Uw + lag, off, T_, length, clen, v)  # head aligned
    hp, U2 = pc.hp, Uw + pc.grow
    hpos = Uw + hp
    # clen's little-endian bytes (the unique base-256 digits of clen < 2^32)
    cb = z3.Ints("clen_b0 clen_b1 clen_b2 clen_b3")
    digits = [z3.And(0 <= c, c <= 255) for c in cb] + [
        clen == cb[0] + 256 * cb[1] + 65536 * cb[2] + 16777216 * cb[3]]
    writes = (
        Write("WRAP marker", Uw, z3.IntVal(RING_HDR_SIZE), lambda j: z3.IntVal(255),
              z3.Or(pc.wrap, pc.lone_wrap)),
        Write("payload", hpos + RING_HDR_SIZE, plen, msg, pc.reserved),
        Write("header", hpos, z3.IntVal(RING_HDR_SIZE),
              lambda j: z3.If(j == 0, cb[0], z3.If(j == 1, cb[1], z3.If(j == 2, cb[2], cb[3]))),
              pc.ok),
    )
    lt = lambda x, n: z3.And(0 <= x, x < n)  # noqa: E731
    Q2 = apply_writes(lambda x: z3.If(x < Uw, st.Q(x), junk(x)), writes, lt)
    starts = lambda x: z3.Or(  # noqa: E731
        z3.And(z3.Or(pc.ok, pc.lone_wrap), x == Uw), z3.And(pc.ok, pc.wrap, x == hpos))
    new = lambda x: z3.And(Uw <= x, x < U2)  # noqa: E731
    nid = st.IdAt(Uw)
    st2 = IState(
        C, U2, st.RO, Q2,
        Rs=lambda x: z3.If(starts(x), T_, z3.If(new(x), F, st.Rs(x))),
        IsPub=lambda x: z3.If(x == U2, T_, z3.If(z3.And(Uw < x, x < U2), F, st.IsPub(x))),
        IdAt=lambda x: z3.If(x == U2, z3.If(pc.ok, nid + 1, nid),
                             z3.If(starts(x), nid, st.IdAt(x))),
        GLen=lambda x: z3.If(z3.And(pc.ok, x == hpos), clen, st.GLen(x)),
        GB=lambda x, j: z3.If(z3.And(pc.ok, x == hpos), Q2(hpos + RING_HDR_SIZE + j),
                              st.GB(x, j)),
        Cc=st.Cc,
    )
    a, b, k = z3.Ints("a b k")
    hyps = cap_ok + [
        inv_global(st), inv_local(st, a, b, k),
        # rely: the producer saw tail - lag; the caller's payload stays in its record
        0 <= lag, Uw + lag <= C, lag % RING_ALIGN == 0,
        0 <= length, length < 2 ** 32, 0 <= clen, clen < 2 ** 32,
        0 <= plen, z3.Implies(pc.reserved, plen <= pc.rec - RING_HDR_SIZE),
        # ring.lemma.offsets: skipping to the end of data lands on ring offset 0
        st.RO(Uw + (C - off)) == 0,
        # ring.produce.index_bound (with ring.link.no_wrap): head moves by a multiple of 8
        pc.grow % RING_ALIGN == 0,
    ] + ro_facts(st, a, Uw) + digits
    sent = z3.Implies(z3.And(pc.ok, clen <= plen, 0 <= k, k < clen),
                      st2.GB(hpos, k) == msg(k))   # ring_send: the queue gets its buffer
    goals = [("global invariant", inv_global(st2))] + inv_local_parts(st2, a, b, k) + [
        ("the message is the bytes sent", sent)]
    return _solve_parts(hyps, goals, {"capacity": C, "used": Uw, "lag": lag, "len": length,
                                      "committed len": clen, "queue offset": a})


PROOFS = [
    Proof("ring.lemma.offsets",
          "offset facts the other proofs instantiate: x & mask < cap, alignment, "
          "(x + j) & mask = (x & mask) + j without wrap, skipping to the end lands on 0",
          prove_offsets),
    Proof("ring.link.no_wrap",
          "no 32-bit operation in the window arithmetic of reserve/commit/peek wraps, for "
          "any peer input, so layer 3's integer model computes what ring.c computes",
          prove_link_no_wrap),
    Proof("ring.produce.index_bound",
          "produce keeps 0 <= head - tail <= capacity, head 8-aligned and monotone; an "
          "honest tail never reads as corrupt", prove_produce_index_bound),
    Proof("ring.produce.in_bounds",
          "every producer write is inside data[0, capacity), for any tail value",
          prove_produce_in_bounds),
    Proof("ring.produce.no_overwrite",
          "no producer write hits an unconsumed byte [tail, head) mod capacity",
          prove_produce_no_overwrite),
    Proof("ring.produce.byte_queue",
          "layer 2: the ring array still holds the byte queue; the bytes appended are "
          "exactly the bytes written, in order", prove_produce_byte_queue),
    Proof("ring.produce.refines_queue",
          "layer 3: the byte queue frames the message queue; the new message (its "
          "committed bytes, next sequence number) is appended", prove_produce_refines),
    Proof("ring.consume.index_bound",
          "consume keeps 0 <= head - tail <= capacity, tail 8-aligned and monotone",
          prove_consume_index_bound),
    Proof("ring.consume.byte_queue",
          "layer 2: every byte read is the queue's byte at that distance from tail (FIFO, "
          "byte-exact); the ring array still holds the queue", prove_consume_byte_queue),
    Proof("ring.consume.refines_queue",
          "layer 3: consume returns exactly the oldest message, keeps the framing, and "
          "never flags an honest producer", prove_consume_refines),
    Proof("ring.consume.in_bounds",
          "against a malicious producer (any head, any headers) every consumer read is in "
          "data[0, capacity) and tail never passes the head it saw",
          prove_consume_in_bounds),
    Proof("ring.consume.no_unpublished_read",
          "every byte the consumer reads was published: it lies in [tail, head seen)",
          prove_consume_no_unpublished_read),
    # Model mutants: each drops one check from this *model* (Variant), to show the proof
    # it protects can fail. Mutations of ring.c itself are `keusim prove --mutants`.
    Proof("ring.mutant.no_capacity_check",
          "MUTANT without ring.c:96 (need > cap - used): head - tail can exceed capacity",
          lambda: prove_produce_index_bound(Variant(capacity_check=False)),
          expected="counterexample"),
    Proof("ring.mutant.no_capacity_check_overwrite",
          "MUTANT without ring.c:96: the producer overwrites unconsumed bytes",
          lambda: prove_produce_no_overwrite(Variant(capacity_check=False)),
          expected="counterexample"),
    Proof("ring.mutant.no_wrap",
          "MUTANT without the WRAP skip (ring.c:95,106): a record runs past the data end",
          lambda: prove_produce_in_bounds(Variant(wrap=False)),
          expected="counterexample"),
    Proof("ring.mutant.no_wrap_framing",
          "MUTANT without the WRAP skip: the message-level framing breaks",
          lambda: prove_produce_refines(Variant(wrap=False)),
          expected="counterexample"),
    Proof("ring.mutant.no_used_check",
          "MUTANT without rec > used (ring.c:167): the consumer reads unpublished bytes",
          lambda: prove_consume_no_unpublished_read(Variant(used_check=False)),
          expected="counterexample"),
    Proof("ring.mutant.rec32_no_len_check",
          "MUTANT with rec_size in 32 bits and no hdr > cap-8 check: a huge header wraps "
          "rec to 0 and the payload read leaves the buffer",
          lambda: prove_consume_in_bounds(Variant(rec64=False, len_check=False)),
          expected="counterexample"),
]


if __name__ == "__main__":
    sys.exit(run_as_script(PROOFS))
