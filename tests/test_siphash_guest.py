"""SipHash-2-4 inside the emulator (scenario `siphash-vectors`) against keusim.crypto.

- The guest's C SipHash (kernel/lib/siphash.c built with the guest flags) computes
  the 64 reference vectors, also at misaligned key/message addresses.
- A signer computes descriptor tags with the same C and the kernel verifies them
  with its own build of it (kernel flags): the run accepts every notification only
  if the kernel agrees, and the printed tags must equal the Python mirror's.
Both on x86_64 and arm64 (arm64 is skipped, with the reason, if it does not boot).
"""

from __future__ import annotations

import functools
import re

from keusim.crypto import descriptor
from keusim.crypto.drbg import channel_key
from keusim.crypto.siphash import REFERENCE_VECTORS
from keusim.manifest import resolve
from keusim.system import run


@functools.cache
def vectors_run(arch: str):
    return run("siphash-vectors", arch=arch)


def test_scenario_runs_clean(arch):
    r = vectors_run(arch)
    assert r.ok, r.summary()
    assert all(p.exit_code == 0 for p in r.processes), r.summary()


def test_guest_computes_the_64_reference_vectors(arch):
    con = vectors_run(arch).process("vectors").console
    got = {int(n): int(h, 16) for n, h in re.findall(r"^sip (\d+) ([0-9a-f]+)$", con, re.M)}
    assert sorted(got) == list(range(64)), con
    for i, v in enumerate(REFERENCE_VECTORS):
        assert got[i] == int.from_bytes(v, "little"), f"vector {i} (message length {i})"
    assert "misaligned-mismatches 0\n" in con


def test_kernel_verifies_tags_that_match_python(arch):
    r = vectors_run(arch)
    key = channel_key(resolve("siphash-vectors").seed, 0)
    rows = re.findall(r"^tag (\d+) (\d+) (\d+) (\d+) ([0-9a-f]+)$",
                      r.process("signer").console, re.M)
    ntags = r.params["ntags"]
    assert len(rows) == ntags
    for ch, off, length, seq, tag in rows:
        d = descriptor.NotifyDesc(int(ch), int(off), int(length), 0, int(seq))
        assert int(tag, 16) == descriptor.tag(key, d), d
    # The kernel recomputed every tag with its own SipHash and accepted them all.
    assert r.channel(0).notifications == {"accepted": ntags, "rejected": {}}
    assert r.process("sink").exit_code == 0
