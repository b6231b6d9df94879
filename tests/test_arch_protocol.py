"""Both architecture backends implement keusim.arch.Backend, signatures included."""

from __future__ import annotations

import inspect
import typing

import pytest

from keusim import arch as archmod
from keusim.arch import ARCH_NAMES, Backend


def _members(proto) -> tuple[set[str], set[str]]:
    """(data attributes, methods) declared by a Protocol class itself."""
    attrs = set(typing.get_type_hints(proto))
    methods = {n for n, v in vars(proto).items() if inspect.isfunction(v) and not n.startswith("_")}
    return attrs, methods


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_backend_implements_the_protocol(name):
    b = archmod.get(name)
    assert isinstance(b, Backend)
    assert b.name == name
    attrs, methods = _members(Backend)
    for a in attrs:
        assert hasattr(b, a), f"{name} backend lacks attribute {a}"
    for m in methods:
        want = inspect.signature(getattr(Backend, m))
        got = inspect.signature(getattr(type(b), m))
        assert list(got.parameters) == list(want.parameters), \
            f"{name}.{m}{got} does not match Backend.{m}{want}"


def test_protocol_catches_a_backend_that_lacks_a_method():
    class Half:
        name = "half"

    assert not isinstance(Half(), Backend)
