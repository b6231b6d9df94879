"""Memory ordering of the ring's publish and consume paths (keusim.proof.memmodel).

ring_invariants.py proves the ring correct for every interleaving of the two sides'
steps, which assumes each side's accesses become visible in program order. Whether
they do is up to the memory model. The ring's two hand-offs are the classic shapes:

* **publish** (MP): the producer stores the payload, then head; the consumer loads head,
  then the payload. A stale payload is ``head seen /\\ payload not seen``.
* **slot reuse** (LB): the consumer reads the payload, then stores tail; the producer
  loads tail, then overwrites the payload. A torn message is ``the consumer's read saw
  the overwrite /\\ the producer saw the slot freed``.

The paper says the indices need "no sync" and are "plain integers". Plain accesses are
safe on x86-TSO but not on ARMv8, where Z3 finds the reordering. The store-release/
load-acquire pairs that guests/lib/ring.c uses (ring.c:25-37) close both holes, and so
do DMB fences. ``ordering.ring_c.*`` runs ring.c's own sequence (header and payload
stores, store_release(head); load_acquire(head), header and payload loads,
store_release(tail); load_acquire(tail), overwrite).
"""

from __future__ import annotations

import sys

from keusim.proof import memmodel
from keusim.proof.prove import Outcome, Proof, run_as_script

PUBLISH = {
    "plain": """
        litmus ring-publish (plain indices, as in the paper)
        P0: st payload 1 ; st head 1
        P1: ld r0 head ; ld r1 payload
        exists 1:r0=1 /\\ 1:r1=0
    """,
    "rel-acq": """
        litmus ring-publish (store_release(head) / load_acquire(head), ring.c:132,150)
        P0: st payload 1 ; st.rel head 1
        P1: ld.acq r0 head ; ld r1 payload
        exists 1:r0=1 /\\ 1:r1=0
    """,
    "dmb": """
        litmus ring-publish (dmb ishst before the head store, dmb ishld after the head load)
        P0: st payload 1 ; fence st ; st head 1
        P1: ld r0 head ; fence ld ; ld r1 payload
        exists 1:r0=1 /\\ 1:r1=0
    """,
}

REUSE = {
    "plain": """
        litmus ring-slot-reuse (plain indices)
        P0: ld r0 payload ; st tail 1
        P1: ld r1 tail ; st payload 2
        exists 0:r0=2 /\\ 1:r1=1
    """,
    "rel-acq": """
        litmus ring-slot-reuse (store_release(tail) / load_acquire(tail), ring.c:184,88)
        P0: ld r0 payload ; st.rel tail 1
        P1: ld.acq r1 tail ; st payload 2
        exists 0:r0=2 /\\ 1:r1=1
    """,
}

# ring.c's sequence, both hand-offs at once. Each side's later accesses are control
# dependent on the index it loaded (ring_reserve/ring_peek return EAGAIN otherwise).
RING_C = {
    "as compiled": """
        litmus ring.c (release/acquire as in guests/lib/ring.c)
        P0: st payload 1 ; st hdr 1 ; st.rel head 1 ; ld.acq r0 tail ; st payload 2 ctrl(r0)
        P1: ld.acq r0 head ; ld r1 hdr ctrl(r0) ; ld r2 payload ; st.rel tail 1
        exists (1:r0=1 /\\ 1:r1=0) \\/ (1:r0=1 /\\ 1:r2=0) \\/ (1:r0=1 /\\ 0:r0=1 /\\ 1:r2=2)
    """,
    "plain": """
        litmus ring.c with plain index accesses
        P0: st payload 1 ; st hdr 1 ; st head 1 ; ld r0 tail ; st payload 2 ctrl(r0)
        P1: ld r0 head ; ld r1 hdr ctrl(r0) ; ld r2 payload ; st tail 1
        exists (1:r0=1 /\\ 1:r1=0) \\/ (1:r0=1 /\\ 1:r2=0) \\/ (1:r0=1 /\\ 0:r0=1 /\\ 1:r2=2)
    """,
}


def forbidden(text: str, model: str) -> Outcome:
    """Proved when the bad outcome is forbidden; a counterexample is the execution."""
    v = memmodel.check(text, model)
    if not v.allowed:
        return Outcome("proved", details=v)
    assert v.witness is not None
    return Outcome("counterexample", v.witness.render(), v)


def _p(name: str, prop: str, text: str, model: str, expected: str = "proved") -> Proof:
    return Proof(name, prop, lambda: forbidden(text, model), expected=expected)


PROOFS = [
    _p("ordering.publish.plain.sc", "plain publish: no stale payload under SC",
       PUBLISH["plain"], "sc"),
    _p("ordering.publish.plain.x86-tso",
       "plain publish: no stale payload on x86-TSO (stores and loads keep their order)",
       PUBLISH["plain"], "x86-tso"),
    _p("ordering.publish.plain.armv8",
       "the paper's 'no sync needed': plain publish on ARMv8 exposes a stale payload",
       PUBLISH["plain"], "armv8", expected="counterexample"),
    _p("ordering.publish.rel-acq.armv8",
       "publish with stlr head / ldar head: no stale payload on ARMv8",
       PUBLISH["rel-acq"], "armv8"),
    _p("ordering.publish.dmb.armv8",
       "publish with dmb ishst / dmb ishld: no stale payload on ARMv8",
       PUBLISH["dmb"], "armv8"),
    _p("ordering.reuse.plain.x86-tso",
       "plain slot reuse: the consumer never reads the producer's overwrite on x86-TSO",
       REUSE["plain"], "x86-tso"),
    _p("ordering.reuse.plain.armv8",
       "plain slot reuse on ARMv8: the consumer's payload read can see the overwrite",
       REUSE["plain"], "armv8", expected="counterexample"),
    _p("ordering.reuse.rel-acq.armv8",
       "slot reuse with stlr tail / ldar tail: no torn message on ARMv8",
       REUSE["rel-acq"], "armv8"),
    _p("ordering.ring_c.armv8",
       "ring.c's access sequence (release/acquire): neither hand-off breaks on ARMv8",
       RING_C["as compiled"], "armv8"),
    _p("ordering.ring_c.x86-tso",
       "ring.c's access sequence: neither hand-off breaks on x86-TSO",
       RING_C["as compiled"], "x86-tso"),
    _p("ordering.ring_c_plain.armv8",
       "ring.c with plain index accesses breaks on ARMv8",
       RING_C["plain"], "armv8", expected="counterexample"),
]


if __name__ == "__main__":
    sys.exit(run_as_script(PROOFS))
