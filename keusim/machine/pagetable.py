"""4-level, 4 KiB-granule page tables in emulated physical memory.

Both architectures use the same tree shape (four 9-bit indices above a 12-bit
offset, 48-bit virtual addresses); only the entry encoding differs, and that lives
in each backend as a :class:`PteCodec`. The loader builds the kernel's boot tables
with :meth:`TableBuilder.map_pages`; the mapping dump reads the kernel's tables back with
:func:`walk_all`, straight from emulated RAM.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

PAGE = 4096
R, W, X, U, DEV = 1, 2, 4, 8, 16  # mirrors kernel/include/arch.h PTE_*


def perm_str(perm: int) -> str:
    """'rwxu'-style string: 'r-x u' for user text, 'rw- k' for kernel data."""
    s = ("r" if perm & R else "-") + ("w" if perm & W else "-") + ("x" if perm & X else "-")
    return s + (" u" if perm & U else " k")


class PteCodec(Protocol):
    def leaf(self, pa: int, perm: int, level: int) -> int: ...
    def table(self, pa: int) -> int: ...
    def decode(self, e: int, level: int) -> tuple[str, int, int]:
        """('invalid'|'table'|'leaf', pa, perm)."""
        ...


class PhysRAM(Protocol):
    def read(self, pa: int, n: int) -> bytes: ...
    def write(self, pa: int, data: bytes) -> None: ...


def _idx(va: int, level: int) -> int:
    return (va >> (12 + 9 * level)) & 0x1FF


class TableBuilder:
    """Builds tables in RAM, allocating table pages with ``alloc`` (returns a pa)."""

    def __init__(self, ram: PhysRAM, codec: PteCodec, alloc: Callable[[], int]):
        self.ram, self.codec, self.alloc = ram, codec, alloc
        self.root = alloc()

    def _entry(self, table_pa: int, i: int) -> int:
        return struct.unpack_from("<Q", self.ram.read(table_pa + 8 * i, 8))[0]

    def _leaf_table(self, va: int) -> int:
        """The last-level table covering va, allocating the tables on the way."""
        t = self.root
        for level in (3, 2, 1):
            i = _idx(va, level)
            kind, nxt, _ = self.codec.decode(self._entry(t, i), level)
            if kind == "invalid":
                nxt = self.alloc()
                self.ram.write(t + 8 * i, struct.pack("<Q", self.codec.table(nxt)))
            elif kind != "table":
                raise ValueError(f"map_page: {va:#x} is inside a block mapping")
            t = nxt
        return t

    def map_page(self, va: int, pa: int, perm: int) -> None:
        t = self._leaf_table(va)
        self.ram.write(t + 8 * _idx(va, 0), struct.pack("<Q", self.codec.leaf(pa, perm, 0)))

    def map_pages(self, va: int, pa: int, n: int, perm: Callable[[int], int]) -> None:
        """Map n pages from va to pa on, page k with permissions ``perm(pa + k * PAGE)``.

        The same tables, allocated in the same order, as n calls of :meth:`map_page`;
        one RAM write per last-level table instead of one per page (the boot direct map
        is 16 Ki pages).
        """
        leaf = self.codec.leaf
        k = 0
        while k < n:
            v = va + k * PAGE
            t = self._leaf_table(v)
            i0 = _idx(v, 0)
            m = min(512 - i0, n - k)
            ents = [leaf(p, perm(p), 0) for p in range(pa + k * PAGE, pa + (k + m) * PAGE, PAGE)]
            self.ram.write(t + 8 * i0, struct.pack(f"<{m}Q", *ents))
            k += m


@dataclass(frozen=True)
class Mapping:
    """A run of contiguous pages with the same permissions."""

    va: int
    pa: int
    size: int
    perm: int

    def as_dict(self) -> dict:
        return {"va": f"{self.va:#x}", "end": f"{self.va + self.size:#x}", "pa": f"{self.pa:#x}",
                "perm": perm_str(self.perm)}


def walk_all(ram: PhysRAM, codec: PteCodec, root: int, va_base: int = 0,
             top_indices: range = range(256)) -> Iterator[tuple[int, int, int]]:
    """Yield (va, pa, perm) for every valid 4 KiB leaf under root (blocks expanded)."""

    def rec(t: int, level: int, va: int, idxs) -> Iterator[tuple[int, int, int]]:
        raw = ram.read(t, PAGE)
        for i in idxs:
            (e,) = struct.unpack_from("<Q", raw, 8 * i)
            kind, pa, perm = codec.decode(e, level)
            v = va | (i << (12 + 9 * level))
            if kind == "invalid":
                continue
            if kind == "leaf":
                for off in range(0, PAGE << (9 * level), PAGE):
                    yield v + off, pa + off, perm
            else:
                yield from rec(pa, level - 1, v, range(512))

    yield from rec(root, 3, va_base, top_indices)


def coalesce(pages: list[tuple[int, int, int]]) -> list[Mapping]:
    """Merge (va, pa, perm) pages into runs contiguous in va and pa with equal perm."""
    out: list[Mapping] = []
    for va, pa, perm in sorted(pages):
        if out:
            m = out[-1]
            if m.va + m.size == va and m.pa + m.size == pa and m.perm == perm:
                out[-1] = Mapping(m.va, m.pa, m.size + PAGE, perm)
                continue
        out.append(Mapping(va, pa, PAGE, perm))
    return out


def translate(ram: PhysRAM, codec: PteCodec, root: int, va: int) -> tuple[int, int] | None:
    """(pa, perm) of va under root, or None if unmapped. Reads emulated RAM only.

    Used instead of uc_vmem_read/translate: inside a hook, translating an unmapped
    address raises a real CPU exception in the guest (x86-64, Unicorn 2.1.4).
    """
    t = root
    for level in (3, 2, 1, 0):
        (e,) = struct.unpack("<Q", ram.read(t + 8 * _idx(va, level), 8))
        kind, pa, perm = codec.decode(e, level)
        if kind == "invalid":
            return None
        if kind == "leaf":
            size = PAGE << (9 * level)
            return pa + (va & (size - 1)), perm
        t = pa
    return None


def read_virtual(ram: PhysRAM, codec: PteCodec, root: int, va: int, n: int) -> bytes | None:
    """n bytes at va under root (page by page), or None if any page is unmapped."""
    out = b""
    while n > 0:
        tr = translate(ram, codec, root, va)
        if tr is None:
            return None
        chunk = min(n, PAGE - (va & (PAGE - 1)))
        out += ram.read(tr[0], chunk)
        va += chunk
        n -= chunk
    return out
