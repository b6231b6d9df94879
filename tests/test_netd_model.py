"""NetD inside the emulated machine (guests/netd/model/udp_echo.c): every echo checked
by the guest, and the same cycles on every run, on both architectures."""

from __future__ import annotations

import pytest

from keusim.net import NetError
from keusim.net.model import tcp_rx, udp_echo


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_udp_echo_in_the_machine_is_verified_and_repeatable(arch):
    a = udp_echo(arch, size=200, packets=12)
    b = udp_echo(arch, size=200, packets=12)
    assert a == b               # model time: identical cycles, packet for packet
    assert a.packets == 12 and a.size == 200 and a.profile == "flat"
    # Flat model: one cycle per instruction; the same work for every packet.
    assert a.min_cycles == a.max_cycles and a.cycles == 12 * a.min_cycles
    # A bigger payload costs more: the checksums and the copy grow with it.
    assert udp_echo(arch, size=1000, packets=2).min_cycles > a.min_cycles


def test_bad_parameters_are_refused():
    with pytest.raises(NetError, match="size 2000 must be in"):
        udp_echo("x86_64", size=2000)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_tcp_receive_in_the_machine_is_verified_and_repeatable(arch):
    """Segments reach the application's ring intact and acknowledged (the guest checks
    both and exits 1 otherwise), at the same cost on every run."""
    a = tcp_rx(arch, size=300, packets=10)
    assert a == tcp_rx(arch, size=300, packets=10)
    assert a.packets == 10 and a.size == 300 and a.netd_cycles > a.app_cycles > 0
    with pytest.raises(NetError, match="size 1461 must be in"):
        tcp_rx(arch, size=1461)
