"""The guests' SPSC ring library (guests/lib/ring.c), built for the host and driven by ctypes.

The data pages sit between two PROT_NONE guard pages, as in a guest, so an out-of-bounds
access by the library kills the test instead of passing silently; every pointer it
returns is also bounds-checked here. docs/ring.md is the contract these tests check.
"""

from __future__ import annotations

import ctypes
import mmap
import random
import re
import threading
import time
from collections import deque

import capstone
import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keusim import arch
from keusim.model.harness import HOST_CFLAGS
from keusim.toolchain import ROOT, BuildSpec, build, host_shared_lib, host_target

GUESTS = ROOT / "guests"
RING_C = GUESTS / "lib" / "ring.c"
STRING_C = GUESTS / "lib" / "string.c"
RING_H = GUESTS / "include" / "keusim" / "ring.h"
PAGE = mmap.PAGESIZE
U32 = 1 << 32


def _defines() -> dict[str, int]:
    """The integer #defines of ring.h: ``#define RING_X <expr> /* comment */``."""
    out = {}
    for m in re.finditer(r"^#define\s+(RING_\w+)\s+([^/\n]+)", RING_H.read_text(), re.M):
        expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uU]\b", r"\1", m[2].strip())
        out[m[1]] = int(eval(expr, {}))
    return out


D = _defines()
EAGAIN, ETOOBIG, EMSGSIZE = D["RING_EAGAIN"], D["RING_ETOOBIG"], D["RING_EMSGSIZE"]
ECORRUPT_INDEX, ECORRUPT_LEN, EINVAL = (D["RING_ECORRUPT_INDEX"], D["RING_ECORRUPT_LEN"],
                                        D["RING_EINVAL"])
WRAP = D["RING_WRAP"]


class RingEp(ctypes.Structure):
    """struct ring_ep (ring.h)."""

    _fields_ = [("head", ctypes.POINTER(ctypes.c_uint32)),
                ("tail", ctypes.POINTER(ctypes.c_uint32)),
                ("data", ctypes.c_void_p),
                ("capacity", ctypes.c_uint32), ("mask", ctypes.c_uint32),
                ("local", ctypes.c_uint32), ("pending", ctypes.c_uint32)]


@pytest.fixture(scope="module")
def lib():
    path = host_shared_lib([RING_C, STRING_C], "ring_host", cflags=HOST_CFLAGS,
                           include_dirs=[GUESTS / "include", GUESTS / "arch" / "x86_64" / "include"])
    so = ctypes.CDLL(str(path))
    ep = ctypes.POINTER(RingEp)
    u32p, vpp = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_void_p)
    sigs = {
        "ring_init": [ep, u32p, u32p, ctypes.c_void_p, ctypes.c_uint32],
        "ring_reserve": [ep, ctypes.c_uint32, vpp],
        "ring_commit": [ep, ctypes.c_uint32],
        "ring_send": [ep, ctypes.c_char_p, ctypes.c_uint32],
        "ring_send_wait": [ep, ctypes.c_char_p, ctypes.c_uint32],
        "ring_peek": [ep, vpp, u32p],
        "ring_release": [ep],
        "ring_recv": [ep, ctypes.c_void_p, ctypes.c_uint32, u32p],
        "ring_recv_wait": [ep, ctypes.c_void_p, ctypes.c_uint32, u32p],
    }
    for name, args in sigs.items():
        f = getattr(so, name)
        f.argtypes = args
        f.restype = None if name == "ring_release" else ctypes.c_int
    return so


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


class Ring:
    """One ring in test memory: head and tail in their own buffers, data between guards,
    and a producer and a consumer endpoint (each with its own local/pending)."""

    def __init__(self, lib, capacity: int = 4096, start: int = 0):
        self.lib, self.capacity, self.mask = lib, capacity, capacity - 1
        self._map = mmap.mmap(-1, PAGE + capacity + PAGE)
        self._anchor = ctypes.c_char.from_buffer(self._map)
        base = ctypes.addressof(self._anchor)
        for guard in (base, base + PAGE + capacity):
            assert _libc.mprotect(guard, PAGE, 0) == 0, "mprotect(PROT_NONE) failed"
        self.data = base + PAGE
        self._head = (ctypes.c_uint32 * (PAGE // 4))()
        self._tail = (ctypes.c_uint32 * (PAGE // 4))()
        self.head = self.tail = start
        self.prod, self.cons = RingEp(), RingEp()
        for ep in (self.prod, self.cons):
            rc = lib.ring_init(ctypes.byref(ep), self._head, self._tail, self.data, capacity)
            assert rc == 0

    # indices
    @property
    def head(self) -> int:
        return self._head[0]

    @head.setter
    def head(self, v: int) -> None:
        self._head[0] = v % U32

    @property
    def tail(self) -> int:
        return self._tail[0]

    @tail.setter
    def tail(self, v: int) -> None:
        self._tail[0] = v % U32

    @property
    def used(self) -> int:
        return (self.head - self.tail) % U32

    # data pages
    def read(self, off: int, n: int) -> bytes:
        assert 0 <= off and off + n <= self.capacity
        return self._map[PAGE + off: PAGE + off + n]

    def write_u32(self, off: int, v: int) -> None:
        self._map[PAGE + off: PAGE + off + 4] = (v % U32).to_bytes(4, "little")

    def check_span(self, ptr: int, n: int) -> int:
        """Assert [ptr, ptr+n) lies inside data; return its offset."""
        off = ptr - self.data
        assert 0 <= off and off + n <= self.capacity, f"span {off}+{n} outside data"
        return off

    # producer
    def send(self, payload: bytes) -> int:
        return self.lib.ring_send(ctypes.byref(self.prod), payload, len(payload))

    def reserve(self, n: int) -> tuple[int, int]:
        out = ctypes.c_void_p()
        rc = self.lib.ring_reserve(ctypes.byref(self.prod), n, ctypes.byref(out))
        if rc == 0:
            self.check_span(out.value, n)
        return rc, out.value or 0

    def commit(self, n: int) -> int:
        return self.lib.ring_commit(ctypes.byref(self.prod), n)

    # consumer
    def recv(self, maxlen: int | None = None) -> tuple[int, bytes | None, int]:
        maxlen = self.capacity if maxlen is None else maxlen
        buf = ctypes.create_string_buffer(max(1, maxlen))
        n = ctypes.c_uint32(0xDEAD)
        rc = self.lib.ring_recv(ctypes.byref(self.cons), buf, maxlen, ctypes.byref(n))
        return rc, (buf.raw[: n.value] if rc == 0 else None), n.value

    def peek(self) -> tuple[int, int, int]:
        out, n = ctypes.c_void_p(), ctypes.c_uint32(0)
        rc = self.lib.ring_peek(ctypes.byref(self.cons), ctypes.byref(out), ctypes.byref(n))
        if rc == 0:
            off = self.check_span(out.value, n.value)
            # the payload also lies inside the published bytes [tail, head)
            assert (off - 4 - (self.tail & self.mask)) % self.capacity + 4 + n.value <= self.used
        return rc, out.value or 0, n.value

    def release(self) -> None:
        self.lib.ring_release(ctypes.byref(self.cons))

    def invariants(self) -> None:
        assert self.used <= self.capacity
        assert self.head % 8 == 0 and self.tail % 8 == 0


def rec_size(n: int) -> int:
    return (4 + n + 7) & ~7


def payload(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


# --------------------------------------------------------------------------- basics


def test_defines_match_the_contract():
    assert (D["RING_HDR_SIZE"], D["RING_ALIGN"], D["RING_WRAP"]) == (4, 8, 0xFFFFFFFF)
    assert (D["RING_MIN_CAPACITY"], D["RING_MAX_CAPACITY"]) == (4096, 1 << 20)
    codes = [EAGAIN, ETOOBIG, EMSGSIZE, ECORRUPT_INDEX, ECORRUPT_LEN, EINVAL]
    assert all(c < 0 for c in codes) and len(set(codes)) == len(codes)


def test_struct_layout_matches_ctypes(lib):
    r = Ring(lib, 8192)
    assert ctypes.sizeof(RingEp) == 40
    assert (r.prod.capacity, r.prod.mask, r.prod.local, r.prod.pending) == (8192, 8191, 0, 0)
    assert r.prod.data == r.data


@pytest.mark.parametrize("cap", [0, 2048, 4095, 6144, 1 << 21, 3 << 12])
def test_init_rejects_bad_capacity(lib, cap):
    ep, h, t = RingEp(), ctypes.c_uint32(), ctypes.c_uint32()
    buf = (ctypes.c_uint64 * 1024)()
    assert lib.ring_init(ctypes.byref(ep), h, t, buf, cap) == EINVAL


def test_init_rejects_misaligned_data(lib):
    ep, h, t = RingEp(), ctypes.c_uint32(), ctypes.c_uint32()
    buf = (ctypes.c_uint64 * 1024)()
    assert lib.ring_init(ctypes.byref(ep), h, t, ctypes.addressof(buf) + 4, 4096) == EINVAL


def test_message_roundtrip_and_framing(lib):
    r = Ring(lib)
    assert r.send(b"hello") == 0
    assert r.head == 16 and r.read(0, 4) == (5).to_bytes(4, "little") and r.read(4, 5) == b"hello"
    assert r.recv() == (0, b"hello", 5)
    assert r.tail == 16 and r.recv()[0] == EAGAIN
    assert r.send(b"") == 0 and r.recv() == (0, b"", 0) and r.tail == 24


def test_too_big(lib):
    r = Ring(lib)
    assert r.reserve(4096 - 7)[0] == ETOOBIG
    assert r.reserve(0xFFFFFFFF)[0] == ETOOBIG
    assert r.send(b"x" * (4096 - 8)) == 0          # the largest message fills the ring
    assert r.used == 4096


def test_recv_too_small_leaves_message(lib):
    r = Ring(lib)
    r.send(b"0123456789")
    assert r.recv(4)[0] == EMSGSIZE and r.recv(4)[2] == 10
    assert r.tail == 0
    assert r.recv(10) == (0, b"0123456789", 10)


def test_release_drops_an_oversized_message(lib):
    r = Ring(lib)
    r.send(b"a" * 100)
    r.send(b"b")
    assert r.recv(10)[0] == EMSGSIZE
    r.release()
    assert r.recv(10) == (0, b"b", 1)


def test_release_without_peek_is_a_noop(lib):
    r = Ring(lib, start=4096 * 3)
    r.send(b"abc")
    r.release()
    assert r.tail == 4096 * 3
    assert r.recv()[1] == b"abc"


def test_commit_needs_a_reservation_and_may_shrink(lib):
    r = Ring(lib)
    assert r.commit(0) == ETOOBIG                   # nothing reserved
    rc, ptr = r.reserve(100)
    assert rc == 0 and ptr == r.data + 4
    assert r.commit(101 + 8) == ETOOBIG             # beyond the reserved record
    ctypes.memmove(ptr, b"zero-copy", 9)
    assert r.commit(9) == 0                         # shorter than reserved: record shrinks
    assert r.head == rec_size(9)
    assert r.commit(9) == ETOOBIG                   # a reservation is committed once
    rc, ptr, n = r.peek()
    assert (rc, n) == (0, 9) and ctypes.string_at(ptr, n) == b"zero-copy"
    r.release()
    assert r.tail == r.head


def test_new_reserve_cancels_an_uncommitted_one(lib):
    r = Ring(lib)
    assert r.reserve(16)[0] == 0
    assert r.reserve(0xFFFFFFFF)[0] == ETOOBIG
    assert r.commit(16) == ETOOBIG and r.head == 0


def test_wrap_marker_and_skip(lib):
    r = Ring(lib, start=4096 - 16)       # 16 bytes before the end of data
    assert r.send(b"y" * 28) == 0        # a 32-byte record does not fit in 16: wrap
    assert r.read(4096 - 16, 4) == WRAP.to_bytes(4, "little")
    assert r.head == 4096 - 16 + 16 + 32
    assert r.recv() == (0, b"y" * 28, 28)
    assert r.tail == r.head


def test_record_that_ends_exactly_at_the_end_does_not_wrap(lib):
    r = Ring(lib, start=4096 - 32)
    assert r.send(b"z" * 28) == 0 and r.head == 4096   # rec == contig
    assert r.send(b"w") == 0 and r.head == 4096 + 8    # next record at offset 0
    assert r.recv()[1] == b"z" * 28 and r.recv()[1] == b"w"


def test_big_message_from_a_bad_offset_is_not_stuck(lib):
    """Deviation 1 (docs/ring.md): a record larger than both the space left before the
    end and the offset used to wait forever on an empty ring."""
    start = 2048 + 8
    r = Ring(lib, start=start)
    big = bytes(range(256)) * 15 + b"\x01" * (4096 - 8 - 3840)
    assert r.send(big) == EAGAIN                 # publishes the WRAP by itself
    assert r.head == 4096 and r.read(start, 4) == WRAP.to_bytes(4, "little")
    assert r.recv()[0] == EAGAIN and r.tail == 4096   # consumer follows the WRAP
    assert r.send(big) == 0 and r.used == 4096
    assert r.recv() == (0, big, len(big))


@pytest.mark.parametrize("start", [0, 8, 2048, 4096 - 8, U32 - 8, U32 - 4096, U32 - 24])
def test_fill_exactly_to_capacity(lib, start):
    """Records that tile the ring (split at the end of data) fill it to used == capacity;
    then not one more byte fits, and freeing one record makes room again."""
    rng = random.Random(start)
    r = Ring(lib, start=start)
    off = start & 4095
    recs: list[int] = []
    for span in (4096 - off, off):               # to the end of data, then from 0 up to off
        left = span
        while left:
            rec = min(left, 8 * rng.randint(1, 64))
            recs.append(rec)
            left -= rec
    msgs = [payload(rng, max(0, rec - 4 - rng.randint(0, 7))) for rec in recs]
    assert [rec_size(len(m)) for m in msgs] == recs
    for m in msgs:
        assert r.send(m) == 0
        r.invariants()
    assert r.used == 4096
    assert r.send(b"") == EAGAIN and r.used == 4096
    assert r.recv() == (0, msgs[0], len(msgs[0]))
    assert r.send(b"") == 0
    for m in msgs[1:] + [b""]:
        assert r.recv() == (0, m, len(m))
    assert r.used == 0 and r.recv()[0] == EAGAIN


# --------------------------------------------------------------------------- properties


def _expected_send(r: Ring, n: int) -> tuple[bool, int]:
    """The framing rule of docs/ring.md: (fits, bytes head advances by if it fits)."""
    rec, off = rec_size(n), r.head & r.mask
    contig = r.capacity - off
    need = contig + rec if rec > contig else rec
    return need <= r.capacity - r.used, need


@st.composite
def schedules(draw):
    cap = draw(st.sampled_from([4096, 8192]))
    start = draw(st.one_of(st.just(0), st.integers(0, U32 - 1), st.just(U32 - cap // 2)))
    size = st.one_of(st.integers(0, 64), st.integers(0, cap // 4), st.integers(0, cap - 8),
                     st.sampled_from([0, 4, 5, cap // 2 - 4, cap // 2, cap - 12, cap - 8]))
    op = st.one_of(st.tuples(st.sampled_from(["send", "zsend"]), size),
                   st.tuples(st.sampled_from(["recv", "zrecv", "drain"]), st.just(0)))
    return cap, start & ~7, draw(st.lists(op, min_size=1, max_size=80)), draw(st.integers(0, 2**32))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_random_schedules_deliver_every_byte_in_order(lib, sched):
    cap, start, ops, seed = sched
    rng = random.Random(seed)
    r = Ring(lib, cap, start)
    queue: deque[bytes] = deque()

    def consume_one(zero_copy: bool) -> None:
        tail0 = r.tail
        if zero_copy:
            rc, ptr, n = r.peek()
            got = ctypes.string_at(ptr, n) if rc == 0 else None
            if rc == 0:
                r.release()
        else:
            rc, got, n = r.recv()
        if not queue:
            assert rc == EAGAIN and r.tail == r.head   # at most a WRAP was skipped
            return
        want = queue.popleft()
        assert rc == 0 and got == want
        assert (r.tail - tail0) % U32 >= rec_size(len(want))

    for kind, n in ops:
        if kind in ("send", "zsend"):
            fits, need = _expected_send(r, n)
            head0, m = r.head, payload(rng, n)
            if kind == "send":
                rc = r.send(m)
            else:
                rc, ptr = r.reserve(n)
                if rc == 0:
                    ctypes.memmove(ptr, m, n)
                    assert r.head == head0              # nothing published before commit
                    rc = r.commit(n)
            if fits:
                assert rc == 0 and (r.head - head0) % U32 == need
                queue.append(m)
            else:
                assert rc == EAGAIN
                # unchanged, or a lone WRAP marker published (docs/ring.md, deviation 1)
                assert (r.head - head0) % U32 in (0, cap - (head0 & r.mask))
        elif kind == "drain":
            while queue:
                consume_one(zero_copy=False)
        else:
            consume_one(zero_copy=kind == "zrecv")
        r.invariants()
    while queue:
        consume_one(zero_copy=False)
    consume_one(zero_copy=False)
    assert r.used == 0


def test_two_threads_stream(lib):
    """Producer and consumer on two threads (ctypes drops the GIL in each call), so the
    library's loads and stores really interleave on two CPUs."""
    rng = random.Random(7)
    msgs = [payload(rng, rng.choice([0, 1, 7, 8, 60, 200, 1000, 2000])) for _ in range(3000)]
    r = Ring(lib, 4096, start=U32 - 1024)
    deadline = time.monotonic() + 30
    failure: list[str] = []

    def produce():
        for m in msgs:
            while (rc := r.send(m)) == EAGAIN:
                if time.monotonic() > deadline:
                    failure.append("producer timed out")
                    return
            if rc != 0:
                failure.append(f"send returned {rc}")
                return

    t = threading.Thread(target=produce)
    t.start()
    got = []
    while len(got) < len(msgs) and not failure and time.monotonic() < deadline:
        rc, m, _ = r.recv()
        if rc == 0:
            got.append(m)
        else:
            assert rc == EAGAIN
    t.join()
    assert not failure
    assert got == msgs


def test_wait_variants_return_on_success_and_on_errors(lib):
    r = Ring(lib)
    n = ctypes.c_uint32()
    buf = ctypes.create_string_buffer(4096)
    assert lib.ring_send_wait(ctypes.byref(r.prod), b"x" * 4089, 4089) == ETOOBIG
    assert lib.ring_send_wait(ctypes.byref(r.prod), b"hi", 2) == 0
    assert lib.ring_recv_wait(ctypes.byref(r.cons), buf, 1, ctypes.byref(n)) == EMSGSIZE
    assert lib.ring_recv_wait(ctypes.byref(r.cons), buf, 4096, ctypes.byref(n)) == 0
    assert buf.raw[:2] == b"hi"
    r.head = r.tail + 4096 + 8
    assert lib.ring_recv_wait(ctypes.byref(r.cons), buf, 4096, ctypes.byref(n)) == ECORRUPT_INDEX
    assert lib.ring_send_wait(ctypes.byref(r.prod), b"x", 1) == ECORRUPT_INDEX


# --------------------------------------------------------------------------- corruption


def test_head_beyond_capacity(lib):
    r = Ring(lib, start=1000 * 8)
    r.head = r.tail + 4096 + 8
    assert r.peek()[0] == ECORRUPT_INDEX
    assert r.recv()[0] == ECORRUPT_INDEX
    assert r.reserve(8)[0] == ECORRUPT_INDEX


def test_tail_past_head(lib):
    r = Ring(lib, start=4096)
    r.send(b"abc")
    r.tail = r.head + 8
    assert r.peek()[0] == ECORRUPT_INDEX
    assert r.reserve(8)[0] == ECORRUPT_INDEX
    assert r.send(b"x") == ECORRUPT_INDEX


def test_misaligned_indices(lib):
    r = Ring(lib)
    r.head = 12
    assert r.peek()[0] == ECORRUPT_INDEX
    assert r.reserve(0)[0] == ECORRUPT_INDEX
    r.head, r.tail = 4096 - 2 + 8, 4096 - 2   # would put a header read at capacity - 2
    assert r.peek()[0] == ECORRUPT_INDEX


@pytest.mark.parametrize("hdr", [0x7FFFFFFF, 0xFFFFFFFE, 4096 - 7, 4096 - 8, 100, 13])
def test_header_length_corrupt(lib, hdr):
    r = Ring(lib, start=4096 - 64)
    r.send(b"q" * 4)                 # publishes 8 bytes at offset 4032
    r.write_u32(4096 - 64, hdr)      # the producer rewrites the header afterwards
    assert r.peek()[0] == ECORRUPT_LEN
    assert r.tail == 4096 - 64


def test_header_that_overruns_the_end_of_data(lib):
    r = Ring(lib, start=4096 - 16)
    r.head = 4096 - 16 + 4096        # a full ring, so only the end of data can stop it
    r.write_u32(4096 - 16, 64)       # 64-byte payload from 16 bytes before the end
    assert r.peek()[0] == ECORRUPT_LEN


@pytest.mark.parametrize("hdr", [4096 - 7, 4096 - 4])
def test_header_longer_than_the_protocol_allows(lib, hdr):
    """Even where it would fit (a full ring from offset 0), a length above
    capacity - 8 is not a message a correct producer can send."""
    r = Ring(lib, start=4096 * 5)
    r.head = r.tail + 4096
    r.write_u32(0, hdr)
    assert r.peek()[0] == ECORRUPT_LEN


def test_wrap_marker_beyond_published_bytes(lib):
    r = Ring(lib, start=4096 - 64)
    r.head = r.tail + 8
    r.write_u32(4096 - 64, WRAP)     # skip 64 bytes, only 8 published
    assert r.peek()[0] == ECORRUPT_LEN and r.tail == 4096 - 64


def test_two_wrap_markers(lib):
    r = Ring(lib, start=4096 - 8)
    r.head = r.tail + 8 + 4096 - 8
    r.write_u32(4096 - 8, WRAP)
    r.write_u32(0, WRAP)             # a second WRAP at offset 0 would skip a whole ring
    assert r.peek()[0] == ECORRUPT_LEN
    assert r.tail == 4096            # the first, valid skip was followed


@settings(max_examples=400, deadline=None)
@given(head=st.integers(0, U32 - 1), tail=st.integers(0, U32 - 1),
       words=st.lists(st.tuples(st.integers(0, 4096 // 4 - 1),
                                st.one_of(st.integers(0, U32 - 1), st.just(WRAP),
                                          st.integers(0, 4200))), max_size=12),
       op=st.sampled_from(["peek", "recv", "reserve", "send"]), n=st.integers(0, 5000))
def test_arbitrary_shared_state_is_never_followed_out_of_bounds(lib, head, tail, words, op, n):
    """Whatever the peer wrote into its index and the data pages, every call returns a
    defined code, and any span it hands out lies in the data pages (guard pages catch
    the rest)."""
    r = Ring(lib)
    r.head, r.tail = head, tail
    for i, w in words:
        r.write_u32(4 * i, w)
    if op == "peek":
        rc = r.peek()[0]                 # span checked inside
    elif op == "recv":
        rc = r.recv(4096)[0]
    elif op == "reserve":
        rc = r.reserve(n)[0]             # span checked inside
    else:
        rc = r.send(b"\xAA" * n)
    assert rc in (0, EAGAIN, ETOOBIG, ECORRUPT_INDEX, ECORRUPT_LEN)
    if op in ("reserve", "send") and rc == 0:
        assert r.used <= 4096
    if rc == ECORRUPT_INDEX:
        assert (head - tail) % U32 > 4096 or head % 8 or tail % 8


# --------------------------------------------------------------------------- guest builds


def _obj(arch_name: str):
    tc = arch.toolchain(arch_name)
    spec = BuildSpec(sources=(RING_C,), target=tc.zig_target, cflags=tc.cflags + ("-Werror", "-c"),
                     include_dirs=(GUESTS / "include", GUESTS / "arch" / arch_name / "include"))
    return build(spec, name=f"ring_{arch_name}")


def _functions(path, cs: capstone.Cs) -> dict[str, list[tuple[str, str]]]:
    """Function name -> [(mnemonic, operands)] of every function in .text of an object."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text").data()
        out = {}
        for s in elf.get_section_by_name(".symtab").iter_symbols():
            if s["st_info"]["type"] == "STT_FUNC" and s["st_size"]:
                code = text[s["st_value"]: s["st_value"] + s["st_size"]]
                out[s.name] = [(i.mnemonic, i.op_str) for i in cs.disasm(code, 0)]
    return out


@pytest.mark.parametrize("arch_name", ["x86_64", "arm64"])
def test_compiles_warning_free_with_guest_flags(arch_name):
    with open(_obj(arch_name), "rb") as f:
        elf = ELFFile(f)
        assert elf["e_type"] == "ET_REL"
        assert elf["e_machine"] == arch.get(arch_name).elf_machine
        names = {s.name for s in elf.get_section_by_name(".symtab").iter_symbols()}
    assert {"ring_reserve", "ring_commit", "ring_peek", "ring_release", "ring_send",
            "ring_recv", "ring_send_wait", "ring_recv_wait", "ring_init"} <= names


def test_arm64_publish_is_stlr_and_consume_is_ldar():
    fns = _functions(_obj("arm64"), capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM))

    def has(fn: str, mnemonic: str) -> bool:
        return any(m == mnemonic for m, _ in fns[fn])

    assert has("ring_commit", "stlr")     # publish head
    assert has("ring_release", "stlr")    # publish tail
    assert has("ring_peek", "ldar")       # observe head
    assert has("ring_reserve", "ldar")    # observe tail before overwriting freed bytes
    assert has("ring_send_wait", "yield") and has("ring_recv_wait", "yield")


def test_host_build_runs_the_guest_instructions():
    """The native harness's build of ring.c and string.c (HOST_CFLAGS) is instruction for
    instruction the x86-64 guest build, so native timings measure the guests' code."""
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    inc = (GUESTS / "include", GUESTS / "arch" / "x86_64" / "include")
    tc = arch.toolchain("x86_64")
    for src in (RING_C, STRING_C):
        guest = build(BuildSpec(sources=(src,), target=tc.zig_target, cflags=tc.cflags + ("-c",),
                                include_dirs=inc), name=f"guest_{src.stem}")
        host = build(BuildSpec(sources=(src,), target=host_target(),
                               cflags=HOST_CFLAGS + ("-c",), include_dirs=inc),
                     name=f"host_{src.stem}")
        g, h = _functions(guest, cs), _functions(host, cs)
        assert g.keys() == h.keys() and g, src.name
        for fn in g:
            assert g[fn] == h[fn], f"{src.name}:{fn} differs between guest and host builds"
