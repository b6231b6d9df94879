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


@pytest.fixture(params=ARCHES)
def arch(request) -> str:
    return request.param
