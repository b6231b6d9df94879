"""The host build of NetD and a deterministic driver for it (docs/netd.md).

:func:`build` compiles ``guests/netd/*.c`` with the ring library and the host netif
backend (``experiments/native/netd/netd_host.c``) for this host with zig cc, cached
like every keusim build. :class:`NetdHost` runs it in ``--pipe`` mode: every frame,
time step and application request goes in on a pipe and NetD's output (frames sent,
events for the application) comes back as one batch, so a test is a script and the
same script gives the same bytes. Time is whatever the caller says it is.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keusim.errors import BuildError
from keusim.net import NetError
from keusim.net.pcap import PcapWriter
from keusim.toolchain import ROOT, BuildSpec, host_target
from keusim.toolchain import build as toolchain_build

NETD_DIR = ROOT / "guests" / "netd"
HOST_SRC = ROOT / "experiments" / "native" / "netd" / "netd_host.c"
HOST_IP = "10.77.0.2"
HOST_MAC = bytes.fromhex("020000000002")

SANITIZE_FLAGS = ("-fsanitize=undefined", "-fno-sanitize-recover=all")
"""UBSan: out-of-bounds indexing, misaligned access, overflow. zig cc (0.13 and later)
links no AddressSanitizer runtime, so out-of-bounds reads of frame memory are caught
instead by ``--guard``: each received frame ends at a PROT_NONE page."""

# The socket protocol (guests/netd/netd_sock.h); tests/test_netd_abi.py checks the values.
NS_OPEN, NS_BIND, NS_CONNECT, NS_SEND, NS_CLOSE = 1, 2, 3, 4, 5
NS_EV_ACCEPT, NS_EV_DATA, NS_EV_EOF, NS_EV_RESET = 0x40, 0x41, 0x42, 0x43
NS_RESP = 0x80
NS_TCP, NS_UDP = 6, 17
NS_EBADF, NS_EINVAL, NS_ENOSPC, NS_EADDRINUSE, NS_ETOOBIG = 1, 2, 3, 4, 5
NS_ENOTCONN, NS_ECONNREFUSED, NS_ETIMEDOUT, NS_ERESET, NS_ENOBUFS = 6, 7, 8, 9, 10
NS_MSG = struct.Struct("<BBHIiIHHI")


@dataclass(frozen=True)
class NsMsg:
    """One socket-protocol record (struct ns_msg and its payload)."""

    op: int
    sock: int = 0
    id: int = 0
    proto: int = 0
    status: int = 0
    addr: int = 0
    port: int = 0
    lport: int = 0
    payload: bytes = b""

    def pack(self, length: int | None = None) -> bytes:
        n = len(self.payload) if length is None else length
        return NS_MSG.pack(self.op, self.proto, self.sock, self.id, self.status, self.addr,
                           self.port, self.lport, n) + self.payload

    @classmethod
    def unpack(cls, raw: bytes) -> NsMsg:
        op, proto, sock, ident, status, addr, port, lport, n = NS_MSG.unpack_from(raw)
        return cls(op, sock, ident, proto, status, addr, port, lport, raw[NS_MSG.size:NS_MSG.size + n])


@dataclass
class Batch:
    """What NetD did in answer to one input: frames it sent and events it posted."""

    frames: list[bytes] = field(default_factory=list)
    events: list[NsMsg] = field(default_factory=list)


def build(sanitize: bool = True, planted_bug: bool = False) -> Path:
    """Build the host NetD (with UBSan unless ``sanitize`` is False); return its path.

    ``planted_bug`` compiles in a one-byte read past every received frame, for the test
    that proves ``--guard`` catches such reads.
    """
    flags = ["-O1" if sanitize else "-O2", "-g", "-Wall", "-Werror", "-fno-omit-frame-pointer"]
    if sanitize:
        flags += SANITIZE_FLAGS
    sources = (*sorted(NETD_DIR.glob("*.c")), ROOT / "guests" / "lib" / "ring.c",
               ROOT / "guests" / "lib" / "string.c", HOST_SRC)
    from keusim import arch as archmod

    cpu_inc = ROOT / "guests" / "arch" / archmod.host() / "include"
    spec = BuildSpec(sources=sources, target=host_target(), cflags=tuple(flags),
                     include_dirs=(ROOT / "guests" / "include", cpu_inc, NETD_DIR),
                     defines=(("NETD_PLANTED_OVERREAD", "1"),) if planted_bug else ())
    try:
        return toolchain_build(spec, "netd_host" + ("_ubsan" if sanitize else ""))
    except BuildError as e:
        raise NetError(f"cannot build the host NetD: {e}") from e


def guest_object(arch: str, out_dir: Path) -> Path:
    """Compile NetD with the ring library and string.c for ``arch``'s guests (the
    guests' flags, warnings as errors) into one relocatable object in ``out_dir``.

    Raises:
        NetError: the compiler failed (its first message).
    """
    from keusim import arch as archmod

    tc = archmod.toolchain(arch)
    srcs = [*sorted(NETD_DIR.glob("*.c")), ROOT / "guests/lib/ring.c", ROOT / "guests/lib/string.c"]
    obj = Path(out_dir) / f"netd-{archmod.normalize(arch)}.o"
    r = subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", "-target", tc.zig_target, *tc.cflags, "-Werror",
         "-I", str(ROOT / "guests" / "include"),
         "-I", str(ROOT / "guests" / "arch" / archmod.normalize(arch) / "include"),
         "-r", "-nostdlib", *map(str, srcs), "-o", str(obj)],
        capture_output=True, text=True)
    if r.returncode != 0:
        raise NetError(f"NetD does not compile for {arch} guests: {_first_line(r.stderr)}")
    return obj


def _first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no message"


def code_size(arch: str, out_dir: Path) -> tuple[int, int]:
    """NetD's machine code for ``arch``'s guests: (bytes of .text, instructions).

    The paper (docs/paper.md) says NetD "compiles to under 8,000 instructions"; this
    counts ours, ring library and string functions included, by disassembling every
    executable section with the backend's capstone disassembler.
    """
    from elftools.elf.elffile import ELFFile

    from keusim.arch.isa import new_disassembler

    dis = new_disassembler(arch)
    nbytes = ninsns = 0
    with open(guest_object(arch, out_dir), "rb") as f:
        for sec in ELFFile(f).iter_sections():
            if sec["sh_type"] == "SHT_PROGBITS" and sec["sh_flags"] & 0x4:  # SHF_EXECINSTR
                data = sec.data()
                nbytes += len(data)
                ninsns += sum(1 for _ in dis.disasm_lite(data, 0))
    return nbytes, ninsns


class NetdHost:
    """A running host NetD in pipe mode.

    Args:
        args: extra command-line options (``--tcp-echo 7``, ``--rto 200``, ``--guard``...).
        capture: a pcap path; every frame in and out is written there at model time.
        sanitize: build with UBSan.
        planted_bug: build with the test-only over-read (see :func:`build`).
        timeout: seconds to wait for one answer before NetD is declared stuck and killed.
    """

    def __init__(self, args: Sequence[str] = (), capture: str | Path | None = None,
                 sanitize: bool = True, planted_bug: bool = False, timeout: float = 120.0) -> None:
        exe = build(sanitize, planted_bug)
        self.now_ms = 0
        self._pcap = PcapWriter(capture) if capture else None
        self.timeout = timeout
        # stderr goes to a file: a pipe nobody reads could fill and stop NetD.
        self._err = tempfile.TemporaryFile()
        self._p = subprocess.Popen([str(exe), "--pipe", *args], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=self._err, bufsize=0)

    def _send(self, kind: bytes, payload: bytes = b"") -> Batch:
        assert self._p.stdin is not None
        try:
            self._p.stdin.write(kind + struct.pack("<I", len(payload)) + payload)
            self._p.stdin.flush()
        except BrokenPipeError:
            self._died()
        return self._batch()

    def _read(self, n: int) -> bytes:
        assert self._p.stdout is not None
        fd = self._p.stdout.fileno()
        chunks: list[bytes] = []
        while n:
            ready, _, _ = select.select([fd], [], [], self.timeout)
            if not ready:
                self._p.kill()
                raise NetError(f"the host NetD gave no answer within {self.timeout:.0f} s "
                               "(a loop that does not end?); it was killed")
            c = os.read(fd, n)
            if not c:
                self._died()
            chunks.append(c)
            n -= len(c)
        return b"".join(chunks)

    def _died(self) -> None:
        self._p.wait()
        self._err.seek(0)
        err = self._err.read().decode(errors="replace").strip()
        raise NetError(f"the host NetD exited with status {self._p.returncode}: "
                       f"{err.splitlines()[0] if err else 'no message'}"
                       + ("\n" + err if err else ""))

    def _batch(self) -> Batch:
        b = Batch()
        while True:
            kind, n = struct.unpack("<cI", self._read(5))
            body = self._read(n) if n else b""
            if kind == b"E":
                return b
            if kind == b"F":
                b.frames.append(body)
                if self._pcap:
                    self._pcap.write(self.now_ms * 1000, body)
            elif kind == b"A":
                b.events.append(NsMsg.unpack(body))
            elif kind == b"S":
                self._stats = body.decode()

    def frame(self, f: bytes) -> Batch:
        """The NIC receives ``f``; returns what NetD sent and posted in answer."""
        if self._pcap:
            self._pcap.write(self.now_ms * 1000, f)
        return self._send(b"F", f)

    def advance(self, ms: int) -> Batch:
        """Model time moves forward by ``ms`` milliseconds (timers may fire)."""
        self.now_ms += ms
        return self._send(b"T", struct.pack("<Q", self.now_ms))

    def request(self, msg: NsMsg | bytes) -> Batch:
        """Application 0 puts a request (or raw bytes, for attacks) on its request ring."""
        return self._send(b"A", msg if isinstance(msg, bytes) else msg.pack())

    def hold_events(self, hold: bool) -> Batch:
        """Application 0 stops (True) or resumes (False) reading its event ring."""
        return self._send(b"H", b"\x01" if hold else b"\x00")

    def corrupt_request_head(self, value: int) -> Batch:
        """Attack: application 0 writes ``value`` into its request ring's head index."""
        return self._send(b"C", struct.pack("<I", value))

    def stats(self) -> dict[str, int]:
        """NetD's counters (netd_stat_names in guests/netd/netd.c) and the NIC's drops."""
        self._send(b"S")
        return {k: int(v) for k, v in (ln.split() for ln in self._stats.splitlines())}

    def close(self) -> int:
        """Stop NetD; return its exit status (0 unless it crashed)."""
        if self._p.poll() is None:
            try:
                assert self._p.stdin is not None
                self._p.stdin.write(b"Q\0\0\0\0")
                self._p.stdin.close()
            except BrokenPipeError:
                pass
        rc = self._p.wait(timeout=30)
        self._err.close()
        if self._pcap:
            self._pcap.close()
        return rc

    def __enter__(self) -> NetdHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
