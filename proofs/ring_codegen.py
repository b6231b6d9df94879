"""Check the compiled arm64 ring library for the ordering that ring_ordering.py needs.

guests/lib/ring.c is compiled for aarch64 with the guests' own flags
(keusim.arch.toolchain("arm64")), compile-only. Its functions are disassembled with
capstone. The model (ordering.ring_c.armv8) is only as good as the instructions.

* The publish path (ring_commit: head; ring_release: tail) must use a release store,
  ``stlr``, or a ``dmb ish``/``dmb ishst`` before the store.
* The consume path (ring_peek: head; ring_reserve: tail) must use an acquire load,
  ``ldar``/``ldapr``, or a load followed by ``dmb ish``/``dmb ishld``.

The same files are also scanned at the source level. Stores to the head index may
appear only in producer functions, and stores to tail only in consumer functions.
This is the single-writer half that the MMU enforces at run time (head page read-only to
the consumer, tail page read-only to the producer).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from keusim.proof.prove import Outcome, Proof, module_main

PUBLISH = ("ring_commit", "ring_release")       # store_release of head / tail
CONSUME = ("ring_peek", "ring_reserve")         # load_acquire of head / tail
PRODUCER_FUNCS = ("ring_reserve", "ring_commit", "ring_send", "ring_send_wait", "ring_init")
CONSUMER_FUNCS = ("ring_peek", "ring_release", "ring_recv", "ring_recv_wait", "ring_init")

RELEASE_STORES = {"stlr", "stlrb", "stlrh", "stlur", "stlurb", "stlurh"}
ACQUIRE_LOADS = {"ldar", "ldarb", "ldarh", "ldapr", "ldaprb", "ldaprh", "ldapur", "ldapurb",
                 "ldapurh"}
STORE_BARRIERS = {"ish", "ishst", "sy", "st", "osh", "oshst"}
LOAD_BARRIERS = {"ish", "ishld", "sy", "ld", "osh", "oshld"}


def root() -> Path:
    from keusim.toolchain import ROOT

    return ROOT


def ring_c() -> Path:
    return root() / "guests" / "lib" / "ring.c"


def build_object() -> Path:
    """ring.c compiled for aarch64 (cached by content hash)."""
    from keusim.arch import toolchain
    from keusim.toolchain import BuildSpec, build

    tc = toolchain("arm64")
    r = root()
    spec = BuildSpec(
        sources=(ring_c(),), target=tc.zig_target, cflags=tuple(tc.cflags) + ("-c",),
        include_dirs=(r / "guests" / "include", r / "guests" / "arch" / "arm64" / "include"))
    return build(spec, name="ring_arm64")


@dataclass(frozen=True)
class Insn:
    address: int
    mnemonic: str
    op_str: str

    def __str__(self) -> str:
        return f"{self.address:#06x}: {self.mnemonic} {self.op_str}"


def disassemble(obj: Path) -> dict[str, list[Insn]]:
    """Each function symbol of the object's .text, disassembled."""
    import capstone
    from elftools.elf.elffile import ELFFile

    out: dict[str, list[Insn]] = {}
    with open(obj, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC" or not sym["st_size"]:
                continue
            sec = elf.get_section(sym["st_shndx"])
            data = sec.data()
            start = sym["st_value"]
            code = data[start:start + sym["st_size"]]
            out[sym.name] = [Insn(i.address, i.mnemonic, i.op_str)
                             for i in md.disasm(code, start)]
    return out


def _is_store(i: Insn) -> bool:
    return i.mnemonic.startswith(("str", "stur", "stp")) and i.mnemonic not in RELEASE_STORES


def _is_load(i: Insn) -> bool:
    return i.mnemonic.startswith(("ldr", "ldur", "ldp")) and i.mnemonic not in ACQUIRE_LOADS


def release_evidence(insns: list[Insn]) -> str | None:
    """An stlr, or a store preceded by a store-ordering dmb; None if neither."""
    for n, i in enumerate(insns):
        if i.mnemonic in RELEASE_STORES:
            return str(i)
        if i.mnemonic == "dmb" and i.op_str in STORE_BARRIERS:
            later = next((j for j in insns[n + 1:] if _is_store(j)), None)
            if later:
                return f"{i}; then {later}"
    return None


def acquire_evidence(insns: list[Insn]) -> str | None:
    """An ldar/ldapr, or a load followed by a load-ordering dmb; None if neither."""
    for n, i in enumerate(insns):
        if i.mnemonic in ACQUIRE_LOADS:
            return str(i)
        if i.mnemonic == "dmb" and i.op_str in LOAD_BARRIERS:
            earlier = next((j for j in reversed(insns[:n]) if _is_load(j)), None)
            if earlier:
                return f"{earlier}; then {i}"
    return None


def check_ordering(funcs: dict[str, list[Insn]]) -> tuple[list[str], list[str]]:
    """(findings, failures) for the publish and consume functions."""
    found, bad = [], []
    for name in PUBLISH:
        if name not in funcs:
            bad.append(f"{name}: not in the object (inlined or renamed?)")
            continue
        ev = release_evidence(funcs[name])
        (found if ev else bad).append(
            f"{name}: release store {ev}" if ev else
            f"{name}: publish path has no stlr and no dmb before its store")
    for name in CONSUME:
        if name not in funcs:
            bad.append(f"{name}: not in the object (inlined or renamed?)")
            continue
        ev = acquire_evidence(funcs[name])
        (found if ev else bad).append(
            f"{name}: acquire load {ev}" if ev else
            f"{name}: consume path has no ldar/ldapr and no dmb after its load")
    return found, bad


def prove_codegen() -> Outcome:
    if not ring_c().is_file():
        return Outcome("unknown", f"{ring_c()} does not exist yet")
    try:
        obj = build_object()
    except Exception as e:  # the toolchain is an install matter; say so, do not crash
        return Outcome("unknown", f"could not build ring.c for arm64: {e}")
    funcs = disassemble(obj)
    found, bad = check_ordering(funcs)
    if bad:
        return Outcome("counterexample", "\n".join(bad + found), {"bad": bad, "found": found})
    return Outcome("proved", None, {"found": found})


_FUNC = re.compile(r"^(?:[\w*]+[ \t*]+)*(\w+)\s*\([^;{}()]*\)\s*\{", re.M)


def function_bodies(src: str) -> dict[str, str]:
    """Top-level C function bodies by name (brace matching; enough for ring.c)."""
    out: dict[str, str] = {}
    for m in _FUNC.finditer(src):
        depth, i = 0, m.end() - 1
        while i < len(src):
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            if depth == 0:
                break
            i += 1
        out[m[1]] = src[m.end():i]
    return out


_HEAD_STORE = re.compile(r"store_release\(\s*ep->head\b|\*\s*ep->head\s*=[^=]")
_TAIL_STORE = re.compile(r"store_release\(\s*ep->tail\b|\*\s*ep->tail\s*=[^=]")


def prove_source_single_writer() -> Outcome:
    if not ring_c().is_file():
        return Outcome("unknown", f"{ring_c()} does not exist yet")
    bodies = function_bodies(ring_c().read_text())
    bad = []
    for name, body in bodies.items():
        if _HEAD_STORE.search(body) and name not in PRODUCER_FUNCS:
            bad.append(f"{name} stores to head but is not a producer function")
        if _TAIL_STORE.search(body) and name not in CONSUMER_FUNCS:
            bad.append(f"{name} stores to tail but is not a consumer function")
    writers = {n: (bool(_HEAD_STORE.search(b)), bool(_TAIL_STORE.search(b)))
               for n, b in bodies.items()}
    if not any(h for h, _ in writers.values()) or not any(t for _, t in writers.values()):
        bad.append("found no store to head or no store to tail: the scanner is out of date")
    if bad:
        return Outcome("counterexample", "\n".join(bad), writers)
    return Outcome("proved", None, writers)


PROOFS = [
    Proof("ordering.arm64.codegen",
          "compiled arm64 ring.c: ring_commit/ring_release publish with stlr (or dmb), "
          "ring_peek/ring_reserve load the peer's index with ldar (or dmb)",
          prove_codegen),
    Proof("ring.source.single_writer",
          "in ring.c only producer functions store head and only consumer functions "
          "store tail", prove_source_single_writer),
]


if __name__ == "__main__":
    sys.exit(module_main(PROOFS))
