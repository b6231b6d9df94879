"""Pingpong time: host seconds of one long pingpong run (issue 13's "100,000 messages in under
5 s"), after a short warm-up run in the same process (guest builds and block decoding are
then cached), with its cycles per round trip.

    .venv/bin/python bench/pingpong_time.py [--arch x86_64] [--messages 100000] [--size 64]

One line per architecture: messages, host seconds, round trips per host second, model cycles
per round trip. To compare two builds side by side, pair two invocations with
`farm-bench --vs` (it alternates them, so host drift hits both alike).
"""

from __future__ import annotations

import argparse

from ring_speed import ARCHES, _timed, cycles_per_rt

from keusim.model import hostcpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", choices=ARCHES)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--verified", action="store_true", help="verified notify mode")
    a = ap.parse_args(argv)
    if a.messages < 1:
        ap.error("--messages must be at least 1")
    print(f"host: {hostcpu.detect().describe()}")
    for arch in a.arch or ARCHES:
        # The warm-up: guest builds, and the blocks' decoding (cached per process).
        _timed(arch, 200, a.size, a.verified, True)
        rep, dt = _timed(arch, a.messages, a.size, a.verified, True)
        print(f"{arch:8} {a.messages:>9,} messages {dt:8.3f} s {a.messages / dt:>10,.0f} RT/s "
              f"{cycles_per_rt(rep):9.2f} cycles/RT")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
