"""The tag check: "~15 cycles ... using the hardware CRC extension that SipHash can leverage".

    python experiments/tag_check.py [--quick] [--out DIR] [--workers N] [--no-native]

keusim: the marginal kernel cost of one verified notify (keusim.analysis.notifycost.measure: a
run with N and one with 2N notifications, per-function attribution, subtracted), split
into trap, tag (siphash24 + notify_tag_ok) and routing, on both architectures and on
every profile (flat = one cycle per instruction, i.e. the instruction count).
The kernel image's siphash24 is disassembled (capstone) and its CRC instructions counted.
native: the kernel's own desc_tag_ok (same C source) timed on the host
(experiments/native/sipbench.c), dependent checks, converted to core cycles.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._common import (  # noqa: E402
    NATIVE_SRC,
    Experiment,
    Measurement,
    Row,
    Timer,
    fmt,
    host_clock,
    log,
    native_bench,
    native_program,
    parallel,
    provenance,
    save,
    script_main,
)
from keusim.toolchain import ROOT  # noqa: E402

NAME = "tag_check"
TITLE = "Tag check: docs/paper.md says ~15 cycles (CRC extension), ~25 with routing"
CONFIGS = (("x86_64", None), ("x86_64", "zen3"), ("x86_64", "raptorlake"), ("x86_64", "host"),
           ("arm64", None), ("arm64", "neoverse-n1"), ("arm64", "cortex-a76"))
QUICK_CONFIGS = (("x86_64", "raptorlake"), ("arm64", "neoverse-n1"))
SIPROUNDS = 12          # 24-byte encoding: 3 words + the length word, 2 rounds each, + 4
CHAIN_PER_ROUND = 4     # docs/notify.md: a SipRound's critical path is 4 dependent ops


def _measure(arch: str, profile: str | None, notifications: int) -> dict:
    from keusim.analysis.notifycost import measure

    c = measure(arch, notifications, profile)
    sip = c.functions.get("siphash24", {"instructions": 0.0, "cycles": 0.0})
    return {"arch": arch, "profile": profile or "flat", "notifications": c.notifications,
            "trap": vars(c.trap), "tag": vars(c.tag), "routing": vars(c.routing),
            "total": vars(c.total), "siphash24": {k: sip[k] for k in ("instructions", "cycles")}}


def crc_scan(path: Path, arch: str, symbols=("siphash24",)) -> dict:
    """Instructions and CRC instructions in functions of an ELF (capstone)."""
    from elftools.elf.elffile import ELFFile

    from keusim import arch as archmod
    md = archmod.get(arch).capstone()
    out = {}
    with path.open("rb") as f:
        elf = ELFFile(f)
        syms = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols()}
        text = None
        for sec in elf.iter_sections():
            if sec.name == ".text":
                text = sec
        for name in symbols:
            s = syms.get(name)
            if s is None or text is None:
                continue
            off = s["st_value"] - text["sh_addr"]
            code = text.data()[off:off + s["st_size"]]
            insns = list(md.disasm(code, s["st_value"]))
            out[name] = {"instructions": len(insns),
                         "crc": sum(i.mnemonic.startswith("crc32") for i in insns),
                         "mnemonics": sorted({i.mnemonic for i in insns})}
    return out


def measure_native(clock, quick: bool) -> dict:
    exe = native_program("exp-sipbench", (NATIVE_SRC / "sipbench.c", _bench_c(),
                                          ROOT / "kernel" / "lib" / "siphash.c"),
                         extra_includes=(ROOT / "kernel" / "include", ROOT / "guests" / "include"))
    out = {"crc": crc_scan(exe, "x86_64")}
    for bench in ("tag_ok_dep", "tag_ok"):
        meds = []
        for _ in range(1 if quick else 3):
            d = native_bench(exe, bench, iters=20000 if quick else 200000, batch=100)
            if d["errors"]:
                raise RuntimeError(f"sipbench {bench}: the tag check gave wrong answers")
            meds.append(d["median_ticks"])
        meds.sort()
        ns = meds[len(meds) // 2] / clock.tsc_ghz
        out[bench] = {"ns": ns, "cycles": ns * clock.ghz}
    return out


def _range_by_arch(res, part: str) -> str:
    """'x86_64 874; arm64 713-720': a part's instruction counts over the profiles (the
    path can differ slightly with timing, e.g. whether the consumer was asleep)."""
    by: dict[str, list[float]] = {}
    for r in res:
        by.setdefault(r["arch"], []).append(r[part]["instructions"])
    out = []
    for a, v in by.items():
        lo, hi = fmt(min(v)), fmt(max(v))
        out.append(f"{a} {lo}" + (f"-{hi}" if hi != lo else ""))
    return "; ".join(out)


def _bench_c() -> Path:
    from keusim.model.harness import NATIVE_DIR

    return NATIVE_DIR / "bench.c"


def run(quick: bool = False, out: str | Path | None = None, workers: int | None = None,
        native: bool = True) -> Experiment:
    from keusim.toolchain import builds

    configs = QUICK_CONFIGS if quick else CONFIGS
    n = 50 if quick else 200
    with Timer() as t:
        nat, clock = None, None
        if native:
            clock = host_clock()
            log(f"[{NAME}] native: desc_tag_ok on the host")
            nat = measure_native(clock, quick)
        log(f"[{NAME}] {len(configs)} notify-cost measurements (2 runs each, {n} and {2 * n})")
        res = parallel(_measure, [dict(arch=a, profile=p, notifications=n) for a, p in configs],
                       workers)
        crc = {a: crc_scan(builds.kernel_image(a), a, ("siphash24", "notify_tag_ok"))
               for a in ("x86_64", "arm64")}
    ms = [Measurement("tag check", "paper", 15, "cycles", note="'using the hardware CRC extension'"),
          Measurement("tag check + routing", "paper", 25, "cycles")]
    for r in res:
        for part in ("trap", "tag", "routing", "total", "siphash24"):
            for unit in ("instructions", "cycles"):
                ms.append(Measurement(f"{part} per notify", "keusim", r[part][unit], unit,
                                      profile=r["profile"], arch=r["arch"]))
    for a, fns in crc.items():
        for fn, v in fns.items():
            ms.append(Measurement(f"{fn} instructions in the kernel image", "keusim",
                                  v["instructions"], "instructions", arch=a))
            ms.append(Measurement(f"{fn} CRC instructions in the kernel image", "keusim", v["crc"],
                                  "instructions", arch=a))
    if nat:
        for b in ("tag_ok_dep", "tag_ok"):
            ms.append(Measurement(f"native desc_tag_ok ({b})", "native", nat[b]["cycles"], "cycles",
                                  profile="host", note=f"{nat[b]['ns']:.1f} ns"))

    prof_res = [r for r in res if r["profile"] != "flat"]

    def cell(part: str, unit: str = "cycles", rs=None) -> str:
        return "; ".join(f"{fmt(r[part][unit])} ({r['arch']} {r['profile']})" for r in (rs or prof_res))

    def sumcell() -> str:
        return "; ".join(f"{fmt(r['tag']['cycles'] + r['routing']['cycles'])} ({r['arch']} "
                         f"{r['profile']})" for r in prof_res)

    insn = {r["arch"]: r for r in res}
    floor = SIPROUNDS * CHAIN_PER_ROUND
    sip_ops = SIPROUNDS * 14
    from keusim.model.profiles import load_profile
    width = load_profile("raptorlake").issue_width
    crc_txt = "; ".join(f"{a}: {v['siphash24']['crc']} of {v['siphash24']['instructions']} "
                        f"instructions" for a, v in crc.items())
    rows = [
        Row("Tag check: SipHash-2-4 of the 24-byte descriptor, compared", "~15 cycles",
            cell("tag"),
            (f"{fmt(nat['tag_ok_dep']['cycles'])} ({fmt(nat['tag_ok_dep']['ns'], 'ns')}, dependent "
             f"checks); {fmt(nat['tag_ok']['cycles'])} independent") if nat else "n/a",
            f"12 SipRounds, each a 4-deep chain of add/xor/rotate: >= {floor} cycles even with "
            "1-cycle ALUs and unlimited width. The model and the host both run the kernel's "
            "C siphash24; the paper's 15 cycles is below that floor."),
        Row("Instructions per tag check",
            f"not stated (15 cycles x {width:g}-wide issue <= {15 * width:g})",
            "; ".join(f"{fmt(r['tag']['instructions'])} ({r['arch']}; siphash24 "
                      f"{fmt(r['siphash24']['instructions'])})" for r in insn.values()),
            "n/a (not measured by this script: perf has no hardware counters in this VM)",
            f"SipHash-2-4 over 24 bytes is {sip_ops} add/xor/rotate operations "
            "(arm64 folds rotates into eor: fewer instructions). Raptor Cove renames at most "
            f"{width:g} instructions a cycle (raptorlake pipeline.issue_width): {15 * width:g} in "
            "15 cycles. docs/notify.md records a hand-run valgrind "
            "callgrind count of a host -O2 build of the whole desc_tag_ok (not re-measured "
            "here)."),
        Row("Uses the hardware CRC extension", "yes",
            f"no: CRC instructions in the kernel's siphash24: {crc_txt}",
            (f"no: {nat['crc']['siphash24']['crc']} of {nat['crc']['siphash24']['instructions']} "
             "in the host build") if nat and "siphash24" in nat["crc"] else "n/a",
            "SipHash is add-rotate-xor only; CRC32 (SSE4.2 / ARMv8 CRC) computes a different, "
            "unkeyed function and cannot compute or speed up SipHash."),
        Row("Tag check + routing (the notify path without the trap)", "~25 cycles", sumcell(),
            "n/a",
            "Routing (dispatch, copyin of the descriptor with two page-table walks, the "
            "sequence and range checks, wakeup) costs more than the tag: see the JSON's "
            "per-function split."),
        Row("Whole verified notify system call (trap + tag + routing)", "25 (175 - 150)",
            cell("total"), "n/a",
            "The paper's 175 - 150 = 25 cycles covers everything the notify adds; keusim runs "
            "the real system call on every message."),
    ]
    notes = [f"keusim: marginal cost per notification ({n} vs {2 * n} notifications, baseline "
             "subtracted), kernel functions on the notifying core; kernel instructions per "
             "notify (trap + tag + routing): " + _range_by_arch(res, "total"),
             "CRC counts are static: the instructions of each function's body in the ELF."]
    if clock:
        notes.append(f"native cycles = median ns x {clock.ghz:.2f} GHz ({clock.source})")
    prov = provenance(NAME, profiles=[p or "flat" for _, p in configs],
                      arches=sorted({a for a, _ in configs}), quick=quick,
                      parameters={"notifications": n, "configs": [f"{a}/{p or 'flat'}" for a, p in configs],
                                  "host_core_ghz": clock.ghz if clock else None})
    exp = Experiment(NAME, TITLE, rows, ms, prov,
                     details={"notify_cost": res, "kernel_crc_scan": crc, "native": nat},
                     notes=notes, seconds=t.seconds)
    return save(exp, out, figure)


def figure(exp: Experiment):
    import matplotlib.pyplot as plt

    res = [r for r in exp.details["notify_cost"] if r["profile"] != "flat"]
    labels = [f"{r['arch']}\n{r['profile']}" for r in res]
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(res) + 2), 4))
    bottom = [0.0] * len(res)
    for part in ("tag", "routing", "trap"):
        vals = [r[part]["cycles"] for r in res]
        ax.bar(labels, vals, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    nat = exp.details.get("native")
    if nat:
        ax.bar(["host\nnative"], [nat["tag_ok_dep"]["cycles"]], color="C0", hatch="//",
               label="tag check, native")
    ax.axhline(15, color="k", ls="--", lw=1, label="paper: tag check ~15")
    ax.axhline(25, color="r", ls=":", lw=1, label="paper: tag + routing ~25")
    ax.axhline(SIPROUNDS * CHAIN_PER_ROUND, color="0.5", lw=1,
               label=f"SipHash dependency floor {SIPROUNDS * CHAIN_PER_ROUND}")
    ax.set_ylabel("cycles per verified notify")
    ax.set_title("Kernel cost of one verified notify (keusim) and the tag check natively", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def main(argv=None) -> int:
    return script_main(__doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
