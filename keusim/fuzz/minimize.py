"""Delta debugging (Zeller and Hildebrandt, "Simplifying and Isolating
Failure-Inducing Input", TSE 2002): the smallest attack program that still
fails the same way, first by whole operations, then by the instructions of each
remaining snippet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

from keusim.fuzz.program import Op, Program

X = TypeVar("X")


def ddmin(items: Sequence[X], fails: Callable[[list[X]], bool]) -> list[X]:
    """A 1-minimal sublist of items for which fails() holds.

    fails(items) must hold on entry. 1-minimal: removing any single element makes
    fails() false. Order is kept. Calls fails() O(n^2) times at worst, O(n log n)
    when one element is the cause.
    """
    cur = list(items)
    n = 2
    while len(cur) >= 2:
        chunk = len(cur) // n
        starts = [i * chunk for i in range(n)]
        subsets = [cur[s:s + chunk] if i < n - 1 else cur[s:] for i, s in enumerate(starts)]
        reduced = False
        for sub in subsets:                                   # try one subset alone
            if fails(sub):
                cur, n, reduced = sub, 2, True
                break
        if not reduced:
            for i in range(n):                                # try each complement
                comp = [x for k, s in enumerate(subsets) if k != i for x in s]
                if fails(comp):
                    cur, n, reduced = comp, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(cur):
                break
            n = min(len(cur), 2 * n)
    return cur


def minimize_program(prog: Program, fails: Callable[[Program], bool]) -> Program:
    """Shrink prog while fails(prog) stays true: operations first, then the
    instructions of each exec snippet."""
    ops = ddmin(list(prog.ops), lambda xs: fails(Program(tuple(xs))))
    if fails(Program(())):
        return Program(())
    for i, o in enumerate(list(ops)):
        if o.kind != "exec" or len(o.code) < 2:
            continue

        def with_code(units: list[bytes], i: int = i, o: Op = o) -> Program:
            new = list(ops)
            new[i] = dataclasses.replace(o, code=tuple(units))
            return Program(tuple(new))

        code = ddmin(list(o.code), lambda us: fails(with_code(us)))
        ops[i] = dataclasses.replace(o, code=tuple(code))
    return Program(tuple(ops))
