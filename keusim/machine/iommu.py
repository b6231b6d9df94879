"""The IOMMU: every DMA of the NIC is translated here, or blocked and recorded.

SMMUv3-like (docs/netd.md, "The IOMMU"): the kernel writes a stream table in RAM (one
``struct iommu_ste`` per device stream: a valid bit and the physical address of the
stream's translation table) and an event queue for faults, and points the IOMMU's
registers at them (``guests/include/keusim/nic.h``). SMMUv3's context-descriptor level
is folded into the stream table entry: one translation context per stream.

The translation tables are the CPU's own 4-level format (SMMUv3 walks VMSAv8-64
tables; VT-d's second-level tables follow IA-32e paging), walked with the
architecture's own codec, so the kernel builds them with the code that builds process
address spaces and there is no new format.

A DMA that fails (IOMMU off, no valid stream entry, an IOVA with no translation, a
write to a read-only page) never touches memory. The fault is written to the event
queue in RAM when there is room (SMMUv3 sets an overflow flag when there is not; the
count of lost events is kept here) and kept in :attr:`Iommu.faults` for the run
report's ``devices`` section.

``bypass`` is a deliberately broken IOMMU, for tests only: a failed translation passes
the IOVA through as a physical address (a device left in passthrough mode). The attack
tests must fail with it; that is what shows they can.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from keusim import abi
from keusim.errors import MachineError
from keusim.machine.pagetable import PAGE, W, translate

_N = abi.defines("nic.h")
STRTAB, STRTAB_N, EVTQ, EVTQ_N = (_N[k] for k in ("IOMMU_STRTAB", "IOMMU_STRTAB_N", "IOMMU_EVTQ",
                                                  "IOMMU_EVTQ_N"))
EVTQ_PROD, EVTQ_CONS, ENABLE = _N["IOMMU_EVTQ_PROD"], _N["IOMMU_EVTQ_CONS"], _N["IOMMU_ENABLE"]
STE_VALID = _N["STE_VALID"]
F_DISABLED, F_BAD_STREAM, F_UNMAPPED, F_PERM = (_N[k] for k in (
    "IOMMU_F_DISABLED", "IOMMU_F_BAD_STREAM", "IOMMU_F_UNMAPPED", "IOMMU_F_PERM"))
ACC_READ, ACC_WRITE = _N["IOMMU_ACC_READ"], _N["IOMMU_ACC_WRITE"]
REASONS = {F_DISABLED: "iommu-disabled", F_BAD_STREAM: "no-stream-entry",
           F_UNMAPPED: "unmapped", F_PERM: "read-only"}
ACCESS = {ACC_READ: "read", ACC_WRITE: "write"}
IOVA_LIMIT = 1 << 47
"""Translation tables cover the lower 48-bit half; an IOVA at or above this is unmapped."""
_EVENT = struct.Struct("<IIIIQQ")   # struct iommu_event


@dataclass(frozen=True)
class IommuFault:
    """One blocked DMA: which stream, where, what kind of access, why, and when."""

    stream: int
    iova: int
    access: str
    reason: str
    length: int
    cycle: int

    def as_dict(self) -> dict:
        return {"stream": self.stream, "iova": f"{self.iova:#x}", "access": self.access,
                "reason": self.reason, "length": self.length, "cycle": self.cycle}


class Iommu:
    """The IOMMU model. ``machine`` gives RAM and the architecture's page-table codec."""

    MAX_KEPT = 1024
    """Faults kept for the report; more are counted in ``faults_dropped`` (bounded memory)."""

    def __init__(self, machine, bypass: bool = False):
        self.m = machine
        self.ram = machine.ram
        self.codec = machine.arch.pte
        self.regs = {STRTAB: 0, STRTAB_N: 0, EVTQ: 0, EVTQ_N: 0, EVTQ_PROD: 0, EVTQ_CONS: 0,
                     ENABLE: 0}
        self.bypass = bypass
        self.faults: list[IommuFault] = []
        self.faults_total = 0
        self.events_lost = 0
        self.bytes_read = 0
        self.bytes_written = 0

    # -- registers (kernel only) -------------------------------------------------
    def read(self, core, off: int) -> int:
        return self.regs.get(off, 0)

    def write(self, core, off: int, value: int) -> None:
        if off in self.regs and off != EVTQ_PROD:
            self.regs[off] = value

    # -- translation --------------------------------------------------------------
    def _fault(self, stream: int, iova: int, access: int, reason: int, n: int, at: int) -> None:
        self.faults_total += 1
        if len(self.faults) < self.MAX_KEPT:
            self.faults.append(IommuFault(stream, iova, ACCESS[access], REASONS[reason], n, at))
        q, qn = self.regs[EVTQ], self.regs[EVTQ_N]
        prod, cons = self.regs[EVTQ_PROD], self.regs[EVTQ_CONS]
        if not q or not qn or qn & (qn - 1) or (prod - cons) & 0xFFFFFFFFFFFFFFFF >= qn:
            self.events_lost += 1
            return
        try:
            self.ram.write(q + _EVENT.size * (prod & (qn - 1)),
                           _EVENT.pack(stream, reason, access, n, iova, at))
        except MachineError:   # a queue outside RAM loses the event, as hardware would
            self.events_lost += 1
            return
        self.regs[EVTQ_PROD] = prod + 1

    def _ste(self, stream: int) -> int | None:
        """The translation-table root of stream, or None without a valid entry."""
        base, n = self.regs[STRTAB], self.regs[STRTAB_N]
        if not base or stream >= n:
            return None
        try:
            flags, ttb = struct.unpack("<QQ", self.ram.read(base + 16 * stream, 16))
        except MachineError:   # a stream table outside RAM: no valid entry
            return None
        return ttb if flags & STE_VALID else None

    def _map(self, stream: int, iova: int, n: int, access: int, at: int) -> list[tuple[int, int]] | None:
        """Physical (pa, length) pieces for [iova, iova+n), or None (fault recorded)."""
        if not self.regs[ENABLE]:
            if self.bypass:
                return [(iova, n)]
            self._fault(stream, iova, access, F_DISABLED, n, at)
            return None
        root = self._ste(stream)
        if root is None:
            self._fault(stream, iova, access, F_BAD_STREAM, n, at)
            return None
        out = []
        a, left = iova, n
        while left > 0:
            chunk = min(left, PAGE - (a & (PAGE - 1)))
            tr = translate(self.ram, self.codec, root, a) if 0 <= a and a + chunk <= IOVA_LIMIT else None
            if tr is None or (access == ACC_WRITE and not tr[1] & W):
                if self.bypass:       # the planted bug: pass the IOVA through
                    out.append((a, chunk))
                else:
                    self._fault(stream, a, access, F_UNMAPPED if tr is None else F_PERM, n, at)
                    return None
            else:
                out.append((tr[0], chunk))
            a += chunk
            left -= chunk
        return out

    def dma_read(self, stream: int, iova: int, n: int, at: int) -> bytes | None:
        """n bytes a device reads at iova, or None when the IOMMU blocked it."""
        pieces = self._map(stream, iova, n, ACC_READ, at)
        if pieces is None:
            return None
        try:
            data = b"".join(self.ram.read(pa, k) for pa, k in pieces)
        except MachineError:   # only reachable through bypass: outside RAM
            return None
        self.bytes_read += n
        return data

    def dma_write(self, stream: int, iova: int, data: bytes, at: int) -> bool:
        """Write data at iova for a device; False (and nothing written) when blocked."""
        pieces = self._map(stream, iova, len(data), ACC_WRITE, at)
        if pieces is None:
            return False
        off = 0
        for pa, k in pieces:
            try:
                self.ram.write(pa, data[off:off + k])
            except MachineError:   # only reachable through bypass: outside RAM
                return False
            off += k
        self.bytes_written += len(data)
        return True

    def report(self) -> dict:
        d = {"model": "SMMUv3-like (stream table -> CPU-format page table)",
             "faults": [f.as_dict() for f in self.faults], "faults_total": self.faults_total,
             "events_lost": self.events_lost, "dma_bytes_read": self.bytes_read,
             "dma_bytes_written": self.bytes_written}
        if self.bypass:
            d["bypass"] = "planted bug: failed translations pass through (tests only)"
        return d
