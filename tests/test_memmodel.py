"""keusim.proof.memmodel: the litmus format, the engine, and published verdicts.

Every expected verdict below is one that its cited source publishes:
- AARCH64: herdtools7 catalogue/aarch64/tests/kinds.txt (tests run under aarch64.cat);
- READERS: herdtools7 catalogue/aarch64-readers-guide/tests/kinds.txt;
- X86: herdtools7 catalogue/x86_64/kinds.txt (tests run under x86tso.cat);
- TSO_PAPER: Owens, Sarkar, Sewell, "A better x86 memory model: x86-TSO", TPHOLs 2009;
- POPL18: Pulte, Flur, Deacon, French, Sarkar, Sewell, "Simplifying ARM concurrency",
  POPL 2018; POPL16: Flur et al., "Modelling the ARMv8 architecture, operationally",
  POPL 2016;
- SC: each exists clause is a critical cycle, so no interleaving reaches it (Shasha and
  Snir, TOPLAS 1988; herd7's sc.cat).

The litmus shapes are transcriptions of the catalogue files: the same threads, values
and exists clause, with MOV/STR/LDR/DMB written in this dialect.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from keusim.proof import memmodel
from keusim.proof.memmodel import LitmusError, check, outcomes, parse_litmus

AARCH64 = "herdtools7 catalogue/aarch64/tests/kinds.txt"
READERS = "herdtools7 catalogue/aarch64-readers-guide/tests/kinds.txt"
X86 = "herdtools7 catalogue/x86_64/kinds.txt"
TSO_PAPER = "Owens, Sarkar, Sewell, TPHOLs 2009"
POPL = "Pulte et al. POPL 2018 / Flur et al. POPL 2016"
SC = "critical cycle (Shasha & Snir 1988)"

# The shapes. {a}/{b} mark where a variant adds a fence or an annotation.
MP = "P0: st x 1 ; {a} st{r} y 1\nP1: ld{q} r0 y {d}; {b} ld r1 x {e}\nexists 1:r0=1 /\\ 1:r1=0"
SB = "P0: st x 1 ; {a} ld r0 y\nP1: st y 1 ; {b} ld r0 x\nexists 0:r0=0 /\\ 1:r0=0"
LB = "P0: ld r0 x ; {a} st y 1 {d}\nP1: ld r0 y ; {b} st x 1 {e}\nexists 0:r0=1 /\\ 1:r0=1"
S = "P0: st x 2 ; {a} st y 1\nP1: ld r0 y ; {b} st x 1 {e}\nexists x=2 /\\ 1:r0=1"
R = "P0: st x 1 ; {a} st y 1\nP1: st y 2 ; {b} ld r0 x\nexists y=2 /\\ 1:r0=0"
W2 = "P0: st x 2 ; {a} st y 1\nP1: st y 2 ; {b} st x 1\nexists x=2 /\\ y=2"
WRC = ("P0: st x 1\nP1: ld r0 x ; {a} st y 1 {d}\nP2: ld r0 y ; {b} ld r1 x {e}\n"
       "exists 1:r0=1 /\\ 2:r0=1 /\\ 2:r1=0")
IRIW = ("P0: st x 1\nP1: ld r0 x ; {a} ld r1 y\nP2: st y 1\nP3: ld r0 y ; {b} ld r1 x\n"
        "exists 1:r0=1 /\\ 1:r1=0 /\\ 3:r0=1 /\\ 3:r1=0")


def shape(t: str, a: str = "", b: str = "", d: str = "", e: str = "", r: str = "",
          q: str = "") -> str:
    return t.format(a=a, b=b, d=d, e=e, r=r, q=q)


FULL_A, FULL_B = "fence full ;", "fence full ;"


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    expected: str
    source: str
    text: str


CATALOGUE = [
    # ---- ARMv8 (aarch64.cat) ----
    Case("MP", "armv8", "allowed", AARCH64, shape(MP)),
    Case("MP+dmb.sys", "armv8", "forbidden", AARCH64, shape(MP, a=FULL_A, b=FULL_B)),
    Case("MP+dmb.sy+po", "armv8", "allowed", AARCH64, shape(MP, a=FULL_A)),
    Case("MP+po+dmb.sy", "armv8", "allowed", AARCH64, shape(MP, b=FULL_B)),
    Case("MP+rel+acq", "armv8", "forbidden", AARCH64, shape(MP, r=".rel", q=".acq")),
    Case("MP+rel+acqpc", "armv8", "forbidden", AARCH64, shape(MP, r=".rel", q=".acqpc")),
    Case("MP+dmb.sy+addr", "armv8", "forbidden", POPL, shape(MP, a=FULL_A, e="addr(r0)")),
    Case("MP+dmb.sy+ctrl", "armv8", "allowed", POPL, shape(MP, a=FULL_A, e="ctrl(r0)")),
    Case("MP+dmb.sy+ctrlisb", "armv8", "forbidden", POPL,
         shape(MP, a=FULL_A, b="fence isb ctrl(r0) ;")),
    Case("SB", "armv8", "allowed", AARCH64, shape(SB)),
    Case("SB+dmb.sys", "armv8", "forbidden", AARCH64, shape(SB, a=FULL_A, b=FULL_B)),
    Case("SB+dmb.sy+po", "armv8", "allowed", AARCH64, shape(SB, a=FULL_A)),
    Case("SB+dmb.sy+rel-acq", "armv8", "forbidden", AARCH64,
         "P0: st x 1 ; fence full ; ld r0 y\nP1: st.rel y 1 ; ld.acq r1 x\n"
         "exists 0:r0=0 /\\ 1:r1=0"),
    Case("SB+dmb.sy+rel-acqpc", "armv8", "allowed", AARCH64,
         "P0: st x 1 ; fence full ; ld r0 y\nP1: st.rel y 1 ; ld.acqpc r1 x\n"
         "exists 0:r0=0 /\\ 1:r1=0"),
    Case("LB", "armv8", "allowed", AARCH64, shape(LB)),
    Case("LB+dmb.sys", "armv8", "forbidden", AARCH64, shape(LB, a=FULL_A, b=FULL_B)),
    Case("LB+dmb.sy+po", "armv8", "allowed", AARCH64, shape(LB, a=FULL_A)),
    Case("LB+datas", "armv8", "forbidden", POPL, shape(LB, d="data(r0)", e="data(r0)")),
    Case("S", "armv8", "allowed", AARCH64, shape(S)),
    Case("S+dmb.sys", "armv8", "forbidden", AARCH64, shape(S, a=FULL_A, b=FULL_B)),
    Case("S+dmb.sy+po", "armv8", "allowed", AARCH64, shape(S, a=FULL_A)),
    Case("S+po+dmb.sy", "armv8", "allowed", AARCH64, shape(S, b=FULL_B)),
    Case("R", "armv8", "allowed", AARCH64, shape(R)),
    Case("R+dmb.sys", "armv8", "forbidden", AARCH64, shape(R, a=FULL_A, b=FULL_B)),
    Case("R+dmb.sy+po", "armv8", "allowed", AARCH64, shape(R, a=FULL_A)),
    Case("R+po+dmb.sy", "armv8", "allowed", AARCH64, shape(R, b=FULL_B)),
    Case("2+2W", "armv8", "allowed", AARCH64, shape(W2)),
    Case("2+2W+dmb.sys", "armv8", "forbidden", AARCH64, shape(W2, a=FULL_A, b=FULL_B)),
    Case("2+2W+dmb.sy+po", "armv8", "allowed", AARCH64, shape(W2, a=FULL_A)),
    Case("WRC", "armv8", "allowed", READERS, shape(WRC)),
    Case("WRC+addrs", "armv8", "forbidden", POPL, shape(WRC, d="addr(r0)", e="addr(r0)")),
    Case("IRIW", "armv8", "allowed", READERS, shape(IRIW)),
    Case("IRIW+dmb.lds", "armv8", "forbidden", READERS,
         shape(IRIW, a="fence ld ;", b="fence ld ;")),
    Case("CoRR", "armv8", "forbidden", AARCH64,
         "P0: st x 1\nP1: ld r0 x ; ld r1 x\nexists 1:r0=1 /\\ 1:r1=0"),
    Case("CoWW", "armv8", "forbidden", AARCH64, "P0: st x 1 ; st x 2\nexists x=1"),
    # ---- x86-TSO (x86tso.cat) ----
    Case("MP", "x86-tso", "forbidden", X86, shape(MP)),
    Case("SB", "x86-tso", "allowed", X86, shape(SB)),
    Case("SB+mfences", "x86-tso", "forbidden", X86, shape(SB, a=FULL_A, b=FULL_B)),
    Case("SB+mfence+po", "x86-tso", "allowed", X86, shape(SB, a=FULL_A)),
    Case("SB+rfi-pos", "x86-tso", "allowed", X86,
         "P0: st x 1 ; ld r0 x ; ld r1 y\nP1: st y 1 ; ld r0 y ; ld r1 x\n"
         "exists 0:r0=1 /\\ 0:r1=0 /\\ 1:r0=1 /\\ 1:r1=0"),
    Case("LB", "x86-tso", "forbidden", X86, shape(LB)),
    Case("S", "x86-tso", "forbidden", X86, shape(S)),
    Case("R", "x86-tso", "allowed", X86, shape(R)),
    Case("R+po+mfence", "x86-tso", "forbidden", X86, shape(R, b=FULL_B)),
    Case("2+2W", "x86-tso", "forbidden", X86, shape(W2)),
    Case("WRC", "x86-tso", "forbidden", X86, shape(WRC)),
    Case("IRIW", "x86-tso", "forbidden", TSO_PAPER, shape(IRIW)),
    Case("n6", "x86-tso", "allowed", TSO_PAPER,
         "P0: st x 1 ; ld r0 x ; ld r1 y\nP1: st y 2 ; st x 2\n"
         "exists 0:r0=1 /\\ 0:r1=0 /\\ x=1"),
    # ---- SC ----
    *[Case(n, "sc", "forbidden", SC, t) for n, t in [
        ("MP", shape(MP)), ("SB", shape(SB)), ("LB", shape(LB)), ("S", shape(S)),
        ("R", shape(R)), ("2+2W", shape(W2)), ("WRC", shape(WRC)), ("IRIW", shape(IRIW))]],
    Case("SB+rfi-pos", "sc", "forbidden", SC,
         "P0: st x 1 ; ld r0 x ; ld r1 y\nP1: st y 1 ; ld r0 y ; ld r1 x\n"
         "exists 0:r0=1 /\\ 0:r1=0 /\\ 1:r0=1 /\\ 1:r1=0"),
]


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: f"{c.name}@{c.model}")
def test_published_verdict(case: Case) -> None:
    v = check(parse_litmus(case.text, case.name), case.model)
    assert v.verdict == case.expected, f"{case.name} under {case.model} ({case.source})"
    if v.allowed:
        assert v.witness is not None and case.name in v.witness.render()
    else:
        assert v.forbidden_by


def test_stale_payload_witness_on_armv8() -> None:
    v = check(shape(MP), "armv8")
    w = v.witness
    assert w is not None
    regs = {(t, r): val for t, r, val in w.registers}
    assert regs == {(1, "r0"): 1, (1, "r1"): 0}
    text = w.render()
    assert "R y=1" in text and "R x=0" in text and "reads from initial value" in text


def test_forbidden_names_the_axiom() -> None:
    assert check(shape(MP, r=".rel", q=".acq"), "armv8").forbidden_by == ("external",)
    assert check("P0: st x 1 ; st x 2\nexists x=1", "armv8").forbidden_by == ("internal",)
    assert check(shape(MP), "x86-tso").forbidden_by == ("tso",)


def test_outcomes_enumerates_sb_on_tso() -> None:
    got = outcomes(shape(SB), "x86-tso")
    regs = {tuple(v for k, v in o if ":" in k) for o in got}
    assert regs == {(0, 0), (0, 1), (1, 0), (1, 1)}
    sc = {tuple(v for k, v in o if ":" in k) for o in outcomes(shape(SB), "sc")}
    assert sc == {(0, 1), (1, 0), (1, 1)}


def test_condition_operators_and_init() -> None:
    t = "init x=5\nP0: ld r0 x\nexists 0:r0=5 /\\ ~(0:r0=1 \\/ x=1)"
    assert check(t, "sc").allowed
    assert not check("P0: ld r0 x\nexists 0:r0=5", "sc").allowed


def test_model_aliases() -> None:
    assert memmodel.model("arm64") is memmodel.ARMV8
    assert memmodel.model("tso") is memmodel.TSO
    with pytest.raises(LitmusError, match="unknown memory model"):
        memmodel.model("power")


@pytest.mark.parametrize("text, msg", [
    ("P0: st x 1\n", "missing `exists`"),
    ("P0: mov x 1\nexists x=1", "unknown instruction"),
    ("P0: ld r1 y addr(r0)\nexists 0:r1=0", "no earlier load"),
    ("P0: st x 1\nexists 0:r9=1", "which no load sets"),
    ("P0: st.acq x 1\nexists x=1", "stores take .rel"),
    ("P1: st x 1\nexists x=1", "without gaps"),
    ("P0: st x 1\nexists x=1 /\\", "ends early"),
    ("P0: fence weird\nexists x=0", "fence full|st|ld|isb"),
])
def test_parse_errors(text: str, msg: str) -> None:
    with pytest.raises(LitmusError, match=msg):
        check(text, "sc")


def test_multiline_threads_and_comments() -> None:
    lit = parse_litmus("""
        litmus demo   # a comment
        P0: st x 1
            st y 1    # continues P0
        P1: ld r0 y ; ld r1 x
        exists 1:r0=1 /\\ 1:r1=0
    """)
    assert lit.name == "demo" and len(lit.threads[0]) == 2
    assert check(lit, "armv8").allowed
