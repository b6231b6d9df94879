"""Block costs: what one execution of a translated block costs in model cycles.

The machine asks once per block (on a miss in the native table) and C charges the
answer on every execution. :class:`FlatCost` is the placeholder used until a
microarchitecture profile is chosen: one cycle per instruction.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlockCost:
    cycles: int
    insns: int


class FlatCost:
    """One cycle per instruction."""

    name = "flat"

    def block(self, insns: list) -> BlockCost:
        return BlockCost(len(insns), len(insns))
