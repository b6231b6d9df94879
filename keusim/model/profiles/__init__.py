"""Microarchitecture profiles: the cycle model's numbers, as data, each with its source.

A profile is a TOML file in this folder (or anywhere, by path). It gives, for one
microarchitecture, the clock, the issue width, a latency and a reciprocal throughput per
instruction class (see :data:`CLASS_NAMES`), the memory hierarchy, the cross-core cache
line hand-off, and the trap, MMU-switch and IPI costs. Every number is an inline table
that says where it comes from::

    [memory]
    l1 = { cycles = 4, source = "AMD SOG 19h (doc 56665) 2.12: 4-cycle integer load-to-use" }
    dram = { ns = 155, source = "keusim calibrate: load_chain 128 MiB ...", estimate = false }

Timings are given in core ``cycles`` or in ``ns`` (converted with ``clock.ghz``); other
numbers use ``value``. ``estimate = true`` marks a number that is a reasoned estimate
rather than a measurement or a published figure; ``note`` adds a remark. A profile may
``inherits = "<name>"`` another and override some numbers (``host`` inherits ``zen3``).

The format, the model that uses it and the sources are described in docs/cycle-model.md::

    p = load_profile("zen3")
    p.coherence()      # (29, 29, 42): (transfer, invalidate, fill) for Machine(coherence=...)
    p.coherence_stream()  # cycles per line of a pipelined run, for Machine(coherence_stream=...)
    p.ipi_cycles       # 3240: for Machine(ipi_cycles=...)
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from keusim.errors import ArchError
from keusim.rounding import round_half_up as _round

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PROFILE_DIR = Path(__file__).resolve().parent
"""Where the packaged profiles live (``<name>.toml``)."""

DEFAULT_PROFILE = "host"

CLASS_NAMES: tuple[str, ...] = (
    "alu", "move", "shift", "mul", "div", "load", "store", "branch", "branch_taken",
    "call", "ret", "atomic", "fence", "fence_light", "load_acquire", "store_release",
    "pause", "counter", "tlb_flush", "system", "system_light", "string", "nop", "other",
)
"""Instruction classes a profile prices with [classes]. The trap classes (``syscall``,
``sysret``, ``exception``, ``trap_return``, ``mmu_switch``) are priced by [trap]."""

TRAP_CLASSES: Mapping[str, str] = MappingProxyType({
    "syscall": "trap.syscall_entry",
    "sysret": "trap.syscall_exit",
    "exception": "trap.exception_entry",
    "trap_return": "trap.exception_return",
    "mmu_switch": "trap.mmu_switch",
})
"""Trap classes -> the [trap] parameter that is their fixed cost."""

PIPES: tuple[str, ...] = ("alu", "mul", "div", "load", "store", "branch", "none")
"""Execution resources a class occupies for the throughput bound (``none``: no unit)."""

REQUIRED: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "clock": ("ghz",),
    "pipeline": ("issue_width", "memory_ops"),
    "memory": ("l1", "l2", "l3", "dram"),
    "coherence": ("core_to_core", "invalidate_share"),
    "trap": ("syscall_entry", "syscall_exit", "exception_entry", "exception_return",
             "mmu_switch", "ipi"),
})
"""Sections and the parameters each profile must define (after inheritance)."""

OPTIONAL: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "coherence": ("transfer", "invalidate", "fill", "stream_line", "posted_writes"),
})
"""Parameters that override a derived value when present (see :meth:`Profile.coherence`),
or add a mechanism (``coherence.stream_line``: :meth:`Profile.coherence_stream`)."""


class ProfileError(ArchError):
    """A profile is missing, malformed, or lacks a number or a source."""


@dataclass(frozen=True)
class Param:
    """One sourced number. ``value`` is in core cycles for timings, else as written."""

    value: float
    source: str
    unit: str = "cycles"
    """How the number was written: ``cycles``, ``ns`` or ``value`` (no unit)."""
    given: float | None = None
    """The number as written (``ns`` for a timing given in ns)."""
    estimate: bool = False
    note: str = ""
    origin: str = ""
    """The profile that defined it (differs from the profile's name when inherited)."""


@dataclass(frozen=True)
class InsnClass:
    """The price of one instruction class: latency and reciprocal throughput in cycles.

    ``latency`` is the time from the inputs to the result on a dependency chain; for a
    fixed-cost class (fences, serializing system instructions, PAUSE) it is the cost
    charged per instruction. ``rthroughput`` is cycles per instruction when many
    independent ones run (the share of its ``pipe`` one instruction uses).
    """

    name: str
    latency: float
    rthroughput: float
    pipe: str
    source: str
    estimate: bool = False
    note: str = ""
    origin: str = ""


@dataclass(frozen=True)
class Profile:
    """A microarchitecture profile (see the module docstring)."""

    name: str
    description: str
    isa: str
    """The ISA it describes, ``x86_64`` or ``arm64``."""
    params: Mapping[str, Param] = field(repr=False)
    """Every scalar parameter by ``section.key`` (``memory.l1``, ``trap.ipi``, ...)."""
    classes: Mapping[str, InsnClass] = field(repr=False)
    machine: Mapping[str, str] = field(default_factory=dict, repr=False)
    """For a calibrated profile: the machine it was measured on."""
    inherits: str | None = None
    path: Path | None = field(default=None, compare=False)

    # -- numbers ------------------------------------------------------------
    def param(self, key: str) -> Param:
        """The parameter ``section.key``; ProfileError if the profile lacks it."""
        try:
            return self.params[key]
        except KeyError:
            raise ProfileError(f"profile {self.name!r} has no parameter {key!r}") from None

    def cycles(self, key: str) -> int:
        """The parameter ``key`` in whole core cycles (rounded half up)."""
        return _round(self.param(key).value)

    @property
    def ghz(self) -> float:
        """The core clock in GHz."""
        return self.param("clock.ghz").value

    @property
    def cycles_per_ns(self) -> float:
        """Core cycles per nanosecond (the clock in GHz)."""
        return self.ghz

    @property
    def issue_width(self) -> float:
        """Instructions the front end delivers per cycle."""
        return self.param("pipeline.issue_width").value

    @property
    def memory_ops(self) -> float:
        """Memory micro-ops (loads plus stores) the load/store unit executes per cycle:
        a shared bound on top of the separate ``load`` and ``store`` pipes."""
        return self.param("pipeline.memory_ops").value

    @property
    def ipi_cycles(self) -> int:
        """Inter-processor interrupt latency in core cycles (``Machine(ipi_cycles=...)``)."""
        return self.cycles("trap.ipi")

    def coherence(self) -> tuple[int, int, int]:
        """(transfer, invalidate, fill) cycles for ``Machine(coherence=...)``.

        A one-way hand-off of a line between two cores (``coherence.core_to_core``: a
        store on one core until a load on the other sees it) costs the writer an
        invalidation of the reader's copy and the reader a transfer of the modified
        line. ``coherence.invalidate_share`` of the hand-off is charged to the writer,
        the rest to the reader; a first touch from the memory side costs an L3 hit
        beyond the L1 hit the block cost already charged. Explicit ``coherence.transfer``,
        ``coherence.invalidate`` or ``coherence.fill`` parameters override these rules.
        """
        c2c = self.param("coherence.core_to_core").value
        share = self.param("coherence.invalidate_share").value
        inval = _round(c2c * share)
        xfer = _round(c2c) - inval
        fill = max(0, self.cycles("memory.l3") - self.cycles("memory.l1"))
        if "coherence.invalidate" in self.params:
            inval = self.cycles("coherence.invalidate")
        if "coherence.transfer" in self.params:
            xfer = self.cycles("coherence.transfer")
        if "coherence.fill" in self.params:
            fill = self.cycles("coherence.fill")
        return xfer, inval, fill

    def coherence_stream(self) -> int | None:
        """Cycles per line of a pipelined run of hand-offs (``Machine(coherence_stream=...)``).

        ``coherence.stream_line``: what one more consecutive line costs a core that is
        already transferring (or invalidating) the lines next to it, the throughput of
        overlapped line fetches and retired-early stores rather than the latency of one
        hand-off. None when the profile lacks it or prices it at a full hand-off or more
        (every hand-off charged in full: no runs, no pipe).
        """
        if "coherence.stream_line" not in self.params:
            return None
        line = self.cycles("coherence.stream_line")
        if line >= max(self.coherence()[:2]):
            return None     # never cheaper than a hand-off: the serial model, no runs
        return line

    def coherence_stream_access(self) -> float:
        """Cycles (with fractions) per access to a line of a pipelined run while it is in
        flight (``Machine(coherence_stream_access=...)``): ``coherence.stream_access``; 0
        when the profile lacks it (a run's line costs ``stream_line`` however it is
        touched)."""
        if "coherence.stream_access" not in self.params:
            return 0.0
        return float(self.param("coherence.stream_access").value)

    def coherence_posted(self) -> bool:
        """Whether stores that take a line from another core retire without stalling
        (``Machine(coherence_posted=...)``): ``coherence.posted_writes`` = 1. The line is
        then visible to other cores once the hand-off completes, in program order."""
        return "coherence.posted_writes" in self.params and \
            self.param("coherence.posted_writes").value != 0

    def sources(self) -> dict[str, str]:
        """Every number of the profile -> its source (classes as ``classes.<name>``)."""
        out = {k: p.source for k, p in self.params.items()}
        out.update({f"classes.{c.name}": c.source for c in self.classes.values()})
        return out

    # -- derived profiles -------------------------------------------------------
    def with_params(self, updates: Mapping[str, Param], **fields) -> Profile:
        """A copy with some parameters replaced (and other fields, e.g. ``machine``).

        Values of ``ns`` parameters are recomputed if the clock changes.
        """
        params = dict(self.params)
        params.update(updates)
        ghz = params["clock.ghz"].value
        params = {k: (replace(p, value=p.given * ghz) if p.unit == "ns" and p.given is not None
                      else p) for k, p in params.items()}
        out = replace(self, params=MappingProxyType(params),
                      classes=_with_load_latency(self.classes, params), **fields)
        _validate(out, str(out.path or out.name))
        return out

    def to_toml(self, *, flatten: bool = True) -> str:
        """The profile as TOML. ``flatten=False`` keeps ``inherits`` and writes only
        the numbers this profile itself defines (their ``origin`` is its name)."""
        own = (lambda origin: True) if flatten or not self.inherits else \
            (lambda origin: origin == self.name)
        lines = ["# keusim microarchitecture profile (docs/cycle-model.md).", "",
                 "[profile]", f"name = {_s(self.name)}", f"description = {_s(self.description)}",
                 f"isa = {_s(self.isa)}"]
        if self.inherits and not flatten:
            lines.append(f"inherits = {_s(self.inherits)}")
        if self.machine:
            lines += ["", "[profile.machine]"]
            lines += [f"{_key(k)} = {_s(str(v))}" for k, v in self.machine.items()]
        sections: dict[str, list[tuple[str, Param]]] = {}
        for k, p in self.params.items():
            if own(p.origin):
                sec, key = k.split(".", 1)
                sections.setdefault(sec, []).append((key, p))
        for sec in (*REQUIRED, *(s for s in sections if s not in REQUIRED)):
            if sec in sections:
                lines += ["", f"[{sec}]"]
                lines += [f"{_key(key)} = {_param_toml(p)}" for key, p in sections[sec]]
        cls = [c for c in self.classes.values() if own(c.origin)]
        if cls:
            lines += ["", "[classes]"]
            for c in cls:
                extra = (", estimate = true" if c.estimate else "") + \
                    (f", note = {_s(c.note)}" if c.note else "")
                lat = "" if c.name == "load" else f"latency = {_num(c.latency)}, "
                lines.append(f"{_key(c.name)} = {{ {lat}rthroughput = {_num(c.rthroughput)}, "
                             f"pipe = {_s(c.pipe)}, source = {_s(c.source)}{extra} }}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- loading


class ProfileWarning(UserWarning):
    """A profile is usable but does not describe this host (see :func:`host_mismatch`)."""


def measured_on(profile: Profile) -> str:
    """The CPU a calibrated profile was measured on (its [profile.machine] ``cpu``), or ""
    for a profile of published figures."""
    return profile.machine.get("cpu", "")


def host_mismatch(profile: Profile, cpu=None) -> str | None:
    """Why ``profile``'s measured numbers do not describe this host, or None when they do
    (or when it is a profile of published figures, which describes no particular host).

    A calibrated profile records the CPU it was measured on (vendor, family, model, from
    :mod:`keusim.model.hostcpu`); on any other CPU its clock, memory, hand-off and
    system-call numbers describe that machine, not this one.
    """
    if not profile.machine:
        return None
    from keusim.model import hostcpu

    cpu = cpu or hostcpu.detect()
    if cpu.same_cpu(profile.machine):
        return None
    was = profile.machine.get("cpu") or "an unrecorded CPU"
    if "vendor" not in profile.machine:
        was += " (no vendor/family/model recorded)"
    return (f"profile {profile.name!r} was measured on {was}, not on this host "
            f"({cpu.describe()}): its clock, memory, hand-off and system-call numbers "
            "describe that machine. Run `keusim calibrate` to measure this one")


_WARNED: set[str] = set()


def _warn_if_foreign(prof: Profile) -> None:
    """Warn (once per profile file and process) when a calibrated profile was measured on
    another CPU."""
    key = str(prof.path or prof.name)
    if key in _WARNED:
        return
    why = host_mismatch(prof)
    if why:
        _WARNED.add(key)
        import warnings
        warnings.warn(why, ProfileWarning, stacklevel=3)


def list_profiles() -> list[str]:
    """Names of the packaged profiles, sorted."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """Load a packaged profile by name (``zen3``) or any profile TOML by path.

    A calibrated profile measured on a different CPU loads with a :class:`ProfileWarning`
    that says how to calibrate (:func:`host_mismatch`).

    Raises:
        ProfileError: unknown name, unreadable file, or a profile that lacks a number,
            a source, or an instruction class.
    """
    prof = _load(_resolve(name_or_path, PROFILE_DIR), ())
    _warn_if_foreign(prof)
    return prof


def parse_profile(text: str, *, base_dir: Path = PROFILE_DIR, where: str = "<string>") -> Profile:
    """Parse profile TOML text (``inherits`` names are looked up in ``base_dir``)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{where}: not valid TOML ({e}); fix the syntax") from None
    return _build(doc, where, base_dir, ())


def calibrated_dir() -> Path:
    """Where `keusim calibrate` writes fitted profiles; they shadow packaged ones by name.

    ``$KEUSIM_PROFILES`` overrides; default ``$KEUSIM_CACHE/profiles`` or
    ``~/.cache/keusim/profiles``. Kept out of the source tree so a calibration never
    changes tracked files.
    """
    import os
    env = os.environ.get("KEUSIM_PROFILES")
    if env:
        return Path(env)
    base = os.environ.get("KEUSIM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "keusim")
    return Path(base) / "profiles"


def _resolve(name_or_path: str | Path, base_dir: Path) -> Path:
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or s.endswith(".toml") or "/" in s:
        p = Path(name_or_path)
        if not p.exists():
            raise ProfileError(f"{p}: profile file not found; check the path")
        return p
    for d in (calibrated_dir(), base_dir, PROFILE_DIR):
        p = d / f"{s}.toml"
        if p.exists():
            return p
    raise ProfileError(f"unknown profile {s!r}; choose one of: {', '.join(list_profiles())}"
                       " or give a path to a .toml file")


def _load(path: Path, chain: tuple[str, ...]) -> Profile:
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as e:
        raise ProfileError(f"{path}: cannot read the profile ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: not valid TOML ({e}); fix the syntax") from None
    prof = _build(doc, str(path), path.parent, chain)
    return replace(prof, path=path)


def _build(doc: Mapping, where: str, base_dir: Path, chain: tuple[str, ...]) -> Profile:
    head = doc.get("profile")
    if not isinstance(head, Mapping) or not isinstance(head.get("name"), str):
        raise ProfileError(f"{where}: needs a [profile] table with a name")
    name = head["name"]
    if name in chain:
        raise ProfileError(f"{where}: profile {name!r} inherits itself "
                           f"(via {' -> '.join(chain)})")
    parent: Profile | None = None
    inherits = head.get("inherits")
    if inherits is not None:
        if not isinstance(inherits, str):
            raise ProfileError(f"{where}: profile.inherits must be a profile name")
        parent = _load(_resolve(inherits, base_dir), (*chain, name))
    isa = head.get("isa", parent.isa if parent else None)
    if isa not in ("x86_64", "arm64"):
        raise ProfileError(f"{where}: profile.isa must be \"x86_64\" or \"arm64\", got {isa!r}")
    machine = head.get("machine", {})
    if not isinstance(machine, Mapping):
        raise ProfileError(f"{where}: [profile.machine] must be a table of strings")

    # Scalar parameters: collect raw entries (own over inherited), then convert ns.
    raw: dict[str, tuple[Mapping, str]] = {}
    if parent is not None:
        for k, p in parent.params.items():
            raw[k] = (_param_doc(p), p.origin)
    for sec, table in doc.items():
        if sec in ("profile", "classes"):
            continue
        if not isinstance(table, Mapping):
            raise ProfileError(f"{where}: [{sec}] must be a table of parameters")
        for key, entry in table.items():
            if not isinstance(entry, Mapping):
                raise ProfileError(f"{where}: {sec}.{key} must be an inline table "
                                   "{ cycles|ns|value = <number>, source = \"...\" }")
            raw[f"{sec}.{key}"] = (entry, name)
    if "clock.ghz" not in raw:
        raise ProfileError(f"{where}: missing clock.ghz (the core clock in GHz)")
    ghz_p = _param(raw["clock.ghz"][0], "clock.ghz", where, None, raw["clock.ghz"][1])
    params = {k: _param(e, k, where, ghz_p.value, origin) for k, (e, origin) in raw.items()}

    classes: dict[str, InsnClass] = dict(parent.classes) if parent else {}
    ctab = doc.get("classes", {})
    if not isinstance(ctab, Mapping):
        raise ProfileError(f"{where}: [classes] must be a table")
    for cname, entry in ctab.items():
        classes[cname] = _class(cname, entry, where, name)
    prof = Profile(name=name, description=str(head.get("description", "")), isa=isa,
                   params=MappingProxyType(params),
                   classes=_with_load_latency(classes, params),
                   machine=MappingProxyType({str(k): str(v) for k, v in machine.items()}),
                   inherits=inherits)
    _validate(prof, where)
    return prof


def _with_load_latency(classes: Mapping[str, InsnClass], params: Mapping[str, Param]
                       ) -> Mapping[str, InsnClass]:
    """The classes with the load class's latency set to the L1 hit (memory.l1)."""
    out = dict(classes)
    if "load" in out and "memory.l1" in params:
        out["load"] = replace(out["load"], latency=params["memory.l1"].value)
    return MappingProxyType(out)


def _param(entry: Mapping, key: str, where: str, ghz: float | None, origin: str) -> Param:
    src = entry.get("source")
    if not isinstance(src, str) or not src.strip():
        raise ProfileError(f"{where}: {key} has no source; every number needs "
                           "source = \"<measurement, manual section or table>\"")
    units = [u for u in ("cycles", "ns", "value") if u in entry]
    if len(units) != 1:
        raise ProfileError(f"{where}: {key} needs exactly one of cycles, ns or value")
    unit = units[0]
    num = entry[unit]
    if isinstance(num, bool) or not isinstance(num, (int, float)) or not math.isfinite(num) \
            or num < 0:
        raise ProfileError(f"{where}: {key}.{unit} must be a non-negative number, got {num!r}")
    if unit == "ns":
        if ghz is None:
            raise ProfileError(f"{where}: {key} cannot be given in ns")
        value = float(num) * ghz
    else:
        value = float(num)
    est = entry.get("estimate", False)
    if not isinstance(est, bool):
        raise ProfileError(f"{where}: {key}.estimate must be true or false")
    return Param(value=value, source=src.strip(), unit=unit, given=float(num),
                 estimate=est, note=str(entry.get("note", "")), origin=origin)


def _class(cname: str, entry: object, where: str, origin: str) -> InsnClass:
    if cname not in CLASS_NAMES:
        raise ProfileError(f"{where}: unknown instruction class {cname!r} in [classes]; "
                           f"known: {', '.join(CLASS_NAMES)}")
    if not isinstance(entry, Mapping):
        raise ProfileError(f"{where}: classes.{cname} must be an inline table")
    src = entry.get("source")
    if not isinstance(src, str) or not src.strip():
        raise ProfileError(f"{where}: classes.{cname} has no source")
    nums = {}
    for k in ("latency", "rthroughput"):
        v = entry.get(k, 0.0 if (k == "latency" and cname == "load") else None)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ProfileError(f"{where}: classes.{cname}.{k} must be a non-negative number")
        nums[k] = float(v)
    pipe = entry.get("pipe")
    if pipe not in PIPES:
        raise ProfileError(f"{where}: classes.{cname}.pipe must be one of {', '.join(PIPES)}")
    return InsnClass(cname, nums["latency"], nums["rthroughput"], pipe, src.strip(),
                     bool(entry.get("estimate", False)), str(entry.get("note", "")), origin)


def _validate(p: Profile, where: str) -> None:
    for sec, keys in REQUIRED.items():
        for k in keys:
            if f"{sec}.{k}" not in p.params:
                raise ProfileError(f"{where}: profile {p.name!r} lacks {sec}.{k}")
    missing = [c for c in CLASS_NAMES if c not in p.classes]
    if missing:
        raise ProfileError(f"{where}: profile {p.name!r} lacks classes: {', '.join(missing)}")
    if p.ghz <= 0 or p.issue_width <= 0 or p.memory_ops <= 0:
        raise ProfileError(f"{where}: clock.ghz, pipeline.issue_width and "
                           "pipeline.memory_ops must be positive")
    if not 0.0 <= p.param("coherence.invalidate_share").value <= 1.0:
        raise ProfileError(f"{where}: coherence.invalidate_share must be in [0, 1]")


def override(profile: Profile | str | Path, updates: Mapping[str, float],
             source: str = "override") -> Profile:
    """A copy of ``profile`` with some numbers replaced, each named by its dotted key.

    Keys and units:
      ``section.key``               a scalar parameter (``coherence.core_to_core``,
                                    ``trap.ipi``, ``clock.ghz``); a timing in core cycles
                                    even when the profile writes it in ns, else as written;
      ``section.key.ns``            a timing in ns (converted at the profile's clock);
      ``classes.NAME.latency``, ``classes.NAME.rthroughput``  an instruction class.
    A replaced number's source is ``source`` plus the number it replaced, so a run made
    with it still says where every number came from. Changing ``clock.ghz`` rescales
    the timings the profile gives in ns (as :meth:`Profile.with_params` does).

    Raises:
        ProfileError: a key the profile does not have, or a value that is not a
            non-negative number (the message names the key).
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    params: dict[str, Param] = {}
    classes = dict(prof.classes)
    for key, raw in updates.items():
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or \
                not math.isfinite(raw) or raw < 0:
            raise ProfileError(f"override {key}={raw!r}: the value must be a non-negative number")
        v = float(raw)
        parts = key.split(".")
        if parts[0] == "classes" and len(parts) == 3 and parts[2] in ("latency", "rthroughput"):
            if parts[1] not in classes:
                raise ProfileError(f"override {key}: profile {prof.name!r} has no instruction "
                                   f"class {parts[1]!r}; known: {', '.join(CLASS_NAMES)}")
            old = classes[parts[1]]
            classes[parts[1]] = replace(old, **{parts[2]: v}, origin=source,
                                        source=f"{source} (was {_num(getattr(old, parts[2]))}: "
                                               f"{old.source})")
            continue
        ns = len(parts) == 3 and parts[2] == "ns"
        base = ".".join(parts[:2]) if ns else key
        if len(parts) != (3 if ns else 2) or base not in prof.params:
            known = ", ".join(sorted(prof.params))
            raise ProfileError(f"override {key}: profile {prof.name!r} has no such number; "
                               f"use section.key[.ns] or classes.NAME.latency|rthroughput "
                               f"(parameters: {known})")
        old = prof.params[base]
        if ns and old.unit == "value":
            raise ProfileError(f"override {key}: {base} is not a timing; drop the .ns")
        was = f"{_num(old.given if old.given is not None else old.value)} {old.unit}"
        unit = "ns" if ns else ("value" if old.unit == "value" else "cycles")
        params[base] = Param(value=v * prof.ghz if ns else v, unit=unit, given=v,
                             source=f"{source} (was {was}: {old.source})", origin=source)
    out = prof.with_params(params) if params else prof
    if classes != dict(prof.classes):
        out = replace(out, classes=_with_load_latency(classes, out.params))
        _validate(out, f"{prof.name} with overrides")
    return out


# --------------------------------------------------------------------------- TOML out


def _num(x: float) -> str:
    if float(x).is_integer():
        return str(int(x))
    return repr(round(float(x), 6))


def _s(text: str) -> str:
    return json.dumps(text)   # a JSON string with ASCII escapes is a TOML basic string


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _s(k)


def _param_doc(p: Param) -> dict:
    d: dict = {p.unit: p.given if p.given is not None else p.value, "source": p.source}
    if p.estimate:
        d["estimate"] = True
    if p.note:
        d["note"] = p.note
    return d


def _param_toml(p: Param) -> str:
    d = _param_doc(p)
    parts = [f"{p.unit} = {_num(d[p.unit])}", f"source = {_s(p.source)}"]
    if p.estimate:
        parts.append("estimate = true")
    if p.note:
        parts.append(f"note = {_s(p.note)}")
    return "{ " + ", ".join(parts) + " }"


def describe(profiles: Iterable[str] | None = None) -> str:
    """A one-line-per-profile summary table of key numbers (for docs and reports)."""
    rows = [("profile", "isa", "GHz", "mem ops", "L1", "L2", "L3", "DRAM", "c2c",
             "xfer/inv/fill", "stream", "posted", "sys in/out", "ipi", "estimates")]
    for n in profiles or list_profiles():
        p = load_profile(n)
        x, i, f = p.coherence()
        rows.append((p.name, p.isa, f"{p.ghz:g}", f"{p.memory_ops:g}",
                     *(str(p.cycles(f"memory.{k}"))
                                                     for k in ("l1", "l2", "l3", "dram")),
                     str(p.cycles("coherence.core_to_core")), f"{x}/{i}/{f}",
                     str(p.coherence_stream() or "-"),
                     "yes" if p.coherence_posted() else "no",
                     f"{p.cycles('trap.syscall_entry')}/{p.cycles('trap.syscall_exit')}",
                     str(p.ipi_cycles),
                     str(sum(q.estimate for q in p.params.values())
                         + sum(c.estimate for c in p.classes.values()))))
    w = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w[k]) for k, c in enumerate(r)).rstrip() for r in rows)


__all__ = ["CLASS_NAMES", "DEFAULT_PROFILE", "InsnClass", "PIPES", "PROFILE_DIR", "Param",
           "Profile", "ProfileError", "ProfileWarning", "REQUIRED", "TRAP_CLASSES", "describe",
           "host_mismatch", "list_profiles", "load_profile", "measured_on", "override",
           "parse_profile"]
