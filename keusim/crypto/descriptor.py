"""Notification descriptors and their tags: the Python mirror of ``kernel/include/descriptor.h``.

A descriptor is 32 bytes in memory (``struct notify_desc``, the notify system call's
argument)::

    offset  0  channel  u32      offset 16  seq  u64
    offset  4  offset   u32      offset 24  tag  u64
    offset  8  length   u32
    offset 12  flags    u32

Its tag is SipHash-2-4 under the channel's 128-bit key over a canonical 24-byte
encoding of every field but ``tag``: channel, offset, length and flags as u32
little-endian, then seq as u64 little-endian. See ``docs/notify.md``.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, replace

from keusim.crypto.siphash import siphash24

ENC_LEN = 24
"""Length of the canonical encoding that is tagged (``DESC_ENC_LEN``)."""

SIZE = 32
"""``sizeof(struct notify_desc)``."""

_ENC = struct.Struct("<IIIIQ")
_MEM = struct.Struct("<IIIIQQ")
assert _ENC.size == ENC_LEN and _MEM.size == SIZE

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class NotifyDesc:
    """One notification descriptor; ``tag`` is 0 until :func:`sign` sets it."""

    channel: int
    offset: int
    length: int
    flags: int = 0
    seq: int = 0
    tag: int = 0

    def __post_init__(self) -> None:
        for name, hi in (("channel", _U32), ("offset", _U32), ("length", _U32),
                         ("flags", _U32), ("seq", _U64), ("tag", _U64)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
                bits = 32 if hi == _U32 else 64
                raise ValueError(f"notify descriptor field {name} must be a u{bits}, got {v!r}")


def encode(desc: NotifyDesc) -> bytes:
    """The canonical 24-byte encoding that the tag covers (``desc_encode``)."""
    return _ENC.pack(desc.channel, desc.offset, desc.length, desc.flags, desc.seq)


def tag(key: bytes, desc: NotifyDesc) -> int:
    """The tag ``desc`` should carry under the 16-byte channel ``key`` (``desc_tag``).

    ``desc.tag`` is ignored.
    """
    return siphash24(key, encode(desc))


def sign(key: bytes, desc: NotifyDesc) -> NotifyDesc:
    """``desc`` with its ``tag`` field set to :func:`tag` under ``key``."""
    return replace(desc, tag=tag(key, desc))


def tag_ok(key: bytes, desc: NotifyDesc) -> bool:
    """True if ``desc.tag`` is right under ``key`` (``desc_tag_ok``); compares in constant time."""
    return hmac.compare_digest(tag(key, desc).to_bytes(8, "little"), desc.tag.to_bytes(8, "little"))


def pack(desc: NotifyDesc) -> bytes:
    """The 32-byte memory image of ``struct notify_desc`` (both targets are little-endian)."""
    return _MEM.pack(desc.channel, desc.offset, desc.length, desc.flags, desc.seq, desc.tag)


def unpack(data: bytes) -> NotifyDesc:
    """The descriptor whose memory image is the 32 bytes ``data``."""
    if len(data) != SIZE:
        raise ValueError(f"a notify descriptor is {SIZE} bytes, got {len(data)}")
    return NotifyDesc(*_MEM.unpack(data))
