"""Parameter sweeps: a grid or a list of runs, in a local process pool or on Dask.

    keusim sweep pingpong --grid coherence.core_to_core=20..200 --grid size=64,256,1024 \\
        --grid arch=x86_64,arm64 --grid profile=raptorlake,neoverse-n1 --set messages=200 \\
        --metric rt_cycles --x coherence.core_to_core [--executor dask --scheduler ADDR]

    >>> import keusim
    >>> s = keusim.sweep("pingpong", grid={"size": [64, 1024], "lookahead": [20, 200]},
    ...                  fixed={"messages": 200})
    >>> s.column("rt_cycles")

An axis is named by what it varies:
  ``arch``, ``profile``, ``lookahead``   the run's architecture, cycle-model profile
                                        (``flat`` or a profile name or path), cross-core
                                        window in cycles;
  ``mode``                              the channels' wake-up mode: ``poll``, ``notify``
                                        (IPI wake-ups), ``verified`` (notify with SipHash
                                        tags, as ``run --verified``), ``manifest`` (as
                                        written; the default);
  ``section.key`` with a dot            a profile number, overridden
                                        (keusim.model.profiles.override: a timing in
                                        cycles, ``section.key.ns`` in ns,
                                        ``classes.NAME.latency``);
  anything else                         a scenario parameter (``size``, ``messages``).
Points whose profile is for the other ISA than their ``arch`` are skipped (said so), so
``arch=x86_64,arm64`` x ``profile=raptorlake,neoverse-n1`` runs two pairings.

Results are one tidy table, a row per point (axes, then metrics, then ``ok``,
``status``, ``error``), in ``<out>/sweep.csv`` and ``<out>/sweep.parquet`` with the
provenance (keusim version, git commit, each point's profile SHA-256, host) in
``<out>/sweep.json`` and in the Parquet schema's metadata, and a figure of a metric
against an axis (``sweep.png``/``.svg``). Every metric is model state, so the table is
the same byte for byte whichever executor ran it. Rows are appended to ``sweep.csv`` as
points finish; a sweep started again with the same ``out`` runs only the points without
a successful row (``resume=False`` / ``--fresh`` starts over). A point that fails gets
one line in its ``error`` cell and the others still run.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from keusim.errors import KeusimError

RUN_AXES = ("arch", "profile", "mode", "lookahead")
MODES = ("manifest", "poll", "notify", "verified")
METRICS = ("rt_cycles", "rt_ns", "cycles", "instructions", "kernel_cycles",
           "coherence_transfers", "coherence_cycles", "recv_msgs", "intact")
"""Per point: cycles per round trip on channel 0 (``rt_cycles``; ``rt_ns`` at the
profile's clock), the run's model cycles (the slowest core), instructions, kernel cycles,
coherence events and their cycles (all cores), messages received on channel 0, and
whether every channel's bytes arrived intact. Empty when a run has no such number."""
TAIL = ("profile_sha256", "ok", "status", "error", "point")
RANGE_POINTS = 5
"""``A..B`` with no count or step: this many points, ends included."""


class SweepError(KeusimError):
    """A sweep's specification is wrong (an axis, a value, the results file)."""


# --------------------------------------------------------------------------- spec


def parse_values(text: str) -> list:
    """Values of one axis from the command line.

    ``64,256,1024`` a list; ``20..200`` five evenly spaced points, ends included;
    ``20..200/10`` ten points; ``20..200:45`` a step. Whole numbers become ints, other
    numbers floats, anything else stays a string.
    """
    m = re.fullmatch(r"\s*(-?[\d.]+)\s*\.\.\s*(-?[\d.]+)\s*(?:([/:])\s*([\d.]+))?\s*", text)
    if m:
        a, b = _num(m.group(1)), _num(m.group(2))
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b < a:
            raise SweepError(f"range {text!r}: write LOW..HIGH with LOW <= HIGH")
        if m.group(3) == ":":
            step = _num(m.group(4))
            if not isinstance(step, (int, float)) or step <= 0:
                raise SweepError(f"range {text!r}: the step after ':' must be positive")
            n = int((b - a) / step + 1e-9) + 1
            vals = [a + i * step for i in range(n)]
        else:
            n = int(m.group(4)) if m.group(3) else RANGE_POINTS
            if n < 1:
                raise SweepError(f"range {text!r}: the count after '/' must be at least 1")
            vals = [a + (b - a) * i / (n - 1) for i in range(n)] if n > 1 else [a]
        if isinstance(a, int) and isinstance(b, int) and (m.group(3) != ":" or
                                                           isinstance(_num(m.group(4)), int)):
            vals = [int(round(v)) for v in vals]
        return list(dict.fromkeys(vals))
    return [_num(v) for v in text.split(",") if v.strip()]


def _num(s: str):
    s = s.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def parse_assignments(items: Iterable[str], what: str) -> dict[str, list]:
    """``["K=VALUES", ...]`` -> {K: [values]} (see :func:`parse_values`)."""
    out: dict[str, list] = {}
    for item in items or ():
        k, eq, v = item.partition("=")
        if not eq or not k.strip() or not v.strip():
            raise SweepError(f"{what} {item!r}: write NAME=VALUES, e.g. size=64,256 or "
                             "coherence.core_to_core=20..200")
        out[k.strip()] = parse_values(v)
    return out


def _axis_kind(name: str) -> str:
    if name in RUN_AXES:
        return "run"
    if "." in name:
        return "override"
    return "param"


@dataclass(frozen=True)
class Point:
    """One run of a sweep."""

    index: int
    system: str
    arch: str
    profile: str
    mode: str
    lookahead: int
    params: tuple[tuple[str, object], ...]
    overrides: tuple[tuple[str, float], ...]

    @property
    def id(self) -> str:
        """A stable name for the point (its inputs' hash): resumption matches on it."""
        key = json.dumps([self.system, self.arch, self.profile, self.mode, self.lookahead,
                          list(self.params), list(self.overrides)], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def expand(system: str, grid: Mapping[str, Sequence] | None = None,
           points: Sequence[Mapping] | None = None, fixed: Mapping | None = None,
           default_arch: str = "x86_64") -> tuple[list[Point], list[str], int]:
    """The sweep's points in order: every point of ``points`` (default one empty point)
    crossed with the grid (axes varied in the order given, the last fastest), with
    ``fixed`` values underneath. Returns (points, axis names, points skipped because
    their profile is for the other ISA).
    """
    from keusim.machine.machine import DEFAULT_LOOKAHEAD
    from keusim.manifest import resolve

    grid = dict(grid or {})
    for k, vs in grid.items():
        if isinstance(vs, (str, bytes)) or not isinstance(vs, Sequence) or not vs:
            raise SweepError(f"axis {k!r}: give a non-empty list of values")
    spec = resolve(system)
    base = [dict(p) for p in (points or [{}])]
    axes = list(dict.fromkeys([*grid, *(k for p in base for k in p)]))
    fixed = dict(fixed or {})
    for k in [*axes, *fixed]:
        if _axis_kind(k) == "param" and k not in spec.params:
            known = ", ".join(sorted(spec.params)) or "none"
            raise SweepError(f"{system!r} has no parameter {k!r} (it has: {known}; other axes: "
                             f"{', '.join(RUN_AXES)}, or section.key to override a profile "
                             "number)")
    out, skipped = [], 0
    isa_cache: dict[str, str | None] = {}
    for p in base:
        combos = itertools.product(*grid.values()) if grid else [()]
        for combo in combos:
            v = {**fixed, **p, **dict(zip(grid, combo, strict=True))}
            arch = str(v.get("arch", spec.arch or default_arch))
            prof = str(v.get("profile", "flat"))
            mode = str(v.get("mode", "manifest"))
            if mode not in MODES:
                raise SweepError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
            la = v.get("lookahead", DEFAULT_LOOKAHEAD)
            if isinstance(la, bool) or not isinstance(la, int) or la < 1:
                raise SweepError(f"lookahead {la!r}: must be a whole number of cycles >= 1")
            # A parameter a point leaves out keeps the manifest's value, shown in its cell.
            params = tuple((k, v.get(k, spec.params[k])) for k in dict.fromkeys((*fixed, *axes))
                           if _axis_kind(k) == "param")
            ovr = tuple((k, v[k]) for k in dict.fromkeys((*fixed, *axes))
                        if _axis_kind(k) == "override" and k in v)
            if ovr and prof == "flat":
                raise SweepError(f"overriding {ovr[0][0]} needs a profile; add "
                                 "profile=NAME (the flat model has no numbers)")
            if prof not in isa_cache:
                isa_cache[prof] = None if prof == "flat" else _profile(prof).isa
            if isa_cache[prof] not in (None, _normalize_arch(arch)):
                skipped += 1
                continue
            out.append(Point(len(out), system, _normalize_arch(arch), prof, mode, la, params,
                             ovr))
    return out, axes, skipped


def _normalize_arch(arch: str) -> str:
    from keusim import arch as archmod

    return archmod.normalize(arch)


def _profile(name: str):
    from keusim.model.profiles import load_profile

    return load_profile(name)


def effective_profile(point: Point) -> tuple[str | None, str | None, str]:
    """(profile name or path, profile TOML text when overridden, SHA-256 of the profile
    the point runs with: of its flattened TOML; ``flat`` for the flat model)."""
    if point.profile == "flat":
        return None, None, "flat"
    from keusim.model.profiles import override

    prof = _profile(point.profile)
    if point.overrides:
        prof = override(prof, dict(point.overrides), source="keusim sweep override")
    text = prof.to_toml()
    sha = hashlib.sha256(text.encode()).hexdigest()
    return (point.profile, text if point.overrides else None, sha)


# --------------------------------------------------------------------------- one point


def run_point(task: dict) -> dict:
    """Run one point (in a pool process or on a Dask worker) and return its metrics.

    ``task``: system, arch, profile (name or None), profile_toml (an overridden
    profile's text, written to a local temporary file here so a remote worker needs no
    shared folder), mode, lookahead, params, id. Never raises: a failure becomes the
    row's ``error``, one line.
    """
    import dataclasses

    row = {m: None for m in METRICS}
    row.update(ok=False, status="", error="", point=task["id"])
    try:
        from keusim.manifest import resolve
        from keusim.system import run

        profile = task["profile"]
        if task.get("profile_toml"):
            d = Path(tempfile.gettempdir()) / "keusim-sweep-profiles"
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{task['profile_sha256']}.toml"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(task["profile_toml"])
                os.replace(tmp, path)
            profile = str(path)
        spec = resolve(task["system"])
        verified = task["mode"] == "verified"
        if task["mode"] in ("poll", "notify"):
            spec = dataclasses.replace(spec, channels=tuple(
                dataclasses.replace(c, mode=task["mode"], verified=False) for c in spec.channels))
        rep = run(spec, arch=task["arch"], params=dict(task["params"]), profile=profile,
                  lookahead=task["lookahead"], verified=verified)
        row.update(_metrics(rep, task.get("ghz")))
        row["ok"], row["status"] = bool(rep.ok), rep.status
        if not rep.ok:
            row["error"] = _one_line(f"run not ok: {rep.status}"
                                     + (f": {rep.message}" if rep.message else ""))
    except Exception as e:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        row["error"] = _one_line(f"{type(e).__name__}: {e}")
        row["status"] = "error"
    return row


def _one_line(s: str, limit: int = 300) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit - 3] + "..."


def _metrics(rep, ghz: float | None) -> dict:
    out: dict = {"cycles": rep.cycles, "instructions": rep.instructions,
                 "kernel_cycles": sum(c.kernel_cycles for c in rep.cores),
                 "coherence_transfers": sum(c.coherence_transfers for c in rep.cores),
                 "coherence_cycles": sum(c.coherence_cycles for c in rep.cores)}
    if rep.channels:
        ch = rep.channels[0]
        s = ch.producer_stats
        if s.get("round_trips"):
            out["rt_cycles"] = s["rt_cycles"] / s["round_trips"]
            if ghz:
                out["rt_ns"] = out["rt_cycles"] / ghz
        out["recv_msgs"] = ch.consumer_stats.get("recv_msgs", 0)
        out["intact"] = all(c.intact for c in rep.channels)
    return out


# --------------------------------------------------------------------------- results


@dataclass
class SweepResult:
    """A finished sweep: the tidy table (rows in point order) and where it was written."""

    columns: list[str]
    rows: list[dict]
    axes: list[str]
    provenance: dict
    outdir: Path
    files: list[Path] = field(default_factory=list)
    skipped: int = 0
    resumed: int = 0
    executor: str = "local"
    seconds: float = 0.0

    def column(self, name: str) -> list:
        """One column of the table, in point order."""
        if name not in self.columns:
            raise SweepError(f"no column {name!r}; columns: {', '.join(self.columns)}")
        return [r[name] for r in self.rows]

    @property
    def errors(self) -> list[dict]:
        """The rows of points that failed or did not run cleanly."""
        return [r for r in self.rows if r["error"]]

    def to_arrow(self):
        """The table as a pyarrow.Table, provenance in its schema metadata."""
        import pyarrow as pa

        t = pa.Table.from_pylist(self.rows)
        return t.replace_schema_metadata({"keusim.provenance": json.dumps(self.provenance)})

    def text(self, metric: str = "rt_cycles", limit: int = 60) -> str:
        """The varying axes, ``metric`` and the errors as a fixed-width table."""
        varying = [a for a in self.axes if len({repr(r[a]) for r in self.rows}) > 1] or \
            self.axes[:1]
        cols = [*varying, metric, "ok", "error"]
        cells = [[_cell(r[c]) for c in cols] for r in self.rows[:limit]]
        w = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
        w[-1] = min(w[-1], 70)
        lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(cols)).rstrip(),
                 "  ".join("-" * x for x in w)]
        lines += ["  ".join(v[:w[i]].ljust(w[i]) for i, v in enumerate(row)).rstrip()
                  for row in cells]
        if len(self.rows) > limit:
            lines.append(f"... {len(self.rows) - limit} more rows in {self.outdir}/sweep.csv")
        return "\n".join(lines)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
    return str(v)


def _columns(axes: Sequence[str]) -> list[str]:
    return ["system", *[a for a in RUN_AXES], *[a for a in axes if a not in RUN_AXES],
            *METRICS, *TAIL]


def _row_for(point: Point, sha: str, result: Mapping, columns: Sequence[str]) -> dict:
    vals = {"system": point.system, "arch": point.arch, "profile": point.profile,
            "mode": point.mode, "lookahead": point.lookahead, **dict(point.params),
            **dict(point.overrides), "profile_sha256": sha, **result}
    return {c: vals.get(c) for c in columns}


def _parse_cell(s: str):
    if s == "":
        return None
    if s in ("True", "False"):
        return s == "True"
    return _num(s)


def _read_done(path: Path, columns: list[str], wanted: dict[str, Point]) -> dict[str, dict]:
    """Successful rows of a results file, by point id (for resumption)."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        r = csv.reader(f)
        header = next(r, None)
        if header is None:
            return {}
        if header != columns:
            raise SweepError(f"{path} holds a different sweep (its columns differ); give "
                             "another --out, or --fresh to start this one over there")
        rows = [dict(zip(header, line, strict=False)) for line in r if len(line) == len(header)]
    foreign = {x["point"] for x in rows} - set(wanted)
    if foreign:
        raise SweepError(f"{path} has results for {len(foreign)} points not in this sweep; "
                         "give another --out, or --fresh to start over there")
    done = {}
    for x in rows:
        if x["error"] == "" and x["ok"] == "True":
            done[x["point"]] = {c: _parse_cell(x[c]) for c in METRICS + ("ok", "status")}
            done[x["point"]].update(error="", point=x["point"])
    return done


def provenance(system: str, grid: Mapping, points: Sequence[Mapping] | None, fixed: Mapping,
               shas: Mapping[str, str]) -> dict:
    """Where the table came from: keusim version and git commit, host, inputs, and the
    SHA-256 of every profile (base name and overrides -> hash)."""
    import unicorn

    import keusim
    from keusim.toolchain import ROOT

    def git(*args):
        try:
            p = subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, text=True,
                               capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return p.stdout.strip() if p.returncode == 0 else None

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"keusim_version": keusim.__version__, "git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(status) if status is not None else None,
            "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": {"cpu": model, "cpus": os.cpu_count(), "node": platform.node(),
                     "python": platform.python_version(), "unicorn": unicorn.__version__},
            "system": system, "grid": {k: list(v) for k, v in grid.items()},
            "points": [dict(p) for p in points] if points else None, "fixed": dict(fixed),
            "profiles_sha256": dict(shas),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""}


# --------------------------------------------------------------------------- executors


def _local(tasks: list[dict], workers: int, on_result: Callable[[dict, dict], None]) -> None:
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            on_result(t, run_point(t))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork is instant; inside a Jupyter kernel (threads) a fork server is the safe choice.
    method = "forkserver" if "ipykernel" in sys.modules else "fork"
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                             mp_context=mp.get_context(method)) as ex:
        futs = {ex.submit(run_point, t): t for t in tasks}
        for f in as_completed(futs):
            t = futs[f]
            try:
                res = f.result()
            except Exception as e:  # noqa: BLE001 - a dead pool process fails its point only
                res = _failed(t, e)
            on_result(t, res)


def _failed(task: dict, e: BaseException) -> dict:
    row = {m: None for m in METRICS}
    row.update(ok=False, status="error", error=_one_line(f"{type(e).__name__}: {e}"),
               point=task["id"])
    return row


def _dask(tasks: list[dict], scheduler, on_result: Callable[[dict, dict], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SweepError("the Dask executor needs the `distributed` package; "
                         "pip install 'keusim[dask]'") from None
    own = not isinstance(scheduler, Client)
    if own:
        if not scheduler:
            raise SweepError("--executor dask needs --scheduler ADDRESS (e.g. "
                             "tcp://127.0.0.1:8786, from `dask scheduler`)")
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as e:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler} ({e}); start "
                             "one with `dask scheduler` and `dask worker ADDRESS`") from None
    else:
        client = scheduler
    try:
        futs = {}
        for t in tasks:
            # pure=False: a point is run even if an identical task ran before (a resumed
            # sweep decides what to skip itself, from its results file).
            f = client.submit(run_point, t, key=f"keusim-sweep-{t['id']}-{time.time_ns()}",
                              pure=False)
            futs[f.key] = (f, t)
        for f in as_completed([f for f, _ in futs.values()]):
            t = futs[f.key][1]
            try:
                res = f.result()
            except Exception as e:  # noqa: BLE001 - a lost worker fails its point only
                res = _failed(t, e)
            on_result(t, res)
    finally:
        if own:
            client.close()


def _workers_default() -> int:
    env = os.environ.get("KEUSIM_EXP_WORKERS")
    return max(1, int(env)) if env else max(1, min(2, os.cpu_count() or 1))


# --------------------------------------------------------------------------- the sweep


def sweep(system: str | Path = "pingpong", grid: Mapping[str, Sequence] | None = None, *,
          points: Sequence[Mapping] | None = None, fixed: Mapping | None = None,
          out: str | Path | None = None, executor: str = "local", scheduler=None,
          workers: int | None = None, resume: bool = True, force_cluster: bool = False,
          metric: str = "rt_cycles", x: str | None = None, figure: bool = True,
          progress: bool = True, log: Callable[[str], None] | None = None) -> SweepResult:
    """Run every point of a sweep and write the table (see the module docstring).

    Args:
        system: a built-in scenario name or a manifest path.
        grid: axis -> values; every combination runs.
        points: a list of points (axis -> value), each crossed with ``grid``.
        fixed: axis -> one value, for every point (e.g. ``{"messages": 200}``).
        out: results folder (default ``results/sweep/<system>`` in the source tree).
        executor: ``local`` (a process pool of ``workers``) or ``dask`` (``scheduler``:
            an address such as ``tcp://127.0.0.1:8786`` or a ``distributed.Client``).
        resume: skip points that already have a successful row in ``<out>/sweep.csv``.
        force_cluster: use the cluster even for a sweep smaller than its cost (fewer
            points than two per local worker run locally otherwise, said so on ``log``).
        metric, x: the figure's y metric and x axis (default: the first grid axis).
        figure: write ``sweep.png``/``sweep.svg``.
        progress: a progress bar on stderr (when it is a terminal).
        log: where messages go (default stderr).

    Raises:
        SweepError: an unknown axis or parameter, bad values, a results file of another
            sweep; failures of single points are recorded in their rows instead.
    """
    say = log or (lambda s: print(s, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    system = str(system)
    if system.endswith(".toml") and Path(system).is_file():
        system = str(Path(system).resolve())   # the same file from a worker in another cwd
    grid = dict(grid or {})
    fixed = dict(fixed or {})
    if metric not in METRICS:
        raise SweepError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if executor not in ("local", "dask"):
        raise SweepError(f"unknown executor {executor!r}; choose local or dask")
    pts, axes, skipped = expand(system, grid, points, fixed)
    if not pts:
        raise SweepError("the sweep has no points to run (every profile is for the other "
                         "ISA than its arch?)")
    if skipped:
        say(f"sweep: skipped {skipped} points whose profile is for the other ISA than their arch")
    axes += [k for k in fixed if k not in axes]
    if x is not None and x not in axes and x not in RUN_AXES:
        raise SweepError(f"cannot plot against {x!r}: it is not an axis of this sweep "
                         f"(axes: {', '.join(axes) or 'none'})")
    columns = _columns(axes)
    from keusim.toolchain import ROOT

    d = Path(out) if out else ROOT / "results" / "sweep" / Path(system).stem
    d.mkdir(parents=True, exist_ok=True)
    csv_path = d / "sweep.csv"
    by_id = {p.id: p for p in pts}
    if len(by_id) != len(pts):
        raise SweepError("the sweep lists the same point twice; remove the duplicate")
    if not resume and csv_path.exists():
        csv_path.unlink()
    done = _read_done(csv_path, columns, by_id)
    shas: dict[str, str] = {}
    tasks, profile_of = [], {}
    for p in pts:
        name, text, sha = effective_profile(p)
        label = p.profile + "".join(f" {k}={v}" for k, v in p.overrides)
        shas[label] = sha
        profile_of[p.id] = sha
        if p.id in done:
            continue
        ghz = None
        if name:
            from keusim.model.profiles import parse_profile

            ghz = (parse_profile(text) if text else _profile(name)).ghz
        tasks.append({"id": p.id, "system": system, "arch": p.arch, "profile": name,
                      "profile_toml": text, "profile_sha256": sha, "mode": p.mode,
                      "lookahead": p.lookahead, "params": list(p.params), "ghz": ghz})
    if done:
        say(f"sweep: resuming {csv_path}: {len(done)} of {len(pts)} points already done")
    nworkers = workers or _workers_default()
    used = executor
    if executor == "dask" and len(tasks) < 2 * nworkers and not force_cluster:
        say(f"sweep: {len(tasks)} points to run is fewer than two per local worker "
            f"({nworkers}): a cluster's set-up (connecting, shipping tasks, each worker "
            "building the images once) would cost more than it saves; running locally "
            "(force_cluster=True / --force-cluster to use it anyway)")
        used = "local"
    fresh = not csv_path.exists()
    journal = csv_path.open("a", newline="")
    writer = csv.DictWriter(journal, fieldnames=columns)
    if fresh:
        writer.writeheader()
        journal.flush()
    results: dict[str, dict] = dict(done)
    from keusim.progress import progress_bar

    # progress=True: a bar when stderr is a terminal (a pipe or a test sees none).
    bar = progress_bar(total=len(pts), desc=f"sweep {Path(system).stem}", unit="point",
                       enabled=None if progress else False, initial=len(done),
                       dynamic_ncols=True)

    def on_result(task: dict, res: dict) -> None:
        results[task["id"]] = res
        writer.writerow(_row_for(by_id[task["id"]], task["profile_sha256"], res, columns))
        journal.flush()
        if bar is not None:
            bar.update(1)
            if res["error"]:
                bar.write(f"sweep: point {task['id']} ({_describe(by_id[task['id']])}): "
                          f"{res['error']}", file=sys.stderr)

    try:
        if tasks:
            if used == "dask":
                _dask(tasks, scheduler, on_result)
            else:
                _local(tasks, nworkers, on_result)
    finally:
        journal.close()
        if bar is not None:
            bar.close()
    rows = [_row_for(p, profile_of[p.id], results[p.id], columns) for p in pts]
    prov = provenance(system, grid, points, fixed, shas)
    old_json = d / "sweep.json"
    if done and old_json.exists():
        # Resumed rows were computed by the runs before this one: keep their provenance.
        try:
            old = json.loads(old_json.read_text()).get("provenance", {})
        except (OSError, ValueError):
            old = {}
        if old:
            prov["earlier_runs"] = [*old.pop("earlier_runs", []), old]
    res = SweepResult(columns, rows, axes, prov, d, skipped=skipped, resumed=len(done),
                      executor=used, seconds=time.perf_counter() - t0)
    res.files = _write(res, metric, x or (next(iter(grid), None) or axes[0]), figure)
    for r in res.errors:
        say(f"sweep: point {r['point']} failed: {r['error']}")
    return res


def _describe(p: Point) -> str:
    parts = [p.arch, p.profile, *(f"{k}={v}" for k, v in (*p.params, *p.overrides))]
    if p.mode != "manifest":
        parts.append(f"mode={p.mode}")
    return ", ".join(parts)


def _write(res: SweepResult, metric: str, x: str, figure: bool) -> list[Path]:
    """The final table in point order (CSV, Parquet), the provenance and the figure."""
    import pyarrow.parquet as pq

    d = res.outdir
    files = []
    p = d / "sweep.csv"
    tmp = d / "sweep.csv.tmp"
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=res.columns)
        w.writeheader()
        w.writerows(res.rows)
    os.replace(tmp, p)
    files.append(p)
    p = d / "sweep.parquet"
    pq.write_table(res.to_arrow(), p)
    files.append(p)
    p = d / "sweep.json"
    p.write_text(json.dumps({"provenance": res.provenance, "columns": res.columns,
                             "axes": res.axes, "points": len(res.rows),
                             "failed": len(res.errors), "skipped_other_isa": res.skipped,
                             "resumed": res.resumed, "executor": res.executor,
                             "host_seconds": round(res.seconds, 2)}, indent=1) + "\n")
    files.append(p)
    if figure and x in res.columns:
        files += plot(res, x, metric, d / "sweep")
    return files


def plot(res: SweepResult, x: str, metric: str = "rt_cycles", stem: str | Path | None = None):
    """``metric`` against axis ``x``, one line per combination of the other varying
    axes. Writes ``<stem>.png`` and ``.svg`` when ``stem`` is given (returns their
    paths), else returns the matplotlib figure."""
    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in res.columns:
        raise SweepError(f"no axis {x!r} to plot against; axes: {', '.join(res.axes)}")
    others = [a for a in ("arch", "profile", "mode", "lookahead", *res.axes)
              if a != x and len({repr(r[a]) for r in res.rows}) > 1]
    others = list(dict.fromkeys(others))
    groups: dict[tuple, list] = {}
    for r in res.rows:
        if r[metric] is None or r[x] is None:
            continue
        groups.setdefault(tuple(r[a] for a in others), []).append((r[x], r[metric]))
    fig, ax = plt.subplots(figsize=(10 if len(groups) > 1 else 7.5, 4.5))
    for key, pts in groups.items():
        pts.sort()
        label = ", ".join(f"{a}={v}" for a, v in zip(others, key, strict=True)) or metric
        ax.plot([a for a, _ in pts], [b for _, b in pts], marker="o", label=label)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    sysname = res.provenance.get("system", "")
    ax.set_title(f"keusim sweep {sysname}: {metric} against {x}", fontsize=10)
    if len(groups) > 1:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    ax.grid(alpha=0.3)
    prov = res.provenance
    fig.text(0.01, 0.005, f"keusim {prov['keusim_version']} @ {str(prov['git_commit'])[:10]}"
             f"{'+dirty' if prov['git_dirty'] else ''} | {prov['host']['cpu']}", fontsize=6,
             color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    if stem is None:
        return fig
    paths = []
    for ext in ("png", "svg"):
        p = Path(f"{stem}.{ext}")
        fig.savefig(p, dpi=130, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    plt.close(fig)
    return paths


# --------------------------------------------------------------------------- CLI


def add_arguments(ap) -> None:
    """The options of ``keusim sweep`` (shared with keusim.cli)."""
    ap.add_argument("system", help="scenario name or MANIFEST.toml")
    ap.add_argument("--grid", action="append", metavar="AXIS=VALUES", default=[],
                    help="an axis and its values: size=64,256  coherence.core_to_core=20..200 "
                         "(5 points; /N for N, :S for a step)  arch=x86_64,arm64  "
                         "profile=raptorlake,neoverse-n1  mode=poll,notify  lookahead=20,200")
    ap.add_argument("--point", action="append", metavar="AXIS=V,AXIS=V", default=[],
                    help="one point of a list sweep (repeat); crossed with --grid")
    ap.add_argument("--set", action="append", metavar="AXIS=V", default=[],
                    help="a value for every point, e.g. messages=200")
    ap.add_argument("--metric", default="rt_cycles",
                    help=f"the figure's y axis: {', '.join(METRICS)}")
    ap.add_argument("--x", default=None, help="the figure's x axis (default: the first --grid)")
    ap.add_argument("--out", default=None, help="results folder (default results/sweep/SYSTEM)")
    ap.add_argument("--executor", default="local", choices=("local", "dask"))
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://HOST:PORT)")
    ap.add_argument("--workers", type=int, default=None,
                    help="local pool processes (default min(2, CPUs))")
    ap.add_argument("--fresh", action="store_true",
                    help="start over instead of resuming from OUT/sweep.csv")
    ap.add_argument("--force-cluster", action="store_true",
                    help="use the Dask cluster even for a sweep smaller than its cost")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")


def _point_arg(text: str) -> dict:
    out = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if not eq or not k.strip():
            raise SweepError(f"--point {text!r}: write AXIS=V,AXIS=V")
        out[k.strip()] = _num(v)
    return out


def command(ns) -> int:
    """Run parsed ``keusim sweep`` arguments; prints the table and where it went."""
    grid = parse_assignments(ns.grid, "--grid")
    fixed = {}
    for k, vs in parse_assignments(ns.set, "--set").items():
        if len(vs) != 1:
            raise SweepError(f"--set {k}: give one value (use --grid for several)")
        fixed[k] = vs[0]
    points = [_point_arg(p) for p in ns.point] or None
    r = sweep(ns.system, grid, points=points, fixed=fixed, out=ns.out, executor=ns.executor,
              scheduler=ns.scheduler, workers=ns.workers, resume=not ns.fresh,
              force_cluster=ns.force_cluster, metric=ns.metric, x=ns.x,
              progress=not ns.no_progress)
    print(r.text(ns.metric))
    print(f"{len(r.rows)} points ({r.resumed} resumed, {len(r.errors)} failed"
          f"{f', {r.skipped} skipped: profile for the other ISA' if r.skipped else ''}) "
          f"on {r.executor} in {r.seconds:.1f} s")
    for f in r.files:
        print(f"  {f}")
    return 1 if r.errors else 0
