"""Machine code to Z3: a symbolic executor over Ghidra P-code (pypcode).

The proofs about the ring and the notify check (``proofs/ring_binary.py``,
``proofs/notify_binary.py``) are about the instructions the pinned zig toolchain emitted,
not about the C text. This module turns those instructions into Z3 terms.

Why P-code. pypcode wraps Ghidra's SLEIGH decoders: one small IR (about 60 operations)
covers both x86-64 and AArch64 with the semantics of every instruction written down by
the Ghidra project, so the executor below is one interpreter, not two hand-written ISA
semantics. angr would bring the same IR (or VEX) with a much heavier dependency and its
own solver layer; capstone plus our own semantics would mean writing and trusting the
semantics of every instruction zig emits. The pin is ``pypcode==3.3.3`` (pyproject.toml).

Soundness rules the executor keeps:

* Every P-code operation it does not model raises :class:`LiftError` naming the
  instruction, so an unknown instruction stops the proof instead of being skipped.
* Both sides of a conditional branch are explored whenever the path condition allows
  them (checked with Z3), so a proof covers every path, not the one a test happened to
  take. A loop is unrolled up to ``max_visits`` per instruction; a path that wants more
  is reported as *cut* and the proof module decides what that means (it must not be
  ignored silently).
* Memory is never a flat array the function may scribble on: every load and store is
  handed to an :class:`Env`, which classifies the address against the regions the
  function may touch. An access no region provably contains is a violation.

One SLEIGH imprecision is corrected (and only this one): AArch64 ``ldar``/``ldapr`` with a
32-bit destination is described as an 8-byte load into the 64-bit register; the
architecture loads 4 bytes and zero-extends (Arm ARM C6.2, LDAR: "32-bit variant ... loads a
word"). :meth:`Lifter.ops` rewrites that one LOAD.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import z3

from keusim.errors import KeusimError

LANGS = {"x86_64": "x86:LE:64:default", "arm64": "AARCH64:LE:64:v8A"}


class LiftError(KeusimError):
    """An instruction or P-code operation the executor cannot model (the proof stops)."""


class Violation(Exception):
    """Raised by an :class:`Env` when a path does something the property forbids."""


# --------------------------------------------------------------------------------------
# Object files
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Func:
    """One function symbol of an ELF: its address and bytes."""

    name: str
    addr: int
    code: bytes


@dataclass(frozen=True)
class Image:
    """The functions of an ELF (object or linked), its data symbols and the call
    relocations of an object file (call-site offset -> symbol name)."""

    path: Path
    funcs: dict[str, Func]
    symbols: dict[str, int]
    calls: dict[int, str]

    def func_at(self, addr: int) -> Func | None:
        for f in self.funcs.values():
            if f.addr == addr:
                return f
        return None


def read_image(path: Path) -> Image:
    """Read function bytes, symbol addresses and call relocations from an ELF."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    funcs: dict[str, Func] = {}
    symbols: dict[str, int] = {}
    calls: dict[int, str] = {}
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise LiftError(f"{path}: no symbol table; build without stripping")
        relocatable = elf["e_type"] == "ET_REL"
        syms = list(symtab.iter_symbols())
        for s in syms:
            if s.name and s["st_shndx"] not in ("SHN_UNDEF", "SHN_ABS"):
                symbols[s.name] = s["st_value"]
            if s["st_info"]["type"] != "STT_FUNC" or not s["st_size"]:
                continue
            sec = elf.get_section(s["st_shndx"])
            start = s["st_value"] - (0 if relocatable else sec["sh_addr"])
            funcs[s.name] = Func(s.name, s["st_value"], sec.data()[start:start + s["st_size"]])
        if relocatable:
            for sec in elf.iter_sections():
                if isinstance(sec, RelocationSection) and sec.name in (".rela.text", ".rel.text"):
                    for r in sec.iter_relocations():
                        calls[r["r_offset"]] = syms[r["r_info_sym"]].name
    return Image(Path(path), funcs, symbols, calls)


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Insn:
    """One decoded instruction and its P-code."""

    addr: int
    length: int
    mnemonic: str
    body: str
    ops: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.addr:#x}: {self.mnemonic.lower()} {self.body}".rstrip()


class Lifter:
    """Decodes the instructions of one :class:`Image` (cached per address)."""

    def __init__(self, arch: str, image: Image) -> None:
        import pypcode

        if arch not in LANGS:
            raise LiftError(f"no P-code language for architecture {arch!r}")
        self.arch = arch
        self.image = image
        self.ctx = pypcode.Context(LANGS[arch])
        self._cache: dict[int, Insn] = {}
        self.reg = {name: vn for name, vn in self.ctx.registers.items()}

    def _bytes_at(self, addr: int) -> bytes:
        for f in self.image.funcs.values():
            if f.addr <= addr < f.addr + len(f.code):
                return f.code[addr - f.addr:]
        raise LiftError(f"{addr:#x} is outside every function of {self.image.path.name}")

    def insn(self, addr: int) -> Insn:
        if addr in self._cache:
            return self._cache[addr]
        import pypcode

        code = self._bytes_at(addr)
        dis = self.ctx.disassemble(code, addr, max_instructions=1).instructions
        tx = self.ctx.translate(code, addr, max_instructions=1)
        if not dis or not tx.ops:
            raise LiftError(f"{addr:#x}: cannot decode the instruction "
                            f"(bytes {code[:8].hex()}) in {self.image.path.name}")
        d = dis[0]
        ops = [op for op in tx.ops if op.opcode != pypcode.OpCode.IMARK]
        mn = d.mnem.lower()
        if (self.arch == "arm64" and mn in ("ldar", "ldapr", "ldxr", "ldaxr")
                and d.body.lower().startswith("w")):
            ops = [_Load4(op) if op.opcode == pypcode.OpCode.LOAD else op for op in ops]
        ins = Insn(addr, d.length, d.mnem.lower(), d.body, tuple(ops))
        self._cache[addr] = ins
        return ins


@dataclass(frozen=True)
class _VN:
    space: Any
    offset: int
    size: int


class _Load4:
    """A LOAD narrowed to 4 bytes whose result is zero-extended (see module docstring)."""

    def __init__(self, op: Any) -> None:
        self.opcode = op.opcode
        self.inputs = op.inputs
        self.output = op.output
        self.narrow = 4


# --------------------------------------------------------------------------------------
# Symbolic execution
# --------------------------------------------------------------------------------------

@dataclass
class Event:
    """A memory access or a barrier on a path, in program order.

    ``region`` is the Env's name for where it went, ``offset`` the byte offset in that
    region (a Z3 term), ``value`` the loaded or stored term. ``deps`` names the loads
    (by event index) whose values the address, or any branch taken before it, depends
    on: ``addr`` and ``ctrl`` dependencies in the memory-model sense.
    """

    kind: str                     # "ld", "st", "fence", "call"
    insn: Insn
    region: str = ""
    offset: Any = None
    size: int = 0
    value: Any = None
    addr_deps: frozenset[int] = frozenset()
    ctrl_deps: frozenset[int] = frozenset()
    note: str = ""


@dataclass
class State:
    """Registers (byte-granular), stack bytes, the path condition and the events."""

    pc: int
    regs: dict[tuple[str, int], Any] = field(default_factory=dict)
    uniq: dict[int, Any] = field(default_factory=dict)
    stack: dict[int, Any] = field(default_factory=dict)
    cond: list[Any] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    visits: dict[int, int] = field(default_factory=dict)
    ctrl: frozenset[int] = frozenset()
    data: dict[str, Any] = field(default_factory=dict)   # per-path Env bookkeeping
    depth: int = 0                                          # call depth (followed calls)
    iload: dict[Any, Any] = field(default_factory=dict)     # this instruction's loads

    def fork(self) -> State:
        return State(self.pc, dict(self.regs), dict(self.uniq), dict(self.stack),
                     list(self.cond), list(self.events), dict(self.visits), self.ctrl,
                     dict(self.data), self.depth, dict(self.iload))


@dataclass
class PathEnd:
    """How a path ended: ``ret`` (returned), ``noreturn`` (a summarized call that does not
    return, e.g. the kernel's reject()), ``violation`` (with ``why``), ``cut`` (loop bound
    reached)."""

    kind: str
    state: State
    why: str = ""
    ret: Any = None


class Env:
    """What the memory around a function looks like; subclassed per proof.

    ``load``/``store`` get the address term and must either return (the value, for a
    load) after appending an Event, or raise :class:`Violation`. ``call`` handles a CALL
    to a target (an address, or a relocation's symbol name): return True to continue
    after the call, False to end the path as ``noreturn``, or None to follow the call
    into its body (only for targets inside the image).
    """

    def load(self, ex: Executor, st: State, addr: Any, size: int, insn: Insn) -> Any:
        raise NotImplementedError

    def store(self, ex: Executor, st: State, addr: Any, size: int, value: Any,
              insn: Insn) -> None:
        raise NotImplementedError

    def call(self, ex: Executor, st: State, target: int | str, insn: Insn) -> bool | None:
        raise Violation(f"{insn}: call to {target} has no summary")

    def fence(self, ex: Executor, st: State, insn: Insn) -> None:
        st.events.append(Event("fence", insn, note=insn.mnemonic + " " + insn.body))


def _bv(v: Any, size: int) -> Any:
    return z3.BitVecVal(v, size * 8)


def free_consts(e: Any) -> set[str]:
    """Names of the uninterpreted constants in a term (for dependency tracking)."""
    out: set[str] = set()
    seen: set[int] = set()
    todo = [e]
    while todo:
        t = todo.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.add(t.decl().name())
        else:
            todo.extend(t.children())
    return out


class Executor:
    """Runs one function symbolically over every feasible path.

    ``pre`` is the list of hypotheses (the function's precondition); ``env`` supplies
    memory; ``max_visits`` bounds how often one path may execute one instruction.
    """

    def __init__(self, lifter: Lifter, env: Env, pre: Iterable[Any], max_visits: int = 4,
                 max_paths: int = 400, timeout_ms: int = 20_000, logic: str = "QF_BV") -> None:
        self.lifter = lifter
        self.env = env
        self.pre = list(pre)
        self.max_visits = max_visits
        self.max_paths = max_paths
        self.timeout_ms = timeout_ms
        self.logic = logic            # QF_ABV when the Env models memory as an array
        self.load_syms: dict[str, int] = {}  # fresh load symbol -> event index
        self._fresh = 0

    # -- solver helpers -------------------------------------------------------------
    def feasible(self, st: State, extra: Any = None) -> bool:
        # A fresh solver per query: Z3 answers a one-shot QF_BV query by bit-blasting to
        # SAT, which is one to two orders of magnitude faster here than the incremental
        # (push/pop) solver it falls back to otherwise.
        s = z3.SolverFor(self.logic)
        s.set("timeout", self.timeout_ms)
        s.set("random_seed", 0)
        s.add(*self.pre, *st.cond)
        if extra is not None:
            s.add(extra)
        r = s.check()
        if r == z3.unknown:
            raise LiftError(f"Z3 gave up on a path condition ({s.reason_unknown()})")
        return r == z3.sat

    def valid(self, st: State, claim: Any) -> bool:
        """True when the precondition and path condition imply ``claim``."""
        return not self.feasible(st, z3.Not(claim))

    def fresh(self, name: str, bits: int) -> Any:
        self._fresh += 1
        return z3.BitVec(f"{name}!{self._fresh}", bits)

    def deps_of(self, term: Any) -> frozenset[int]:
        names = free_consts(term)
        return frozenset(self.load_syms[n] for n in names if n in self.load_syms)

    # -- varnodes ---------------------------------------------------------------------
    def reg_init(self, name: str, value: Any, st: State) -> None:
        vn = self.lifter.reg[name]
        self._write(st, _VN(vn.space, vn.offset, vn.size), value)

    def read_reg(self, st: State, name: str) -> Any:
        vn = self.lifter.reg[name]
        return self._read(st, _VN(vn.space, vn.offset, vn.size))

    def _read(self, st: State, vn: Any) -> Any:
        sp = vn.space.name
        if sp == "const":
            return _bv(vn.offset, vn.size)
        if sp == "unique":
            try:
                v = st.uniq[(vn.offset, vn.size)]
            except KeyError:
                raise LiftError(f"{st.pc:#x}: P-code reads temporary {vn.offset:#x} "
                                "before writing it") from None
            return v
        if sp == "register":
            parts = []
            for i in range(vn.size):
                k = (sp, vn.offset + i)
                if k not in st.regs:
                    st.regs[k] = z3.BitVec(f"reg_{vn.offset + i:x}", 8)
                parts.append(st.regs[k])
            return join_bytes(parts)
        if sp == "ram":                                  # an absolute memory operand
            return self.env.load(self, st, _bv(vn.offset, 8), vn.size, self._insn)
        raise LiftError(f"{st.pc:#x}: P-code varnode in space {sp!r} is not modelled")

    def _write(self, st: State, vn: Any, value: Any) -> None:
        sp = vn.space.name
        value = z3.simplify(value)
        if sp == "unique":
            st.uniq[(vn.offset, vn.size)] = value
            return
        if sp == "register":
            for i in range(vn.size):
                st.regs[(sp, vn.offset + i)] = (value if vn.size == 1
                                                else z3.Extract(8 * i + 7, 8 * i, value))
            return
        if sp == "ram":
            self.env.store(self, st, _bv(vn.offset, 8), vn.size, value, self._insn)
            return
        raise LiftError(f"{st.pc:#x}: P-code writes space {sp!r}, which is not modelled")

    # -- running ----------------------------------------------------------------------
    def run(self, st: State) -> list[PathEnd]:
        """Explore every feasible path from ``st``; returns how each ended."""
        ends: list[PathEnd] = []
        work = [st]
        while work:
            s = work.pop()
            ends.extend(self._step_insn(s, work))
            if len(ends) + len(work) > self.max_paths:
                raise LiftError(f"more than {self.max_paths} paths; raise max_paths or "
                                "summarize a call")
        return ends

    def _step_insn(self, st: State, work: list[State]) -> list[PathEnd]:
        ins = self.lifter.insn(st.pc)
        self._insn = ins
        n = st.visits.get(st.pc, 0) + 1
        st.visits[st.pc] = n
        if n > self.max_visits:
            return [PathEnd("cut", st, f"{ins}: visited more than {self.max_visits} times")]
        if ins.mnemonic in ("dmb", "dsb", "isb", "mfence", "lfence", "sfence"):
            self.env.fence(self, st, ins)
        st.uniq = {}
        st.iload = {}
        return self._exec_ops(st, ins, 0, work)

    def _exec_ops(self, st: State, ins: Insn, i: int, work: list[State]) -> list[PathEnd]:
        import pypcode

        Op = pypcode.OpCode
        ops = ins.ops
        while i < len(ops):
            op = ops[i]
            oc = op.opcode
            inp = op.inputs
            try:
                if oc == Op.BRANCH or oc == Op.CALL:
                    tgt = inp[0]
                    if tgt.space.name == "const":            # relative p-code branch
                        i = i + _signed(tgt.offset, tgt.size)
                        continue
                    if oc == Op.CALL:
                        return self._call(st, ins, tgt.offset, work)
                    st.pc = tgt.offset
                    work.append(st)
                    return []
                if oc == Op.CBRANCH:
                    c = self._read(st, inp[1]) != 0
                    c = z3.simplify(c)
                    tgt = inp[0]
                    taken, fall = st, st.fork()
                    taken.cond = taken.cond + [c]
                    fall.cond = fall.cond + [z3.Not(c)]
                    deps = self.deps_of(c)
                    taken.ctrl = taken.ctrl | deps
                    fall.ctrl = fall.ctrl | deps
                    # Feasibility is checked lazily: a path's goal is checked under its
                    # condition anyway (an infeasible path proves any goal), so only a
                    # branch into a loop (a revisit) or a decided condition is pruned here.
                    if z3.is_true(c) or z3.is_false(c):
                        ok_t, ok_f = z3.is_true(c), z3.is_false(c)
                    else:
                        nxt = tgt.offset if tgt.space.name != "const" else ins.addr
                        ok_t = (nxt not in taken.visits) or self.feasible(taken)
                        ok_f = (i + 1 < len(ops) or ins.addr + ins.length not in fall.visits
                                ) or self.feasible(fall)
                    ends: list[PathEnd] = []
                    if ok_f:
                        ends += self._exec_ops(fall, ins, i + 1, work)
                    if ok_t:
                        if tgt.space.name == "const":
                            ends += self._exec_ops(taken, ins, i + _signed(tgt.offset, tgt.size),
                                                   work)
                        else:
                            taken.pc = tgt.offset
                            work.append(taken)
                    return ends
                if oc == Op.RETURN or oc == Op.BRANCHIND or oc == Op.CALLIND:
                    tgt = z3.simplify(self._read(st, inp[0]))
                    if oc == Op.RETURN or (oc == Op.BRANCHIND and self.lifter.arch == "arm64"
                                          and ins.mnemonic == "ret"):
                        return [PathEnd("ret", st, ret=tgt)]
                    if not z3.is_bv_value(tgt):
                        raise LiftError(f"{ins}: indirect jump/call to a computed address "
                                        "is not modelled")
                    if oc == Op.CALLIND:
                        return self._call(st, ins, tgt.as_long(), work)
                    st.pc = tgt.as_long()
                    work.append(st)
                    return []
                if oc == Op.LOAD:
                    addr = self._read(st, inp[1])
                    size = getattr(op, "narrow", None) or op.output.size
                    # SLEIGH may load one memory operand several times within one
                    # instruction (x86 `sub r32, [m32]`: once for the result, once per
                    # flag). The instruction accesses memory once: one load, one value.
                    key = (addr.sexpr(), size)
                    if key in st.iload:
                        v = st.iload[key]
                    else:
                        v = self.env.load(self, st, addr, size, ins)
                        st.iload[key] = v
                    if size < op.output.size:
                        v = z3.ZeroExt(8 * (op.output.size - size), v)
                    self._write(st, op.output, v)
                elif oc == Op.STORE:
                    addr = self._read(st, inp[1])
                    val = self._read(st, inp[2])
                    self.env.store(self, st, addr, inp[2].size, val, ins)
                elif oc == Op.CALLOTHER:
                    if ins.mnemonic in ("dmb", "dsb", "isb"):
                        pass                                   # recorded in _step_insn
                    else:
                        raise LiftError(f"{ins}: P-code user operation (CALLOTHER) "
                                        "is not modelled")
                else:
                    self._write(st, op.output, self._alu(oc, op, st, ins))
            except Violation as v:
                if not self.feasible(st):
                    return []
                return [PathEnd("violation", st, f"{ins}: {v}")]
            i += 1
        st.pc = ins.addr + ins.length
        work.append(st)
        return []

    def _call(self, st: State, ins: Insn, target: int, work: list[State]) -> list[PathEnd]:
        name: int | str = target
        # In an object file a call's target is a relocation at the call's operand.
        for off in range(ins.addr, ins.addr + ins.length):
            if off in self.lifter.image.calls:
                name = self.lifter.image.calls[off]
        try:
            r = self.env.call(self, st, name, ins)
        except Violation as v:
            return [PathEnd("violation", st, f"{ins}: {v}")]
        if r is False:
            return [PathEnd("noreturn", st, f"{ins}: call to {name}")]
        if r is None:
            f = self.lifter.image.func_at(target) if isinstance(target, int) else None
            if f is None:
                raise LiftError(f"{ins}: call to {name} is neither summarized nor in the image")
            # Follow the call: the return address the CALL pushed / set is the next insn.
            st.pc = f.addr
            st.depth += 1
            work.append(st)
            return []
        st.pc = ins.addr + ins.length
        if self.lifter.arch == "x86_64":                       # the summary pops the return
            rsp = self.read_reg(st, "RSP")
            self.reg_init("RSP", rsp + 8, st)
        work.append(st)
        return []

    def _alu(self, oc: Any, op: Any, st: State, ins: Insn) -> Any:
        import pypcode

        Op = pypcode.OpCode
        a = [self._read(st, x) for x in op.inputs]
        osz = op.output.size * 8

        def b(c: Any) -> Any:
            return z3.If(c, _bv(1, 1), _bv(0, 1))

        def fit(x: Any, bits: int) -> Any:
            w = x.size()
            if w == bits:
                return x
            return z3.ZeroExt(bits - w, x) if w < bits else z3.Extract(bits - 1, 0, x)

        if oc == Op.COPY:
            return a[0]
        if oc == Op.INT_ADD:
            return a[0] + a[1]
        if oc == Op.INT_SUB:
            return a[0] - a[1]
        if oc == Op.INT_MULT:
            return a[0] * a[1]
        if oc == Op.INT_DIV:
            return z3.UDiv(a[0], a[1])
        if oc == Op.INT_REM:
            return z3.URem(a[0], a[1])
        if oc == Op.INT_AND:
            return a[0] & a[1]
        if oc == Op.INT_OR:
            return a[0] | a[1]
        if oc == Op.INT_XOR:
            return a[0] ^ a[1]
        if oc == Op.INT_NEGATE:
            return ~a[0]
        if oc == Op.INT_2COMP:
            return -a[0]
        if oc == Op.INT_LEFT:
            return a[0] << fit(a[1], osz)
        if oc == Op.INT_RIGHT:
            return z3.LShR(a[0], fit(a[1], osz))
        if oc == Op.INT_SRIGHT:
            return a[0] >> fit(a[1], osz)
        if oc == Op.INT_ZEXT:
            return z3.ZeroExt(osz - a[0].size(), a[0])
        if oc == Op.INT_SEXT:
            return z3.SignExt(osz - a[0].size(), a[0])
        if oc == Op.INT_EQUAL:
            return b(a[0] == a[1])
        if oc == Op.INT_NOTEQUAL:
            return b(a[0] != a[1])
        if oc == Op.INT_LESS:
            return b(z3.ULT(a[0], a[1]))
        if oc == Op.INT_LESSEQUAL:
            return b(z3.ULE(a[0], a[1]))
        if oc == Op.INT_SLESS:
            return b(a[0] < a[1])
        if oc == Op.INT_SLESSEQUAL:
            return b(a[0] <= a[1])
        if oc == Op.INT_CARRY:
            return b(z3.ULT(a[0] + a[1], a[0]))
        if oc == Op.INT_SCARRY:
            return b(z3.Not(z3.BVAddNoOverflow(a[0], a[1], True)))
        if oc == Op.INT_SBORROW:
            return b(z3.Not(z3.BVSubNoOverflow(a[0], a[1])))
        if oc == Op.BOOL_NEGATE:
            return b(a[0] == 0)
        if oc == Op.BOOL_AND:
            return b(z3.And(a[0] != 0, a[1] != 0))
        if oc == Op.BOOL_OR:
            return b(z3.Or(a[0] != 0, a[1] != 0))
        if oc == Op.BOOL_XOR:
            return b(z3.Xor(a[0] != 0, a[1] != 0))
        if oc == Op.SUBPIECE:
            lo = op.inputs[1].offset * 8
            hi = min(lo + osz, a[0].size()) - 1
            v = z3.Extract(hi, lo, a[0])
            return fit(v, osz)
        if oc == Op.PIECE:
            return z3.Concat(a[0], a[1])
        if oc == Op.POPCOUNT:
            w = a[0].size()
            return fit(sum(z3.ZeroExt(osz - 1 if osz > 1 else 0, z3.Extract(k, k, a[0]))
                           for k in range(w)), osz)
        raise LiftError(f"{ins}: P-code operation {oc.name} is not modelled")


def join_bytes(parts: list[Any]) -> Any:
    """Little-endian bytes to one term. When the bytes are consecutive slices of one term
    (a register read back after a write), return that term (or one slice of it), so
    addresses stay readable and cheap for the solver."""
    first = parts[0]
    if (z3.is_app_of(first, z3.Z3_OP_EXTRACT)):
        src = first.arg(0)
        lo = first.params()[1]
        ok = True
        for j, b in enumerate(parts):
            if not (z3.is_app_of(b, z3.Z3_OP_EXTRACT) and b.arg(0).eq(src)
                    and b.params() == [lo + 8 * j + 7, lo + 8 * j]):
                ok = False
                break
        if ok:
            hi = lo + 8 * len(parts) - 1
            if lo == 0 and hi == src.size() - 1:
                return src
            return z3.simplify(z3.Extract(hi, lo, src))
    v = parts[0] if len(parts) == 1 else z3.Concat(*reversed(parts))
    return z3.simplify(v)


def _signed(v: int, size: int) -> int:
    bits = size * 8
    return v - (1 << bits) if v >> (bits - 1) else v


# --------------------------------------------------------------------------------------
# Region helpers for Envs
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Region:
    """A named byte range ``[base, base + size)`` a function may access."""

    name: str
    base: Any
    size: Any           # int or Z3 term (bytes)
    readable: bool = True
    writable: bool = True


def const_offset(addr: Any, base: Any) -> int | None:
    """``addr - base`` when it simplifies to a constant (as a signed 64-bit number)."""
    d = z3.simplify(addr - base)
    if z3.is_bv_value(d):
        return _signed(d.as_long(), 8)
    return None


def classify(ex: Executor, st: State, addr: Any, size: int, regions: Iterable[Region]
             ) -> tuple[Region, Any]:
    """The region provably containing ``[addr, addr + size)``, and the offset in it.

    Constant offsets are tried first (cheap); a region of symbolic size is checked with
    Z3 under the path condition. Raises Violation when no region contains the access for
    every value the path allows.
    """
    regions = list(regions)
    for r in regions:
        k = const_offset(addr, r.base)
        if k is not None and isinstance(r.size, int) and 0 <= k and k + size <= r.size:
            return r, z3.BitVecVal(k, 64)
    for r in regions:
        if isinstance(r.size, int):
            continue
        off = z3.simplify(addr - r.base)
        sz = r.size if z3.is_bv(r.size) else z3.BitVecVal(r.size, 64)
        inside = z3.And(z3.ULE(off, sz), z3.ULE(_bv(size, 8), sz - off))
        if ex.valid(st, inside):
            return r, off
    raise Violation(f"{size}-byte access at {z3.simplify(addr)} is not provably inside "
                    f"any of: {', '.join(r.name for r in regions)}")


def counterexample(ex: Executor, st: State, show: dict[str, Any],
                   extra: Any = None) -> dict[str, int]:
    """Values of ``show`` in a model of pre /\\ path condition (/\\ extra)."""
    s = z3.SolverFor(ex.logic)
    s.set("timeout", 20_000)
    s.add(*ex.pre, *st.cond)
    if extra is not None:
        s.add(extra)
    if s.check() != z3.sat:
        return {}
    m = s.model()
    out = {}
    for k, v in show.items():
        e = m.eval(v, model_completion=True)
        out[k] = e.as_long() if z3.is_bv_value(e) else str(e)
    return out


@lru_cache(maxsize=64)
def lifter_for(arch: str, path: str) -> Lifter:
    """A cached Lifter for an ELF."""
    return Lifter(arch, read_image(Path(path)))


Callback = Callable[..., Any]


def struct_layout(path: Path, name: str) -> tuple[int, dict[str, int]]:
    """(size, {member: byte offset}) of ``struct name`` from an ELF's DWARF (built -g).

    Proofs about compiled code take layouts from the binary they are about, so a field
    reordered in a header cannot leave a proof checking the old offsets.
    """
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        if not elf.has_dwarf_info():
            raise LiftError(f"{path}: no DWARF; build with -g")
        for cu in elf.get_dwarf_info().iter_CUs():
            for die in cu.iter_DIEs():
                if die.tag != "DW_TAG_structure_type":
                    continue
                n = die.attributes.get("DW_AT_name")
                if n is None or n.value.decode() != name or "DW_AT_byte_size" not in die.attributes:
                    continue
                members = {}
                for ch in die.iter_children():
                    if ch.tag == "DW_TAG_member" and "DW_AT_name" in ch.attributes:
                        members[ch.attributes["DW_AT_name"].value.decode()] = \
                            ch.attributes["DW_AT_data_member_location"].value
                return die.attributes["DW_AT_byte_size"].value, members
    raise LiftError(f"{path}: no DWARF description of struct {name}")
