"""The system every fuzzing run boots, and the invariants checked on its report.

Six processes on two cores (docs/fuzzing.md has the picture):

=========  ====  ================================================================
process    core  role
=========  ====  ================================================================
honest-p0  0     produces channel 0 (poll) for honest-c0: seeded messages
honest-c0  1     consumes channel 0 and checks every byte
honest-p1  1     produces channel 1 (notify, SipHash-verified) for honest-c1
honest-c1  0     consumes channel 1 (waits in the kernel) and checks every byte
attacker   0     runs the attack program; produces channel 2, consumes channel 3
peer       1     the attacker's counterpart: consumes 2, produces 3, bounded
=========  ====  ================================================================

The attacker shares core 0 with one honest producer and one honest consumer, so a
spinning attacker tests preemption. Every image is built once per architecture
(zig, cached); a run only patches the attack program into a copy of the
attacker's ELF file (:func:`patch_elf`).
"""

from __future__ import annotations

import io
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from keusim import arch as archmod
from keusim.errors import KeusimError
from keusim.fuzz.isa import FACTS, SnippetFacts
from keusim.fuzz.program import CODE_SIZE, Program, encode
from keusim.manifest import ChannelSpec, ProcessSpec, SystemSpec
from keusim.report import RunReport
from keusim.toolchain import ROOT, builds

GUESTS = ROOT / "guests" / "src"
HONEST_MESSAGES = 16
HONEST_SIZE = 64
CAPACITY = 4096
# Model-time budget of one run. The honest work alone takes about 1.1 M cycles on
# x86-64 and 1.5 M on arm64 (flat model; an empty attack program). A bounded
# attacker spin stays well below the budget (gen.py); an attacker that never exits
# makes the run end here, which is fine once the honest processes are done, and
# leaves room for them to finish beside a spinner under any sane time slice.
MAX_CYCLES = 10_000_000

# User layout (kernel/include/memlayout.h); the kernel half comes from the backend.
USER_BASE, INFO_VA, CHAN_VA_BASE, CHAN_STRIDE = 0x400000, 0x10000000, 0x20000000, 0x400000
HEAD_OFF, TAIL_OFF, DATA_OFF = 0x1000, 0x2000, 0x4000
USTACK_TOP, USER_TOP, PAGE = 0x7FFFFFFF0000, 0x800000000000, 4096

HONEST = ("honest-p0", "honest-c0", "honest-p1", "honest-c1")
PEER, ATTACKER = "peer", "attacker"
CH_HONEST = (0, 1)
CH_ATTACK_TX, CH_ATTACK_RX = 2, 3      # attacker produces 2, consumes 3


def chan_va(i: int) -> int:
    return CHAN_VA_BASE + i * CHAN_STRIDE


@dataclass(frozen=True)
class Layout:
    """Addresses the generator aims at (all from the images and memlayout.h)."""

    kernbase: int
    text: int           # attacker text start
    text_end: int
    data: int           # attacker's fuzz_prog (its own data segment)
    code: int           # fuzz_code
    back: int           # fuzz_back (snippets jump here)


@dataclass
class Target:
    """One architecture's built images, ready for many runs."""

    arch: str
    images: dict[str, Path]
    attacker_raw: bytes
    prog_off: int
    code_off: int
    layout: Layout
    facts: SnippetFacts
    # Where each run's patched attacker file goes; removed with the Target.
    _tmp: tempfile.TemporaryDirectory = field(
        default_factory=lambda: tempfile.TemporaryDirectory(prefix="keusim-fuzz-"), repr=False)

    @property
    def workdir(self) -> Path:
        return Path(self._tmp.name)

    def spec(self, attacker: Path) -> SystemSpec:
        """The fuzz system with `attacker` as the attacker's image."""
        img = dict(self.images, attacker=attacker)
        procs = tuple(ProcessSpec(n, (img[n],), core, "any" if n == ATTACKER else "exit:0")
                      for n, core in (("honest-p0", 0), ("honest-c0", 1), ("honest-p1", 1),
                                      ("honest-c1", 0), (ATTACKER, 0), (PEER, 1)))
        chans = (ChannelSpec("honest-p0", "honest-c0", CAPACITY, "poll", False, "honest-0"),
                 ChannelSpec("honest-p1", "honest-c1", CAPACITY, "notify", True, "honest-1"),
                 ChannelSpec(ATTACKER, PEER, CAPACITY, "notify", True, "attack-tx"),
                 ChannelSpec(PEER, ATTACKER, CAPACITY, "poll", False, "attack-rx"))
        return SystemSpec("fuzz", None, procs, chans, cores=2, ram_mb=16, max_cycles=MAX_CYCLES)


def _file_offset(elf: ELFFile, va: int, size: int, what: str) -> int:
    for seg in elf.iter_segments():
        if seg["p_type"] != "PT_LOAD":
            continue
        lo = seg["p_vaddr"]
        if lo <= va and va + size <= lo + seg["p_filesz"]:
            return seg["p_offset"] + va - lo
    raise KeusimError(f"attacker image: {what} at {va:#x} is not file-backed; "
                      f"it must be initialised data or text (guests/src/fuzz_attacker.c)")


def _symbols(elf: ELFFile) -> dict[str, int]:
    tab = elf.get_section_by_name(".symtab")
    return {s.name: s["st_value"] for s in tab.iter_symbols() if s.name} if tab else {}


def build_target(arch: str) -> Target:
    """Build (or take from the cache) the fuzz system's images for arch."""
    a = archmod.normalize(arch)
    if a not in FACTS:
        raise KeusimError(f"the fuzzer has no instruction tables for {a!r}; "
                          f"add them to keusim/fuzz/isa.py")
    images: dict[str, Path] = {}
    honest = GUESTS / "fuzz_honest.c"
    for ch in CH_HONEST:
        for role, name in ((0, f"honest-p{ch}"), (1, f"honest-c{ch}")):
            images[name] = builds.guest_image(
                a, [honest, GUESTS / f"fuzz_state_{a}.S"], name=f"fuzz-{name}-{a}",
                extra_cflags=(f"-DROLE={role}", f"-DCHAN={ch}", f"-DMESSAGES={HONEST_MESSAGES}",
                              f"-DSIZE={HONEST_SIZE}"))
    images[PEER] = builds.guest_image(a, [GUESTS / "fuzz_peer.c"], name=f"fuzz-peer-{a}",
                                      extra_cflags=(f"-DRX={CH_ATTACK_TX}", f"-DTX={CH_ATTACK_RX}"))
    atk = builds.guest_image(a, [GUESTS / "fuzz_attacker.c", GUESTS / f"fuzz_tramp_{a}.S"],
                             name=f"fuzz-attacker-{a}")
    raw = atk.read_bytes()
    elf = ELFFile(io.BytesIO(raw))
    sym = _symbols(elf)
    for s in ("fuzz_prog", "fuzz_code", "fuzz_back", "fuzz_code_end"):
        if s not in sym:
            raise KeusimError(f"{atk}: symbol {s!r} missing; rebuild guests/src/fuzz_attacker.c")
    if sym["fuzz_code_end"] - sym["fuzz_code"] != CODE_SIZE:
        raise KeusimError(f"{atk}: fuzz_code is not {CODE_SIZE} bytes (fuzz_tramp_{a}.S)")
    text = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_flags"] & 1]
    lay = Layout(archmod.get(a).kernbase, text[0]["p_vaddr"],
                 text[0]["p_vaddr"] + text[0]["p_memsz"], sym["fuzz_prog"], sym["fuzz_code"],
                 sym["fuzz_back"])
    return Target(a, images, raw, _file_offset(elf, sym["fuzz_prog"], 16, "fuzz_prog"),
                  _file_offset(elf, sym["fuzz_code"], CODE_SIZE, "fuzz_code"), lay, FACTS[a])


def patch_elf(t: Target, prog: Program) -> bytes:
    """The attacker's ELF file with prog patched into fuzz_prog and fuzz_code."""
    body, code = encode(prog, t.layout.code, t.facts.jump_back(t.layout.back), t.facts.insn_align)
    raw = bytearray(t.attacker_raw)
    raw[t.prog_off:t.prog_off + len(body)] = body
    raw[t.code_off:t.code_off + len(code)] = code
    return bytes(raw)


def run_program(t: Target, prog: Program, kernel_flags: int = 0) -> RunReport:
    """Boot the fuzz system with prog as the attack program and run it."""
    from keusim.system import run
    path = t.workdir / f"attacker-{t.arch}.elf"
    path.write_bytes(patch_elf(t, prog))
    return run(t.spec(path), arch=t.arch, kernel_flags=kernel_flags, max_cycles=MAX_CYCLES)


def check_run(t: Target, rep: RunReport, prog: Program) -> list[Violation]:
    """check() for a run of prog on t."""
    return check(rep, prog, (t.layout.code, t.layout.code + CODE_SIZE))


# -- invariants ---------------------------------------------------------------------
INVARIANTS = ("machine-stop", "kernel-panic", "mmu-gate", "honest-harmed", "report-verdict",
              "report-forged", "fault-kind", "state-leak", "determinism")


@dataclass(frozen=True)
class Violation:
    invariant: str      # one of INVARIANTS
    detail: str

    def key(self) -> str:
        """The violation with numbers and quoted values blanked: equal keys are 'the
        same failure' (the minimizer keeps a program only while its key still shows)."""
        d = re.sub(r"'[^']*'", "'_'", self.detail)
        return f"{self.invariant}: {re.sub(r'0x[0-9a-f]+|[0-9]+', '#', d)}"


_CONSUMER = re.compile(
    r"honest: ch (\d+) (ok|BAD) msgs (\d+) mismatches (\d+) hash ([0-9a-f]+) state (ok|CHANGED)$")
_PRODUCER = re.compile(r"honest: ch (\d+) producer (ok|BAD) sent (\d+) state (ok|CHANGED)$")


# Kills for a refused system call: their fault record's address is a channel, a system
# call number or a descriptor pointer, never a probed data address.
SYSCALL_KILLS = frozenset({"bad-syscall", "bad-tag", "replay", "bad-descriptor",
                           "no-capability", "bad-pointer", "channel-fault"})


def check(rep: RunReport, prog: Program | None = None,
          snippets: tuple[int, int] = (0, 0)) -> list[Violation]:
    """Every invariant of one run that its report shows broken (docs/fuzzing.md).

    With the run's program, also whether the attacker's fault at a must-fault probe's
    address has the kind docs/abi.md gives it. Faults of refused system calls and
    faults at a pc in ``snippets`` (fuzz_code's [start, end)) are not judged: they
    are not the probe's."""
    v: list[Violation] = []
    if rep.status == "error":
        v.append(Violation("machine-stop", rep.message))
    elif rep.status == "panic":
        v.append(Violation("kernel-panic", rep.message))
    procs = {p.name: p for p in rep.processes}
    atk = procs[ATTACKER]
    for m in re.finditer(r"fuzz: op (\d+) escaped", atk.console):
        v.append(Violation("mmu-gate", f"attacker op {m.group(1)} was not stopped by the MMU"))
    for name in HONEST + (PEER,):
        p = procs[name]
        lines = p.console.strip().splitlines()
        last = lines[-1] if lines else ""
        ok = bool(_PRODUCER.match(last) or _CONSUMER.match(last)
                  or (name == PEER and last.startswith("peer: got")))
        ok = ok and " BAD " not in f" {last} "
        if last.endswith("state CHANGED"):
            v.append(Violation("state-leak", f"{name}: a user register it holds changed "
                               f"(xmm15 / TPIDR_EL0, fuzz_state_<arch>.S)"))
        if not ok:
            why = (f"fault {p.fault.kind} at pc {p.fault.pc:#x}" if p.fault else
                   f"exit {p.exit_code}" if p.exit_code is not None else f"run ended {rep.status}")
            v.append(Violation("honest-harmed", f"{name} did not finish its work ({why})"))
        elif p.fault is not None or p.exit_code != 0:
            got = f"fault {p.fault.kind}" if p.fault else f"exit code {p.exit_code}"
            v.append(Violation("report-verdict", f"{name} finished its work but the report says {got}"))
    for ch in CH_HONEST:
        c = rep.channels[ch]
        prod, cons = procs[c.producer], procs[c.consumer]
        m = _CONSUMER.match((cons.console.strip().splitlines() or [""])[-1])
        if m:
            ok, msgs, mism, h = m.group(2) == "ok", int(m.group(3)), int(m.group(4)), int(m.group(5), 16)
            if c.intact != (mism == 0) or c.complete != ok:
                v.append(Violation("report-verdict", f"channel {ch}: report says intact={c.intact} "
                                   f"complete={c.complete}, its consumer counted {msgs} messages, "
                                   f"{mism} mismatches"))
            st = c.consumer_stats
            if st.get("recv_msgs") != msgs or st.get("stream_hash") != h:
                v.append(Violation("report-verdict", f"channel {ch}: report's consumer stats "
                                   f"{st.get('recv_msgs')} messages, hash "
                                   f"{st.get('stream_hash', 0):x} differ from the consumer's "
                                   f"{msgs} messages, hash {h:x}"))
            if rep.ok and not ok:
                v.append(Violation("report-verdict", f"report is ok but channel {ch}'s consumer "
                                   f"found bad data"))
        for f in c.faults:
            # The report names who recorded a channel fault ("... recorded by NAME");
            # any process it names must be one of the channel's two endpoints.
            named = [n for n in procs if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", f)]
            if any(n not in (prod.name, cons.name) for n in named):
                v.append(Violation("report-forged", f"channel {ch} fault {f!r} recorded by a "
                                   f"process that is not its endpoint"))
    af = atk.fault
    if (prog is not None and af is not None and af.kind not in SYSCALL_KILLS
            and not snippets[0] <= af.pc < snippets[1]):
        want = {o.expect for o in prog.ops if o.expect and o.x and o.x[0] == af.addr}
        if want and af.kind not in want:
            v.append(Violation("fault-kind", f"attacker faulted at {af.addr:#x} as {af.kind}; "
                               f"a probe there expects {'/'.join(sorted(want))}"))
    return v


def primary(vs: list[Violation]) -> Violation | None:
    """The most severe violation (INVARIANTS order), or None."""
    return min(vs, key=lambda x: INVARIANTS.index(x.invariant)) if vs else None
