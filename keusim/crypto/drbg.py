"""The deterministic generator that derives channel keys: SipHash-2-4 in counter mode.

The kernel (``kernel/lib/drbg.c``) and this module compute the same byte stream::

    seed key  S    16 bytes; a 64-bit manifest seed s expands to
                   u64le(s) || u64le(s ^ SEED_TWEAK)
    block i   B_i  = u64le(siphash24(S, b"keusim-drbg" || u64le(i)))     (8 bytes)
    stream         B_0 || B_1 || B_2 || ...
    key of channel k = stream[16k : 16k + 16] = B_2k || B_2k+1

It exists for reproducibility: the same manifest seed gives the same channel keys, byte
for byte, inside the emulated kernel and here, so a test or a notebook can compute the
tag a well-behaved sender must produce. It is **not** a standard cryptographic DRBG
(no NIST SP 800-90A construction, no entropy input, no reseeding, no backtracking
resistance): every key is exactly as secret as the seed, and the default seed is public.
"""

from __future__ import annotations

from keusim.crypto.siphash import KEY_LEN, siphash24

LABEL = b"keusim-drbg"
"""Domain-separation prefix of every counter block (11 bytes)."""

BLOCK_LEN = 8
SEED_LEN = 16
CHANNEL_KEY_LEN = KEY_LEN

DEFAULT_SEED = 0x00006B657573696D
"""The seed of a manifest that names none: ASCII "keusim". Mirrors ``DRBG_DEFAULT_SEED``."""

SEED_TWEAK = 0x9E3779B97F4A7C15
"""Whitening for the upper half of an expanded 64-bit seed: 2**64 / golden ratio.
Mirrors ``DRBG_SEED_TWEAK``."""

_U64 = 1 << 64


def seed_key(seed: int | bytes) -> bytes:
    """The 16-byte seed key for a manifest seed.

    Args:
        seed: a 64-bit unsigned integer, expanded to ``u64le(seed) || u64le(seed ^
            SEED_TWEAK)`` (what ``drbg_seed64`` does), or 16 bytes used as they are
            (a full 128-bit seed).

    Raises:
        ValueError: an integer outside 0..2**64-1, or bytes that are not 16 long.
    """
    if isinstance(seed, (bytes, bytearray, memoryview)):
        raw = bytes(seed)
        if len(raw) != SEED_LEN:
            raise ValueError(f"a byte seed must be {SEED_LEN} bytes, got {len(raw)}")
        return raw
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"a seed is an int in 0..2**64-1 or {SEED_LEN} bytes, got {seed!r}")
    if not 0 <= seed < _U64:
        raise ValueError(
            f"an integer seed must fit in 64 bits (0..2**64-1), got {seed}; "
            f"give a 128-bit seed as {SEED_LEN} bytes"
        )
    return seed.to_bytes(8, "little") + (seed ^ SEED_TWEAK).to_bytes(8, "little")


def block(key: bytes, index: int) -> bytes:
    """Block ``index`` of the stream under the 16-byte seed key ``key`` (8 bytes)."""
    if not 0 <= index < _U64:
        raise ValueError(f"a block index is in 0..2**64-1, got {index}")
    return siphash24(key, LABEL + index.to_bytes(8, "little")).to_bytes(8, "little")


class Drbg:
    """The stream as a reader, mirroring ``struct drbg``: successive reads continue it.

    >>> g = Drbg(seed_key(DEFAULT_SEED))
    >>> g.read(16) == channel_key(DEFAULT_SEED, 0)
    True
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != SEED_LEN:
            raise ValueError(f"a seed key is {SEED_LEN} bytes, got {len(key)}; see seed_key()")
        self._key = bytes(key)
        self._counter = 0
        self._buf = b""

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream (what ``drbg_bytes(g, out, n)`` writes)."""
        if n < 0:
            raise ValueError(f"cannot read a negative number of bytes ({n})")
        out = bytearray(self._buf[:n])
        self._buf = self._buf[n:]
        while len(out) < n:
            b = block(self._key, self._counter % _U64)
            self._counter += 1
            take = n - len(out)
            out += b[:take]
            self._buf = b[take:]
        return bytes(out)


def stream(seed: int | bytes, n: int) -> bytes:
    """The first ``n`` bytes of the stream for a manifest seed."""
    return Drbg(seed_key(seed)).read(n)


def channel_key(seed: int | bytes, channel_index: int) -> bytes:
    """The 16-byte key the kernel derives for channel ``channel_index`` (from 0).

    It is bytes ``[16 * channel_index, 16 * channel_index + 16)`` of the stream seeded
    by ``seed``, as ``drbg_channel_key`` computes it; ``seed`` is what :func:`seed_key`
    accepts.
    """
    if not 0 <= channel_index < 1 << 63:
        raise ValueError(f"a channel index is in 0..2**63-1, got {channel_index}")
    key = seed_key(seed)
    return block(key, 2 * channel_index) + block(key, 2 * channel_index + 1)
