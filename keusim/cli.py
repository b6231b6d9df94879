"""The `keusim` command: a thin layer over the library API.

    keusim run NAME|MANIFEST [--arch A] [--json] [--messages N] [--size N] [--param K=V] [--gdb PORT]
    keusim scenarios
    keusim prove [--all | NAME ...]
    keusim native [--quick]
    keusim trace | attribute | notifycost SYSTEM ...   (analysis of one run)
    keusim calibrate | validate  [... --help]
    keusim new NAME
    keusim fuzz --runs N --seed S [--arch A]   (adversarial guests, docs/fuzzing.md)
    keusim demo [--full] [--no-native] [--out DIR]
    keusim reproduce [NAME ...|--all] [--quick] [--out DIR]
    keusim sweep SYSTEM --grid K=V,V,... [--executor dask --scheduler ADDR] ...

Bad input gets one line `keusim: error: ...` and exit status 2; a run that
completes but is not ok exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from keusim.errors import KeusimError
from keusim.machine.machine import DEFAULT_LOOKAHEAD, DEFAULT_QUANTUM

_show_warning = None


def _params(ns) -> dict:
    from keusim.manifest import parse_params
    out = parse_params(ns.param)
    if ns.messages is not None:
        out["messages"] = ns.messages
    if ns.size is not None:
        out["size"] = ns.size
    return out


def cmd_run(ns) -> int:
    from keusim.system import default_progress, run
    params = _params(ns)
    t0 = time.perf_counter()
    gdb = None
    if ns.gdb is not None:   # --gdb PORT [--gdb-core N]: keusim/machine/gdb.py
        from keusim.machine.gdb import GdbOptions
        gdb = GdbOptions(ns.gdb, ns.gdb_core)
    wire = None
    if ns.pcap_in and ns.tap:
        raise KeusimError("--pcap-in and --tap both say what is at the other end of the link; give one")
    if ns.tap_client and not ns.tap:
        raise KeusimError("--tap-client runs in the TAP namespace; add --tap")
    if ns.pcap_in:
        from keusim.net.wire import PcapWire
        wire = PcapWire(ns.pcap_in)
    elif ns.tap:
        from keusim.net.tap import TapWire
        wire = TapWire(client=ns.tap_client)
    try:
        rep = run(ns.system, arch=ns.arch, params=params, profile=ns.profile, quantum=ns.quantum,
                  lookahead=ns.lookahead,
                  max_cycles=ns.max_cycles, dump_mappings=ns.dump_mappings, verified=ns.verified,
                  progress=None if ns.json or gdb or ns.tap else default_progress(f"keusim run {ns.system}"),
                  gdb=gdb, wire=wire, pcap_out=ns.pcap_out,
                  fast_forward=not ns.no_fast_forward)
    finally:
        if wire is not None and hasattr(wire, "close"):
            wire.close()
    if ns.json:
        print(rep.to_json())
    else:
        print(rep.summary())
        if ns.dump_mappings and rep.mappings:
            for proc, rows in rep.mappings.items():
                if proc.startswith("_"):
                    continue
                print(f"  mappings of {proc}:")
                for r in rows:
                    print(f"    {r['va']:>16}-{r['end']:<16} -> {r['pa']:>10}  {r['perm']}  {r['owner']}")
        print(f"  (host time {time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    return 0 if rep.ok else 1


def cmd_scenarios(ns) -> int:
    from keusim.manifest import load, scenarios
    for name, path in scenarios().items():
        spec = load(path)
        first = path.read_text().splitlines()[0].lstrip("# ").strip()
        params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
        print(f"{name:<14} {first}" + (f"  [params: {params}]" if params else ""))
    return 0


def cmd_prove(ns) -> int:
    from keusim.proof import prove
    if ns.budget <= 0:
        raise KeusimError(f"--budget {ns.budget:g}: give a positive number of seconds per proof")
    if ns.mutants:
        from keusim.proof import mutants
        rs = mutants.run_all(ns.names or None, budget=ns.budget, progress=True)
        print(mutants.render(rs))
        return 0 if all(r.ok for r in rs) else 1
    names = None if ns.all or not ns.names else ns.names
    results = prove.run_proofs(names, budget=ns.budget)
    print(prove.render_table(results))
    return 0 if all(r.ok for r in results) else 1


def add_native_parser(sub) -> None:
    """``keusim native``: the native harness's ring, IPC baselines and microbenchmarks."""
    from keusim.model.harness import GROUPS, RING_CAPACITY
    n = sub.add_parser("native", help="run the native harness on the host")
    n.add_argument("--only", choices=GROUPS, action="append",
                   help="run only these groups (repeatable; default all)")
    n.add_argument("--scale", type=float, default=1.0,
                   help="multiply the default iteration counts (e.g. 0.05 for a quick look)")
    n.add_argument("--quick", action="store_true", help="same as --scale 0.05 --runs 1")
    n.add_argument("--runs", type=int, default=3, help="independent runs per configuration")
    n.add_argument("--capacity", type=int, default=RING_CAPACITY, help="ring capacity in bytes")
    n.add_argument("--seed", type=int, default=1)
    n.add_argument("--cpus", help="the two CPUs to pin to, as A,B")
    n.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    n.set_defaults(func=cmd_native)


def cmd_native(ns) -> int:
    from keusim.model import harness
    cpus = None
    if ns.cpus:
        try:
            c0, c1 = (int(x) for x in ns.cpus.split(","))
        except ValueError:
            raise harness.NativeHarnessError(
                f"--cpus wants two CPU numbers A,B, got {ns.cpus!r}") from None
        cpus = (c0, c1)
    scale, runs = (0.05, 1) if ns.quick else (ns.scale, ns.runs)
    report = harness.run_all(ns.only or harness.GROUPS, capacity=ns.capacity, seed=ns.seed,
                             runs=runs, scale=scale, cpus=cpus)
    print(report.table())
    if ns.json:
        Path(ns.json).write_text(report.to_json())
    return 0


def add_calibrate_parser(sub) -> None:
    """``keusim calibrate``: measure this host and fit the ``host`` profile."""
    c = sub.add_parser("calibrate", help="fit the `host` cycle-model profile on this machine")
    c.add_argument("--out", default=None,
                   help="profile path (default: the user profile dir, where it shadows `host`)")
    c.add_argument("--no-write", action="store_true", help="print the fit, write nothing")
    c.add_argument("--base", default=None,
                   help="profile for what is not measured (default: this CPU's core family)")
    c.add_argument("--runs", type=int, default=5,
                   help="rounds over the microbenchmarks (fastest or median round fitted)")
    c.add_argument("--scale", type=float, default=1.0, help="multiply iteration counts")
    c.add_argument("--allow-busy", action="store_true", help="fit even if the machine was busy")
    c.add_argument("--boost", action="store_true",
                   help="run the benchmarks at the highest CPU priority allowed (shared machines)")
    c.set_defaults(func=cmd_calibrate)


def cmd_calibrate(ns) -> int:
    from keusim.model.calibrate import calibrate
    from keusim.model.profiles import calibrated_dir
    out = None if ns.no_write else (ns.out or str(calibrated_dir() / "host.toml"))
    _, report = calibrate(out, base=ns.base, runs=ns.runs, scale=ns.scale,
                          allow_busy=ns.allow_busy, boost=ns.boost)
    print(report.table())
    return 0


def add_validate_parser(sub) -> None:
    """``keusim validate``: the cycle model against native runs on held-out workloads."""
    from keusim.model.validate import SIZES, WORKLOADS
    v = sub.add_parser("validate", help="cycle model vs native runs on held-out workloads")
    v.add_argument("--profile", default="host", help="cycle-model profile (default: host)")
    v.add_argument("--sizes", default=",".join(map(str, SIZES)),
                   help="message sizes in bytes, comma-separated")
    v.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated: pingpong, stream, callchain")
    v.add_argument("--messages", type=int, default=None,
                   help="simulated ops per run (default: by size)")
    v.add_argument("--runs", type=int, default=7, help="native runs per configuration")
    v.add_argument("--out", default="results/validation",
                   help="folder for validation.{json,csv,txt,png,svg} (default: %(default)s)")
    v.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each native round, wait up to S seconds for other tasks to "
                        "leave the CPUs (shared machines)")
    v.add_argument("--boost", action="store_true",
                   help="run the native twins at the highest CPU priority allowed "
                        "(SCHED_FIFO as root), so that other tenants preempt them less")
    v.add_argument("--no-state-check", action="store_true",
                   help="compare with every native run, not only those measured while the "
                        "host was in the profile's state (line round trip, mem_mix)")
    v.add_argument("--no-plot", action="store_true", help="write no figures")
    v.add_argument("--json", action="store_true", help="print the report as JSON instead")
    v.set_defaults(func=cmd_validate)


def cmd_validate(ns) -> int:
    from keusim.model.validate import ValidationError, validate
    try:
        sizes = tuple(int(s) for s in ns.sizes.split(",") if s.strip())
    except ValueError:
        raise ValidationError(f"--sizes wants integers separated by commas, got "
                              f"{ns.sizes!r}") from None
    cmd = (f"keusim validate --profile {ns.profile} --sizes {ns.sizes} --workloads "
           f"{ns.workloads} --runs {ns.runs}"
           + (f" --messages {ns.messages}" if ns.messages else "")
           + (f" --wait-quiet {ns.wait_quiet:g}" if ns.wait_quiet else "")
           + (" --boost" if ns.boost else "")
           + (" --no-state-check" if ns.no_state_check else ""))
    rep = validate(ns.profile, sizes, ns.messages, None,
                   workloads=[w.strip() for w in ns.workloads.split(",") if w.strip()],
                   runs=ns.runs, wait_quiet_s=ns.wait_quiet, command=cmd, boost=ns.boost,
                   state_check=not ns.no_state_check)
    paths = rep.save(ns.out, plot=not ns.no_plot) if ns.out else []
    print(rep.to_json() if ns.json else rep.table())
    if paths and not ns.json:
        print(f"\nwrote {', '.join(str(p) for p in paths)} ({rep.elapsed_s:.0f} s)")
    return 0


def _run_target(sp) -> None:
    """The arguments that name a system to run (as `keusim run`)."""
    sp.add_argument("system", help="scenario name (see `keusim scenarios`) or MANIFEST.toml")
    sp.add_argument("--arch", default=None, help="x86_64 or arm64 (default: manifest's, else x86_64)")
    sp.add_argument("--param", action="append", metavar="K=V", help="any scenario parameter")
    sp.add_argument("--profile", default=None,
                    help="cycle-model profile (default: flat, one cycle per instruction)")
    sp.add_argument("--verified", action="store_true",
                    help="use verified (SipHash-tagged) notifications")


def cmd_trace(ns) -> int:
    from keusim.analysis.trace import format_trace, trace
    from keusim.manifest import parse_params
    start: int | str = int(ns.start) if ns.start.lstrip("-").isdigit() else ns.start
    rows = trace(ns.system, arch=ns.arch, start=start, count=ns.count, core=ns.core,
                 params=parse_params(ns.param), profile=ns.profile, verified=ns.verified)
    if ns.json:
        import json
        print(json.dumps([r.as_dict() for r in rows], indent=1))
    else:
        print(format_trace(rows))
    return 0


def cmd_attribute(ns) -> int:
    from keusim.analysis.attribution import attribute
    from keusim.manifest import parse_params
    att = attribute(ns.system, ns.arch, parse_params(ns.param), ns.profile, ns.verified)
    if ns.json:
        import json
        print(json.dumps(att.as_dict(), indent=1))
    else:
        print(att.table(ns.top))
    return 0


def cmd_notifycost(ns) -> int:
    from keusim.analysis.notifycost import measure
    c = measure(ns.arch, ns.notifications, ns.profile)
    if ns.json:
        import json
        print(json.dumps(c.as_dict(), indent=2))
    else:
        print(c.table())
    return 0


def add_fuzz_parser(sub) -> None:
    f = sub.add_parser("fuzz", help="seeded attack programs vs. the machine's invariants",
                       description="Run seeded attack programs beside honest processes and "
                                   "check that the machine contains them (docs/fuzzing.md).")
    f.add_argument("--runs", type=int, default=100, help="number of runs (default 100)")
    f.add_argument("--seed", type=lambda v: int(v, 0), default=1, help="campaign seed (default 1)")
    f.add_argument("--arch", default=None, help="x86_64 or arm64 (default: alternate both)")
    f.add_argument("--determinism-every", type=int, default=50, metavar="K",
                   help="re-run every K-th run and compare reports byte for byte (0: never)")
    f.add_argument("--save-dir", default="fuzz-cases",
                   help="where minimized failing cases go (default ./fuzz-cases)")
    f.add_argument("--max-saves", type=int, default=8, help="cases to minimize and save (default 8)")
    f.add_argument("--no-minimize", action="store_true", help="save failing programs as generated")
    f.add_argument("--max-ops", type=int, default=40, help="operations per program, at most")
    f.add_argument("--kernel-flags", type=lambda v: int(v, 0), default=0,
                   help="test-only kernel flags (bootinfo.h BOOT_FLAG_*), e.g. to plant a bug")
    f.add_argument("--replay", nargs="+", metavar="CASE", help="replay saved cases instead")
    f.set_defaults(func=cmd_fuzz)


def cmd_fuzz(ns) -> int:
    """Exit 0 when every run held every invariant (or every replayed case passes), else 1."""
    from keusim.fuzz.campaign import fuzz, replay_case
    if ns.replay:
        bad = 0
        targets: dict = {}
        for c in ns.replay:
            _, vs = replay_case(Path(c), targets)
            print(f"{c}: " + ("ok" if not vs else "; ".join(f"{v.invariant}: {v.detail}"
                                                             for v in vs)))
            bad += bool(vs)
        return 1 if bad else 0
    from keusim import arch as archmod
    from keusim.progress import progress_bar
    archs = (archmod.normalize(ns.arch),) if ns.arch else archmod.ARCH_NAMES
    bar = progress_bar(total=ns.runs, desc="keusim fuzz", unit=" runs")

    def progress(done: int, failures: int) -> None:
        if bar is not None:
            bar.set_postfix(failures=failures, refresh=False)
            bar.update(done - bar.n)
    s = fuzz(ns.runs, ns.seed, archs, ns.determinism_every, not ns.no_minimize,
             Path(ns.save_dir), ns.max_saves, ns.kernel_flags, ns.max_ops, progress)
    if bar is not None:
        bar.close()
    print(s.render())
    return 0 if s.ok else 1


def cmd_demo(ns) -> int:
    from keusim.workflow import demo
    return demo.command(ns)


def cmd_reproduce(ns) -> int:
    from keusim.workflow import reproduce
    return reproduce.command(ns)


def cmd_sweep(ns) -> int:
    from keusim.workflow import sweep
    return sweep.command(ns)


def cmd_new(ns) -> int:
    from keusim.template import new_project
    manifest = new_project(ns.name)
    files = ", ".join(sorted(p.name for p in manifest.parent.iterdir()))
    print(f"created {manifest.parent}/ ({files})\nnext: keusim run {manifest}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="keusim", description="A research platform for microkernel IPC.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a built-in scenario or a manifest")
    r.add_argument("system", help="scenario name (see `keusim scenarios`) or MANIFEST.toml")
    r.add_argument("--arch", default=None, help="x86_64 or arm64 (default: manifest's, else x86_64)")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--messages", type=int, help="scenario parameter `messages`")
    r.add_argument("--size", type=int, help="scenario parameter `size` (bytes)")
    r.add_argument("--param", action="append", metavar="K=V", help="any scenario parameter")
    r.add_argument("--verified", action="store_true", help="use verified (SipHash-tagged) notifications")
    r.add_argument("--profile", default=None, help="cycle-model profile (default: flat)")
    r.add_argument("--quantum", type=int, default=DEFAULT_QUANTUM,
                   help="host check interval in cycles (never changes results)")
    r.add_argument("--lookahead", type=int, default=DEFAULT_LOOKAHEAD,
                   help=f"cross-core window in cycles (default {DEFAULT_LOOKAHEAD}; "
                        "larger is faster, less exact)")
    r.add_argument("--no-fast-forward", action="store_true",
                   help="run spinning cores instruction by instruction instead of parking "
                        "them (the same report, slower; docs/architecture.md)")
    r.add_argument("--max-cycles", type=int, default=None, help="model-time budget")
    r.add_argument("--dump-mappings", action="store_true", help="list every process's mappings")
    r.add_argument("--gdb", type=int, metavar="PORT", default=None,
                   help="stop at boot and wait for gdb-multiarch on PORT (0: any free port)")
    r.add_argument("--gdb-core", type=int, metavar="N", default=0,
                   help="the core gdb attaches to (default 0)")
    r.add_argument("--pcap-in", metavar="FILE", default=None,
                   help="NIC systems: replay the peer's side of this capture on model time")
    r.add_argument("--pcap-out", metavar="FILE", default=None,
                   help="NIC systems: write every frame that crossed the link to this pcap")
    r.add_argument("--tap", action="store_true",
                   help="NIC systems: connect the link to a TAP device in a private network "
                        "namespace, Linux's own stack as the peer (root; host time, not deterministic)")
    r.add_argument("--tap-client", action="store_true",
                   help="with --tap: run the Linux-side checks (ping, UDP echo, TCP exchange) "
                        "in the namespace and print their result")
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("scenarios", help="list built-in scenarios")
    s.set_defaults(func=cmd_scenarios)
    p = sub.add_parser("prove", help="run the Z3 proofs")
    p.add_argument("--all", action="store_true")
    p.add_argument("--budget", type=float, default=120.0, metavar="SECONDS",
                   help="time budget per proof; a proof over it is stopped and reported "
                        "unknown (default 120)")
    p.add_argument("--mutants", action="store_true",
                   help="plant each catalogued bug in a copy of ring.c/notify.c/channel.c, "
                        "rebuild, and report whether the proofs catch it (NAMES select mutants)")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_prove)
    add_native_parser(sub)
    add_calibrate_parser(sub)
    add_validate_parser(sub)
    t = sub.add_parser("trace", help="a window of executed instructions with their costs")
    _run_target(t)
    t.add_argument("--start", default="0",
                   help="instruction index on the core, or a symbol such as ring_send, "
                        "ping:ring_send, kernel:syscall (default 0)")
    t.add_argument("--count", type=int, default=60, help="instructions to show (default 60)")
    t.add_argument("--core", type=int, default=0)
    t.add_argument("--json", action="store_true", help="print the rows as JSON")
    t.set_defaults(func=cmd_trace)
    at = sub.add_parser("attribute", help="cycles by process, kernel path, function, category")
    _run_target(at)
    at.add_argument("--top", type=int, default=15, help="functions to list (default 15)")
    at.add_argument("--json", action="store_true")
    at.set_defaults(func=cmd_attribute)
    nc = sub.add_parser("notifycost", help="kernel instructions per verified notify, by part")
    nc.add_argument("--arch", default="x86_64")
    nc.add_argument("--profile", default=None)
    nc.add_argument("-n", "--notifications", type=int, default=200)
    nc.add_argument("--json", action="store_true")
    nc.set_defaults(func=cmd_notifycost)
    add_fuzz_parser(sub)
    nw = sub.add_parser("new", help="create a ready-to-run project folder NAME/")
    nw.add_argument("name", help="folder to create; its name becomes the system's name")
    nw.set_defaults(func=cmd_new)
    from keusim.workflow import demo as _demo
    from keusim.workflow import reproduce as _repro
    from keusim.workflow import sweep as _sweep
    d = sub.add_parser("demo", help="the paper's headline claims on this host, and containment")
    _demo.add_arguments(d)
    d.set_defaults(func=cmd_demo)
    rp = sub.add_parser("reproduce", help="run the paper reproductions (experiments/)")
    _repro.add_arguments(rp)
    rp.set_defaults(func=cmd_reproduce)
    sw = sub.add_parser("sweep", help="a grid or list of runs over parameters, profiles, arches")
    _sweep.add_arguments(sw)
    sw.set_defaults(func=cmd_sweep)
    return ap


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """keusim's own warnings (a profile measured on another CPU, ...) as one line."""
    from keusim.model.profiles import ProfileWarning
    if issubclass(category, ProfileWarning):
        print(f"keusim: warning: {message}", file=file or sys.stderr)
    else:
        _show_warning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    import warnings
    global _show_warning
    if warnings.showwarning is not _warning_line:
        _show_warning, warnings.showwarning = warnings.showwarning, _warning_line
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = parser().parse_args(argv)
    try:
        return ns.func(ns)
    except KeusimError as e:
        print(f"keusim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keusim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
