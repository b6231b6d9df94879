"""Attack programs from a seed, in the spirit of syzkaller's system-call
descriptions: each system call of the keusim ABI (docs/abi.md,
kernel/include/syscall.h) has typed arguments, and each type draws from values
that matter to the kernel (channel ids at and past the table's end, user
pointers into every kind of page, kernel pointers, lengths at page and ring
boundaries) as well as from plain random 64-bit words.

Besides system calls a program pokes ring indices and records (forgeries the
peer's ring library must reject), sends notification descriptors with chosen
offset, length, flags, sequence number and tag, touches memory the MMU must
refuse (marked must-fault, so a missing gate shows), and runs instruction
snippets: curated instructions (isa.py), capstone-decoded random streams and raw
random bytes. The same (arch, seed) always gives the same program.
"""

from __future__ import annotations

import hashlib
import random

from keusim.fuzz import target as T
from keusim.fuzz.isa import decoded_stream
from keusim.fuzz.program import (
    F_MUST_FAULT,
    F_OFF_REL,
    F_SEQ_REL,
    F_SPIN_SYSCALL,
    F_TAG_VALID,
    M64,
    Op,
    Program,
)

# kernel/include/syscall.h
SYS = {"exit": 0, "write": 1, "yield": 2, "getpid": 3, "cycles": 4, "notify": 5, "wait": 6,
       "chanfault": 7, "nop": 8, "report": 9}
NSYSCALL = 14
# guests/include/keusim/ring.h RING_E*, keusim.h STAT_*
RING_CODES = (-1, -2, -3, -4, -5, -6, 0, 1, -(1 << 63))
STAT_KEYS = tuple(range(0, 12))


def run_seed(seed: int, index: int) -> int:
    """The seed of run `index` of a campaign started with `seed` (stable across versions)."""
    h = hashlib.sha256(f"keusim-fuzz:{seed}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "little")


class Gen:
    """Draws the parts of an attack program for one target."""

    def __init__(self, t: T.Target, rng: random.Random):
        self.t, self.r, self.lay = t, rng, t.layout

    # -- values -------------------------------------------------------------------------
    def u64(self) -> int:
        r = self.r
        return r.choice((0, 1, M64, 1 << 63, (1 << 63) - 1, 1 << 32, (1 << 32) - 1,
                         r.getrandbits(64), r.getrandbits(32), r.getrandbits(12)))

    def chan(self) -> int:
        return self.r.choice((0, 1, 2, 2, 3, 3, 4, 31, 32, 1 << 32, M64, self.r.getrandbits(64)))

    def length(self) -> int:
        c = T.CAPACITY
        return self.r.choice((0, 1, 4, 8, 12, 64, c - 8, c - 4, c, c + 1, c + 8, 1 << 31, M64))

    def page(self, kind: str) -> tuple[int, bool | None]:
        """(an address in a kind of memory, whether every access to it must fault;
        None: only stores must)."""
        r, lay = self.r, self.lay
        tx, rx = T.chan_va(T.CH_ATTACK_TX), T.chan_va(T.CH_ATTACK_RX)
        off = r.choice((0, 4, 8, r.randrange(0, T.PAGE, 8), T.PAGE - 8))
        # None: read-only to the attacker (stores must fault, loads must not).
        table = {
            "own-head": (tx + T.HEAD_OFF, False), "own-tail": (rx + T.TAIL_OFF, False),
            "peer-head": (rx + T.HEAD_OFF, None), "peer-tail": (tx + T.TAIL_OFF, None),
            "own-data": (r.choice((tx, rx)) + T.DATA_OFF + r.randrange(0, T.CAPACITY, 8), False),
            "guard": (r.choice((tx, rx)) + r.choice((0, 0x3000, T.DATA_OFF + T.CAPACITY)) + off, True),
            "honest-ring": (T.chan_va(r.choice(T.CH_HONEST)) + r.choice(
                (T.HEAD_OFF, T.TAIL_OFF, T.DATA_OFF)) + off, True),
            "info": (T.INFO_VA + off, None), "text": (lay.text + off, None),
            "stack-guard": (T.USTACK_TOP - 5 * T.PAGE + off, True),
            "stack": (T.USTACK_TOP - r.randrange(1, 4) * T.PAGE + off, False),
            "kernel": (lay.kernbase + r.randrange(0, 16 << 20, 8), True),
            "null": (r.choice((0, 8, 0xFF8)), True),
            "noncanonical": (r.choice((1 << 63, 1 << 47, T.USER_TOP - 8 + 16)), True),
            "user-top": (T.USER_TOP - 8, True),
            "random": (r.getrandbits(64), False),
        }
        return table[kind]

    def ptr(self) -> int:
        kind = self.r.choice(("own-head", "own-tail", "peer-head", "own-data", "guard", "info",
                              "text", "stack", "kernel", "null", "noncanonical", "random"))
        return self.page(kind)[0]

    def arg(self, typ: str) -> int:
        return {"chan": self.chan, "ptr": self.ptr, "len": self.length, "u64": self.u64,
                "key": lambda: self.r.choice(STAT_KEYS + (self.r.getrandbits(32),)),
                "code": lambda: self.r.choice(RING_CODES) & M64}[typ]()

    # -- operations --------------------------------------------------------------------
    SIGS = {"write": ("ptr", "len"), "yield": (), "getpid": (), "cycles": (),
            "notify": ("ptr",), "wait": ("chan",), "chanfault": ("chan", "code"), "nop": (),
            "report": ("chan", "key", "u64"), "exit": ("u64",)}

    def op_syscall(self) -> Op:
        r = self.r
        if r.random() < 0.1:      # an unknown number: the kernel kills with bad-syscall
            n = r.choice((NSYSCALL, NSYSCALL + 1, 255, 1 << 32, M64, r.getrandbits(64)))
            return Op("syscall", (n, self.u64(), self.u64(), self.u64()), note="bad number")
        name = r.choice(("write", "yield", "getpid", "cycles", "notify", "wait", "chanfault",
                         "nop", "report", "report", "chanfault", "write"))
        args = [self.arg(a) for a in self.SIGS[name]]
        args += [self.u64() for _ in range(3 - len(args))]
        rep = 1
        if name in ("report", "chanfault", "nop", "yield") and r.random() < 0.08:
            rep = r.choice((64, 300, 600))    # floods: a fixed-size event log must not drop verdicts
        return Op("syscall", (SYS[name], *args, rep), note=f"{name} x{rep}")

    # The fault kind docs/abi.md gives a must-fault access to each kind of page.
    # (Non-canonical addresses are left out: the ABI table does not name their kind.)
    EXPECT = {"peer-head": "write-protect", "peer-tail": "write-protect",
              "info": "write-protect", "text": "write-protect", "guard": "unmapped",
              "honest-ring": "unmapped", "stack-guard": "unmapped", "null": "unmapped",
              "user-top": "unmapped", "kernel": "kernel-access"}

    PROBES = ("peer-head", "peer-tail") * 3 + ("guard", "honest-ring", "info", "text", "stack-guard",
              "kernel", "null", "noncanonical", "user-top")

    def op_mem(self, kind: str | None = None, store: bool | None = None) -> Op:
        r = self.r
        kind = kind or r.choice(("own-head", "own-tail", "peer-head", "peer-tail", "own-data",
                                 "guard", "honest-ring", "info", "text", "stack-guard", "kernel",
                                 "null", "noncanonical", "user-top", "own-data", "own-head",
                                 "own-tail"))
        addr, must = self.page(kind)
        store = r.random() < 0.65 if store is None else store
        if must is None:     # read-only to the attacker: stores must fault, loads must not
            must = store
        size = r.choice((1, 2, 4, 8))
        if r.random() < 0.9:      # else left as drawn: sometimes misaligned
            addr &= ~(size - 1)
        flags = F_MUST_FAULT if must else 0
        expect = self.EXPECT.get(kind, "") if must else ""
        if store:
            val = r.choice((0, T.CAPACITY, T.CAPACITY + 8, 0xFFFFFFFF, 0x7FFFFFFF, r.getrandbits(32),
                            r.getrandbits(64)))
            return Op("store", (addr, val, size), flags, note=f"store {kind}", expect=expect)
        return Op("load", (addr, 0, size), flags, note=f"load {kind}", expect=expect)

    def op_forge(self) -> Op:
        """A ring-index forgery relative to the index's current value."""
        r = self.r
        kind = r.choice(("own-head", "own-tail"))
        c = T.CAPACITY
        delta = r.choice((8, -8, c, c + 8, -c, 4, 1, r.getrandbits(32)))
        return Op("add32", (self.page(kind)[0] & ~3, delta & M64), note=f"forge {kind} {delta:+d}")

    def op_notify(self) -> Op:
        r = self.r
        ch = T.CH_ATTACK_TX if r.random() < 0.75 else self.chan()
        flags = 0
        if r.random() < 0.75:
            flags |= F_TAG_VALID
        if r.random() < 0.8:
            flags |= F_SEQ_REL
            seq = r.choice((1, 1, 1, 2, 0, M64, 1 << 32))
        else:
            seq = self.u64()
        if r.random() < 0.8:
            flags |= F_OFF_REL
            off = r.choice((-8, -16, -64, -T.CAPACITY, -T.CAPACITY - 8, 0, 8, 4, -4)) & M64
        else:
            off = r.getrandbits(32)
        length = r.choice((0, 4, 8, 12, 16, 64, T.CAPACITY, T.CAPACITY + 4, r.getrandbits(32)))
        fl = 0 if r.random() < 0.85 else r.getrandbits(32)
        return Op("notify", (ch, off, length, fl, seq, r.getrandbits(64)), flags,
                  note=f"notify ch {ch}")

    def op_exec(self) -> Op:
        r, f = self.r, self.t.facts
        units: list[bytes] = []
        for slot in range(f.nregs):          # argument registers: interesting values
            if r.random() < 0.5:
                units.append(f.load_reg(slot, self.ptr() if r.random() < 0.7 else self.u64()))
        mode = r.random()
        if mode < 0.45:
            names = sorted(f.curated)
            picked = [r.choice(names) for _ in range(r.randrange(1, 4))]
            units += [f.curated[n] for n in picked]
            note = "curated " + " ".join(picked)
        elif mode < 0.85:
            units += decoded_stream(f, r, r.randrange(1, 12))
            note = "decoded stream"
        else:
            n = r.randrange(1, 24)
            units += [bytes([b]) for b in r.randbytes(n)] if f.insn_align == 1 else \
                [r.randbytes(4) for _ in range(max(1, n // 4))]
            note = "random bytes"
        return Op("exec", (), 0, tuple(units), note)

    def op_spin(self) -> Op:
        r = self.r
        forever = r.random() < 0.15
        n = M64 if forever else r.choice((10, 1000, 5000))
        flags = F_SPIN_SYSCALL if r.random() < 0.5 else 0
        return Op("spin", (n,), flags, note="spin forever" if forever else f"spin {n}")

    def op(self) -> Op:
        r = self.r
        x = r.random()
        if x < 0.28:
            return self.op_syscall()
        if x < 0.46:
            return self.op_mem()
        if x < 0.56:
            return self.op_forge()
        if x < 0.66:
            return Op("send", (T.CH_ATTACK_TX, r.choice((0, 8, 60, 500, 4000)), r.getrandbits(32)),
                      note="send")
        if x < 0.71:
            return Op("recv", (T.CH_ATTACK_RX,), note="recv")
        if x < 0.83:
            return self.op_notify()
        if x < 0.965:
            return self.op_exec()
        if x < 0.99:
            return self.op_spin()
        return Op("exit", (r.choice((0, 1, -1 & M64, 1 << 40)),), note="exit")


def generate(t: T.Target, seed: int, max_ops: int = 40) -> Program:
    """The attack program for (t.arch, seed)."""
    rng = random.Random(f"{t.arch}:{seed}")
    g = Gen(t, rng)
    n = rng.randrange(1, max_ops + 1)
    ops = [g.op() for _ in range(n)]
    if rng.random() < 0.4:
        # An early gate probe: a store the MMU must refuse. Most attack programs die
        # early, so without this the gates would be probed rarely; the index pages,
        # the rings' single-writer gates, get 6 of PROBES' 15 entries.
        ops.insert(rng.randrange(0, min(n, 3) + 1), g.op_mem(rng.choice(g.PROBES), True))
    return Program(tuple(ops[:max_ops]))
