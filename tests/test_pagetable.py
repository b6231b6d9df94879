"""TableBuilder.map_pages (the boot direct map) against one map_page per page."""

from __future__ import annotations

import pytest

from keusim import arch as archmod
from keusim.machine.pagetable import PAGE, R, TableBuilder, W, X, walk_all


class Ram:
    def __init__(self, size: int) -> None:
        self.b = bytearray(size)

    def read(self, pa: int, n: int) -> bytes:
        return bytes(self.b[pa:pa + n])

    def write(self, pa: int, data: bytes) -> None:
        self.b[pa:pa + len(data)] = data


def build(codec, batched: bool) -> tuple[Ram, int]:
    ram = Ram(1 << 21)
    nxt = [0x1000]

    def alloc() -> int:
        pa = nxt[0]
        nxt[0] += PAGE
        return pa

    tb = TableBuilder(ram, codec, alloc)
    text = {pa: R | X for pa in range(0x40000, 0x48000, PAGE)}

    def perm(pa: int) -> int:
        return text.get(pa, R | W)

    # Starts mid-table and crosses several last-level tables and a level-1 boundary.
    va, pa, n = 0xFFFF_8000_3FF0_0000 + 5 * PAGE, 0x3000, 1500
    if batched:
        tb.map_pages(va, pa, n, perm)
    else:
        for k in range(n):
            tb.map_page(va + k * PAGE, pa + k * PAGE, perm(pa + k * PAGE))
    tb.map_page(va + 2000 * PAGE, 0x9000, R | W)   # a later single page still fits in
    return ram, tb.root


@pytest.mark.parametrize("name", ["x86_64", "arm64"])
def test_map_pages_writes_the_same_tables_as_map_page(name):
    codec = archmod.get(name).pte
    (a, ra), (b, rb) = build(codec, True), build(codec, False)
    assert ra == rb and a.b == b.b
    pages = list(walk_all(a, codec, ra, top_indices=range(512)))
    assert len(pages) == 1501
    assert sum(1 for _, _, p in pages if p & X) == 8
