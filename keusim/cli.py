"""The `keusim` command: a thin layer over the library API.

    keusim run NAME|MANIFEST [--arch A] [--json] [--messages N] [--size N] [--param K=V]
    keusim scenarios
    keusim prove [--all | NAME ...]
    keusim native [--quick]
    keusim calibrate | validate | trace | attribute | notifycost  [... --help]
    keusim demo

Bad input gets one line `keusim: error: ...` and exit status 2; a run that
completes but is not ok exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from keusim.errors import KeusimError


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
    rep = run(ns.system, arch=ns.arch, params=params, profile=ns.profile, quantum=ns.quantum,
              lookahead=ns.lookahead,
              max_cycles=ns.max_cycles, dump_mappings=ns.dump_mappings, verified=ns.verified,
              progress=None if ns.json else default_progress(f"keusim run {ns.system}"))
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


def cmd_native(ns) -> int:
    from keusim.model import harness
    return harness.main(["--quick"] if ns.quick else [])


def cmd_calibrate(ns) -> int:
    from keusim.model import calibrate
    from keusim.model.profiles import calibrated_dir
    out = ns.out or str(calibrated_dir() / "host.toml")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return calibrate.main(["--write", out] + (["--allow-busy"] if ns.allow_busy else []))


def cmd_demo(ns) -> int:
    from keusim.system import run
    ok = True
    for arch in ("x86_64", "arm64"):
        for name in ("hello", "faults"):
            rep = run(name, arch=arch)
            print(rep.summary())
            print()
            ok &= rep.ok
    print("demo:", "all scenarios behaved as expected" if ok else "SOMETHING WENT WRONG")
    return 0 if ok else 1


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
    r.add_argument("--quantum", type=int, default=200_000, help="host check interval in cycles")
    r.add_argument("--lookahead", type=int, default=20,
                   help="cross-core window in cycles (default 20; larger is faster, less exact)")
    r.add_argument("--max-cycles", type=int, default=None, help="model-time budget")
    r.add_argument("--dump-mappings", action="store_true", help="list every process's mappings")
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
    n = sub.add_parser("native", help="run the native harness on the host")
    n.add_argument("--quick", action="store_true")
    n.set_defaults(func=cmd_native)
    c = sub.add_parser("calibrate", help="fit the `host` cycle-model profile on this machine")
    c.add_argument("--out", default=None,
                   help="profile path (default: the user profile dir, where it shadows `host`)")
    c.add_argument("--allow-busy", action="store_true", help="fit even if the machine was busy")
    c.set_defaults(func=cmd_calibrate)
    for name, (_mod, desc) in PASSTHROUGH.items():
        sub.add_parser(name, help=desc + f" (see `keusim {name} --help`)")
    d = sub.add_parser("demo", help="run the demo scenarios on both architectures")
    d.set_defaults(func=cmd_demo)
    return ap


# Subcommands whose options belong to a library module: `keusim NAME ...` calls
# keusim.MODULE.main([...]) with the rest of the command line.
PASSTHROUGH = {
    "validate": ("keusim.model.validate", "cycle model vs native runs on held-out workloads"),
    "trace": ("keusim.analysis.trace", "a window of executed instructions with their costs"),
    "attribute": ("keusim.analysis.attribution", "cycles by process, kernel path, function, category"),
    "notifycost": ("keusim.analysis.notifycost", "kernel instructions per verified notify, by part"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASSTHROUGH:
        import importlib
        try:
            return importlib.import_module(PASSTHROUGH[argv[0]][0]).main(argv[1:]) or 0
        except KeusimError as e:
            print(f"keusim: error: {e}", file=sys.stderr)
            return 2
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
