"""Networking for keusim: NetD's host build, packets, pcap files, a scripted peer.

NetD itself is C (``guests/netd/``). This package drives its host build
(:mod:`keusim.net.host`), builds and parses the frames it exchanges
(:mod:`keusim.net.packet`), writes and reads libpcap captures (:mod:`keusim.net.pcap`),
plays a deterministic peer from a script (:mod:`keusim.net.peer`) and sets up a TAP
device in a private network namespace for Linux's own stack to talk to
(:mod:`keusim.net.tap`). See docs/netd.md.
"""

from __future__ import annotations

from keusim.errors import KeusimError


class NetError(KeusimError):
    """A networking input is malformed (a pcap file, a script) or the host lacks a facility."""


__all__ = ["NetError"]
