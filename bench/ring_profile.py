"""Where the host time of a simulated pingpong goes: `perf record` of one long run, the
samples put in groups by the first matching frame of their stack (docs/unicorn.md).

    .venv/bin/python bench/ring_profile.py [--arch x86_64] [--messages 20000] [--verified]

Needs `perf` (perf_event_paranoid <= 2 for one's own processes). Two warm-up runs go first
in the same process; perf counts only the measured run (`perf record -D -1 --control`).
KEUSIM_PLAIN_UNICORN=1 profiles Unicorn's slow path as shipped.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GROUPS = (  # (group, substrings of a frame), the first group with a matching frame wins
    ("PC sync for hooked accesses (cpu_restore_state)", ("cpu_restore_state",)),
    ("fast_mem / spin write hook", ("fast_mem", "fast_spin_write")),
    ("TLB flush", ("tlb_flush",)),
    ("block hook (fast_block, in-hook scheduler, spin)", ("fast_block",)),
    ("exit-request check at block start", ("check_exit_request",)),
)
SLOW = ("load_helper", "store_helper", "_mmu_", "flatview_translate", "memory_mapping",
        "victim_tlb", "tlb_set_page", "tlb_fill", "notdirty", "address_space_",
        "get_phys_addr", "io_readx", "io_writex", "tb_invalidate_phys")
START = ("uc_emu_start", "resume_all_vcpus", "cpu_exec", "uc_reg_", "reg_read", "reg_write",
         "context_restore", "sched_run", "next_real", "tb_find", "tb_lookup", "tb_htable")


def group(frames: list[tuple[str, str]]) -> str:
    syms = [f[0] for f in frames]
    text = " ".join(syms)
    for name, keys in GROUPS:
        if any(k in text for k in keys):
            if name.startswith("block hook") and any("libpython" in d for _, d in frames):
                return "Python called from the block hook (pricing new blocks)"
            return name
    if any(k in s for s in syms[:3] for k in SLOW):
        return "slow-path loads/stores (helpers, region lookup)"
    dso = frames[0][1] if frames else "?"
    if "libpython" in dso or "_ctypes" in dso or dso == "inlined":
        return "Python"
    if any(k in text for k in START):
        return "slice start/stop, register access, block lookup"
    if dso.startswith("[unknown") or "/perf-" in dso:
        return "translated guest code"
    return "other"


def classify(data: Path) -> collections.Counter:
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,dso"],
                         capture_output=True, text=True, check=True).stdout
    counts: collections.Counter = collections.Counter()
    for sample in out.split("\n\n"):
        frames = []
        for line in sample.strip().splitlines():
            head, _, dso = line.strip().rpartition(" (")
            sym = head.split(" ", 1)[1] if " " in head else "[unknown]"
            frames.append((sym, dso.rstrip(")")))
        if frames:
            counts[group(frames)] += 1
    return counts


def child(arch: str, n: int, verified: bool) -> None:
    from keusim.system import run
    for _ in range(2):
        run("pingpong", arch=arch, params={"messages": n if verified else 200},
            profile="host", verified=verified)
    with open(os.environ["RP_CTL"], "w") as f:
        f.write("enable\n")
    with open(os.environ["RP_ACK"]) as f:
        f.read(5)
    r = run("pingpong", arch=arch, params={"messages": n}, profile="host", verified=verified)
    assert r.ok, r.message


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="x86_64", choices=("x86_64", "arm64"))
    ap.add_argument("--messages", type=int, default=None, help="default 20000, 2000 verified")
    ap.add_argument("--verified", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    n = a.messages or (2000 if a.verified else 20000)
    if a.child:
        child(a.arch, n, a.verified)
        return 0
    with tempfile.TemporaryDirectory() as d:
        ctl, ack, data = Path(d, "ctl"), Path(d, "ack"), Path(d, "perf.data")
        os.mkfifo(ctl)
        os.mkfifo(ack)
        cmd = [sys.executable, __file__, "--child", "--arch", a.arch, "--messages", str(n)]
        if a.verified:
            cmd.append("--verified")
        subprocess.run(["perf", "record", "-F", "999", "--call-graph=dwarf,16384", "-D", "-1",
                        f"--control=fifo:{ctl},{ack}", "-o", str(data), "-q", *cmd],
                       check=True, env={**os.environ, "RP_CTL": str(ctl), "RP_ACK": str(ack)})
        counts = classify(data)
    total = sum(counts.values())
    print(f"pingpong {a.arch}{' verified' if a.verified else ''}, {n} round trips, profile "
          f"host{' (plain Unicorn)' if os.environ.get('KEUSIM_PLAIN_UNICORN') == '1' else ''}:"
          f" {total} samples")
    for name, c in counts.most_common():
        print(f"{100 * c / total:6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
