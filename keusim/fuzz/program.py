"""Attack programs: what the attacker guest (guests/src/fuzz_attacker.c) interprets.

A :class:`Program` is a list of :class:`Op`. It is encoded into two patches of the
attacker's ELF file: ``fuzz_prog`` (a header and FUZZ_MAXOPS 64-byte operations, in
the data segment) and ``fuzz_code`` (instruction snippets, in the text segment),
so no compiler runs per fuzzing run. The layouts mirror fuzz_attacker.c.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from keusim.errors import KeusimError

FUZZ_MAGIC = 0x47525046355A5546
MAXOPS = 256
CODE_SIZE = 16384
OP_SIZE = 64

OPS = {"syscall": 1, "store": 2, "load": 3, "add32": 4, "send": 5, "recv": 6,
       "notify": 7, "exec": 8, "spin": 9, "exit": 10}
F_MUST_FAULT, F_TAG_VALID, F_SEQ_REL, F_OFF_REL, F_SPIN_SYSCALL = 1, 2, 4, 8, 16
FLAG_NAMES = {"must_fault": F_MUST_FAULT, "tag_valid": F_TAG_VALID, "seq_rel": F_SEQ_REL,
              "off_rel": F_OFF_REL, "spin_syscall": F_SPIN_SYSCALL}
M64 = (1 << 64) - 1


@dataclass(frozen=True)
class Op:
    """One attacker operation. ``x`` are its operands (fuzz_attacker.c says which);
    ``code`` the instructions of an ``exec`` snippet, one bytes object each (the unit
    the minimizer removes); ``note`` says what the generator meant (for humans);
    ``expect`` is the fault kind docs/abi.md gives a must-fault probe (fuzzer side
    only: the attacker never sees it)."""

    kind: str
    x: tuple[int, ...] = ()
    flags: int = 0
    code: tuple[bytes, ...] = ()
    note: str = ""
    expect: str = ""

    def as_json(self) -> dict:
        d: dict = {"op": self.kind, "x": [f"{v & M64:#x}" for v in self.x]}
        if self.flags:
            d["flags"] = sorted(k for k, v in FLAG_NAMES.items() if self.flags & v)
        if self.code:
            d["code"] = [c.hex() for c in self.code]
        if self.note:
            d["note"] = self.note
        if self.expect:
            d["expect"] = self.expect
        return d

    @staticmethod
    def from_json(d: dict) -> Op:
        try:
            flags = 0
            for f in d.get("flags", []):
                flags |= FLAG_NAMES[f]
            return Op(d["op"], tuple(int(v, 0) for v in d.get("x", [])), flags,
                      tuple(bytes.fromhex(c) for c in d.get("code", [])), d.get("note", ""),
                      d.get("expect", ""))
        except (KeyError, ValueError, TypeError) as e:
            raise KeusimError(f"fuzz case: bad operation {d!r} ({e}); "
                              f"see docs/fuzzing.md for the case format") from e


@dataclass(frozen=True)
class Program:
    ops: tuple[Op, ...] = field(default_factory=tuple)

    def as_json(self) -> list:
        return [o.as_json() for o in self.ops]

    @staticmethod
    def from_json(items: list) -> Program:
        return Program(tuple(Op.from_json(d) for d in items))

    def dumps(self) -> str:
        return json.dumps(self.as_json(), indent=1)


def encode(prog: Program, code_va: int, jump_back, align: int) -> tuple[bytes, bytes]:
    """(fuzz_prog bytes, fuzz_code bytes) for prog.

    code_va is fuzz_code's address; jump_back(addr) gives the code that returns to
    the trampoline's fuzz_back (appended to every snippet); snippets start at
    ``align``-byte boundaries. Raises KeusimError if the program does not fit.
    """
    if len(prog.ops) > MAXOPS:
        raise KeusimError(f"attack program has {len(prog.ops)} operations; at most {MAXOPS} fit")
    code = bytearray()
    recs = []
    for o in prog.ops:
        x = list(o.x)
        if o.kind == "exec":
            off = len(code)
            code += b"".join(o.code) + jump_back
            code += bytes(-len(code) % max(align, 8))
            x = [off]
        if o.kind not in OPS:
            raise KeusimError(f"attack program: unknown operation {o.kind!r}")
        x = (x + [0] * 7)[:7]
        recs.append(struct.pack("<II7Q", OPS[o.kind], o.flags, *(v & M64 for v in x)))
    if len(code) > CODE_SIZE:
        raise KeusimError(f"attack program: {len(code)} bytes of snippets; at most {CODE_SIZE} fit")
    body = struct.pack("<QII", FUZZ_MAGIC, len(recs), 0) + b"".join(recs)
    return body + bytes(16 + MAXOPS * OP_SIZE - len(body)), bytes(code)
