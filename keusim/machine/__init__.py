"""The machine layer: what silicon does.

RAM, cores (one Unicorn instance each), the scheduler and virtual time
(:mod:`~keusim.machine.machine`), the platform device (:mod:`~keusim.machine.devices`),
the boot loader (:mod:`~keusim.machine.loader`), page-table walks
(:mod:`~keusim.machine.pagetable`) and the native fast path that keeps the clock and
the coherence state in C (:mod:`~keusim.machine.fastpath`, ``fastpath.c``). Nothing
here decides kernel policy; architecture specifics live in :mod:`keusim.arch`.
"""

from keusim.machine.machine import INF, RAM, Core, Machine, MachineResult

__all__ = ["INF", "RAM", "Core", "Machine", "MachineResult"]
