"""Rounding of model numbers to whole cycles, one rule everywhere.

Profiles and calibration round a cycle count half up: Python's ``round`` rounds half to
even, which would make 12.5 and 13.5 cycles both round to an even number and a profile's
costs depend on that parity.
"""

from __future__ import annotations

import math


def round_half_up(x: float) -> int:
    """``x`` to the nearest integer, halves away from minus infinity (2.5 -> 3, -2.5 -> -2).
    The 1e-9 absorbs float noise such as 0.1 + 0.2, so a sum that is a half in exact
    arithmetic rounds up too."""
    return int(math.floor(x + 0.5 + 1e-9))


__all__ = ["round_half_up"]
