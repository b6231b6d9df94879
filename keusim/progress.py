"""One progress bar for every long-running keusim call (native harness, validation, runs).

A tqdm bar on stderr when it is a terminal (or when asked for), else ``None``, so that
callers write ``if bar is not None: bar.update(1)`` and a pipe or a test sees no
escape codes::

    bar = progress_bar(total=12, desc="validate", unit="step", enabled=None)
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it",
                 enabled: bool | None = None, **kw: Any):
    """A tqdm bar on stderr, or None when ``enabled`` is False (None: when stderr is a
    terminal). ``total`` None makes an open-ended counter; ``kw`` goes to tqdm."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, **kw)


__all__ = ["progress_bar"]
