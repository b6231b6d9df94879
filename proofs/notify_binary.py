"""The kernel's notify check proved on the compiled kernel (both ISAs).

``sys_notify`` (kernel/notify.c) is lifted from the kernel ELF that keusim boots
(keusim.toolchain.builds.kernel_image) and executed symbolically over every path
(keusim.proof.lift). Struct layouts (``struct channel``, ``struct proc``,
``struct notify_desc``) come from that ELF's DWARF, not from the headers.

Environment: kernel memory is one Z3 byte array ``M`` (any initial contents), the stack
frame is separate and addressed by constant offsets. Callees are summaries:
``myproc`` returns an arbitrary ``struct proc *``; ``copyin`` fills its destination
(which must be in the frame) with arbitrary descriptor bytes and returns an arbitrary
status; ``notify_tag_ok`` returns an arbitrary verdict (the tag is not what is proved
here; docs/notify.md); ``reject`` does not return (it kills the caller); ``wakeup``
returns. Preconditions: every set-up channel has a power-of-two capacity in
[4096, 1 MiB] (what channels_init accepts), and the caller's ``struct proc`` does not
overlap the channel table entry (distinct kernel objects), and ``0 <= nchan <=
MAXCHAN`` (the length of ``proc.notify_seq``, from DWARF).

Proved, for every path on which ``sys_notify`` returns 0 (accepted):

* ``notify.bin.<arch>.capability``: ``d.channel < nchan``, the channel is set up, and the
  caller is its producer;
* ``notify.bin.<arch>.window``: ``flags == 0``, ``length <= capacity``, and every named
  byte ``offset + i`` (``i < length``) is among the last ``capacity`` bytes published
  before ``head`` (as the kernel read it, once, from the head page) and sits at
  ``data[(offset & (capacity-1)) + i]`` inside ``data[0, capacity)``;
* ``notify.bin.<arch>.fresh``: ``d.seq`` is greater than the last sequence number
  accepted from this caller on this channel, and becomes the new last one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import z3

from keusim.proof import lift
from keusim.proof.lift import Env, Event, Executor, Insn, PathEnd, State, Violation
from keusim.proof.prove import Outcome, Proof, run_as_script

ARCHES = ("x86_64", "arm64")
KERNBASE = 0xFFFFFFFF80000000   # kernel/include/memlayout.h: P2V(pa) = pa + KERNBASE
FRAME = 1024                    # bytes of stack below the entry SP sys_notify may use


def kernel_elf(arch: str, root: Path | None = None) -> Path:
    """The kernel ELF for arch, from the tree at root (default: this checkout)."""
    from keusim.toolchain import builds

    return builds.kernel_image(arch, root=root)


class KernelEnv(Env):
    """Kernel memory as one array; the frame by constant offsets; callee summaries."""

    def __init__(self, arch: str, image: lift.Image) -> None:
        self.arch = arch
        self.image = image
        self.names = {f.addr: n for n, f in image.funcs.items()}
        self.SP0 = z3.BitVec("sp0", 64)
        self.RET = z3.BitVec("ret", 64)
        self.P = z3.BitVec("proc", 64)
        self.M0 = z3.Array("M", z3.BitVecSort(64), z3.BitVecSort(8))

    def initial(self, ex: Executor, entry: int, va: Any) -> State:
        st = State(entry)
        st.data["M"] = self.M0
        if self.arch == "x86_64":
            ex.reg_init("RDI", va, st)
            ex.reg_init("RSP", self.SP0, st)
            for i in range(8):
                st.stack[i] = z3.Extract(8 * i + 7, 8 * i, self.RET)
        else:
            ex.reg_init("x0", va, st)
            ex.reg_init("sp", self.SP0, st)
            ex.reg_init("x30", self.RET, st)
        return st

    def _frame(self, addr: Any, size: int) -> int | None:
        k = lift.const_offset(addr, self.SP0)
        if k is not None and -FRAME <= k and k + size <= 8:
            return k
        return None

    def load(self, ex: Executor, st: State, addr: Any, size: int, insn: Insn) -> Any:
        k = self._frame(addr, size)
        if k is not None:
            bs = [st.stack.get(k + i) for i in range(size)]
            return lift.join_bytes([b if b is not None else ex.fresh("frame", 8) for b in bs])
        v = read(st.data["M"], addr, size)
        st.events.append(Event("ld", insn, "kmem", addr, size, v))
        return v

    def store(self, ex: Executor, st: State, addr: Any, size: int, value: Any,
              insn: Insn) -> None:
        k = self._frame(addr, size)
        if k is not None:
            for i in range(size):
                st.stack[k + i] = value if size == 1 else z3.Extract(8 * i + 7, 8 * i, value)
            return
        m = st.data["M"]
        for i in range(size):
            m = z3.Store(m, addr + i, z3.Extract(8 * i + 7, 8 * i, value))
        st.data["M"] = m
        st.events.append(Event("st", insn, "kmem", addr, size, value))

    def _set_ret(self, ex: Executor, st: State, v: Any) -> None:
        ex.reg_init("RAX" if self.arch == "x86_64" else "x0", v, st)

    def _arg(self, ex: Executor, st: State, n: int) -> Any:
        regs = ("RDI", "RSI", "RDX", "RCX") if self.arch == "x86_64" else ("x0", "x1", "x2", "x3")
        return ex.read_reg(st, regs[n])

    def call(self, ex: Executor, st: State, target: int | str, insn: Insn) -> bool | None:
        name = self.names.get(target, target) if isinstance(target, int) else target
        if name == "myproc":
            self._set_ret(ex, st, self.P)
            return True
        if name == "copyin":
            dst = self._arg(ex, st, 1)
            n = z3.simplify(self._arg(ex, st, 3))
            if not z3.is_bv_value(n):
                raise Violation("copyin with a computed length")
            n = n.as_long()
            k = self._frame(dst, n)
            if k is None:
                raise Violation("copyin into memory outside sys_notify's frame")
            desc = z3.BitVec("desc", 8 * n)
            st.data["desc_at"] = k
            st.data["desc"] = desc
            for i in range(n):
                st.stack[k + i] = z3.Extract(8 * i + 7, 8 * i, desc)
            self._set_ret(ex, st, z3.ZeroExt(32, ex.fresh("copyin_status", 32)))
            return True
        if name == "notify_tag_ok":
            self._set_ret(ex, st, z3.ZeroExt(32, ex.fresh("tag_ok", 32)))
            return True
        if name == "reject":
            return False
        if name == "wakeup":
            self._set_ret(ex, st, ex.fresh("wakeup", 64))
            return True
        raise Violation(f"calls {name}, which has no summary")


def read(m: Any, addr: Any, size: int) -> Any:
    """``size`` little-endian bytes of array m at addr."""
    bs = [z3.Select(m, addr + i) for i in range(size)]
    return bs[0] if size == 1 else z3.Concat(*reversed(bs))


@dataclass
class NRun:
    arch: str
    env: KernelEnv
    ex: Executor
    ends: list[PathEnd]
    chan: tuple[int, dict[str, int]]
    proc: tuple[int, dict[str, int]]
    desc: tuple[int, dict[str, int]]


@lru_cache(maxsize=8)
def run_notify(arch: str, elf: str) -> NRun:
    lf = lift.lifter_for(arch, elf)
    if "sys_notify" not in lf.image.funcs:
        raise lift.LiftError(f"sys_notify is not a function of {Path(elf).name}")
    env = KernelEnv(arch, lf.image)
    chan = lift.struct_layout(Path(elf), "channel")
    proc = lift.struct_layout(Path(elf), "proc")
    desc = lift.struct_layout(Path(elf), "notify_desc")
    pre = _pre(env, lf.image, chan, proc)
    ex = Executor(lf, env, pre, max_visits=2, timeout_ms=60_000)
    st = env.initial(ex, lf.image.funcs["sys_notify"].addr, z3.BitVec("desc_va", 64))
    ends = ex.run(st)
    return NRun(arch, env, ex, ends, chan, proc, desc)


def _chan_addr(env: KernelEnv, image: lift.Image, chan: tuple[int, dict[str, int]],
               ch: Any) -> Any:
    tab = read(env.M0, z3.BitVecVal(image.symbols["chantab"], 64), 8)
    return tab + z3.ZeroExt(32, ch) * chan[0]


def _pre(env: KernelEnv, image: lift.Image, chan: tuple[int, dict[str, int]],
         proc: tuple[int, dict[str, int]]) -> list[Any]:
    """Set-up channels have power-of-two capacities in range; the caller's proc and the
    named channel entry are disjoint kernel objects."""
    ch = z3.Extract(31, 0, z3.BitVec("desc", 256))
    c = _chan_addr(env, image, chan, ch)
    cap = read(env.M0, c + chan[1]["capacity"], 4)
    ok = read(env.M0, c + chan[1]["ok"], 4)
    size_c, size_p = z3.BitVecVal(chan[0], 64), z3.BitVecVal(proc[0], 64)
    nchan = read(env.M0, z3.BitVecVal(image.symbols["nchan"], 64), 4)
    # notify_seq[MAXCHAN] ends where the next member of struct proc starts.
    nxt = min(v for v in proc[1].values() if v > proc[1]["notify_seq"])
    maxchan = (nxt - proc[1]["notify_seq"]) // 8
    return [
        z3.Implies(ok != 0, z3.Or(*[cap == (1 << k) for k in range(12, 21)])),
        0 <= nchan, nchan <= maxchan,          # channels_init: nchan <= MAXCHAN
        z3.ULE(c, c + size_c), z3.ULE(env.P, env.P + size_p),
        z3.Or(z3.ULE(c + size_c, env.P), z3.ULE(env.P + size_p, c)),
    ]


def _desc_field(run: NRun, name: str, size: int) -> Any:
    off = run.desc[1][name]
    d = z3.BitVec("desc", 8 * run.desc[0])
    return z3.Extract(8 * (off + size) - 1, 8 * off, d)


def _goals(run: NRun, st: State) -> dict[str, tuple[Any, dict[str, Any]]]:
    env, image = run.env, run.ex.lifter.image
    M0, P = env.M0, env.P
    chan_l, proc_l = run.chan[1], run.proc[1]
    ch = _desc_field(run, "channel", 4)
    off = _desc_field(run, "offset", 4)
    length = _desc_field(run, "length", 4)
    flags = _desc_field(run, "flags", 4)
    seq = _desc_field(run, "seq", 8)
    c = _chan_addr(env, image, run.chan, ch)
    nchan = read(M0, z3.BitVecVal(image.symbols["nchan"], 64), 4)
    cap = read(M0, c + chan_l["capacity"], 4)
    head_pa = read(M0, c + chan_l["head_pa"], 8)
    head = read(M0, head_pa + KERNBASE, 4)
    pid = read(M0, P + proc_l["pid"], 4)
    slot = P + proc_l["notify_seq"] + z3.ZeroExt(32, ch) * 8
    last = read(M0, slot, 8)
    i = z3.BitVec("i", 32)
    byte = off + i
    named = z3.ULT(i, length)
    in_win = [z3.Implies(named, z3.ULE(1, head - byte)),
              z3.Implies(named, z3.ULE(head - byte, cap)),
              z3.Implies(named, z3.ULT(z3.ZeroExt(32, off & (cap - 1)) + z3.ZeroExt(32, i),
                                       z3.ZeroExt(32, cap)))]
    show = {"channel": ch, "offset": off, "length": length, "flags": flags, "seq": seq,
            "capacity": cap, "head": head, "last seq": last, "byte i": i}
    return {
        "capability": (z3.And(z3.ULT(z3.ZeroExt(32, ch), z3.SignExt(32, nchan)),
                              read(M0, c + chan_l["ok"], 4) != 0,
                              read(M0, c + chan_l["producer"], 4) == pid - 1), show),
        "window": (z3.And(flags == 0, z3.ULE(length, cap), *in_win), show),
        "fresh": (z3.And(z3.UGT(seq, last), _last_store_is(st, slot, seq)), show),
    }


def _last_store_is(st: State, addr: Any, value: Any) -> Any:
    """The final contents of the 8 bytes at addr are value: some store wrote exactly
    them with value, and no later store touches them. (Stated over the path's store
    events rather than the final array: the same fact, far cheaper for Z3.)"""
    stores = [e for e in st.events if e.kind == "st"]
    cases = []
    for n, e in enumerate(stores):
        if e.size != 8:
            continue
        later = [z3.Or(z3.ULE(w.offset + w.size, addr), z3.ULE(addr + 8, w.offset))
                 for w in stores[n + 1:]]
        cases.append(z3.And(e.offset == addr, e.value == value, *later))
    return z3.Or(*cases) if cases else z3.BoolVal(False)


def check(arch: str, what: str, root: Path | None = None) -> Outcome:
    """Proved when every accepting path of the compiled sys_notify has property what."""
    try:
        run = run_notify(arch, str(kernel_elf(arch, root)))
    except lift.LiftError as e:
        return Outcome("error", str(e))
    accepted = 0
    ret_reg = "RAX" if arch == "x86_64" else "x0"
    for end in run.ends:
        st = end.state
        if end.kind == "noreturn":
            continue
        if end.kind != "ret":
            if run.ex.feasible(st):
                return Outcome("counterexample" if end.kind == "violation" else "unknown",
                               f"sys_notify ({arch}): {end.why}")
            continue
        rv = run.ex.read_reg(st, ret_reg)
        acc = rv == 0
        if not run.ex.feasible(st, acc):
            continue
        accepted += 1
        goal, show = _goals(run, st)[what]
        # One query per conjunct: much cheaper for Z3 than the conjunction at once.
        parts = (goal.children() if z3.is_and(goal) else [goal]) + [end.ret == run.env.RET]
        for part in parts:
            claim = z3.Implies(acc, part)
            if run.ex.valid(st, claim):
                continue
            vals = lift.counterexample(run.ex, st, show, z3.Not(claim))
            return Outcome("counterexample",
                           f"sys_notify ({arch}) accepts a descriptor that breaks '{what}'\n" +
                           "\n".join(f"{k} = {v:#x}" if isinstance(v, int) else f"{k} = {v}"
                                      for k, v in vals.items()), vals)
    if not accepted:
        return Outcome("counterexample", f"sys_notify ({arch}) has no accepting path: "
                       "the lifting or the summaries are out of date")
    return Outcome("proved", None, {"accepting paths": accepted})


WHAT = {
    "capability": "the caller is the producer of the set-up channel it names",
    "window": "the descriptor names bytes inside the channel's window (last capacity "
              "bytes before head, inside data[0, capacity)), flags 0",
    "fresh": "the sequence number is greater than the last accepted and becomes it",
}


def proofs_for(root: Path | None = None, arches: Sequence[str] = ARCHES) -> list[Proof]:
    return [Proof(f"notify.bin.{a}.{w}", f"compiled sys_notify ({a}) accepts only if {p}",
                  lambda a=a, w=w: check(a, w, root))
            for a in arches for w, p in WHAT.items()]


def proofs() -> list[Proof]:
    return proofs_for()


if __name__ == "__main__":
    sys.exit(run_as_script(proofs()))
