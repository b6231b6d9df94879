"""The proof layer: Z3 proofs and the axiomatic memory-model engine.

:mod:`~keusim.proof.prove` finds and runs the proofs in ``proofs/``;
:mod:`~keusim.proof.memmodel` checks litmus tests on x86-TSO and ARMv8.
"""
