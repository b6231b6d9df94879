"""The kernel's ABI as its C headers define it, read by Python.

The C headers in ``kernel/include`` and ``guests/include`` are the one source of every
number the kernel, the guests and the machine must agree on (memory layout, limits,
event-log record types, fault kinds, statistics keys). Python reads them here instead of
keeping a copy; where a Python module still spells a constant (for speed or clarity),
``tests/test_abi.py`` checks it against these values, so a change on one side fails the
suite until the other follows.

    >>> from keusim import abi
    >>> hex(abi.define("memlayout.h", "CHAN_VA_BASE"))
    '0x20000000'
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from keusim.errors import KeusimError
from keusim.toolchain import ROOT

INCLUDE_DIRS = (ROOT / "kernel" / "include", ROOT / "guests" / "include",
                ROOT / "guests" / "include" / "keusim")

_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)\s+(.+?)\s*$")
_ENUM = re.compile(r"enum\s*(\w*)\s*\{(.*?)\}", re.S)
_SUFFIX = re.compile(r"\b(0[xX][0-9A-Fa-f]+|\d+)(?:[uU][lL]{0,2}|[lL]{1,2}[uU]?)\b")
_CAST = re.compile(r"\(\s*(?:u?int(?:8|16|32|64)_t|unsigned(?:\s+long)*|long)\s*\)")
_SAFE = re.compile(r"^[\s\w()+\-*/<>|&~^]*$")


class AbiError(KeusimError):
    """A header or a constant that cannot be read as an integer."""


def _header(name: str) -> Path:
    for d in INCLUDE_DIRS:
        p = d / name
        if p.is_file():
            return p
    raise AbiError(f"header {name!r} not found in {', '.join(str(d) for d in INCLUDE_DIRS)}")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _eval(expr: str, env: dict[str, int], where: str) -> int | None:
    """An integer C constant expression, or None when it is not one (a string, a call)."""
    e = _CAST.sub("", _SUFFIX.sub(r"\1", expr.strip()))
    if not _SAFE.match(e):
        return None
    try:
        v = eval(e, {"__builtins__": {}}, dict(env))   # noqa: S307 - checked charset above
    except (NameError, SyntaxError, TypeError, ZeroDivisionError):
        return None
    if not isinstance(v, int):
        raise AbiError(f"{where}: {expr!r} is not an integer")
    return v


@cache
def defines(header: str) -> dict[str, int]:
    """Every object-like ``#define NAME <integer expression>`` of a header, in order.

    Names defined earlier in the same header (or in headers it is read after) may appear in
    later expressions; function-like macros and non-integer ones are skipped.
    """
    path = _header(header)
    out: dict[str, int] = {}
    for line in _strip_comments(path.read_text()).splitlines():
        m = _DEFINE.match(line)
        if not m or "(" in m.group(1):
            continue
        name, expr = m.groups()
        if line.split(name, 1)[1].startswith("("):    # function-like: NAME(args)
            continue
        v = _eval(expr, out, f"{path}: {name}")
        if v is not None:
            out[name] = v
    return out


@cache
def enums(header: str) -> dict[str, int]:
    """Every enumerator of every ``enum`` in a header (implicit values counted as C does)."""
    path = _header(header)
    out: dict[str, int] = {}
    for m in _ENUM.finditer(_strip_comments(path.read_text())):
        nxt = 0
        for item in m.group(2).split(","):
            item = item.strip()
            if not item:
                continue
            name, _, expr = item.partition("=")
            name = name.strip()
            if expr:
                v = _eval(expr, out, f"{path}: {name}")
                if v is None:
                    raise AbiError(f"{path}: enumerator {name} = {expr.strip()!r} is not an "
                                   "integer constant")
                nxt = v
            out[name] = nxt
            nxt += 1
    return out


def define(header: str, name: str) -> int:
    """One ``#define`` of a header; AbiError when it is missing."""
    d = defines(header)
    if name not in d:
        raise AbiError(f"{_header(header)}: no integer #define {name}")
    return d[name]


def prefixed(values: dict[str, int], prefix: str) -> dict[str, int]:
    """The entries whose name starts with ``prefix``, prefix removed."""
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}
