"""Classic libpcap capture files (LINKTYPE_ETHERNET), written and read.

The format is the one tcpdump and Wireshark open by default: a 24-byte global header
(magic 0xa1b2c3d4, version 2.4, snaplen, link type 1 = Ethernet) followed by one
16-byte record header (seconds, microseconds, captured length, original length) per
packet. The reader also takes the byte-swapped and the nanosecond-resolution magic.
Timestamps are integers in microseconds, so a capture of a model-time run is
byte-identical on every run.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from keusim.net import NetError

LINKTYPE_ETHERNET = 1
MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
SNAPLEN = 65535


@dataclass(frozen=True)
class Packet:
    """One captured frame: time in microseconds since the epoch of the capture."""

    time_us: int
    data: bytes
    orig_len: int


class PcapWriter:
    """Append frames to a new pcap file. Use as a context manager or call close()."""

    def __init__(self, path: str | Path, snaplen: int = SNAPLEN) -> None:
        self.path = Path(path)
        self.snaplen = snaplen
        try:
            self._f: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise NetError(f"{self.path}: cannot write the capture ({e.strerror}); "
                           "check the folder exists and is writable") from e
        self._f.write(struct.pack("<IHHiIII", MAGIC_US, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, time_us: int, frame: bytes) -> None:
        """Record ``frame`` at ``time_us`` (non-negative integer microseconds)."""
        if time_us < 0:
            raise NetError(f"pcap time {time_us} us is negative; captures start at 0")
        data = frame[: self.snaplen]
        self._f.write(struct.pack("<IIII", time_us // 1_000_000, time_us % 1_000_000,
                                  len(data), len(frame)))
        self._f.write(data)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read(path: str | Path) -> Iterator[Packet]:
    """The packets of a pcap file, in order.

    Raises:
        NetError: not a classic pcap file, not Ethernet, or cut short.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise NetError(f"{p}: cannot read the capture ({e.strerror})") from e
    if len(raw) < 24:
        raise NetError(f"{p}: {len(raw)} bytes is too short for a pcap header (24 bytes)")
    for endian in "<>":
        magic = struct.unpack_from(endian + "I", raw)[0]
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise NetError(f"{p}: not a classic pcap file (magic {raw[:4].hex()}); "
                       "pcapng files must be converted first (editcap -F pcap)")
    scale = 1 if magic == MAGIC_US else 1000
    linktype = struct.unpack_from(endian + "I", raw, 20)[0] & 0x0FFFFFFF
    if linktype != LINKTYPE_ETHERNET:
        raise NetError(f"{p}: link type {linktype}, but keusim reads only Ethernet (1)")
    off = 24
    n = 0
    while off < len(raw):
        if off + 16 > len(raw):
            raise NetError(f"{p}: record {n} header is cut short at byte {off}")
        sec, frac, incl, orig = struct.unpack_from(endian + "IIII", raw, off)
        off += 16
        if off + incl > len(raw):
            raise NetError(f"{p}: record {n} claims {incl} bytes but the file ends first")
        yield Packet(sec * 1_000_000 + frac // scale, raw[off:off + incl], orig)
        off += incl
        n += 1
