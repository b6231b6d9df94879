"""A TAP device in a private network namespace, with Linux's own stack as NetD's peer.

:class:`TapLink` creates a namespace, a TAP device inside it carrying only the link
10.77.0.0/24 (Linux is 10.77.0.1, NetD 10.77.0.2; nothing is routed anywhere else),
runs the host NetD on that device, and removes everything on exit. Programs run in
the namespace with :meth:`TapLink.run`; :func:`run_client` is the Linux-side client
the tests run there (ping, UDP echo, a TCP exchange checked byte for byte).

In this mode NetD's time is the host's monotonic clock, so runs are not
deterministic; the scripted pipe mode (:mod:`keusim.net.host`) is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from keusim.net import NetError
from keusim.net.host import build

LINUX_IP = "10.77.0.1"
NETD_IP = "10.77.0.2"
PREFIX = 24


def unavailable() -> str | None:
    """Why a TAP link cannot be made here, in one line; None when it can."""
    if os.geteuid() != 0:
        return "TAP tests need root (network namespaces and /dev/net/tun); run as root"
    if shutil.which("ip") is None:
        return "the `ip` tool (iproute2) is missing; run `make setup` as root to install it"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing; load the tun module (modprobe tun) or give the container the device"
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
    except OSError as e:
        return f"/dev/net/tun cannot be opened ({e.strerror}); give the container the device"
    # Root is not always enough (a container without CAP_NET_ADMIN): try for real.
    probe = f"keusim-probe-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return (f"cannot create a network namespace ({r.stderr.strip() or 'ip netns add failed'}); "
                "the TAP tests need CAP_NET_ADMIN")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise NetError(f"`ip {' '.join(args)}` failed: {r.stderr.strip() or r.returncode}")


class TapLink:
    """Namespace + TAP device + host NetD; a context manager that removes all three.

    Args:
        netd_args: options for netd_host (default: TCP echo on 7, UDP echo app on 9).
        sanitize: build NetD with UBSan.
    """

    def __init__(self, netd_args: Sequence[str] = ("--tcp-echo", "7", "--udp-app", "9"),
                 sanitize: bool = True) -> None:
        why = unavailable()
        if why:
            raise NetError(why)
        tag = f"{os.getpid() % 100000}"
        self.ns = f"keusim-netd-{tag}"
        self.dev = f"ktap{tag}"
        self.netd_args = list(netd_args)
        self.exe = build(sanitize)
        self.stats: dict[str, int] = {}
        self.netd_stderr = ""
        self._p: subprocess.Popen[str] | None = None

    def __enter__(self) -> TapLink:
        _ip("netns", "add", self.ns)
        try:
            _ip("-n", self.ns, "tuntap", "add", "dev", self.dev, "mode", "tap")
            _ip("-n", self.ns, "link", "set", "lo", "up")
            _ip("-n", self.ns, "addr", "add", f"{LINUX_IP}/{PREFIX}", "dev", self.dev)
            _ip("-n", self.ns, "link", "set", self.dev, "up")
            self._p = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, str(self.exe), "--tap", self.dev,
                 "--ip", NETD_IP, "--prefix", str(PREFIX), *self.netd_args],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self._wait_attached()
        except BaseException:
            if self._p is not None and self._p.poll() is None:
                self._p.kill()
                self._p.wait()
            self._remove()
            raise
        return self

    def _wait_attached(self, timeout: float = 20.0) -> None:
        # The kernel reports carrier on a TAP device once a process has attached to it
        # (LOWER_UP); before that it drops what Linux sends, so a first ping would be lost.
        assert self._p is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._p.poll() is not None:
                err = (self._p.stderr.read() if self._p.stderr else "").strip()
                raise NetError(f"the host NetD on {self.dev} exited with status "
                               f"{self._p.returncode}: {err.splitlines()[0] if err else 'no message'}")
            r = subprocess.run(["ip", "-n", self.ns, "link", "show", "dev", self.dev],
                               capture_output=True, text=True)
            if "LOWER_UP" in r.stdout:
                return
            time.sleep(0.05)
        raise NetError(f"the host NetD did not attach to {self.dev} within {timeout:.0f} s")

    def run(self, argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run argv inside the namespace; returns the completed process."""
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], capture_output=True,
                              text=True, timeout=timeout)

    def stop(self) -> int:
        """Stop NetD (SIGTERM); collect its counters. Returns its exit status."""
        if self._p is None:
            return 0
        self._p.terminate()
        out, err = self._p.communicate(timeout=30)
        self.netd_stderr = err
        self.stats = {k: int(v) for k, v in (ln.split() for ln in out.splitlines() if ln.strip())}
        rc = self._p.returncode
        self._p = None
        return rc

    def _remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._remove()


# ---------------------------------------------------------------- Linux-side client

def _ping(host: str, count: int) -> int:
    """Echo replies received for count ICMP echo requests (ping(8) when installed)."""
    if shutil.which("ping"):
        r = subprocess.run(["ping", "-c", str(count), "-i", "0.2", "-W", "2", host],
                           capture_output=True, text=True)
        for ln in r.stdout.splitlines():
            if "received" in ln:
                return int(ln.split(",")[1].split()[0])
        return 0
    # Without ping(8): the same exchange over a raw ICMP socket (root only).
    from keusim.net.packet import checksum

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(2)
    got = 0
    for seq in range(count):
        body = struct.pack("!BBHHH", 8, 0, 0, 0x4b55, seq) + b"keusim-ping"
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        s.sendto(body, (host, 0))
        try:
            while True:
                pkt = s.recv(2048)
                ihl = (pkt[0] & 0xF) * 4
                t, _, _, ident, rseq = struct.unpack_from("!BBHHH", pkt, ihl)
                if t == 0 and ident == 0x4b55 and rseq == seq:
                    got += 1
                    break
        except TimeoutError:
            pass
    return got


def _udp_echo(host: str, port: int, count: int) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    ok = 0
    for i in range(count):
        msg = hashlib.sha256(f"udp{port}-{i}".encode()).digest() * (1 + i % 20)
        s.sendto(msg, (host, port))
        try:
            data, src = s.recvfrom(4096)
            ok += data == msg and src == (host, port)
        except TimeoutError:
            pass
    return ok


def _tcp_exchange(host: str, port: int, nbytes: int, stall: float = 120.0) -> dict:
    """Send nbytes (a seeded stream) and read the echo; compare every byte. A socket
    operation that waits more than ``stall`` seconds raises TimeoutError."""
    data = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest()
                    for i in range((nbytes + 31) // 32))[:nbytes]
    s = socket.create_connection((host, port), timeout=stall)
    t0 = time.monotonic()
    err: list[BaseException] = []

    def send() -> None:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except BaseException as e:  # reported below
            err.append(e)

    th = threading.Thread(target=send)
    th.start()
    got = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    th.join()
    s.close()
    first_bad = next((i for i, (a, b) in enumerate(zip(got, data, strict=False)) if a != b), None)
    return {"sent": nbytes, "received": len(got), "equal": bytes(got) == data,
            "first_mismatch": first_bad, "seconds": round(time.monotonic() - t0, 3),
            "send_error": repr(err[0]) if err else None}


def run_client(argv: Sequence[str] | None = None) -> int:
    """Run the Linux-side checks against NetD; print one JSON object."""
    ap = argparse.ArgumentParser(prog="python -m keusim.net.tap")
    ap.add_argument("--host", default=NETD_IP)
    ap.add_argument("--pings", type=int, default=5)
    ap.add_argument("--udp", type=int, default=20)
    ap.add_argument("--tcp-bytes", type=int, default=1 << 20)
    ap.add_argument("--stall", type=float, default=120.0,
                    help="seconds a TCP send or receive may wait before the exchange fails")
    a = ap.parse_args(argv)
    if a.stall <= 0:
        ap.error("--stall must be > 0 seconds")
    out = {
        "ping_replies": _ping(a.host, a.pings),
        "udp_echo_ok": _udp_echo(a.host, 7, a.udp),
        "udp_app_ok": _udp_echo(a.host, 9, a.udp),
        "tcp": _tcp_exchange(a.host, 7, a.tcp_bytes, a.stall),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(run_client())


# ---------------------------------------------------------------- the machine's NIC on a TAP

TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000


class TapWire:
    """The emulated NIC's link (keusim/machine/nic.py) on a TAP device in a private
    network namespace: Linux's own stack is the peer (``keusim run netd --tap``).

    keusim opens the TAP device itself and moves it into a namespace it creates (the
    open descriptor stays attached), where Linux has 10.77.0.1/24 and nothing else.
    Frames Linux sends are read at regular steps of model time (``poll_us``) and put
    on the link at that model time; frames the NIC sends are written to the TAP at
    once. **Guest time follows host time:** when model time runs ahead of the host's
    monotonic clock since the start, the wire waits (in ``select`` on the device, so a
    frame ends the wait early). Runs in this mode are not deterministic, and the
    report says so.

    Args:
        client: run :func:`run_client` (ping, UDP echo to ports 7 and 9, a TCP exchange
            with port 7 of ``tcp_bytes``) in the namespace; the link goes down when it
            finishes. Without it the link stays up for ``seconds`` of host time.
        tcp_bytes, pings, udp: the client's workload.
        seconds: how long the link stays up without a client (host seconds).
        poll_us: model microseconds between reads of the TAP device.
    """

    def __init__(self, client: bool = True, tcp_bytes: int = 1 << 20, pings: int = 5,
                 udp: int = 20, seconds: float = 30.0, poll_us: int = 50) -> None:
        why = unavailable()
        if why:
            raise NetError(f"--tap: {why}")
        tag = f"{os.getpid() % 100000}"
        self.ns = f"keusim-nic-{tag}"
        self.dev = f"knic{tag}"
        self.client = client
        self.client_args = ["--pings", str(pings), "--udp", str(udp), "--tcp-bytes", str(tcp_bytes)]
        self.seconds = seconds
        self.poll_us = poll_us
        self.fd = -1
        self.proc: subprocess.Popen[str] | None = None
        self.result: dict | None = None
        self.client_error = ""
        self.frames_in = self.frames_out = self.write_drops = 0
        self.waited_s = 0.0
        self._t0 = 0.0
        self._done = False

    # -- set-up and tear-down -----------------------------------------------------------
    def _open(self) -> None:
        import fcntl
        _ip("netns", "add", self.ns)
        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            ifr = struct.pack("16sH22x", self.dev.encode(), IFF_TAP | IFF_NO_PI)
            fcntl.ioctl(self.fd, TUNSETIFF, ifr)
            _ip("link", "set", "dev", self.dev, "netns", self.ns)
            subprocess.run(["ip", "netns", "exec", self.ns, "sysctl", "-qw",
                            "net.ipv6.conf.all.disable_ipv6=1"], capture_output=True)
            _ip("-n", self.ns, "link", "set", "lo", "up")
            _ip("-n", self.ns, "addr", "add", f"{LINUX_IP}/{PREFIX}", "dev", self.dev)
            _ip("-n", self.ns, "link", "set", self.dev, "up")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the client, close the device and remove the namespace (idempotent)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)

    # -- the wire ------------------------------------------------------------------------
    def start(self, nic, machine) -> None:
        self.nic, self.m = nic, machine
        self.hz = nic.link.core_hz
        self._open()
        self._t0 = time.monotonic()
        if self.client:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, sys.executable, "-m", "keusim.net.tap",
                 *self.client_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        machine.add_timed(0, self._poll)

    def _poll(self, t: int) -> None:
        import select
        ahead = t / self.hz - (time.monotonic() - self._t0)
        if ahead > 0:      # model time is ahead of the host: let the host catch up
            select.select([self.fd], [], [], ahead)
            self.waited_s += ahead
        while True:
            try:
                f = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            self.frames_in += 1
            self.nic.from_wire(t, f)
        if self._finished():
            self.nic.set_link(False, t)
            return
        self.machine_next = t + self.poll_us * self.hz // 1_000_000
        self.m.add_timed(self.machine_next, self._poll)

    def _finished(self) -> bool:
        if self.client:
            if self.proc is None or self.proc.poll() is None:
                return False
            out, err = self.proc.communicate()
            try:
                self.result = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                self.client_error = (err.strip() or out.strip() or "no output")[-500:]
            return True
        return time.monotonic() - self._t0 >= self.seconds

    def from_nic(self, at: int, frame: bytes) -> None:
        try:
            os.write(self.fd, frame)
            self.frames_out += 1
        except OSError:
            self.write_drops += 1      # a full TAP queue drops, as a wire would

    def report(self) -> dict:
        d = {"kind": "tap", "determinism": "not promised: guest time follows host time "
             "(the wire waits for the host clock when model time runs ahead)",
             "namespace": self.ns, "device": self.dev, "frames_from_linux": self.frames_in,
             "frames_to_linux": self.frames_out, "write_drops": self.write_drops,
             "host_seconds": round(time.monotonic() - self._t0, 3),
             "waited_for_host_seconds": round(self.waited_s, 3)}
        if self.client:
            d["client"] = self.result
            if self.client_error:
                d["client_error"] = self.client_error
        return d
