"""Paper reproductions: one module per table or claim of the seeds (docs/experiments.md).

    paper_table  the KeuOS benchmark table (docs/paper.md)
    additivity   trap + copy + lock = 1,400 cycles
    tag_check    the ~15-cycle SipHash tag check "using the hardware CRC extension"
    coherence    "zero coherence traffic for the index variables"
    claim_56ns   seed 000's 56 ns cross-language IPC
    run_all      all of them, timed

Each module has ``NAME``, ``run(quick=False, out=None, workers=None, native=True) ->
Experiment`` and a ``main`` for ``python experiments/<name>.py [--quick]``; a new module
with those is found by ``keusim reproduce`` and ``run_all`` (keusim.workflow.reproduce).
"""
