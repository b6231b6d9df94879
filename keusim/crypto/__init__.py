"""Cryptography for notifications: SipHash-2-4, descriptor tags, channel-key derivation.

Each module mirrors a kernel file byte for byte, and the tests hold them together:

- :mod:`keusim.crypto.siphash` — ``kernel/lib/siphash.c``
- :mod:`keusim.crypto.drbg` — ``kernel/lib/drbg.c`` (channel keys from the manifest seed)
- :mod:`keusim.crypto.descriptor` — ``kernel/include/descriptor.h``

The formats are documented in ``docs/notify.md``.
"""

from __future__ import annotations

from keusim.crypto.descriptor import NotifyDesc, encode, sign, tag, tag_ok
from keusim.crypto.drbg import DEFAULT_SEED, Drbg, channel_key, seed_key
from keusim.crypto.siphash import siphash24, siphash24_bytes

__all__ = [
    "DEFAULT_SEED",
    "Drbg",
    "NotifyDesc",
    "channel_key",
    "encode",
    "seed_key",
    "sign",
    "siphash24",
    "siphash24_bytes",
    "tag",
    "tag_ok",
]
