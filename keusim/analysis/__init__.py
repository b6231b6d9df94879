"""The analysis layer: reading a booted system's execution.

Instruction traces (:mod:`~keusim.analysis.trace`), cycles by process, kernel path and
function (:mod:`~keusim.analysis.attribution`), and the kernel's instructions per verified
notify (:mod:`~keusim.analysis.notifycost`). Each works on a
:class:`keusim.system.BootedSystem`, the one boot path that ``keusim.run`` uses.
"""
