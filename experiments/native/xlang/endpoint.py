"""The Python endpoint of the cross-language ring experiment (xlang.h has the protocol):

    python endpoint.py SHM ROLE ITERS WARMUP SIZE LIBRING

The shared file is mapped with :mod:`mmap`; the ring operations are guests/lib/ring.c,
built as a shared library (LIBRING, built by experiments/xlang.py) and called through
:mod:`ctypes` on pointers into the mapping, so the acquire/release order is the C
code's. Python has no atomics of its own and CPython gives no ordering guarantee for
plain stores into a mapping, so a pure-Python ring would be correct on x86-64 (TSO)
only by accident. Standalone (imports nothing from keusim) so that its start-up is
Python's alone. Prints one JSON object with its samples.
"""

from __future__ import annotations

import ctypes as C
import json
import mmap
import os
import struct
import sys
import time

# xlang.h
PAGE, CAPACITY = 4096, 16384
RING_PAGES = 2 + CAPACITY // PAGE
FILE_SIZE = PAGE * (1 + 2 * RING_PAGES)
M64 = (1 << 64) - 1
RING_EAGAIN = -1


def ring_off(r: int) -> int:
    return PAGE * (1 + r * RING_PAGES)


def word(x: int) -> int:
    """splitmix64, as xl_word() in xlang.h."""
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class RingEp(C.Structure):
    """struct ring_ep (guests/include/keusim/ring.h)."""

    _fields_ = [("head", C.c_void_p), ("tail", C.c_void_p), ("data", C.c_void_p),
                ("capacity", C.c_uint32), ("mask", C.c_uint32), ("local", C.c_uint32),
                ("pending", C.c_uint32)]


def main(argv: list[str]) -> int:
    if len(argv) != 6:
        print("usage: endpoint.py SHM ROLE ITERS WARMUP SIZE LIBRING", file=sys.stderr)
        return 2
    path, role, iters, warmup, size, lib = (argv[0], int(argv[1]), int(argv[2]), int(argv[3]),
                                            int(argv[4]), argv[5])
    if role not in (0, 1) or iters < 1 or size < 16 or size % 8 or size > 4096:
        print("endpoint.py: bad arguments", file=sys.stderr)
        return 2
    ring = C.CDLL(lib)
    ring.ring_init.argtypes = [C.POINTER(RingEp), C.c_void_p, C.c_void_p, C.c_void_p, C.c_uint32]
    send = ring.ring_send
    send.argtypes = [C.POINTER(RingEp), C.c_void_p, C.c_uint32]
    recv = ring.ring_recv
    recv.argtypes = [C.POINTER(RingEp), C.c_void_p, C.c_uint32, C.POINTER(C.c_uint32)]
    fd = os.open(path, os.O_RDWR)
    shm = mmap.mmap(fd, FILE_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    base = C.addressof(C.c_char.from_buffer(shm))

    def open_ring(r: int) -> RingEp:
        ep = RingEp()
        p = base + ring_off(r)
        if ring.ring_init(C.byref(ep), p, p + PAGE, p + 2 * PAGE, CAPACITY) != 0:
            raise SystemExit("endpoint.py: ring_init failed")
        return ep

    tx, rx = C.byref(open_ring(role)), C.byref(open_ring(1 - role))
    words = size // 8
    out, inb = C.create_string_buffer(size), C.create_string_buffer(size)
    n = C.c_uint32(0)
    pn = C.byref(n)
    now = time.monotonic_ns          # CLOCK_MONOTONIC, the clock every endpoint reads
    ready = C.c_uint32.from_buffer(shm, role * 64)
    peer = C.c_uint32.from_buffer(shm, (1 - role) * 64)
    ready.value = 1                  # a 4-byte aligned store; nothing precedes it to order
    while peer.value == 0:
        pass
    rt, ow = [], []
    good = bad = 0
    total = warmup + iters
    for i in range(total):
        if role == 0:
            payload = struct.pack(f"<{words - 2}Q", *(word(i << 16 | k) for k in range(2, words)))
            t0 = now()
            out[:16] = struct.pack("<QQ", i, t0)
            out[16:size] = payload
            while send(tx, out, size) == RING_EAGAIN:
                pass
            while (r := recv(rx, inb, size, pn)) == RING_EAGAIN:
                pass
            t1 = now()
            if r != 0:
                raise SystemExit(f"endpoint.py: ring error {r}")
            seq, stamp = struct.unpack_from("<QQ", inb, 0)
            if i >= warmup:
                rt.append(t1 - t0)
                ow.append(t1 - stamp)
        else:
            while (r := recv(rx, inb, size, pn)) == RING_EAGAIN:
                pass
            t1 = now()
            if r != 0:
                raise SystemExit(f"endpoint.py: ring error {r}")
            seq, stamp = struct.unpack_from("<QQ", inb, 0)
            if i >= warmup:
                ow.append(t1 - stamp)
            struct.pack_into("<Q", inb, 8, now())
            while send(tx, inb, size) == RING_EAGAIN:
                pass
        got = struct.unpack_from(f"<{words}Q", inb, 0)
        ok = n.value == size and got[0] == i and all(
            got[k] == word(i << 16 | k) for k in range(2, words))
        good, bad = good + ok, bad + (not ok)
    print(json.dumps({"lang": "python", "role": role, "msgs": total,
                      "verified_bytes": good * size, "mismatches": bad,
                      "rt_ns": rt, "oneway_ns": ow}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
