"""Shared fixtures: scenario runs are cached per session (a boot costs ~0.5 s)."""

from __future__ import annotations

import functools
import os
import tempfile

import pytest

# Tests price with the packaged profiles: a `host` that `keusim calibrate` wrote into the
# user's profile folder (which shadows the packaged one) describes that user's machine,
# and the suite must give the same results on every host. An empty folder in its place.
os.environ["KEUSIM_PROFILES"] = tempfile.mkdtemp(prefix="keusim-test-profiles-")

from keusim.system import run  # noqa: E402

ARCHES = ("x86_64", "arm64")


@functools.cache
def cached_run(name: str, arch: str, **kw):
    return run(name, arch=arch, **kw)


def run_state(b) -> tuple:
    """What a finished BootedSystem leaves: the report JSON, and per core what feeds the
    attribution (clock, idle time, coherence cycles, instructions, blocks, system calls,
    blocks and their execution counts). Equal between two runs: byte-identical results."""
    cores = tuple((c.clock, c.idle, c.native.k.coh_cycles, c.native.k.insns,
                   c.native.k.nblocks, c.native.k.syscalls, tuple(sorted(c.native.blocks())))
                  for c in b.machine.cores)
    return b.report().to_json(), cores


@pytest.fixture(params=ARCHES)
def arch(request) -> str:
    return request.param
