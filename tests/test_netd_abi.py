"""The Python mirror of NetD's socket protocol and counters matches the C headers."""

from __future__ import annotations

import re

import pytest
from elftools.elf.elffile import ELFFile

from keusim.net import host
from keusim.net.host import NetdHost

SOCK_H = (host.NETD_DIR / "netd_sock.h").read_text()
NETD_H = (host.NETD_DIR / "netd.h").read_text()


def c_enum_values(text: str) -> dict[str, int]:
    return {m[1]: int(m[2], 0) for m in re.finditer(r"\b(NS_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)", text)}


def test_socket_protocol_constants_match_netd_sock_h():
    c = c_enum_values(SOCK_H)
    assert len(c) == 22  # 5 requests, 4 events, NS_RESP, 2 protocols, 10 errors
    for name, value in c.items():
        assert getattr(host, name, None) == value, name
    assert int(re.search(r"#define NS_MAX_PAYLOAD (\d+)", SOCK_H)[1]) == 8192
    fields = re.search(r"struct ns_msg \{(.*?)\};", SOCK_H, re.S)[1]
    types = re.findall(r"(u?int\d+)_t \w+;", fields)
    fmt = {"uint8": "B", "uint16": "H", "uint32": "I", "int32": "i"}
    assert "<" + "".join(fmt[t] for t in types) == host.NS_MSG.format


def test_every_counter_is_named_and_reported():
    body = re.search(r"enum netd_stat \{(.*?)ST_COUNT", NETD_H, re.S)[1]
    names = [n[3:].lower() for n in re.findall(r"ST_\w+", body)]
    with NetdHost() as h:
        st = h.stats()
    assert list(st)[: len(names)] == names
    assert set(st) - set(names) == {"nic_rx_drop", "nic_tx_bad", "tap_tx_drop"}


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_netd_compiles_freestanding_for_the_guests(arch, tmp_path):
    """NetD uses nothing beyond guests/lib: it compiles with the guest flags, warnings as
    errors, into one relocatable object that leaves no symbol undefined."""
    obj = host.guest_object(arch, tmp_path)
    with open(obj, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        defined = {s.name for s in symtab.iter_symbols() if s["st_shndx"] != "SHN_UNDEF"}
        undefined = {s.name for s in symtab.iter_symbols() if s["st_shndx"] == "SHN_UNDEF" and s.name}
    assert {"netd_poll", "tcp_input", "ring_reserve", "memcpy"} <= defined
    assert undefined == set()
    nbytes, ninsns = host.code_size(arch, tmp_path)
    assert 0 < ninsns < nbytes
