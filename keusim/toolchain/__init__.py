"""Guest, kernel and host builds with the one pinned C toolchain (zig cc).

Every build is cached by a content hash of its sources, the headers it can see, its
flags and the compiler version, in ``$KEUSIM_CACHE`` (default ``~/.cache/keusim``).
A second build of unchanged sources costs a hash, not a compile.

A compile error becomes one :class:`~keusim.errors.BuildError` whose message starts
with ``file:line:`` of the first error the compiler reported.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from keusim.errors import BuildError

ROOT = Path(os.environ.get("KEUSIM_SOURCE_ROOT") or Path(__file__).resolve().parents[2])
"""The source tree: kernel/, guests/ and native/ live beside the package.
``KEUSIM_SOURCE_ROOT`` points it at a copy (``keusim prove --mutants`` builds and boots
mutated copies in a child process this way)."""


def cache_dir() -> Path:
    """The build cache folder (created on first use)."""
    base = os.environ.get("KEUSIM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "keusim"
    )
    p = Path(base) / "build"
    p.mkdir(parents=True, exist_ok=True)
    return p


@lru_cache(maxsize=1)
def zig_version() -> str:
    """The version string of the pinned zig, also part of every cache key."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "ziglang", "version"],
            capture_output=True, text=True, check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:  # pragma: no cover - install problem
        raise BuildError(
            "the zig C toolchain is not usable (python -m ziglang failed); "
            "run `make setup` to install the pinned ziglang package"
        ) from e
    return out.stdout.strip()


@dataclass(frozen=True)
class BuildSpec:
    """One link: C/assembly sources into an ELF (or a host shared library).

    Args:
        sources: .c and .S files.
        target: a zig target triple, e.g. ``x86_64-freestanding-none``.
        cflags: compiler flags (optimisation, code model, ISA restrictions).
        include_dirs: folders searched by ``#include``; their headers are hashed.
        linker_script: optional ``-T`` script.
        ldflags: extra link flags.
        shared: build a shared library (host hooks) instead of an executable.
    """

    sources: tuple[Path, ...]
    target: str
    cflags: tuple[str, ...] = ()
    include_dirs: tuple[Path, ...] = ()
    linker_script: Path | None = None
    ldflags: tuple[str, ...] = ()
    shared: bool = False
    defines: tuple[tuple[str, str], ...] = field(default=())

    def key(self) -> str:
        h = hashlib.sha256()
        h.update(zig_version().encode())
        h.update(repr((self.target, self.cflags, self.ldflags, self.shared, self.defines)).encode())
        files: list[Path] = list(self.sources)
        if self.linker_script:
            files.append(self.linker_script)
        for d in self.include_dirs:
            files.extend(sorted(p for p in Path(d).rglob("*") if p.suffix in (".h", ".inc")))
        for f in files:
            h.update(str(f.name).encode())
            try:
                h.update(Path(f).read_bytes())
            except OSError as e:
                raise BuildError(f"{f}: cannot read source file ({e.strerror}); check the path") from e
        return h.hexdigest()[:24]


_DIAG = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.*)$", re.M)


def _first_error(stderr: str) -> str:
    m = _DIAG.search(stderr)
    if m:
        return f"{m['file']}:{m['line']}: {m['msg']}"
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[0] if lines else "compiler failed with no message"


def build(spec: BuildSpec, name: str = "image") -> Path:
    """Compile and link ``spec``; return the cached output path.

    Raises:
        BuildError: the first compiler or linker error, as ``file:line: message``.
    """
    out_dir = cache_dir() / spec.key()
    out = out_dir / (name + (".so" if spec.shared else ".elf"))
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "ziglang", "cc", "-target", spec.target, *spec.cflags]
    for k, v in spec.defines:
        cmd.append(f"-D{k}={v}")
    for d in spec.include_dirs:
        cmd += ["-I", str(d)]
    if spec.shared:
        cmd += ["-shared", "-fPIC"]
    if spec.linker_script:
        cmd += ["-Wl,-T," + str(spec.linker_script)]
    cmd += [str(s) for s in spec.sources]
    cmd += list(spec.ldflags)
    tmp = out.with_suffix(out.suffix + f".tmp{os.getpid()}")
    cmd += ["-o", str(tmp)]
    env = dict(os.environ)
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(cache_dir().parent / "zig"))
    env.setdefault("ZIG_LOCAL_CACHE_DIR", str(cache_dir().parent / "zig-local"))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise BuildError(f"{_first_error(res.stderr)} (building {name} for {spec.target})")
    os.replace(tmp, out)
    return out


def sources_in(folder: Path, patterns: Iterable[str] = ("*.c", "*.S")) -> tuple[Path, ...]:
    """All sources in ``folder`` (not recursive), sorted for a stable cache key."""
    found: list[Path] = []
    for pat in patterns:
        found.extend(Path(folder).glob(pat))
    return tuple(sorted(found))


def host_shared_lib(sources: Sequence[Path], name: str, cflags: Sequence[str] = ("-O2",),
                    include_dirs: Sequence[Path] = ()) -> Path:
    """Build a shared library for the host (native hooks, the native harness)."""
    return build(
        BuildSpec(sources=tuple(sources), target="x86_64-linux-gnu", cflags=tuple(cflags),
                  include_dirs=tuple(include_dirs), shared=True),
        name=name,
    )


def host_executable(sources: Sequence[Path], name: str, cflags: Sequence[str] = ("-O2",),
                    include_dirs: Sequence[Path] = (), ldflags: Sequence[str] = ()) -> Path:
    """Build an executable for the host (the native harness)."""
    return build(
        BuildSpec(sources=tuple(sources), target="x86_64-linux-gnu", cflags=tuple(cflags),
                  include_dirs=tuple(include_dirs), ldflags=tuple(ldflags)),
        name=name,
    )
