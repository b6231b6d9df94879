"""NetD against Linux's own stack over a TAP device in a private network namespace.

Linux (10.77.0.1, inside the namespace) pings NetD (10.77.0.2), runs UDP echo against
NetD's echo service and against an application behind NetD's socket rings, and sends
1 MiB over TCP to an echo application behind NetD, checking every byte that comes
back. Nothing leaves the namespace; the namespace and the TAP device are removed
afterwards. Skipped, with the reason, where root, `ip` or /dev/net/tun is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from keusim.net import packet as P
from keusim.net import pcap, tap

WHY = tap.unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")


def test_linux_peer_ping_udp_and_one_mebibyte_of_tcp(tmp_path):
    cap = tmp_path / "tap.pcap"
    with tap.TapLink(("--tcp-echo", "7", "--udp-app", "9", "--pcap", str(cap))) as link:
        r = link.run([sys.executable, "-m", "keusim.net.tap", "--pings", "5", "--udp", "20",
                      "--tcp-bytes", str(1 << 20)], timeout=400)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert link.stop() == 0, link.netd_stderr
        ns = link.ns
    assert out["ping_replies"] == 5
    assert out["udp_echo_ok"] == 20 and out["udp_app_ok"] == 20
    t = out["tcp"]
    assert t["send_error"] is None
    assert (t["sent"], t["received"], t["equal"], t["first_mismatch"]) == (1 << 20, 1 << 20, True, None)
    st = link.stats
    assert st["tcp_data_in"] == 1 << 20 and st["tcp_data_out"] == 1 << 20
    assert st["icmp_echo"] == 5 and st["udp_echo"] == 20 and st["udp_delivered"] == 20
    assert st["arp_replied"] >= 1 and st["rx_bad_desc"] == 0
    # NetD's capture of the link (host time) holds the conversation.
    frames = [P.parse(p.data) for p in pcap.read(cap)]
    assert sum(1 for f in frames if f.icmp and f.icmp.type == 0) == 5
    assert sum(len(f.tcp.payload) for f in frames if f.tcp and f.ip_src == P.ip(tap.NETD_IP)) >= 1 << 20
    # Everything was removed.
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in names
