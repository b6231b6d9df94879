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
    expect = "exit:0"      # or "fault:write-protect", "chanfault", "any"

    [[channel]]
    producer = "ping"
    consumer = "pong"
    capacity = 16384       # bytes, power of two (the kernel checks)
    mode = "poll"          # or "notify"
    verified = false
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from keusim.errors import KeusimError, ManifestError
from keusim.toolchain import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAXPROC, MAXCHAN, MAXCPU = 32, 32, 8
DEFAULT_SEED = 0x00006B657573696D  # kernel/include/drbg.h DRBG_DEFAULT_SEED ("keusim")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,30}$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    sources: tuple[Path, ...]    # C sources, or one ELF
    core: int
    expect: str = "exit:0"
    cflags: tuple[str, ...] = ()

    @property
    def is_elf(self) -> bool:
        return len(self.sources) == 1 and self.sources[0].suffix not in (".c", ".S", ".s")


@dataclass(frozen=True)
class ChannelSpec:
    producer: str
    consumer: str
    capacity: int
    mode: str = "poll"
    verified: bool = False
    name: str = ""


# Model cycles a process may run while another waits for its core (issue 11: preemption
# is on unless a manifest says `timeslice = 0`). 1M cycles is ~0.3 ms at 3 GHz, a few
# times shorter than a Linux CFS slice, so short runs still interleave.
DEFAULT_TIMESLICE = 1_000_000


@dataclass(frozen=True)
class SystemSpec:
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


def _err(where: str, msg: str) -> ManifestError:
    return ManifestError(f"{where}: {msg}")


def _int(where: str, key: str, v, lo: int, hi: int) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(where, f"'{key}' must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise _err(where, f"'{key}' = {v} is out of range [{lo}, {hi}]")
    return v


def _resolve(base: Path, s: str, where: str) -> Path:
    if s.startswith("@/"):
        return (ROOT / s[2:]).resolve()
    p = Path(s)
    return (p if p.is_absolute() else base / p).resolve()


_EXPECT = re.compile(r"^(exit:-?\d+|fault:[a-z-]+|chanfault(:[a-z-]+)?|any)$")


def parse(text: str, path: Path | None = None) -> SystemSpec:
    """Parse manifest text; raises ManifestError naming the file and field."""
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
    procs_raw = doc.get("process")
    if not procs_raw or not isinstance(procs_raw, list):
        raise _err(where, "no [[process]] entries; a system needs at least one process")
    if len(procs_raw) > MAXPROC:
        raise _err(where, f"{len(procs_raw)} processes; the kernel supports at most {MAXPROC}")
    procs: list[ProcessSpec] = []
    for i, pr in enumerate(procs_raw):
        w = f"{where}: process #{i + 1}"
        if not isinstance(pr, dict):
            raise _err(w, "must be a table")
        for k in pr:
            if k not in ("name", "image", "core", "expect", "cflags"):
                raise _err(w, f"unknown field '{k}'")
        name = pr.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _err(w, f"'name' must be a short identifier, got {name!r}")
        w = f"{where}: process {name!r}"
        if any(p.name == name for p in procs):
            raise _err(w, "duplicate process name")
        img = pr.get("image")
        imgs = [img] if isinstance(img, str) else img
        if not imgs or not all(isinstance(s, str) for s in imgs):
            raise _err(w, "'image' must be a path (C source or ELF) or a list of C sources")
        sources = tuple(_resolve(base, s, w) for s in imgs)
        for s in sources:
            if not s.exists():
                raise _err(w, f"image {s} does not exist; check the path (relative to the manifest)")
        core = _int(w, "core", pr.get("core", 0), 0, MAXCPU - 1)
        expect = pr.get("expect", "exit:0")
        if not isinstance(expect, str) or not _EXPECT.match(expect):
            raise _err(w, f"'expect' must be exit:N, fault:KIND, chanfault or any; got {expect!r}")
        cflags = pr.get("cflags", [])
        if not isinstance(cflags, list) or not all(isinstance(c, str) for c in cflags):
            raise _err(w, "'cflags' must be a list of strings")
        procs.append(ProcessSpec(name, sources, core, expect, tuple(cflags)))
    chans: list[ChannelSpec] = []
    for i, ch in enumerate(doc.get("channel", []) or []):
        w = f"{where}: channel #{i + 1}"
        if not isinstance(ch, dict):
            raise _err(w, "must be a table")
        for k in ch:
            if k not in ("name", "producer", "consumer", "capacity", "mode", "verified"):
                raise _err(w, f"unknown field '{k}'")
        for k in ("producer", "consumer"):
            if not isinstance(ch.get(k), str):
                raise _err(w, f"'{k}' must name a process")
            if not any(p.name == ch[k] for p in procs):
                raise _err(w, f"'{k}' = {ch[k]!r} is not a process in this manifest")
        # The kernel validates capacity and same-process channels and reports them;
        # the manifest only checks types, so those errors stay observable in runs.
        cap = _int(w, "capacity", ch.get("capacity", 16384), 0, 1 << 31)
        mode = ch.get("mode", "poll")
        if mode not in ("poll", "notify"):
            raise _err(w, f"'mode' must be 'poll' or 'notify', got {mode!r}")
        ver = ch.get("verified", False)
        if not isinstance(ver, bool):
            raise _err(w, "'verified' must be true or false")
        chans.append(ChannelSpec(ch["producer"], ch["consumer"], cap, mode, ver,
                                 str(ch.get("name", f"ch{i}"))))
    if len(chans) > MAXCHAN:
        raise _err(where, f"{len(chans)} channels; the kernel supports at most {MAXCHAN}")
    used = max(p.core for p in procs) + 1
    cores = _int(where + ": [system]", "cores", sysd.get("cores", used), 1, MAXCPU)
    if cores < used:
        raise _err(where, f"a process is pinned to core {used - 1} but [system] cores = {cores}")
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise _err(where, "[params] must be a table")
    for k, v in params.items():
        if not _PARAM.match(k) or not isinstance(v, (int, str)) or isinstance(v, bool):
            raise _err(where + ": [params]", f"{k!r} must be a C identifier with an int value")
    arch = sysd.get("arch")
    return SystemSpec(
        name=str(sysd.get("name", path.stem if path else "system")),
        path=path, processes=tuple(procs), channels=tuple(chans), cores=cores,
        ram_mb=_int(where, "ram_mb", sysd.get("ram_mb", 64), 16, 1000),
        seed=_int(where, "seed", sysd.get("seed", DEFAULT_SEED), 0, 2**64 - 1),
        max_cycles=_int(where, "max_cycles", sysd.get("max_cycles", 2_000_000_000), 1000, 10**13),
        timeslice=_int(where, "timeslice", sysd.get("timeslice", DEFAULT_TIMESLICE), 0, 10**9),
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
