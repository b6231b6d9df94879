"""The native harness: the guests' SPSC ring and Linux IPC baselines measured on the host.

See :mod:`keusim.native.harness`; run ``python -m keusim.native.harness`` for a table.
The names below are loaded on first use, so that running the harness module as a
script does not import it twice.
"""

from __future__ import annotations

__all__ = [
    "BASELINES", "MICRO", "RING_SIZES", "NativeHarnessError", "NativeReport", "NativeResult",
    "build_programs", "format_table", "run_all", "run_baselines", "run_calibration_micro",
    "run_ring", "tsc_hz",
]


def __getattr__(name: str):
    if name in __all__:
        from keusim.native import harness

        return getattr(harness, name)
    raise AttributeError(f"module 'keusim.native' has no attribute {name!r}")
