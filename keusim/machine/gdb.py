"""A GDB Remote Serial Protocol stub for one core of the machine.

``keusim run SYSTEM --gdb PORT [--gdb-core N]`` (library: ``run(..., gdb=GdbOptions(PORT, N))``)
stops the machine before the first instruction and waits for ``gdb-multiarch`` to
attach over TCP. gdb then sees core N as one thread of a remote target: registers
(a target description from ``keusim/arch/<arch>_gdb.py``), memory read and written
through that core's page tables (``keusim/machine/pagetable.py``; Unicorn's own
virtual-memory read can raise a guest exception inside hooks), software and
hardware breakpoints, single steps, continue, Ctrl-C, detach and kill.

Why a stub of our own rather than udbserver: the machine runs several Unicorn
instances under one scheduler that owns virtual time. The stub lives in that
scheduler loop (``Machine.debugger``): while gdb holds core N stopped, no core runs,
so the other cores are frozen at the same model time and a session is as
deterministic as the run itself (same inputs, same gdb commands: same stops).

Cost: without ``--gdb`` the machine has no debugger object and nothing here runs.
With it, a breakpoint is a ``UC_HOOK_CODE`` limited to its one address, and a
single step a whole-range code hook that exists only until the step ends.

Model time under a debugger: a stop in the middle of a translated block ends that
block after the native block hook has charged all of it; on resume the rest of the
block is translated and charged again. So each breakpoint hit or step can add the
cost of a few instructions to the stopped core's clock (and may move later slice
boundaries). A session without stops (``continue`` straight to the end) gives the
same report as a run without ``--gdb``; a test checks this.
"""

from __future__ import annotations

import importlib
import os
import select
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unicorn import UC_HOOK_CODE

from keusim.errors import KeusimError
from keusim.machine.pagetable import PAGE, translate

SIGTRAP, SIGINT = 5, 2
# How many scheduler slices run between checks for a Ctrl-C from gdb while the
# machine runs freely (a non-blocking select per slice would cost more than a slice).
POLL_EVERY = 1024


class GdbError(KeusimError):
    """The debugger cannot start (bad core number, port in use)."""


@dataclass(frozen=True)
class GdbOptions:
    """What ``run(..., gdb=...)`` debugs and where it listens.

    Args:
        port: TCP port to listen on; 0 picks a free one (the announcement names it).
        core: the core gdb attaches to (its only thread).
        host: interface to listen on (default loopback only: the stub has no
            authentication, and gdb can write guest memory).
        announce: called with each line of the start-up message (default: stderr).
    """

    port: int
    core: int = 0
    host: str = "127.0.0.1"
    announce: Callable[[str], None] | None = None


def _checksum(data: bytes) -> bytes:
    return b"%02x" % (sum(data) & 0xFF)


def _escape(data: bytes) -> bytes:
    """RSP binary escaping for qXfer replies: '#', '$', '}' and '*' become '}' x^0x20."""
    out = bytearray()
    for b in data:
        if b in b"#$}*":
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


class GdbStub:
    """The stub for one core. ``Machine.run`` calls :meth:`start` before the first
    slice, :meth:`slice_ended` after each slice and :meth:`finished` at the end.

    Args:
        opts: the :class:`GdbOptions`.
        machine: the booted machine (cores set up, nothing run yet).
        symbols: (label, ELF path) for the kernel and each process, announced as the
            gdb commands that load their symbols.
    """

    def __init__(self, opts: GdbOptions, machine, symbols: list[tuple[str, Path]]):
        if not 0 <= opts.core < len(machine.cores):
            raise GdbError(f"--gdb-core {opts.core}: the system has cores 0..{len(machine.cores) - 1}; "
                           f"pick one of those")
        self.opts = opts
        self.machine = machine
        self.core = machine.cores[opts.core]
        facts = importlib.import_module(f"keusim.arch.{machine.arch.name}_gdb")
        self.regs = facts.REGS
        self.xml = facts.target_xml().encode()
        self.pc_index = [r[0] for r in self.regs].index(facts.PC)
        self.symbols = symbols
        self.breakpoints: dict[int, int] = {}    # address -> Unicorn hook handle
        self.stopped = False                     # a hook stopped the core for gdb
        self.stop_reply = b"S05"
        self.skip = None                         # breakpoint address to pass once on resume
        self.step_hook = None
        self.step_seen = 0
        self.slices = 0
        self.conn: socket.socket | None = None
        self.ack = True
        self.buf = b""
        self.running = False                     # gdb resumed the machine
        self.detached = False
        try:
            self.listener = socket.create_server((opts.host, opts.port))
        except OSError as e:
            raise GdbError(f"--gdb {opts.port}: cannot listen on {opts.host}:{opts.port} "
                           f"({os.strerror(e.errno) if e.errno else e}); choose another port, "
                           f"or 0 for a free one") from e
        self.port = self.listener.getsockname()[1]

    # -- hooks called by Machine.run ------------------------------------------------
    def start(self, machine) -> None:
        """Announce, wait for gdb, and serve it until it resumes the machine."""
        say = self.opts.announce or (lambda s: print(s, file=sys.stderr, flush=True))
        arch = machine.arch.name
        kernel = next((p for label, p in self.symbols if label == "kernel"), None)
        say(f"keusim: gdb stub for core {self.core.id} ({arch}) on "
            f"{self.opts.host}:{self.port}; the machine is stopped at boot")
        say(f"keusim: attach with: gdb-multiarch -q {kernel} "
            f"-ex 'target remote {self.opts.host}:{self.port}'")
        for label, path in self.symbols:
            if label != "kernel":
                say(f"keusim: symbols of process {label}: add-symbol-file {path}")
        self.conn, _ = self.listener.accept()
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stop_reply = b"S05"
        self._serve()

    def slice_ended(self, machine) -> None:
        """After every slice: serve gdb if a breakpoint or step stopped our core,
        and now and then check for a Ctrl-C while the machine runs."""
        if self.detached:
            return
        if self.stopped:
            self.stopped = False
            self._serve()
            return
        self.slices += 1
        if self.slices % POLL_EVERY or self.conn is None:
            return
        r, _, _ = select.select([self.conn], [], [], 0)
        if r:
            data = self.conn.recv(4096)
            if not data:
                self._detach()
                return
            self.buf += data
        # The 0x03 may also have come in with the packet that resumed us.
        if b"\x03" in self.buf:
            self.buf = self.buf.replace(b"\x03", b"")
            self.stop_reply = b"T%02xthread:1;" % SIGINT
            self._serve()

    def finished(self, machine, result) -> None:
        """The run is over: tell gdb the target exited (status 0 on power-off)."""
        if self.conn is not None and not self.detached:
            try:
                self._send(b"W00" if result.status == "poweroff" else b"X%02x" % SIGTRAP)
            except OSError:
                pass
            self.conn.close()
        self.listener.close()

    # -- breakpoints and steps ---------------------------------------------------------
    def _on_break(self, uc, addr, size, _ud) -> None:
        if self.skip == addr:
            self.skip = None
            return
        self.skip = None
        self.stop_reply = b"T%02xthread:1;swbreak:;" % SIGTRAP
        self.stopped = True
        uc.emu_stop()

    def _on_step(self, uc, addr, size, _ud) -> None:
        # The first instruction seen is the one being stepped; stop before the next
        # (which after a trap is the kernel's entry: stepi follows the CPU).
        self.step_seen += 1
        if self.step_seen > 1:
            self.stop_reply = b"T%02xthread:1;" % SIGTRAP
            self.stopped = True
            uc.emu_stop()

    def _add_break(self, addr: int) -> None:
        if addr in self.breakpoints:
            return
        uc = self.core.uc
        self.breakpoints[addr] = uc.hook_add(UC_HOOK_CODE, self._on_break, None, addr, addr)
        # A translated block carries its hooks: retranslate the one holding addr.
        uc.ctl_remove_cache(addr, addr + 1)

    def _remove_break(self, addr: int) -> None:
        h = self.breakpoints.pop(addr, None)
        if h is not None:
            self.core.uc.hook_del(h)
            self.core.uc.ctl_remove_cache(addr, addr + 1)

    def _resume(self, step: bool) -> None:
        self.running = True
        pc = self.core.pc
        self.skip = pc if pc in self.breakpoints else None
        if step:
            self.step_seen = 0
            self.step_hook = self.core.uc.hook_add(UC_HOOK_CODE, self._on_step, None, 1, 0)
            self.core.uc.ctl_flush_tb()

    def _end_step(self) -> None:
        if self.step_hook is not None:
            self.core.uc.hook_del(self.step_hook)
            self.step_hook = None
            self.core.uc.ctl_flush_tb()

    def _detach(self) -> None:
        for a in list(self.breakpoints):
            self._remove_break(a)
        self._end_step()
        self.detached = True
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- registers and memory ---------------------------------------------------------
    def _reg_hex(self, i: int) -> bytes:
        _name, bits, _t, rid, _f = self.regs[i]
        n = bits // 8
        if rid is None:
            return b"xx" * n
        if i == self.pc_index:
            v = self.core.pc
        else:
            v = self.core.uc.reg_read(rid)
        return (v & ((1 << bits) - 1)).to_bytes(n, "little").hex().encode()

    def _reg_write(self, i: int, data: bytes) -> None:
        _name, bits, _t, rid, _f = self.regs[i]
        if rid is None:
            return
        v = int.from_bytes(data[: bits // 8], "little")
        self.core.uc.reg_write(rid, v)
        if i == self.pc_index:
            self.core.pc = v

    def _read_mem(self, va: int, n: int) -> bytes:
        """Up to n bytes at va through the core's page tables, stopping at the first
        unmapped page (gdb accepts a short read)."""
        m = self.machine
        out = bytearray()
        while n > 0:
            tr = translate(m.ram, m.arch.pte, m.arch.root_for(self.core, va), va)
            if tr is None:
                break
            chunk = min(n, PAGE - (va & (PAGE - 1)))
            out += m.ram.read(tr[0], chunk)
            va += chunk
            n -= chunk
        return bytes(out)

    def _write_mem(self, va: int, data: bytes) -> bool:
        """Write through the page tables; False if any page is unmapped (nothing written).

        Code already translated by Unicorn does not see the write until its block is
        retranslated, so the blocks of the written range are dropped from the cache.
        """
        m = self.machine
        pieces = []
        a, rest = va, data
        while rest:
            tr = translate(m.ram, m.arch.pte, m.arch.root_for(self.core, a), a)
            if tr is None:
                return False
            chunk = min(len(rest), PAGE - (a & (PAGE - 1)))
            pieces.append((tr[0], rest[:chunk]))
            a += chunk
            rest = rest[chunk:]
        for pa, piece in pieces:
            m.ram.write(pa, piece)
        self.core.uc.ctl_remove_cache(va, va + len(data))
        return True

    # -- the protocol ---------------------------------------------------------------------
    def _send(self, payload: bytes) -> None:
        self.conn.sendall(b"$" + payload + b"#" + _checksum(payload))

    def _read_packet(self) -> bytes | None:
        """The next packet's payload (acknowledged), or None when gdb hung up.
        A bare Ctrl-C (0x03) while stopped is answered like '?'."""
        while True:
            i = self.buf.find(b"$")
            if i >= 0:
                j = self.buf.find(b"#", i)
                if j >= 0 and len(self.buf) >= j + 3:
                    payload = self.buf[i + 1:j]
                    self.buf = self.buf[j + 3:]
                    if self.ack:
                        self.conn.sendall(b"+")
                    return payload
            elif b"\x03" in self.buf:
                self.buf = self.buf.replace(b"\x03", b"")
                return b"?"
            data = self.conn.recv(65536)
            if not data:
                return None
            self.buf += data

    def _serve(self) -> None:
        """Answer gdb until it resumes (c/s), detaches or kills; the machine waits."""
        if self.running:
            self._end_step()
            self.running = False
            self._send(self.stop_reply)
        while True:
            pkt = self._read_packet()
            if pkt is None:
                self._detach()
                return
            if pkt == b"QStartNoAckMode":
                # Acknowledged like any packet; no '+' after this reply.
                self._send(b"OK")
                self.ack = False
                continue
            reply, resume = self._handle(pkt)
            if resume is not None:
                if resume == "detach":
                    self._send(b"OK")
                    self._detach()
                elif resume == "kill":
                    self._kill()
                else:
                    self._resume(step=resume == "step")
                return
            self._send(reply)

    def _kill(self) -> None:
        from keusim.machine.machine import MachineResult
        if self.machine.result is None:
            self.machine.result = MachineResult("error", "run ended by the debugger (gdb kill)")
        self._detach()

    def _handle(self, pkt: bytes) -> tuple[bytes, str | None]:
        """Reply to one packet; the second item is set when the machine must resume."""
        cmd = pkt[:1]
        if pkt == b"?":
            return self.stop_reply, None
        if pkt.startswith(b"qSupported"):
            return (b"PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+;"
                    b"QStartNoAckMode+;vContSupported+"), None
        if pkt.startswith(b"qXfer:features:read:target.xml:"):
            off, n = (int(x, 16) for x in pkt.split(b":")[-1].split(b","))
            chunk = self.xml[off:off + n]
            return (b"l" if off + n >= len(self.xml) else b"m") + _escape(chunk), None
        if pkt.startswith(b"qXfer:features:read:"):
            return b"E00", None
        if pkt == b"qAttached":
            return b"1", None
        if pkt == b"qC":
            return b"QC1", None
        if pkt == b"qfThreadInfo":
            return b"m1", None
        if pkt == b"qsThreadInfo":
            return b"l", None
        if pkt.startswith(b"qThreadExtraInfo"):
            return f"core {self.core.id}".encode().hex().encode(), None
        if cmd == b"H" or cmd == b"T":
            return b"OK", None
        if pkt == b"g":
            return b"".join(self._reg_hex(i) for i in range(len(self.regs))), None
        if cmd == b"G":
            data = bytes.fromhex(pkt[1:].decode().replace("x", "0"))
            off = 0
            for i, r in enumerate(self.regs):
                n = r[1] // 8
                if r[3] is not None:
                    self._reg_write(i, data[off:off + n])
                off += n
            return b"OK", None
        if cmd == b"p":
            i = int(pkt[1:], 16)
            return (self._reg_hex(i) if i < len(self.regs) else b"E45"), None
        if cmd == b"P":
            i, v = pkt[1:].split(b"=")
            i = int(i, 16)
            if i >= len(self.regs):
                return b"E45", None
            self._reg_write(i, bytes.fromhex(v.decode()))
            return b"OK", None
        if cmd == b"m":
            a, n = (int(x, 16) for x in pkt[1:].split(b","))
            data = self._read_mem(a, n)
            return (data.hex().encode() if data or n == 0 else b"E14"), None
        if cmd == b"M":
            head, data = pkt[1:].split(b":")
            a = int(head.split(b",")[0], 16)
            return (b"OK" if self._write_mem(a, bytes.fromhex(data.decode())) else b"E14"), None
        if cmd in (b"Z", b"z") and pkt[1:2] in (b"0", b"1"):
            a = int(pkt[3:].split(b",")[0], 16)
            (self._add_break if cmd == b"Z" else self._remove_break)(a)
            return b"OK", None
        if pkt == b"vCont?":
            return b"vCont;c;C;s;S", None
        if pkt.startswith(b"vCont;"):
            # One thread: the first action decides (gdb sends e.g. vCont;s:1;c).
            act = pkt[6:7].lower()
            return b"", ("step" if act == b"s" else "continue")
        if cmd in (b"c", b"C"):
            return b"", "continue"
        if cmd in (b"s", b"S"):
            return b"", "step"
        if cmd == b"D":
            return b"", "detach"
        if cmd == b"k" or pkt.startswith(b"vKill"):
            return b"", "kill"
        return b"", None   # unsupported: the empty reply, as RSP requires
