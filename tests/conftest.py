"""Shared fixtures: scenario runs are cached per session (a boot costs ~0.5 s)."""

from __future__ import annotations

import functools

import pytest

from keusim.system import run

ARCHES = ("x86_64", "arm64")


@functools.cache
def cached_run(name: str, arch: str, **kw):
    return run(name, arch=arch, **kw)


@pytest.fixture(params=ARCHES)
def arch(request) -> str:
    return request.param
