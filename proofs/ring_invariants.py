"""Unbounded Z3 proofs of the SPSC ring (guests/lib/ring.c, guests/include/keusim/ring.h).

The model is over 32-bit bit-vectors, like the C code. The capacity is symbolic,
``1 << k`` for every k with RING_MIN_CAPACITY <= 1 << k <= RING_MAX_CAPACITY. Each proof is
inductive: it assumes the invariant in an arbitrary state, takes one step of one side, and
shows the invariant again. The invariant's quantified parts (over ring positions) are
stated for one arbitrary (Skolem) position and instantiated at the positions that step
needs. Every query is then quantifier-free, and an ``unsat`` answer covers all states and
all capacities at once.

State and ghost state. ``head`` and ``tail`` are the free-running indices. ``D`` is the
data array. ``[tail, head)``, in absolute byte positions mod 2^32, is the *window* of
unconsumed bytes. The ghost state records what the producer meant to put in the window:
- ``Rs[p]``: a record (a length header or a WRAP marker) starts at absolute position p;
- ``Pub[p]``: p was once the value of head, i.e. a point where the producer published;
- ``Id[p]``: the sequence number of the message at p (for a WRAP: of the next message);
- ``GLen[p]``, ``GB[p][j]``: the message at p, as it was at commit time.

The abstract FIFO queue holds the messages with sequence numbers ``[Cc, Pc)``: consumed
and produced counts. The refinement relation says:
- ``T`` is a record start with ``Id = Cc`` (or the window is empty and ``Cc == Pc``);
- each record in the window is well formed: its header fits, and the next record or
  ``head`` follows it;
- sequence numbers go up by one per message;
- each message's bytes in ``D`` equal its ghost bytes.

``consume`` returning exactly ``GLen[T]``/``GB[T]``, with ``Id[T] == Cc``, is then
byte-exact FIFO delivery.

Concurrency, rely-guarantee style (Jones 1983). The producer's view of ``tail`` may be
stale: it read ``t``, and the consumer has since advanced tail to ``T`` in ``[t, head]``.
Likewise the consumer's ``h`` may lag ``head``, but ``h`` was once a value of head. Each
side's writes (its index, and for the producer the payload bytes) are proved to stay out
of what the other side may be reading. Each side's steps are therefore proved against
every possible interleaving of the other's. Hardware reordering is a separate question:
proofs/ring_ordering.py.

Every modelled step cites the C it models (SOURCE_MAP; tests/test_proofs.py checks the
citations against ring.c, and that the constants below match ring.h).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import z3

from keusim.prove import Outcome, Proof, module_main, solve

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
# Bit-vector vocabulary
# --------------------------------------------------------------------------------------

BV = z3.BitVecRef
Bool = z3.BoolRef
Mem = Callable[[BV], BV]  # ring offset -> byte


def U(x: int) -> BV:
    return z3.BitVecVal(x, 32)


def U64(x: int) -> BV:
    return z3.BitVecVal(x, 64)


F = z3.BoolVal(False)
T_ = z3.BoolVal(True)


def capacity(name: str = "log2cap") -> tuple[BV, list[Bool]]:
    """A symbolic power-of-two capacity over the whole allowed range."""
    k = z3.BitVec(name, 32)
    lo, hi = RING_MIN_CAPACITY.bit_length() - 1, RING_MAX_CAPACITY.bit_length() - 1
    return U(1) << k, [z3.ULE(U(lo), k), z3.ULE(k, U(hi))]


def rec_of(length: BV) -> BV:
    """rec_size() in 32 bits (safe for len <= cap - 8, ring.c:92 and :126)."""
    return (U(RING_HDR_SIZE) + length + U(RING_ALIGN - 1)) & ~U(RING_ALIGN - 1)


def rec_of64(length: BV) -> BV:
    """rec_size() in 64 bits, as ring_peek computes it (ring.c:41-45, :166)."""
    x = z3.ZeroExt(32, length)
    return (U64(RING_HDR_SIZE) + x + U64(RING_ALIGN - 1)) & ~U64(RING_ALIGN - 1)


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


@dataclass(frozen=True)
class Write:
    """``length`` bytes at data offset ``start``; byte j is ``byte(j)``; only if ``guard``."""

    what: str
    start: BV
    length: BV
    byte: Callable[[BV], BV]
    guard: Bool


@dataclass(frozen=True)
class Read:
    what: str
    start: BV
    length: BV
    guard: Bool


def apply_writes(mem: Mem, writes: tuple[Write, ...]) -> Mem:
    """Memory after the writes, in program order (a later write wins)."""

    def m2(i: BV) -> BV:
        v = mem(i)
        for w in writes:
            v = z3.If(z3.And(w.guard, in_range(i, w.start, w.length)), w.byte(i - w.start), v)
        return v

    return m2


@dataclass(frozen=True)
class Variant:
    """Which checks of ring.c the model keeps; the mutants drop one each."""

    capacity_check: bool = True   # ring.c:96  need > cap - used -> EAGAIN
    wrap: bool = True             # ring.c:106 WRAP marker when the record would straddle
    used_check: bool = True       # ring.c:167 rec > used -> CORRUPT_LEN
    rec64: bool = True            # ring.c:166 rec_size in 64 bits
    len_check: bool = True        # ring.c:167 hdr > cap - 8 -> CORRUPT_LEN


HONEST = Variant()

# --------------------------------------------------------------------------------------
# The two sides, as ring.c computes them (32-bit, ring offsets)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Produce:
    """ring_reserve(len), the caller's payload writes, then ring_commit(clen).

    ``reserved``: reserve returned 0. ``ok``: the commit published the message.
    ``lone_wrap``: reserve returned EAGAIN but first published a WRAP marker by itself
    (ring.c:100-102). ``plen`` is how many payload bytes the caller wrote (any number
    inside the reserved record). ``grow`` is how far head moves: ``new_head = H + grow``,
    which is ring.c's ``h (+ contig) + rec`` (lines 108, 130) or ``h + contig`` (102).
    """

    toobig: Bool
    corrupt: Bool
    full: Bool
    lone_wrap: Bool
    reserved: Bool
    ok: Bool
    used: BV
    off: BV
    contig: BV
    rec: BV
    wrap: Bool
    hp: BV          # header position relative to H: contig if wrapped, else 0
    pos: BV         # header ring offset: (h after the skip) & mask
    plen: BV
    msg: Mem
    clen: BV
    crec: BV
    grow: BV
    new_head: BV
    writes: tuple[Write, ...]


def produce(C: BV, H: BV, t: BV, length: BV, plen: BV, clen: BV, msg: Mem,
            v: Variant = HONEST) -> Produce:
    mask = C - 1
    toobig = z3.UGT(length, C - RING_ALIGN)                                  # ring.c:85
    used = H - t                                                             # ring.c:89
    corrupt = z3.And(z3.Not(toobig), z3.Or(z3.UGT(used, C), z3.Not(aligned(H))))  # :90
    go = z3.And(z3.Not(toobig), z3.Not(corrupt))
    rec = rec_of(length)                                                     # ring.c:92
    off = H & mask                                                           # ring.c:93
    contig = C - off                                                         # ring.c:94
    straddle = z3.UGT(rec, contig) if v.wrap else F
    need = z3.If(straddle, contig + rec, rec)                                # ring.c:95
    full = z3.And(go, z3.UGT(need, C - used)) if v.capacity_check else F    # ring.c:96
    lone_wrap = z3.And(full, straddle, z3.ULE(contig, C - used))            # ring.c:100
    reserved = z3.And(go, z3.Not(full))                                      # ring.c:113
    crec = rec_of(clen)                                                      # ring.c:126
    ok = z3.And(reserved, z3.ULE(clen, C - RING_ALIGN), z3.ULE(crec, rec))   # :124, :127
    wrap = z3.And(reserved, straddle)                                        # ring.c:106
    hp = z3.If(wrap, contig, U(0))                                           # ring.c:108
    pos = (H + hp) & mask                                                    # ring.c:112
    grow = z3.If(ok, hp + crec, z3.If(lone_wrap, contig, U(0)))              # :130 / :102
    writes = (
        Write("WRAP marker", off, U(RING_HDR_SIZE), lambda j: le_byte(U(RING_WRAP), j),
              z3.Or(wrap, lone_wrap)),                                       # :101 / :107
        Write("payload", pos + RING_HDR_SIZE, plen, msg, reserved),          # ring.c:112
        Write("header", pos, U(RING_HDR_SIZE), lambda j: le_byte(clen, j), ok),  # :129
    )
    return Produce(toobig, corrupt, full, lone_wrap, reserved, ok, used, off, contig, rec,
                   wrap, hp, pos, plen, msg, clen, crec, grow, H + grow, writes)


def window_writes(pr: Produce, U_: BV) -> tuple[Write, ...]:
    """The producer's writes as positions in the byte queue (offsets from tail):
    the same writes as ``pr.writes``, placed at head = tail + U_ instead of at ring
    offsets. ring.produce.byte_queue proves the two placements agree."""
    return (
        Write("WRAP marker", U_, U(RING_HDR_SIZE), lambda j: le_byte(U(RING_WRAP), j),
              z3.Or(pr.wrap, pr.lone_wrap)),
        Write("payload", U_ + pr.hp + RING_HDR_SIZE, pr.plen, pr.msg, pr.reserved),
        Write("header", U_ + pr.hp, U(RING_HDR_SIZE), lambda j: le_byte(pr.clen, j), pr.ok),
    )


@dataclass(frozen=True)
class Peek:
    """One pass of ring_peek's loop with head snapshot h, then ring_release.

    ``ok_wrap``: a WRAP marker was followed (tail += skip, ring.c:160-164).
    ``ok_data``: a message of ``hdr`` bytes is at ``off + 4``; release moves tail by
    its record size. ``advance`` is how far tail moves.
    """

    empty: Bool
    corrupt_index: Bool
    corrupt_len: Bool
    ok_wrap: Bool
    ok_data: Bool
    used: BV
    off: BV
    hdr: BV
    skip: BV
    advance: BV
    new_tail: BV
    reads: tuple[Read, ...]


def peek(C: BV, T: BV, h: BV, mem: Mem, v: Variant = HONEST) -> Peek:
    mask = C - 1
    used = h - T                                                             # ring.c:151
    empty = used == 0                                                        # ring.c:152
    corrupt_index = z3.And(z3.Not(empty),
                           z3.Or(z3.UGT(used, C), z3.Not(aligned(h | T))))   # ring.c:154
    go = z3.And(z3.Not(empty), z3.Not(corrupt_index))
    off = T & mask                                                           # ring.c:156
    hdr = rd32(mem, off)                                                     # ring.c:157
    is_wrap = hdr == U(RING_WRAP)
    skip = C - off                                                           # ring.c:160
    wrap_bad = z3.UGT(skip, used)                                            # ring.c:161
    if v.rec64:                                                              # ring.c:166
        rec = rec_of64(hdr)

        def ext(x: BV) -> BV:
            return z3.ZeroExt(32, x)
    else:
        rec = rec_of(hdr)

        def ext(x: BV) -> BV:
            return x
    data_bad = z3.Or(z3.UGT(hdr, C - RING_ALIGN) if v.len_check else F,      # ring.c:167
                     z3.UGT(rec, ext(C - off)),
                     z3.UGT(rec, ext(used)) if v.used_check else F)
    corrupt_len = z3.And(go, z3.If(is_wrap, wrap_bad, data_bad))
    ok_wrap = z3.And(go, is_wrap, z3.Not(wrap_bad))
    ok_data = z3.And(go, z3.Not(is_wrap), z3.Not(data_bad))
    rec32 = z3.Extract(31, 0, rec) if v.rec64 else rec
    advance = z3.If(ok_wrap, skip, z3.If(ok_data, rec32, U(0)))              # :163 / :182
    reads = (Read("header", off, U(RING_HDR_SIZE), go),                      # ring.c:157
             Read("payload", off + RING_HDR_SIZE, hdr, ok_data))             # ring.c:171
    return Peek(empty, corrupt_index, corrupt_len, ok_wrap, ok_data, used, off, hdr, skip,
                advance, T + advance, reads)


# --------------------------------------------------------------------------------------
# Abstract state, ghost state and the two refinement relations
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """The indices, the byte queue and the message-level ghost state.

    Everything is indexed by *window offset* a (the unconsumed byte at tail + a), so
    the message-level proofs need no modular arithmetic. ``Q`` is the byte queue; the
    ring array ``D`` is related to it by :func:`view`. A consumer step shifts every
    ghost function by the bytes it consumed; a producer step extends them past head.
    """

    C: BV
    T: BV
    Uw: BV                          # head - tail: the window size
    Q: Mem                          # the byte queue
    Rs: Callable[[BV], Bool]        # a record (header or WRAP marker) starts here
    IsPub: Callable[[BV], Bool]     # head has (had) this value
    IdAt: Callable[[BV], BV]        # sequence number of the message here (WRAP: the
                                    # next one; at head: the next to be produced)
    GLen: Callable[[BV], BV]        # the message here, as committed
    GB: Callable[[BV, BV], BV]
    Cc: BV                          # messages consumed

    @property
    def H(self) -> BV:
        return self.T + self.Uw


def fresh_state(C: BV) -> State:
    # Uninterpreted functions, not arrays: the proofs only read them, so Z3 can
    # ackermannize them away and bit-blast (keusim.prove.solve, tactic "bv").
    b32, b8, bo = z3.BitVecSort(32), z3.BitVecSort(8), z3.BoolSort()
    Q = z3.Function("Q", b32, b8)
    Rs = z3.Function("Rs", b32, bo)
    Pub = z3.Function("Pub", b32, bo)
    Id = z3.Function("Id", b32, b32)
    GLen = z3.Function("GLen", b32, b32)
    GB = z3.Function("GB", b32, b32, b8)
    Uw, Pc = z3.BitVec("used", 32), z3.BitVec("produced", 32)
    return State(C, z3.BitVec("tail", 32), Uw, Q, Rs,
                 IsPub=lambda x: z3.Or(Pub(x), x == Uw),
                 IdAt=lambda x: z3.If(x == Uw, Pc, Id(x)),
                 GLen=GLen, GB=GB, Cc=z3.BitVec("consumed", 32))


def ring_array() -> Mem:
    return z3.Function("D", z3.BitVecSort(32), z3.BitVecSort(8))


def view(st: State, D: Mem, a: BV) -> Bool:
    """Layer 1 (ring array vs byte queue), at window offset a:
    ``a < head - tail  ->  D[(tail + a) & mask] == Q[a]``."""
    return z3.Implies(z3.ULT(a, st.Uw), D((st.T + a) & (st.C - 1)) == st.Q(a))


def offset_facts(C: BV, *xs: BV) -> list[Bool]:
    """Facts about capacity-masked offsets, valid for every x (ring.lemma.offsets proves
    them): the capacity has no bits above 2^20 and is 8-aligned; x & (C-1) < C; and
    an aligned x has an aligned offset <= C - 8. Proofs add them for the offsets they
    use, so the SAT solver need not rediscover them through the shifter."""
    out = [z3.Extract(31, 21, C) == 0, aligned(C), z3.UGE(C, U(RING_MIN_CAPACITY))]
    for x in xs:
        m = x & (C - 1)
        out += [z3.ULT(m, C), z3.Implies(aligned(x), z3.And(aligned(m), z3.ULE(m, C - 8)))]
    return out


def small(*xs: BV) -> list[Bool]:
    """x < 2^21, for values the invariant bounds by the capacity (hypotheses implied by
    the others: each use is justified next to it)."""
    return [z3.Extract(31, 21, x) == 0 for x in xs]


def inv_global(st: State) -> Bool:
    return z3.And(
        z3.ULE(st.Uw, st.C), aligned(st.T), aligned(st.Uw),
        z3.Or(st.Uw == 0, st.Rs(U(0))), st.IdAt(U(0)) == st.Cc,
    )


def inv_local_parts(st: State, a: BV, b: BV, k: BV) -> list[tuple[str, Bool]]:
    """Layer 2 (byte queue vs message queue), clause by clause: the record at window
    offset a, the publish point b and payload byte k. Quantified over a, b, k."""
    C, Uw = st.C, st.Uw
    off = (st.T + a) & (C - 1)
    w = rd32(st.Q, a)
    is_rec = z3.And(z3.ULT(a, Uw), st.Rs(a))
    wr = z3.And(is_rec, w == U(RING_WRAP))
    dr = z3.And(is_rec, w != U(RING_WRAP))
    skip = C - off
    nxw = a + skip
    rec = rec_of(w)
    nxd = a + rec

    def inside(nx: BV) -> Bool:
        return z3.Not(z3.And(st.IsPub(b), z3.ULT(a, b), z3.ULT(b, nx)))

    return [
        ("record aligned", z3.Implies(is_rec, aligned(a))),
        ("wrap: skip inside window", z3.Implies(wr, z3.ULE(nxw, Uw))),
        ("wrap: next is a record or head", z3.Implies(wr, z3.Or(nxw == Uw, st.Rs(nxw)))),
        ("wrap: next has its sequence number", z3.Implies(wr, st.IdAt(nxw) == st.IdAt(a))),
        ("wrap: no publish point inside", z3.Implies(wr, inside(nxw))),
        ("data: len <= cap - 8", z3.Implies(dr, z3.ULE(w, C - RING_ALIGN))),
        ("data: record before the end of data", z3.Implies(dr, z3.ULE(rec, C - off))),
        ("data: record inside window", z3.Implies(dr, z3.ULE(nxd, Uw))),
        ("data: ends at a publish point", z3.Implies(dr, st.IsPub(nxd))),
        ("data: next is a record or head", z3.Implies(dr, z3.Or(nxd == Uw, st.Rs(nxd)))),
        ("data: next sequence number", z3.Implies(dr, st.IdAt(nxd) == st.IdAt(a) + 1)),
        ("data: no publish point inside", z3.Implies(dr, inside(nxd))),
        ("data: length is the message's", z3.Implies(dr, w == st.GLen(a))),
        ("data: bytes are the message's",
         z3.Implies(z3.And(dr, z3.ULT(k, w)), st.Q(a + RING_HDR_SIZE + k) == st.GB(a, k))),
        ("publish points aligned",
         z3.Implies(z3.And(st.IsPub(b), z3.ULE(b, Uw)), aligned(b))),
    ]


def inv_local(st: State, a: BV, b: BV, k: BV) -> Bool:
    return z3.And(*[f for _, f in inv_local_parts(st, a, b, k)])


def skolems() -> tuple[BV, BV, BV]:
    return z3.BitVec("a", 32), z3.BitVec("b", 32), z3.BitVec("k", 32)


def producer_inputs() -> tuple[BV, BV, BV, BV, Mem]:
    """Reserved len, payload bytes the caller wrote, committed len, the bytes; and the
    tail the producer saw, as ``lag`` bytes behind the current tail."""
    msg = z3.Function("msg", z3.BitVecSort(32), z3.BitVecSort(8))
    return (z3.BitVec("lag", 32), z3.BitVec("len", 32), z3.BitVec("plen", 32),
            z3.BitVec("clen", 32), msg)


def producer_rely(st: State, lag: BV, pr: Produce) -> list[Bool]:
    """The producer saw tail T - lag: the consumer has since moved tail forward by lag
    (towards head, so lag + used <= capacity), and kept it aligned. The caller's
    payload writes stay inside its reserved record."""
    return [z3.ULE(st.Uw + lag, st.C), z3.ULE(lag, st.C), aligned(lag),
            z3.ULE(pr.plen, pr.rec - RING_HDR_SIZE)]


def after_produce(st: State, pr: Produce, junk: Mem) -> State:
    """The abstract state after a producer step: the window grows by ``pr.grow``, the
    byte queue gets the written bytes (padding keeps whatever ``junk`` says was in the
    ring), and the new records get ghost state; the message is number IdAt(head)."""
    Uw, U2 = st.Uw, st.Uw + pr.grow
    base = lambda a: z3.If(z3.ULT(a, Uw), st.Q(a), junk(a))  # noqa: E731
    Q2 = apply_writes(base, window_writes(pr, Uw))
    new = lambda x: z3.And(z3.ULE(Uw, x), z3.ULT(x, U2))  # noqa: E731
    starts = lambda x: z3.Or(  # noqa: E731
        z3.And(z3.Or(pr.ok, pr.lone_wrap), x == Uw), z3.And(pr.ok, pr.wrap, x == Uw + pr.hp))
    hpos = Uw + pr.hp
    nid = st.IdAt(Uw)
    return State(
        st.C, st.T, U2, Q2,
        Rs=lambda x: z3.If(starts(x), T_, z3.If(new(x), F, st.Rs(x))),
        IsPub=lambda x: z3.If(x == U2, T_,
                              z3.If(z3.And(z3.ULT(Uw, x), z3.ULT(x, U2)), F, st.IsPub(x))),
        IdAt=lambda x: z3.If(x == U2, z3.If(pr.ok, nid + 1, nid),
                             z3.If(starts(x), nid, st.IdAt(x))),
        GLen=lambda x: z3.If(z3.And(pr.ok, x == hpos), pr.clen, st.GLen(x)),
        GB=lambda x, j: z3.If(z3.And(pr.ok, x == hpos), Q2(hpos + RING_HDR_SIZE + j),
                              st.GB(x, j)),
        Cc=st.Cc,
    )


def after_peek(st: State, pk: Peek) -> State:
    """The abstract state after a consumer step: everything shifts by ``pk.advance``."""
    d = pk.advance
    return State(st.C, st.T + d, st.Uw - d, lambda a: st.Q(a + d),
                 lambda a: st.Rs(a + d), lambda a: st.IsPub(a + d), lambda a: st.IdAt(a + d),
                 lambda a: st.GLen(a + d), lambda a, j: st.GB(a + d, j),
                 z3.If(pk.ok_data, st.Cc + 1, st.Cc))


# --------------------------------------------------------------------------------------
# Proofs
# --------------------------------------------------------------------------------------

def _setup_producer(v: Variant = HONEST):
    C, cap_ok = capacity()
    st = fresh_state(C)
    lag, length, plen, clen, msg = producer_inputs()
    t = st.T - lag
    pr = produce(C, st.H, t, length, plen, clen, msg, v)
    hyps = cap_ok + [inv_global(st)] + producer_rely(st, lag, pr)
    show = {"capacity": C, "head": st.H, "tail": st.T, "tail seen": t, "len": length,
            "committed len": clen, "head after": pr.new_head, "wrapped": pr.wrap,
            "lone WRAP": pr.lone_wrap}
    return C, st, lag, t, pr, hyps, show


def prove_produce_index_bound(v: Variant = HONEST) -> Outcome:
    C, st, lag, t, pr, hyps, show = _setup_producer(v)
    H2, T = pr.new_head, st.T
    goal = z3.And(
        z3.Not(pr.corrupt),                              # an honest tail never looks corrupt
        z3.ULE(H2 - T, C),                               # 0 <= head - tail <= capacity
        aligned(H2),
        z3.ULE(st.H - T, H2 - T),                        # head only moves forward
    )
    return solve(hyps, goal, {**show, "head - tail after": H2 - T},
                 explain=lambda s: "head - tail exceeds the capacity after a produce"
                 if s["head - tail after"] > s["capacity"] else "index invariant broken")


def prove_produce_in_bounds(v: Variant = HONEST) -> Outcome:
    """Every producer write is inside data[0, capacity), whatever tail the consumer wrote."""
    C, cap_ok = capacity()
    H, t = z3.BitVec("head", 32), z3.BitVec("tail seen", 32)
    _, length, plen, clen, msg = producer_inputs()
    pr = produce(C, H, t, length, plen, clen, msg, v)
    j = z3.BitVec("j", 32)
    bad = [z3.And(w.guard, z3.ULT(j, w.length), z3.UGE(w.start + j, C)) for w in pr.writes]
    hyps = cap_ok + [aligned(H), z3.ULE(plen, pr.rec - RING_HDR_SIZE)]
    idx = z3.If(bad[0], pr.writes[0].start + j,
                z3.If(bad[1], pr.writes[1].start + j, pr.writes[2].start + j))
    return solve(hyps, z3.Not(z3.Or(*bad)),
                 {"capacity": C, "head": H, "tail seen": t, "len": length,
                  "wrapped": pr.wrap, "write index": idx},
                 explain=lambda s: f"write at data[{s['write index']:#x}] is past the end "
                 f"(capacity {s['capacity']:#x})")


def prove_produce_no_overwrite(v: Variant = HONEST) -> Outcome:
    """No producer write lands on an unconsumed byte: the writes avoid the ring offsets
    of [t, head), which contain [tail, head) for every tail the consumer has reached."""
    C, st, lag, t, pr, hyps, show = _setup_producer(v)
    mask = C - 1
    j, d = z3.BitVec("j", 32), z3.BitVec("d", 32)
    clash = [z3.And(w.guard, z3.ULT(j, w.length), z3.ULT(d, st.H - t),
                    w.start + j == (t + d) & mask) for w in pr.writes]
    return solve(hyps, z3.Not(z3.Or(*clash)),
                 {**show, "unconsumed position": t + d, "its offset": (t + d) & mask},
                 explain=lambda s: "the producer overwrites unconsumed byte "
                 f"data[{s['its offset']:#x}]")


def prove_produce_byte_queue(v: Variant = HONEST) -> Outcome:
    """Layer 1 for produce: after the step the ring array still holds the byte queue,
    and the bytes appended to the queue are exactly those written, in order."""
    C, st, lag, t, pr, hyps, show = _setup_producer(v)
    D = ring_array()
    a = z3.BitVec("a", 32)
    mask = C - 1
    st2 = after_produce(st, pr, junk=lambda x: D((st.T + x) & mask))
    D2 = apply_writes(D, pr.writes)
    return solve(hyps + [view(st, D, a)], view(st2, D2, a), {**show, "window offset": a})


def prove_produce_refines(v: Variant = HONEST) -> Outcome:
    """Layer 2 for produce: the byte queue still frames the message queue, with the new
    message (exactly its committed bytes) appended as number ``produced``."""
    C, st, lag, t, pr, hyps, show = _setup_producer(v)
    a, b, k = skolems()
    junk = z3.Function("junk", z3.BitVecSort(32), z3.BitVecSort(8))
    st2 = after_produce(st, pr, junk=junk)
    hpos = st.Uw + pr.hp
    sent = z3.Implies(z3.And(pr.ok, z3.ULE(pr.clen, pr.plen), z3.ULT(k, pr.clen)),
                      st2.GB(hpos, k) == pr.msg(k))   # ring_send: the queue gets its buffer
    goal = z3.And(inv_global(st2), inv_local(st2, a, b, k), sent)
    hyps += [inv_local(st, a, b, k)] + offset_facts(C, st.T + a, st.H, st.H + pr.hp)
    hyps += small(st.Uw, lag)
    return solve(hyps, goal, {**show, "window offset": a})


def _setup_consumer(v: Variant = HONEST):
    C, cap_ok = capacity()
    st = fresh_state(C)
    seen = z3.BitVec("seen", 32)          # head snapshot, as its offset from tail
    h = st.T + seen
    hyps = cap_ok + [inv_global(st), st.IsPub(seen), z3.ULE(seen, st.Uw)]
    return C, st, seen, h, hyps


def _show_consumer(C, st, h, pk) -> dict:
    return {"capacity": C, "head": st.H, "head seen": h, "tail": st.T, "header": pk.hdr,
            "tail after": pk.new_tail}


def prove_consume_index_bound(v: Variant = HONEST) -> Outcome:
    C, st, seen, h, hyps = _setup_consumer(v)
    pk = peek(C, st.T, h, lambda x: st.Q(x - (st.T & (C - 1))), v)
    a, b, k = skolems()
    T2 = pk.new_tail
    goal = z3.And(z3.ULE(st.H - T2, C), aligned(T2), z3.ULE(T2 - st.T, st.H - st.T))
    hyps += [inv_local(st, U(0), seen, k)] + offset_facts(C, st.T) + small(st.Uw, seen)
    return solve(hyps, goal, _show_consumer(C, st, h, pk))


def prove_consume_byte_queue(v: Variant = HONEST) -> Outcome:
    """Layer 1 for consume: every byte the consumer reads is the byte queue's byte at the
    same distance from tail (so bytes come out in the order they went in), and the ring
    array still holds the (shorter) queue afterwards."""
    C, st, seen, h, hyps = _setup_consumer(v)
    D = ring_array()
    pk = peek(C, st.T, h, D, v)
    a, j = z3.BitVec("a", 32), z3.BitVec("j", 32)
    wrong = [z3.And(r.guard, z3.ULT(j, r.length), D(r.start + j) != st.Q(r.start + j - pk.off))
             for r in pk.reads]
    st2 = after_peek(st, pk)
    # The instances of the pre-state relation this step needs: the bytes read, and a.
    inst = [view(st, D, r.start + j - pk.off) for r in pk.reads] + [view(st, D, a + pk.advance)]
    goal = z3.And(z3.Not(z3.Or(*wrong)), view(st2, D, a))
    return solve(hyps + inst, goal, _show_consumer(C, st, h, pk))


def prove_consume_refines(v: Variant = HONEST) -> Outcome:
    """Layer 2 for consume: the step preserves the framing, returns exactly the oldest
    message (its length and bytes, sequence number ``consumed``), and never reports an
    honest producer as corrupt."""
    C, st, seen, h, hyps = _setup_consumer(v)
    off = st.T & (C - 1)
    pk = peek(C, st.T, h, lambda x: st.Q(x - off), v)   # reads see the queue (layer 1)
    a, b, k = skolems()
    d = pk.advance
    hyps = hyps + [inv_local(st, a + d, b + d, k), inv_local(st, U(0), seen, k)]
    hyps += offset_facts(C, st.T, st.T + d + a) + small(st.Uw, seen, a, b)
    st2 = after_peek(st, pk)
    delivered = z3.Implies(pk.ok_data, z3.And(
        st.IdAt(U(0)) == st.Cc, pk.hdr == st.GLen(U(0)),
        z3.Implies(z3.ULT(k, pk.hdr), st.Q(RING_HDR_SIZE + k) == st.GB(U(0), k))))
    no_false_alarm = z3.And(z3.Not(pk.corrupt_index), z3.Not(pk.corrupt_len),
                            pk.empty == (seen == 0))
    goal = z3.And(inv_global(st2), inv_local(st2, a, b, k), delivered, no_false_alarm)
    return solve(hyps, goal, {**_show_consumer(C, st, h, pk), "window offset": a})


def _setup_any_producer(v: Variant):
    """The consumer against an arbitrary producer: head and every data byte arbitrary."""
    C, cap_ok = capacity()
    T, h = z3.BitVec("tail", 32), z3.BitVec("head seen", 32)
    D = ring_array()
    pk = peek(C, T, h, D, v)
    hyps = cap_ok + [aligned(T)]      # the consumer's own index stays aligned
    show = {"capacity": C, "tail": T, "head seen": h, "header": pk.hdr,
            "record (bytes)": rec_of64(pk.hdr), "tail after": pk.new_tail}
    return C, T, h, pk, hyps, show


def prove_consume_in_bounds(v: Variant = HONEST) -> Outcome:
    """Whatever head and headers a malicious producer writes, every consumer read is in
    data[0, capacity), and tail stays 8-aligned and never passes the head it saw."""
    C, T, h, pk, hyps, show = _setup_any_producer(v)
    j = z3.BitVec("j", 32)
    oob = [z3.And(r.guard, z3.ULT(j, r.length), z3.UGE(r.start + j, C)) for r in pk.reads]
    T2 = pk.new_tail
    goal = z3.And(z3.Not(z3.Or(*oob)), aligned(T2), z3.ULE(T2 - T, h - T))
    idx = z3.If(oob[0], pk.reads[0].start + j, pk.reads[1].start + j)
    return solve(hyps, goal, {**show, "read index": idx},
                 explain=lambda s: f"reads data[{s['read index']:#x}] with capacity "
                 f"{s['capacity']:#x}")


def prove_consume_no_unpublished_read(v: Variant = HONEST) -> Outcome:
    """Every byte the consumer reads is at absolute position tail + d with d < h - tail
    (published by the head it saw), at ring offset off + d (no wrap inside a record).
    Holds against any producer."""
    C, T, h, pk, hyps, show = _setup_any_producer(v)
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


def prove_single_writer() -> Outcome:
    """Each shared index has one writer: producer steps change neither tail nor the
    queue's consumed part; consumer steps change neither head nor any byte."""
    C, st, lag, t, pr, hyps, show = _setup_producer()
    D = ring_array()
    h = z3.BitVec("head seen", 32)
    pk = peek(C, st.T, h, D)
    i = z3.BitVec("i", 32)
    a = after_produce(st, pr, junk=lambda x: D((st.T + x) & (C - 1)))
    b = after_peek(st, pk)
    goal = z3.And(a.T == st.T, b.H == st.H, z3.Implies(z3.ULT(i, st.Uw), a.Q(i) == st.Q(i)))
    return solve(hyps, goal, show)


PROOFS = [
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
          "layer 1: the ring array still holds the byte queue; the bytes appended are "
          "exactly the bytes written, in order", prove_produce_byte_queue),
    Proof("ring.produce.refines_queue",
          "layer 2: the byte queue frames the message queue; the new message (its "
          "committed bytes, next sequence number) is appended", prove_produce_refines),
    Proof("ring.consume.index_bound",
          "consume keeps 0 <= head - tail <= capacity, tail 8-aligned and monotone",
          prove_consume_index_bound),
    Proof("ring.consume.byte_queue",
          "layer 1: every byte read is the queue's byte at that distance from tail (FIFO, "
          "byte-exact); the ring array still holds the queue", prove_consume_byte_queue),
    Proof("ring.consume.refines_queue",
          "layer 2: consume returns exactly the oldest message, keeps the framing, and "
          "never flags an honest producer", prove_consume_refines),
    Proof("ring.consume.in_bounds",
          "against a malicious producer (any head, any headers) every consumer read is in "
          "data[0, capacity) and tail never passes the head it saw",
          prove_consume_in_bounds),
    Proof("ring.consume.no_unpublished_read",
          "every byte the consumer reads was published: it lies in [tail, head seen)",
          prove_consume_no_unpublished_read),
    Proof("ring.single_writer",
          "head is written only by the producer, tail only by the consumer, data only by "
          "the producer", prove_single_writer),
    # Mutants: each drops one check of ring.c; the proof it protects must now fail.
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
    sys.exit(module_main(PROOFS))
