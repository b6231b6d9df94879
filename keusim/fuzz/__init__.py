"""The fuzzer: seeded adversarial processes against the machine and the kernel.

    >>> from keusim.fuzz import fuzz
    >>> s = fuzz(runs=20, seed=1)
    >>> s.ok, s.runs_per_second, s.by_invariant

An attacker image built once per architecture interprets an attack program (system
calls with generated arguments, ring-index and descriptor forgeries, instruction
snippets) patched into its ELF file before boot; it runs beside honest processes
that move and check data over rings. Every run is checked for the invariants in
:data:`keusim.fuzz.target.INVARIANTS`; failures are minimized (delta debugging)
and saved as regression cases. docs/fuzzing.md has the design and the figures.
"""

from keusim.fuzz.campaign import Summary, fuzz, load_case, replay_case, run_checked
from keusim.fuzz.gen import generate, run_seed
from keusim.fuzz.minimize import ddmin, minimize_program
from keusim.fuzz.program import Op, Program
from keusim.fuzz.target import INVARIANTS, Violation, build_target, check, run_program

__all__ = ["INVARIANTS", "Op", "Program", "Summary", "Violation", "build_target", "check",
           "ddmin", "fuzz", "generate", "load_case", "minimize_program", "replay_case",
           "run_checked", "run_program", "run_seed"]
