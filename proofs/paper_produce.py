"""Z3 counterexamples to the paper's ``produce()`` (seed 003, "No trap", KeuOS).

The pseudo-code, encoded as written. ``head`` and ``tail`` are u16, so every
expression on them is 16-bit modular arithmetic here; ``data.len() <= 0x1000`` fits in
16 bits::

    struct SpscRing { buf: [u8; 4096], head: u16 addr(0x1000), tail: u16 addr(0x2000) }
    fn produce(ring, data) requires(data.len() <= 0x1000) {
        let h = ring.head;
        let wrapped = h + data.len();
        let avail = ring.tail + 0x1000 - h;
        requires(avail >= data.len());
        memcpy(ring.buf[h..wrapped], data);
        ring.head = wrapped & 0xFFF;
    }

The paper shows no consumer. We give it the only reading its state allows: the consumer
reads ``buf[tail..]`` and stores ``tail = (tail + n) & 0xFFF``; ``used`` is the ghost
count of queued bytes. An honest state is then ``tail <= 0xFFF``, ``used <= 0x1000`` and
``head == (tail + used) & 0xFFF``. Each proof below states a property that the design
needs. The expected outcome is a counterexample, printed as a before/after state. The
tests assert on those concrete states.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import z3

from keusim.proof.prove import Outcome, Proof, run_as_script, solve

BUF = 0x1000          # 4 KiB buffer at 0x0000..0x0FFF
HEAD_ADDR = 0x1000    # head: u16, immediately after the buffer
TAIL_ADDR = 0x2000


def u16(x: int) -> z3.BitVecRef:
    return z3.BitVecVal(x, 16)


@dataclass(frozen=True)
class Step:
    """One call of produce(): inputs, intermediate values and the new head."""

    head: z3.BitVecRef
    tail: z3.BitVecRef
    used: z3.BitVecRef        # ghost: bytes queued before the call
    length: z3.BitVecRef
    wrapped: z3.BitVecRef
    avail: z3.BitVecRef
    passes: z3.BoolRef        # both requires() hold
    new_head: z3.BitVecRef


def step() -> Step:
    head, tail, used, length = (z3.BitVec(n, 16) for n in ("head", "tail", "used", "len"))
    h = head
    wrapped = h + length
    avail = tail + u16(0x1000) - h
    passes = z3.And(z3.ULE(length, u16(0x1000)), z3.UGE(avail, length))
    return Step(head, tail, used, length, wrapped, avail, passes, wrapped & u16(0xFFF))


def honest(s: Step) -> list[z3.BoolRef]:
    """A reachable state: indices masked, used <= 4096, head == (tail + used) & 0xFFF."""
    return [z3.ULE(s.tail, u16(0xFFF)), z3.ULE(s.used, u16(0x1000)),
            s.head == (s.tail + s.used) & u16(0xFFF)]


def _show(s: Step, **extra) -> dict:
    return {"head before": s.head, "tail": s.tail, "bytes queued before": s.used,
            "len": s.length, "avail": s.avail, "head after": s.new_head, **extra}


def full_reads_empty() -> Outcome:
    """Property: after a produce the consumer's view (head - tail) & 0xFFF equals the bytes
    queued. Fails: a write that fills the ring makes head == tail, which reads as empty."""
    s = step()
    after = s.used + s.length
    hyps = honest(s) + [
        z3.ULT(s.used, u16(0x1000)),          # before, the ring is not full: unambiguous
        z3.UGT(s.length, u16(0)),             # a real write
        s.passes, z3.ULE(s.wrapped, u16(BUF)),  # isolate from the other bugs: in bounds,
        z3.ULE(after, u16(0x1000))]             # and nothing overwritten
    goal = (s.new_head - s.tail) & u16(0xFFF) == after
    return solve(hyps, goal, _show(s, **{"bytes queued after": after}),
                 explain=lambda v: (
                     f"full/empty ambiguity: after writing {v['len']:#x} bytes head == tail "
                     f"== {v['tail']:#x}; {v['bytes queued after']:#x} bytes are queued but "
                     "the ring reads as empty"))


def copy_past_buffer() -> Outcome:
    """Property: memcpy(buf[h..wrapped]) stays inside the 4 KiB buffer. Fails when
    h + len > 0x1000: the copy runs over head (at 0x1000) and beyond."""
    s = step()
    hyps = honest(s) + [s.passes]
    goal = z3.ULE(s.wrapped, u16(BUF))
    return solve(hyps, goal, _show(s, **{"copy end": s.wrapped}),
                 explain=lambda v: (
                     f"memcpy(buf[{v['head before']:#x}..{v['copy end']:#x}]) writes "
                     f"{v['copy end'] - BUF:#x} bytes past the buffer, starting with head "
                     f"at {HEAD_ADDR:#x}"))


def overwrites_unconsumed() -> Outcome:
    """Property: the copy never overwrites a queued byte. Fails when head has wrapped
    below tail: avail = tail + 0x1000 - h then exceeds 0x1000 - used."""
    s = step()
    i, q = z3.BitVec("i", 16), z3.BitVec("q", 16)
    hyps = honest(s) + [s.passes, z3.ULE(s.wrapped, u16(BUF))]
    # write index h + i (i < len) equals queued position (tail + q) & 0xFFF (q < used)
    clash = z3.And(z3.ULT(i, s.length), z3.ULT(q, s.used),
                   s.head + i == (s.tail + q) & u16(0xFFF))
    return solve(hyps, z3.Not(clash),
                 _show(s, **{"free bytes": u16(0x1000) - s.used,
                             "overwritten index": s.head + i}),
                 explain=lambda v: (
                     f"avail = {v['avail']:#x} but only {v['free bytes']:#x} bytes are free; "
                     f"the copy overwrites unconsumed buf[{v['overwritten index']:#x}]"))


def avail_overflows() -> Outcome:
    """Property: ``tail + 0x1000 - h`` computes the true value in u16, for every tail the
    u16 field can hold. Fails for tail >= 0xF000 (a free-running or hostile tail): the
    sum wraps and requires(avail >= len) passes on a full ring."""
    s = step()
    exact = z3.ZeroExt(16, s.tail) + 0x1000 - z3.ZeroExt(16, s.head)
    hyps = [z3.ULE(s.head, u16(0xFFF))]           # the producer's own head is masked
    goal = z3.ZeroExt(16, s.avail) == exact
    return solve(hyps, goal, {"head before": s.head, "tail": s.tail, "avail (u16)": s.avail,
                              "avail (exact)": exact},
                 explain=lambda v: (
                     f"u16 overflow: tail {v['tail']:#x} + 0x1000 - head {v['head before']:#x} "
                     f"is {v['avail (exact)']:#x}, but u16 arithmetic gives "
                     f"{v['avail (u16)']:#x}"))


def head_in_kernel_memory() -> Outcome:
    """Property (the paper's two claims together): produce() advances head with a plain
    user-mode store, *and* head lives in kernel memory, so a sender cannot set it to
    an arbitrary value. A page either admits user stores or it does not. If it does
    (needed for the store), a malicious sender stores any value; Z3 gives one that
    produce() could never write."""
    user_writable = z3.Bool("head page user-writable")
    v = z3.BitVec("value stored by the sender", 16)
    store_ok = lambda val: user_writable  # noqa: E731  (the MMU checks the page, not the value)
    hyps = [store_ok(u16(0))]                       # produce()'s own store must succeed
    goal = z3.Not(z3.And(store_ok(v), z3.UGT(v, u16(0xFFF))))
    return solve(hyps, goal, {"head page user-writable": user_writable,
                              "value stored by the sender": v},
                 explain=lambda m: (
                     "contradiction: produce() needs the head page user-writable, so a "
                     f"sender can store head = {m['value stored by the sender']:#x} "
                     "(> 0xFFF, never produced), and a consumer reading buf[tail..head] "
                     "leaves the buffer"))


PROOFS = [
    Proof("paper.full_reads_empty",
          "after produce, (head - tail) & 0xFFF equals the bytes queued (full vs empty)",
          full_reads_empty, expected="counterexample"),
    Proof("paper.copy_past_buffer",
          "memcpy(buf[h..h+len]) stays inside the 4 KiB buffer",
          copy_past_buffer, expected="counterexample"),
    Proof("paper.overwrites_unconsumed",
          "the copy never overwrites a byte the consumer has not read",
          overwrites_unconsumed, expected="counterexample"),
    Proof("paper.avail_u16_overflow",
          "avail = tail + 0x1000 - h is exact in u16 for every u16 tail",
          avail_overflows, expected="counterexample"),
    Proof("paper.head_in_kernel_memory",
          "head is in kernel memory (sender cannot set it) and produce() stores it at user "
          "level", head_in_kernel_memory, expected="counterexample"),
]


if __name__ == "__main__":
    sys.exit(run_as_script(PROOFS))
