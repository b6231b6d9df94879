"""The NIC: AF_XDP-shaped queues that DMA through the IOMMU, and a timed link.

Registers and the ring layout are in ``guests/include/keusim/nic.h`` (read here through
:mod:`keusim.abi`). Three register pages: the control page (kernel only: where each
queue's rings and frame region are, which core takes its interrupt, which IOMMU stream
its DMA uses) and one page per queue (the owner's: transmit doorbell, interrupt arm, a
timer, link status). A queue has the four rings of the ``netif`` shape (docs/netd.md):
fill and tx are written by the owner, rx and completion by the NIC. The NIC keeps its
own index of each ring it consumes or produces, writes it to memory for the owner,
and reads the owner's indices and descriptors from memory, all through
:class:`~keusim.machine.iommu.Iommu` with the queue's stream id. It trusts no
descriptor: an address outside the registered region is the IOMMU's to block.

Receive: a frame arriving from the link at model time ``t`` takes the next fill
descriptor, is written into that frame, gets an rx descriptor, and raises the queue's
interrupt if it is armed (one-shot, as NAPI re-arms). No fill descriptor, no room on
the rx ring, or a blocked DMA: the frame is dropped and counted, as a NIC does.
Transmit: a write to the doorbell sends every queued tx descriptor at the writing
core's model time; each frame is serialised on the link (line rate), reaches the other
end one latency later, and its frame goes back on the completion ring.

Every frame that crosses the link, both ways, is kept with its model time for the
run's pcap (:meth:`Nic.capture`). Receive steering is not modelled: every frame goes to
the lowest enabled queue.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from keusim import abi
from keusim.machine.devices import IRQ_DEV
from keusim.machine.iommu import Iommu

_N = abi.defines("nic.h")
NIC_PA, NIC_QUEUES, IOMMU_PA = _N["NIC_PA"], _N["NIC_QUEUES"], _N["IOMMU_PA"]
PAGE = 0x1000
R_MAC, R_IRQ_STATUS = _N["NIC_MAC"], _N["NIC_IRQ_STATUS"]
QCTL0, QCTL_STRIDE = 0x100, 0x40      # NIC_QCTL(q) = 0x100 + 0x40 * q
Q_RINGS, Q_UMEM, Q_SIZE, Q_IRQ_CORE, Q_STREAM, Q_ENABLE = (_N[k] for k in (
    "NIC_Q_RINGS", "NIC_Q_UMEM", "NIC_Q_SIZE", "NIC_Q_IRQ_CORE", "NIC_Q_STREAM", "NIC_Q_ENABLE"))
RING_MAX = _N["NIC_RING_MAX"]
QR_DOORBELL, QR_ARM, QR_TIMER, QR_STATUS, QR_CPMS, QR_MAC, QR_DROPPED = (_N[k] for k in (
    "NICQ_TX_DOORBELL", "NICQ_IRQ_ARM", "NICQ_TIMER", "NICQ_STATUS", "NICQ_CYCLES_PER_MS",
    "NICQ_MAC", "NICQ_RX_DROPPED"))
FILL, RX, TX, COMP = (_N[k] for k in ("NIC_RING_FILL", "NIC_RING_RX", "NIC_RING_TX", "NIC_RING_COMP"))
IDX_BYTES, DESC_BYTES, RINGS_HDR = _N["NIC_IDX_BYTES"], _N["NIC_DESC_BYTES"], _N["NIC_RINGS_HDR"]
MIN_FRAME, MAX_FRAME = 14, 1514
M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class LinkParams:
    """The wire and the clock that converts link time into model cycles.

    Every number has a source: ``rate_bps`` is 10GBASE-R (IEEE 802.3 clause 49);
    ``overhead_bytes`` is preamble and start delimiter (8), frame check sequence (4,
    not in the captured frame) and the minimum inter-packet gap (12), IEEE 802.3
    clauses 3-4; ``latency_ns`` is an estimate for one short direct-attach cable plus
    the MAC/PHY of both ends (estimate); ``core_hz`` is an estimate (3 GHz) used only to
    turn link time into model cycles and milliseconds.
    """

    rate_bps: int = 10_000_000_000
    overhead_bytes: int = 24
    latency_ns: int = 1_000
    core_hz: int = 3_000_000_000

    @property
    def cycles_per_ms(self) -> int:
        return self.core_hz // 1000

    @property
    def cycles_per_us(self) -> int:
        return self.core_hz // 1_000_000

    @property
    def latency_cycles(self) -> int:
        return self.latency_ns * self.core_hz // 1_000_000_000

    def wire_cycles(self, nbytes: int) -> int:
        """Cycles the link is busy sending a frame of nbytes (at least the 60-byte minimum)."""
        return (max(nbytes, 60) + self.overhead_bytes) * 8 * self.core_hz // self.rate_bps


@dataclass
class _Queue:
    rings: int = 0
    umem: int = 0
    size: int = 0
    irq_core: int = 0
    stream: int = 0
    enabled: bool = False
    armed: bool = False
    timer: int = 0
    fill_cons: int = 0      # the NIC's own indices (written to memory for the owner)
    rx_prod: int = 0
    tx_cons: int = 0
    comp_prod: int = 0
    rx_dropped: int = 0


class Nic:
    """The NIC model. Add it to a machine with :meth:`attach`; a *wire*
    (:mod:`keusim.net.wire`) is what sits at the far end of its link."""

    def __init__(self, machine, iommu: Iommu, mac: bytes = bytes.fromhex("020000000002"),
                 link: LinkParams | None = None):
        self.m = machine
        self.iommu = iommu
        self.mac = int.from_bytes(mac, "big")
        self.link = link or LinkParams()
        self.q = [_Queue() for _ in range(NIC_QUEUES)]
        self.irq_status = 0
        self.link_up = False
        self.wire = None
        self.tx_free = 0        # model time the transmit side of the link is free again
        self.rx_free = 0
        self.frames: list[tuple[int, int, str, bytes]] = []   # (cycle, order, dir, frame)
        self.c = dict(rx_frames=0, rx_bytes=0, tx_frames=0, tx_bytes=0, rx_no_queue=0,
                      rx_no_fill=0, rx_ring_full=0, rx_bad_ring=0, rx_dma_blocked=0,
                      rx_oversize=0, tx_bad_len=0, tx_dma_blocked=0, tx_bad_ring=0,
                      tx_comp_full=0, interrupts=0)

    def attach(self, wire=None) -> None:
        """Map the registers (NIC and IOMMU) and connect the far end of the link."""
        m = self.m
        m.add_mmio(IOMMU_PA, PAGE, self.iommu.read, self.iommu.write)
        m.add_mmio(NIC_PA, PAGE * (NIC_QUEUES + 1), self._read, self._write)
        m.extra_devices["nic"] = self
        self.wire = wire
        if wire is not None:
            self.link_up = True
            wire.start(self, m)

    # -- registers ----------------------------------------------------------------
    def _read(self, core, off: int) -> int:
        page, r = divmod(off, PAGE)
        if page == 0:
            if r == R_MAC:
                return self.mac
            if r == R_IRQ_STATUS:
                st, self.irq_status = self.irq_status, 0
                return st
            return 0
        q = self.q[page - 1]
        if r == QR_STATUS:
            return 1 if self.link_up else 0
        if r == QR_CPMS:
            return self.link.cycles_per_ms
        if r == QR_MAC:
            return self.mac
        if r == QR_DROPPED:
            return q.rx_dropped
        if r == QR_TIMER:
            return q.timer
        return 0

    def _write(self, core, off: int, value: int) -> None:
        page, r = divmod(off, PAGE)
        if page == 0:
            qi, rr = divmod(r - QCTL0, QCTL_STRIDE)
            if r < QCTL0 or qi >= NIC_QUEUES:
                return
            q = self.q[qi]
            if rr == Q_RINGS:
                q.rings = value
            elif rr == Q_UMEM:
                q.umem = value
            elif rr == Q_SIZE:
                q.size = value if 0 < value <= RING_MAX and value & (value - 1) == 0 else 0
            elif rr == Q_IRQ_CORE:
                q.irq_core = value
            elif rr == Q_STREAM:
                q.stream = value
            elif rr == Q_ENABLE:
                q.enabled = bool(value) and q.size > 0
            return
        qi = page - 1
        q = self.q[qi]
        if r == QR_DOORBELL:
            self._transmit(qi, core.clock)
        elif r == QR_ARM:
            q.armed = True
        elif r == QR_TIMER:
            q.timer = value
            if value:
                self.m.add_timed(max(value, core.clock), lambda t, qi=qi, v=value: self._timer(qi, v, t))

    # -- events -------------------------------------------------------------------
    def _interrupt(self, qi: int, at: int) -> None:
        q = self.q[qi]
        if not q.armed:
            return
        q.armed = False
        self.irq_status |= 1 << qi
        self.c["interrupts"] += 1
        self.m.raise_irq(q.irq_core, IRQ_DEV, at)

    def _timer(self, qi: int, value: int, at: int) -> None:
        if self.q[qi].timer == value:
            self.q[qi].timer = 0
            self._interrupt(qi, at)

    def set_link(self, up: bool, at: int) -> None:
        """The wire's end came up or went away: every armed queue is told."""
        self.link_up = up
        for qi, q in enumerate(self.q):
            if q.enabled:
                self._interrupt(qi, at)

    # -- ring access through the IOMMU ---------------------------------------------
    def _idx_iova(self, q: _Queue, ring: int, cons: bool) -> int:
        return (q.rings + ring * IDX_BYTES + (64 if cons else 0)) & M64

    def _get_idx(self, q: _Queue, ring: int, cons: bool, at: int) -> int | None:
        b = self.iommu.dma_read(q.stream, self._idx_iova(q, ring, cons), 4, at)
        return None if b is None else struct.unpack("<I", b)[0]

    def _put_idx(self, q: _Queue, ring: int, cons: bool, v: int, at: int) -> bool:
        return self.iommu.dma_write(q.stream, self._idx_iova(q, ring, cons),
                                    struct.pack("<I", v & M32), at)

    def _desc_iova(self, q: _Queue, ring: int, i: int) -> int:
        return (q.rings + RINGS_HDR + (ring * q.size + (i & (q.size - 1))) * DESC_BYTES) & M64

    def _get_desc(self, q: _Queue, ring: int, i: int, at: int) -> tuple[int, int] | None:
        b = self.iommu.dma_read(q.stream, self._desc_iova(q, ring, i), DESC_BYTES, at)
        if b is None:
            return None
        addr, n, _opt = struct.unpack("<QII", b)
        return addr, n

    def _put_desc(self, q: _Queue, ring: int, i: int, addr: int, n: int, at: int) -> bool:
        return self.iommu.dma_write(q.stream, self._desc_iova(q, ring, i),
                                    struct.pack("<QII", addr & M64, n, 0), at)

    # -- receive --------------------------------------------------------------------
    def from_wire(self, sent_at: int, frame: bytes) -> int:
        """The far end starts sending frame at model time sent_at; returns when it arrives."""
        start = max(sent_at, self.rx_free)
        self.rx_free = start + self.link.wire_cycles(len(frame))
        arrive = self.rx_free + self.link.latency_cycles
        self.m.add_timed(arrive, lambda t, f=bytes(frame): self._receive(f, t))
        return arrive

    def _receive(self, frame: bytes, at: int) -> None:
        self._record(at, "in", frame)
        qi = next((i for i, q in enumerate(self.q) if q.enabled), None)
        if qi is None:
            self.c["rx_no_queue"] += 1
            return
        q = self.q[qi]
        if not self.link_up:
            return
        if len(frame) > MAX_FRAME:
            self.c["rx_oversize"] += 1
            q.rx_dropped += 1
            return
        fill_prod = self._get_idx(q, FILL, False, at)
        rx_cons = self._get_idx(q, RX, True, at)
        if fill_prod is None or rx_cons is None:
            self.c["rx_dma_blocked"] += 1
            q.rx_dropped += 1
            return
        avail = (fill_prod - q.fill_cons) & M32
        if avail > q.size:
            self.c["rx_bad_ring"] += 1      # the owner wrote an impossible index
            q.rx_dropped += 1
            return
        if avail == 0:
            self.c["rx_no_fill"] += 1
            q.rx_dropped += 1
            return
        if (q.rx_prod - rx_cons) & M32 >= q.size:
            self.c["rx_ring_full"] += 1
            q.rx_dropped += 1
            return
        d = self._get_desc(q, FILL, q.fill_cons, at)
        q.fill_cons = (q.fill_cons + 1) & M32
        self._put_idx(q, FILL, True, q.fill_cons, at)
        if d is None or not self.iommu.dma_write(q.stream, (q.umem + d[0]) & M64, frame, at):
            self.c["rx_dma_blocked"] += 1
            q.rx_dropped += 1
            return
        self._put_desc(q, RX, q.rx_prod, d[0], len(frame), at)
        q.rx_prod = (q.rx_prod + 1) & M32
        self._put_idx(q, RX, False, q.rx_prod, at)
        self.c["rx_frames"] += 1
        self.c["rx_bytes"] += len(frame)
        self._interrupt(qi, at)

    # -- transmit -------------------------------------------------------------------
    def _transmit(self, qi: int, at: int) -> None:
        q = self.q[qi]
        if not q.enabled:
            return
        prod = self._get_idx(q, TX, False, at)
        comp_cons = self._get_idx(q, COMP, True, at)
        if prod is None or comp_cons is None:
            self.c["tx_dma_blocked"] += 1
            return
        if (prod - q.tx_cons) & M32 > q.size:
            self.c["tx_bad_ring"] += 1
            return
        while q.tx_cons != prod:
            if (q.comp_prod - comp_cons) & M32 >= q.size:
                self.c["tx_comp_full"] += 1     # the owner is not reaping: wait for the next doorbell
                break
            d = self._get_desc(q, TX, q.tx_cons, at)
            q.tx_cons = (q.tx_cons + 1) & M32
            if d is None:
                self.c["tx_dma_blocked"] += 1
                continue
            addr, n = d
            if not MIN_FRAME <= n <= MAX_FRAME:
                self.c["tx_bad_len"] += 1
            else:
                data = self.iommu.dma_read(q.stream, (q.umem + addr) & M64, n, at)
                if data is None:
                    self.c["tx_dma_blocked"] += 1
                elif self.link_up:
                    self._send(data, at)
            self._put_desc(q, COMP, q.comp_prod, addr, 0, at)
            q.comp_prod = (q.comp_prod + 1) & M32
        self._put_idx(q, TX, True, q.tx_cons, at)
        self._put_idx(q, COMP, False, q.comp_prod, at)

    def _send(self, frame: bytes, at: int) -> None:
        start = max(at, self.tx_free)
        self.tx_free = start + self.link.wire_cycles(len(frame))
        self._record(start, "out", frame)
        self.c["tx_frames"] += 1
        self.c["tx_bytes"] += len(frame)
        if self.wire is not None:
            self.wire.from_nic(self.tx_free + self.link.latency_cycles, frame)

    # -- capture and report -----------------------------------------------------------
    def _record(self, at: int, direction: str, frame: bytes) -> None:
        self.frames.append((at, len(self.frames), direction, frame))

    def capture(self) -> list[tuple[int, str, bytes]]:
        """Every frame that crossed the link: (time in microseconds, "in"/"out", bytes),
        in time order (ties in the order they happened)."""
        us = self.link.cycles_per_us
        return [(t // us, d, f) for t, _, d, f in sorted(self.frames)]

    def write_pcap(self, path) -> int:
        """Write the capture as a classic pcap file; returns the number of frames."""
        from keusim.net.pcap import PcapWriter

        cap = self.capture()
        with PcapWriter(path) as w:
            for t, _d, f in cap:
                w.write(t, f)
        return len(cap)

    def report(self) -> dict:
        d = {"link": {"rate_bps": self.link.rate_bps, "latency_ns": self.link.latency_ns,
                      "core_hz": self.link.core_hz, "up": self.link_up},
             "counters": dict(self.c),
             "queues": [{"queue": i, "enabled": q.enabled, "stream": q.stream,
                         "rx_dropped": q.rx_dropped} for i, q in enumerate(self.q)],
             "iommu": self.iommu.report()}
        if self.wire is not None:
            d["wire"] = self.wire.report()
        return d
