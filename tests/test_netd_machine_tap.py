"""NetD as a process of the emulated machine, on its NIC, with Linux's own stack as the peer
over a TAP device (keusim.net.tap.TapWire, ``keusim run netd --tap``).

Linux pings the guest, runs UDP echo against NetD's own service (port 7) and the echo
application (port 9), and sends 1 MiB over TCP to the application's echo port, checking
every byte that comes back. Needs root, /dev/net/tun and CAP_NET_ADMIN; elsewhere it is
skipped with the reason. In this mode guest time follows host time: nothing here
compares cycles.
"""

from __future__ import annotations

import subprocess

import pytest

from keusim.net import tap
from keusim.system import run

WHY = tap.unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")


@pytest.mark.parametrize("arch", ["x86_64"])
def test_linux_pings_echoes_and_moves_a_mebibyte_over_tcp(arch):
    wire = tap.TapWire(client=True, tcp_bytes=1 << 20, pings=5, udp=20)
    rep = run("netd", arch=arch, wire=wire)
    w = rep.devices["nic"]["wire"]
    assert rep.ok, rep.summary() + f"\n{w}"
    assert "not promised" in w["determinism"]
    c = w["client"]
    assert c is not None, w.get("client_error")
    assert c["ping_replies"] == 5
    assert c["udp_echo_ok"] == 20 and c["udp_app_ok"] == 20
    t = c["tcp"]
    assert t["sent"] == t["received"] == 1 << 20 and t["equal"], t
    assert "echo: tcp 1048576 bytes" in rep.process("echo").console
    assert rep.devices["nic"]["iommu"]["faults_total"] == 0
    # The namespace and the device are gone.
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert wire.ns not in ns
