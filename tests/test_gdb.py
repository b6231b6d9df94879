"""The GDB stub (keusim/machine/gdb.py) driven by a real gdb-multiarch in batch mode.

`keusim run pingpong --verified --gdb 0 --gdb-core N` stops at boot; gdb attaches,
breaks at the kernel's notify handler, reads the argument register and the
descriptor it points to through the core's page tables, single-steps, and lets the
run finish. What gdb reads must be what the guest on that core sent: its own
channel, the first sequence number, the record length it chose, and the run must
still deliver and verify every byte.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from keusim.machine.gdb import GdbError, GdbOptions
from keusim.system import run

GDB = shutil.which("gdb-multiarch")
pytestmark = pytest.mark.skipif(
    GDB is None, reason="gdb-multiarch is not installed (`make setup` installs it when run "
                        "as root: apt-get install -y gdb-multiarch)")

SIZE, MESSAGES = 64, 3
RING_HDR_SIZE = 4          # guests/include/keusim/ring.h: each record's length header
# The C calling convention's first argument register (System V AMD64 ABI section 3.2.3;
# AAPCS64 section 6.8.2): where sys_notify(desc_va) finds desc_va on entry.
FIRST_ARG = {"x86_64": "rdi", "arm64": "x0"}


def _start(arch: str, core: int, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str, str]:
    """Start `keusim run ... --gdb 0`; return the process, host:port and the kernel ELF."""
    cmd = [sys.executable, "-m", "keusim.cli", "run", "pingpong", "--arch", arch, "--verified",
           "--messages", str(MESSAGES), "--size", str(SIZE), "--json", "--gdb", "0",
           "--gdb-core", str(core), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addr = kernel = None
    lines = []
    while addr is None or kernel is None:
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            pytest.fail("keusim run --gdb ended before announcing its stub:\n" + "".join(lines))
        lines.append(line)
        if m := re.search(r"on (127\.0\.0\.1:\d+);", line):
            addr = m.group(1)
        if m := re.search(r"gdb-multiarch -q (\S+) ", line):
            kernel = m.group(1)
    return proc, addr, kernel


def _gdb(kernel: str, addr: str, commands: list[str]) -> str:
    cmd = [GDB, "-q", "-nx", "-batch", kernel, "-ex", "set pagination off",
           "-ex", f"target remote {addr}"]
    for c in commands:
        cmd += ["-ex", c]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return out.stdout + out.stderr


@pytest.mark.parametrize("arch,core", [("x86_64", 0), ("arm64", 1)])
def test_breakpoint_at_notify_reads_what_the_guest_sent(arch: str, core: int):
    reg = FIRST_ARG[arch]
    proc, addr, kernel = _start(arch, core)
    out = _gdb(kernel, addr, [
        "printf \"BOOT pc=%lu entry=%lu\\n\", $pc, &_start",
        "break *sys_notify",
        "continue",
        f"printf \"HIT pc=%lu fn=%lu arg=%lu dwarf=%lu\\n\", $pc, &sys_notify, ${reg}, desc_va",
        f"printf \"DESC %u %u %u %u %lu\\n\", ((struct notify_desc *)${reg})->channel, "
        f"((struct notify_desc *)${reg})->offset, ((struct notify_desc *)${reg})->length, "
        f"((struct notify_desc *)${reg})->flags, ((struct notify_desc *)${reg})->seq",
        "stepi",
        "printf \"STEP pc=%lu\\n\", $pc",
        "delete",
        "continue",
    ])
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    boot = re.search(r"BOOT pc=(\d+) entry=(\d+)", out)
    assert boot and boot.group(1) == boot.group(2), out          # stopped at the kernel entry
    hit = re.search(r"HIT pc=(\d+) fn=(\d+) arg=(\d+) dwarf=(\d+)", out)
    assert hit, out
    pc, fn, arg, dwarf = map(int, hit.groups())
    assert pc == fn                                              # the breakpoint was hit
    assert arg == dwarf                                          # register == DWARF's desc_va
    assert 0 < arg < 1 << 47                                     # a user (stack) address
    desc = re.search(r"DESC (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert desc, out
    channel, offset, length, flags, seq = map(int, desc.groups())
    # Core 0 runs ping (producer of channel 0), core 1 pong (producer of channel 1);
    # the first notification on a channel carries seq 1 and the first record.
    assert (channel, offset, length, flags, seq) == (core, 0, SIZE + RING_HDR_SIZE, 0, 1)
    step = re.search(r"STEP pc=(\d+)", out)
    assert step and int(step.group(1)) != pc
    assert "exited normally" in out
    rep = json.loads(stdout)
    assert rep["ok"], rep
    for ch in rep["channels"]:
        assert ch["notifications"]["accepted"] == MESSAGES
        assert ch["consumer_stats"]["verified_bytes"] == MESSAGES * SIZE


def test_session_without_stops_gives_the_same_report(arch: str):
    proc, addr, kernel = _start(arch, 0)
    out = _gdb(kernel, addr, ["continue"])
    stdout, stderr = proc.communicate(timeout=300)
    assert "exited normally" in out
    plain = run("pingpong", arch=arch, verified=True, params={"messages": MESSAGES, "size": SIZE})
    assert stdout.strip() == plain.to_json().strip()


def test_bad_core_is_one_clear_error():
    with pytest.raises(GdbError, match="--gdb-core 7: the system has cores 0..1"):
        run("pingpong", params={"messages": 1}, gdb=GdbOptions(0, core=7))


def _packet(sock, payload: bytes) -> None:
    sock.sendall(b"$" + payload + b"#" + b"%02x" % (sum(payload) & 0xFF))


def _reply(sock, buf: bytearray) -> bytes:
    """The next packet's payload (acknowledging it), skipping '+' acks."""
    while True:
        i = buf.find(b"$")
        j = buf.find(b"#", i) if i >= 0 else -1
        if i >= 0 and j >= 0 and len(buf) >= j + 3:
            payload = bytes(buf[i + 1:j])
            del buf[:j + 3]
            sock.sendall(b"+")
            return payload
        data = sock.recv(4096)
        assert data, "stub closed the connection"
        buf += data


def test_ctrl_c_stops_a_running_machine_and_kill_ends_the_run():
    """The raw protocol: continue, Ctrl-C (0x03) stops with SIGINT, registers are
    readable, kill ends the run with a clear status."""
    import socket

    proc = subprocess.Popen(
        [sys.executable, "-m", "keusim.cli", "run", "pingpong", "--messages", "1000000",
         "--gdb", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addr = None
    while addr is None:
        line = proc.stderr.readline()
        assert line, "keusim run --gdb ended before announcing its stub"
        if m := re.search(r"on 127\.0\.0\.1:(\d+);", line):
            addr = ("127.0.0.1", int(m.group(1)))
    with socket.create_connection(addr, timeout=120) as s:
        buf = bytearray()
        _packet(s, b"?")
        assert _reply(s, buf) == b"S05"
        _packet(s, b"c")
        s.sendall(b"\x03")
        assert _reply(s, buf).startswith(b"T02")
        _packet(s, b"g")
        regs = _reply(s, buf)
        assert len(regs) > 17 * 16 and not regs.startswith(b"E")
        # x86-64 `g` order (keusim/arch/x86_64_gdb.py): 16 GPRs, then rip.
        rip = int.from_bytes(bytes.fromhex(regs[16 * 16:17 * 16].decode()), "little")
        _packet(s, b"p10")
        assert _reply(s, buf) == regs[16 * 16:17 * 16]
        # Memory at rip through the page tables: the code there, written back unchanged.
        _packet(s, b"m%x,8" % rip)
        code = _reply(s, buf)
        assert len(code) == 16 and code != b"0" * 16
        _packet(s, b"M%x,8:" % rip + code)
        assert _reply(s, buf) == b"OK"
        _packet(s, b"m%x,8" % rip)
        assert _reply(s, buf) == code
        # An unmapped address is an error reply, not a crash.
        _packet(s, b"m0,8")
        assert _reply(s, buf).startswith(b"E")
        _packet(s, b"k")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "run ended by the debugger (gdb kill)" in stdout


def test_same_session_same_report():
    """Stops depend only on the instructions executed, so a session replays exactly."""
    reports = []
    for _ in range(2):
        proc, addr, kernel = _start("x86_64", 0)
        _gdb(kernel, addr, ["break sys_notify", "continue", "next", "next", "continue",
                            "delete", "continue"])
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        reports.append(stdout)
    assert reports[0] == reports[1]
