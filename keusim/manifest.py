"""System manifests: a whole system described as data (TOML), in the spirit of the
seL4 Microkit's system description.

    [system]
    name = "pingpong"
    cores = 2              # default: highest core used + 1
    ram_mb = 64
    seed = 0x6b657573696d  # channel-key DRBG seed (default fixed, so runs reproduce)
    max_cycles = 2e9

    [params]               # scenario parameters: -DNAME=value for every guest;
    messages = 1000        # `keusim run ... --param messages=10` overrides

    [[process]]
    name = "ping"
    image = "ping.c"       # C source(s) relative to this file, "@/..." from the repo, or an ELF
    core = 0
    expect = "exit:0"      # or "fault:write-protect", "chanfault[:CODE]", "any"

    [[channel]]
    producer = "ping"
    consumer = "pong"
    capacity = 16384       # bytes, power of two (the kernel checks)
    mode = "poll"          # or "notify"
    verified = false

Every field, its type, default and meaning is in :data:`SCHEMA` (docs/manifest.md shows
it as tables); :func:`parse` is the one validator.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from keusim import report
from keusim.errors import KeusimError, ManifestError
from keusim.toolchain import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAXPROC, MAXCHAN, MAXCPU = 32, 32, 8   # kernel/include/param.h
NIC_QUEUES = 2                          # guests/include/keusim/nic.h
DEFAULT_SEED = 0x00006B657573696D  # kernel/include/drbg.h DRBG_DEFAULT_SEED ("keusim")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,30}$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ProcessSpec:
    """One ``[[process]]``: see :data:`SCHEMA` for the meaning of each field."""

    name: str
    sources: tuple[Path, ...]    # C sources, or one ELF
    core: int
    expect: str = "exit:0"
    cflags: tuple[str, ...] = ()
    nic: str = ""

    @property
    def is_elf(self) -> bool:
        return len(self.sources) == 1 and self.sources[0].suffix not in (".c", ".S", ".s")


@dataclass(frozen=True)
class ChannelSpec:
    """One ``[[channel]]``: see :data:`SCHEMA`."""

    producer: str
    consumer: str
    capacity: int
    mode: str = "poll"
    verified: bool = False
    name: str = ""


# Model cycles a process may run while another waits for its core (preemption is on
# unless a manifest says `timeslice = 0`). 1M cycles is ~0.3 ms at 3 GHz, a few
# times shorter than a Linux CFS slice, so short runs still interleave.
DEFAULT_TIMESLICE = 1_000_000


@dataclass(frozen=True)
class SystemSpec:
    """A whole validated manifest (the result of :func:`parse`)."""

    name: str
    path: Path | None
    processes: tuple[ProcessSpec, ...]
    channels: tuple[ChannelSpec, ...] = ()
    cores: int = 1
    ram_mb: int = 64
    seed: int = DEFAULT_SEED
    max_cycles: int = 2_000_000_000
    timeslice: int = DEFAULT_TIMESLICE
    params: dict = field(default_factory=dict)
    arch: str | None = None

    def with_params(self, **overrides) -> SystemSpec:
        """A copy with parameters overridden (values must be ints or strings)."""
        p = dict(self.params)
        for k, v in overrides.items():
            if not _PARAM.match(k):
                raise ManifestError(f"parameter name {k!r} is not a C identifier")
            p[k] = v
        return SystemSpec(**{**self.__dict__, "params": p})

    def process_index(self, name: str) -> int | None:
        for i, p in enumerate(self.processes):
            if p.name == name:
                return i
        return None


# --------------------------------------------------------------------------- the schema

@dataclass(frozen=True)
class Field:
    """One manifest field: where it lives, its type, default and meaning.

    ``kind`` drives the type check: ``str``, ``int``, ``bool``, ``strs`` (a list of
    strings) or ``str|strs`` (one string or a list). ``lo``/``hi`` bound integers;
    ``choices`` lists the allowed strings. ``default`` is the value used when the field
    is absent (``None``: required, or computed as ``default_doc`` says).
    """

    table: str
    name: str
    kind: str
    default: object
    meaning: str
    lo: int | None = None
    hi: int | None = None
    choices: tuple[str, ...] = ()
    default_doc: str = ""
    example: str = ""

    @property
    def type_doc(self) -> str:
        t = {"str": "string", "int": "integer", "bool": "boolean", "strs": "list of strings",
             "str|strs": "string or list of strings"}[self.kind]
        if self.choices:
            t += " (" + ", ".join(f'`"{c}"`' for c in self.choices) + ")"
        if self.lo is not None:
            t += f", {self.lo:_}..{self.hi:_}"
        return t


_EXPECT_DOC = ('`"exit:N"` (exited with code N), `"fault:KIND"` (killed by the kernel with '
               "fault KIND, docs/abi.md), `\"chanfault\"` or `\"chanfault:CODE\"` (recorded a "
               "corrupt channel with `ks_chanfault`, optionally with that ring error: "
               "corrupt-index, corrupt-length, ...; the process must be an endpoint of a "
               "channel), or `\"any\"`. The run is OK only if every process met its expect")

SCHEMA: tuple[Field, ...] = (
    Field("system", "name", "str", None, "the system's name in reports",
          default_doc="the manifest's file name without .toml", example='name = "demo"'),
    Field("system", "arch", "str", None,
          "architecture to run on when the caller names none (`keusim run --arch` wins)",
          choices=("x86_64", "arm64"), default_doc='"x86_64"', example='arch = "arm64"'),
    Field("system", "cores", "int", None, "number of cores", lo=1, hi=MAXCPU,
          default_doc="highest `core` used + 1", example="cores = 2"),
    Field("system", "ram_mb", "int", 64, "guest RAM in MiB", lo=16, hi=1000,
          example="ram_mb = 64"),
    Field("system", "seed", "int", DEFAULT_SEED,
          "seed of the kernel's channel-key generator (SipHash DRBG); fixed so runs reproduce",
          lo=0, hi=2**64 - 1, default_doc="0x6b657573696d", example="seed = 0x1234"),
    Field("system", "max_cycles", "int", 2_000_000_000,
          "model-time budget in cycles; a run that passes it stops with status `timeout` "
          "(a float such as 2e9 is accepted when it is integral)",
          lo=1000, hi=10**13, example="max_cycles = 2e9"),
    Field("system", "timeslice", "int", DEFAULT_TIMESLICE,
          "model cycles a process may run before the timer interrupt hands its core to "
          "another runnable process on the same core; the deadline is set when the process "
          "is scheduled, so system calls do not extend it. 0 turns preemption off: a "
          "process then keeps its core until it yields (`ks_yield`), waits or exits",
          lo=0, hi=10**9, example="timeslice = 100000"),
    Field("process", "name", "str", None,
          "unique process name (letters, digits, `_`, `.`, `-`; at most 31 characters); "
          "channels and reports refer to it", default_doc="required", example='name = "ping"'),
    Field("process", "image", "str|strs", None,
          "the program: C/assembly source(s) built with the guest SDK, or one prebuilt ELF. "
          "Paths are relative to the manifest's folder; `@/` starts from the keusim source "
          "tree", default_doc="required", example='image = "ping.c"'),
    Field("process", "core", "int", 0, "core the process is pinned to", lo=0, hi=MAXCPU - 1,
          example="core = 1"),
    Field("process", "expect", "str", "exit:0", _EXPECT_DOC, default_doc='"exit:0"',
          example='expect = "fault:write-protect"'),
    Field("process", "cflags", "strs", (), "extra compiler flags for this process's sources "
          "(after the -D flags made from [params])", default_doc="[]",
          example='cflags = ["-DROLE=1"]'),
    Field("process", "nic", "str", None,
          "what the process may do with the NIC (docs/netd.md): `queue` owns a NIC queue "
          "(SYS_NIC_ATTACH registers its frame region with the IOMMU and maps the queue's "
          "registers; DMA reaches nothing else), `syscalls` is the traditional path (the "
          f"kernel owns the queue and copies every frame in SYS_NET_SEND/RECV). At most "
          f"{NIC_QUEUES} processes per system", choices=("queue", "syscalls"),
          default_doc="none", example='nic = "queue"'),
    Field("channel", "name", "str", None, "the channel's name in reports",
          default_doc='"ch<index>"', example='name = "requests"'),
    Field("channel", "producer", "str", None, "name of the process that writes the ring",
          default_doc="required", example='producer = "ping"'),
    Field("channel", "consumer", "str", None, "name of the process that reads the ring",
          default_doc="required", example='consumer = "pong"'),
    Field("channel", "capacity", "int", 16384,
          "ring data bytes; the kernel accepts a power of two in 4096..1048576 and reports "
          "any other value as a channel set-up error in the run report",
          lo=0, hi=1 << 31, example="capacity = 4096"),
    Field("channel", "mode", "str", "poll",
          "`poll`: the consumer polls the ring; `notify`: the producer calls notify and the "
          "consumer may wait (docs/notify.md)", choices=("poll", "notify"),
          example='mode = "notify"'),
    Field("channel", "verified", "bool", False,
          "notifications carry SipHash-2-4 tags under a per-channel key (notify mode)",
          example="verified = true"),
)
"""Every manifest field. :func:`parse` checks against it; docs/manifest.md's tables are
:func:`schema_markdown` (tests/test_manifest_schema.py keeps them equal)."""

TABLES = {"system": "[system]", "process": "[[process]]", "channel": "[[channel]]"}
_FIELDS = {t: {f.name: f for f in SCHEMA if f.table == t} for t in TABLES}

FAULT_KINDS = tuple(report.FAULT_KINDS.values())
"""The fault kinds an ``expect = "fault:KIND"`` may name (the kernel's klog.h FK_*)."""

RING_ERROR_NAMES = tuple(report.RING_ERRORS.values())
"""The ring errors a ``chanfault:NAME`` may name (RING_E* in <keusim/ring.h>)."""


def schema_markdown() -> str:
    """docs/manifest.md's field tables, generated from :data:`SCHEMA`."""
    out: list[str] = []
    for t, title in TABLES.items():
        out += [f"### `{title}`", "", "| field | type | default | meaning |",
                "|---|---|---|---|"]
        for f in SCHEMA:
            if f.table != t:
                continue
            if f.default_doc:
                d = f.default_doc
            elif isinstance(f.default, bool):
                d = "true" if f.default else "false"
            elif isinstance(f.default, str):
                d = f'"{f.default}"'
            else:
                d = f"{f.default:_}" if isinstance(f.default, int) else str(f.default)
            out.append(f"| `{f.name}` | {f.type_doc} | {d} | {f.meaning} |")
        out.append("")
    return "\n".join(out)


def _err(where: str, msg: str) -> ManifestError:
    return ManifestError(f"{where}: {msg}")


def _check_keys(where: str, table: str, d: dict) -> None:
    known = _FIELDS[table]
    for k in d:
        if k not in known:
            near = difflib.get_close_matches(k, known, n=1)
            hint = f"did you mean '{near[0]}'?" if near else "remove it"
            raise _err(where, f"unknown field '{k}'; {hint} "
                              f"(fields: {', '.join(known)}; docs/manifest.md)")


def _value(where: str, table: str, d: dict, name: str):
    """d[name] checked against the schema (type, range, choices), or its default."""
    f = _FIELDS[table][name]
    if name not in d:
        return f.default
    v = d[name]
    fix = f"; e.g. {f.example}" if f.example else ""
    if f.kind == "int":
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise _err(where, f"'{name}' must be an integer, got {v!r}{fix}")
        if not f.lo <= v <= f.hi:
            raise _err(where, f"'{name}' = {v} is out of range [{f.lo}, {f.hi}]{fix}")
    elif f.kind == "bool":
        if not isinstance(v, bool):
            raise _err(where, f"'{name}' must be true or false, got {v!r}{fix}")
    elif f.kind == "str":
        if not isinstance(v, str):
            raise _err(where, f"'{name}' must be a string, got {v!r}{fix}")
        if f.choices and v not in f.choices:
            raise _err(where, f"'{name}' = {v!r} is not one of "
                              f"{', '.join(repr(c) for c in f.choices)}{fix}")
    else:
        ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
        if f.kind == "str|strs":
            ok = ok and bool(v) or isinstance(v, str)
        if not ok:
            raise _err(where, f"'{name}' must be a {f.type_doc}, got {v!r}{fix}")
    return v


def _resolve(base: Path, s: str) -> Path:
    if s.startswith("@/"):
        return (ROOT / s[2:]).resolve()
    p = Path(s)
    return (p if p.is_absolute() else base / p).resolve()


def _check_expect(where: str, expect: str, name: str, endpoint: bool) -> None:
    """Refuse an expect that is malformed or that no run can meet."""
    kind, _, arg = expect.partition(":")
    fix = "use exit:N, fault:KIND, chanfault[:CODE] or any (docs/manifest.md)"
    if kind == "any" and not arg:
        return
    if kind == "exit":
        # ks_exit takes a 64-bit status, reported whole (docs/abi.md).
        if not re.fullmatch(r"-?\d+", arg) or not -2**63 <= int(arg) < 2**64:
            raise _err(where, f"'expect' = {expect!r}: the exit code must be a 64-bit "
                              f"integer; {fix}")
        return
    if kind == "fault":
        if arg not in FAULT_KINDS:
            raise _err(where, f"'expect' = {expect!r} can never be met: the kernel has no "
                              f"fault {arg!r}; use one of {', '.join(FAULT_KINDS)}")
        return
    if kind == "chanfault":
        if arg and arg not in RING_ERROR_NAMES:
            raise _err(where, f"'expect' = {expect!r} can never be met: no ring error "
                              f"{arg!r}; use one of {', '.join(RING_ERROR_NAMES)}")
        if not endpoint:
            raise _err(where, f"'expect' = {expect!r} can never be met: {name!r} is no "
                              "channel endpoint, so it has no channel to report; add a "
                              f"[[channel]] with it as producer or consumer, or {fix}")
        return
    raise _err(where, f"'expect' = {expect!r} is not an expectation; {fix}")


def parse(text: str, path: Path | None = None) -> SystemSpec:
    """Parse and validate manifest text against :data:`SCHEMA`.

    Raises:
        ManifestError: one line naming the file, the table entry and the field, and
            saying how to fix it. Unknown tables and fields are errors, as is an
            ``expect`` no run can meet.
    """
    where = str(path) if path else "<manifest>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _err(where, f"not valid TOML ({e}); fix the syntax") from e
    base = path.parent if path else Path.cwd()
    known = {"system", "params", "process", "channel"}
    for k in doc:
        if k not in known:
            raise _err(where, f"unknown section [{k}]; expected one of {sorted(known)}")
    sysd = doc.get("system", {})
    if not isinstance(sysd, dict):
        raise _err(where, "[system] must be a table")
    wsys = f"{where}: [system]"
    _check_keys(wsys, "system", sysd)
    procs_raw = doc.get("process")
    if not procs_raw or not isinstance(procs_raw, list):
        raise _err(where, "no [[process]] entries; a system needs at least one process")
    if len(procs_raw) > MAXPROC:
        raise _err(where, f"{len(procs_raw)} processes; the kernel supports at most {MAXPROC}")
    chans_raw = doc.get("channel", []) or []
    if not isinstance(chans_raw, list):
        raise _err(where, "channels are [[channel]] entries (an array of tables)")
    if len(chans_raw) > MAXCHAN:
        raise _err(where, f"{len(chans_raw)} channels; the kernel supports at most {MAXCHAN}")

    procs: list[ProcessSpec] = []
    expects: list[tuple[str, str, str]] = []
    for i, pr in enumerate(procs_raw):
        w = f"{where}: process #{i + 1}"
        if not isinstance(pr, dict):
            raise _err(w, "must be a table")
        name = pr.get("name")
        if isinstance(name, str) and _NAME.match(name):
            w = f"{where}: process {name!r}"
        _check_keys(w, "process", pr)
        if not isinstance(name, str) or not _NAME.match(name):
            raise _err(w, f"'name' must be a short identifier (letters, digits, _ . -), "
                          f"got {name!r}; e.g. name = \"ping\"")
        if any(p.name == name for p in procs):
            raise _err(w, "'name' is used twice; give each process its own name")
        img = _value(w, "process", pr, "image")
        if img is None:
            raise _err(w, "'image' is missing; e.g. image = \"ping.c\" (a C source next to "
                          "the manifest)")
        imgs = [img] if isinstance(img, str) else img
        sources = tuple(_resolve(base, s) for s in imgs)
        for s in sources:
            if not s.exists():
                raise _err(w, f"'image' {s} does not exist; fix the path (relative to the "
                              "manifest's folder, or @/ for the keusim tree)")
            if not s.is_file():
                raise _err(w, f"'image' {s} is a folder; name a C source or an ELF file in it")
        core = _value(w, "process", pr, "core")
        expect = _value(w, "process", pr, "expect")
        cflags = _value(w, "process", pr, "cflags")
        nic = _value(w, "process", pr, "nic") or ""
        if nic and sum(1 for p in procs if p.nic) >= NIC_QUEUES:
            raise _err(w, f"'nic' = {nic!r}: the NIC has {NIC_QUEUES} queues and other "
                          "processes hold them all; remove 'nic' from one of them")
        procs.append(ProcessSpec(name, sources, core, expect, tuple(cflags), nic))
        expects.append((w, name, expect))

    chans: list[ChannelSpec] = []
    for i, ch in enumerate(chans_raw):
        w = f"{where}: channel #{i + 1}"
        if not isinstance(ch, dict):
            raise _err(w, "must be a table")
        _check_keys(w, "channel", ch)
        for k in ("producer", "consumer"):
            v = _value(w, "channel", ch, k)
            if v is None:
                raise _err(w, f"'{k}' is missing; name a process, e.g. {k} = "
                              f"{procs[0].name!r}")
            if not any(p.name == v for p in procs):
                raise _err(w, f"'{k}' = {v!r} is not a process in this manifest; use one of "
                              f"{', '.join(p.name for p in procs)}")
        # The kernel validates capacity and same-process channels and reports them;
        # the manifest only checks types, so those errors stay observable in runs.
        cname = _value(w, "channel", ch, "name")
        chans.append(ChannelSpec(ch["producer"], ch["consumer"],
                                 _value(w, "channel", ch, "capacity"),
                                 _value(w, "channel", ch, "mode"),
                                 _value(w, "channel", ch, "verified"),
                                 cname if cname is not None else f"ch{i}"))

    endpoints = {c.producer for c in chans} | {c.consumer for c in chans}
    for w, name, expect in expects:
        _check_expect(w, expect, name, name in endpoints)

    used = max(p.core for p in procs) + 1
    cores = _value(wsys, "system", sysd, "cores")
    cores = used if cores is None else cores
    if cores < used:
        raise _err(wsys, f"'cores' = {cores}, but a process is pinned to core {used - 1}; "
                         f"set cores = {used} or move the process")
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise _err(where, "[params] must be a table")
    for k, v in params.items():
        if not _PARAM.match(k) or not isinstance(v, (int, str)) or isinstance(v, bool):
            raise _err(where + ": [params]", f"{k!r} must be a C identifier with an integer "
                                             f"(or string) value; e.g. messages = 1000")
    arch = sysd.get("arch")
    if isinstance(arch, str):
        from keusim import arch as archmod
        try:
            arch = archmod.normalize(arch)
        except KeusimError as e:
            raise _err(wsys, f"'arch' = {arch!r} is not an architecture; e.g. "
                             f"{_FIELDS['system']['arch'].example}") from e
    arch = _value(wsys, "system", {"arch": arch} if arch is not None else {}, "arch")
    name = _value(wsys, "system", sysd, "name")
    if name is not None and not _NAME.match(name):
        # The name becomes part of build-output file names: keep it a plain identifier.
        raise _err(wsys, f"'name' = {name!r} must be a short identifier (letters, digits, "
                         "_ . -, at most 31 characters); e.g. name = \"demo\"")
    return SystemSpec(
        name=name if name is not None else (path.stem if path else "system"),
        path=path, processes=tuple(procs), channels=tuple(chans), cores=cores,
        ram_mb=_value(wsys, "system", sysd, "ram_mb"),
        seed=_value(wsys, "system", sysd, "seed"),
        max_cycles=_value(wsys, "system", sysd, "max_cycles"),
        timeslice=_value(wsys, "system", sysd, "timeslice"),
        params=dict(params), arch=arch)


def parse_params(pairs) -> dict[str, int]:
    """``--param KEY=VALUE`` command-line pairs -> scenario parameters (integers, any base
    ``int(v, 0)`` takes). Raises KeusimError naming the pair and the fix."""
    out: dict[str, int] = {}
    for kv in pairs or ():
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise KeusimError(f"--param {kv!r}: expected KEY=VALUE")
        try:
            out[k] = int(v, 0)
        except ValueError as e:
            raise KeusimError(f"--param {kv!r}: the value must be an integer") from e
    return out


def load(path: str | Path) -> SystemSpec:
    """Read and parse a manifest file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ManifestError(f"{p}: cannot read manifest ({e.strerror})") from e
    return parse(text, p.resolve())


SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def scenarios() -> dict[str, Path]:
    """Built-in scenarios: name -> manifest path."""
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.toml"))}


def resolve(name_or_path: str | Path) -> SystemSpec:
    """A built-in scenario name or a manifest path."""
    s = str(name_or_path)
    built = scenarios()
    if s in built:
        return load(built[s])
    p = Path(s)
    if p.suffix == ".toml" or p.exists():
        return load(p)
    raise ManifestError(f"{s!r} is neither a manifest file nor a built-in scenario; "
                        f"`keusim scenarios` lists: {', '.join(built)}")
