"""keusim: a research platform for microkernel IPC.

The library API is the product; the CLI, experiments and notebooks are thin layers:

    >>> import keusim
    >>> report = keusim.run("hello", arch="x86_64")
    >>> report.processes[0].console
    'hello from keusim\\n'
"""

from __future__ import annotations

import os as _os
import sys as _sys

from keusim.errors import KeusimError


def _patched_unicorn() -> None:
    """Load keusim's libunicorn (tools/unicorn/build.sh, run by `make setup`) when it
    was built into this environment: translated loads and stores keep the inline TLB path
    and only pages under a memory hook take the slow one (docs/unicorn.md). Results are
    byte-identical with the wheel's library; only host speed differs. An explicit
    LIBUNICORN_PATH wins; KEUSIM_STOCK_UNICORN=1 keeps the wheel's library."""
    if "unicorn" in _sys.modules or _os.environ.get("LIBUNICORN_PATH"):
        return
    if _os.environ.get("KEUSIM_STOCK_UNICORN", "") not in ("", "0"):
        return
    d = _os.path.join(_sys.prefix, "lib", "keusim-unicorn")
    if _os.path.exists(_os.path.join(d, "libunicorn.so.2")):
        _os.environ["LIBUNICORN_PATH"] = d


_patched_unicorn()

__all__ = ["KeusimError", "__version__", "demo", "new_project", "reproduce", "run", "sweep"]
__version__ = "0.1.0"


def run(manifest_or_scenario, **kwargs):
    """Run a manifest path or a built-in scenario name and return a RunReport.

    See :func:`keusim.system.run` for the keyword arguments.
    """
    from keusim.system import run as _run

    return _run(manifest_or_scenario, **kwargs)


def reproduce(names=None, **kwargs):
    """Run paper reproductions (experiments/); see :func:`keusim.workflow.reproduce.reproduce`."""
    from keusim.workflow.reproduce import reproduce as _reproduce

    return _reproduce(names, **kwargs)


def sweep(system, grid=None, **kwargs):
    """Run a parameter sweep; see :func:`keusim.workflow.sweep.sweep`."""
    from keusim.workflow.sweep import sweep as _sweep

    return _sweep(system, grid, **kwargs)


def demo(**kwargs):
    """The paper's headline claims on this host; see :func:`keusim.workflow.demo.demo`."""
    from keusim.workflow.demo import demo as _demo

    return _demo(**kwargs)


def new_project(path):
    """Create a ready-to-run project folder (manifest, two C programs, README, notebook)
    at ``path`` and return its ``system.toml``. See :func:`keusim.template.new_project`."""
    from keusim.template import new_project as _new

    return _new(path)
