"""Guest, kernel and host builds with the one pinned C toolchain (zig cc).

Every build is cached by a content hash of its sources, the headers it can see, its
flags and the compiler version, in ``$KEUSIM_CACHE`` (default ``~/.cache/keusim``).
A second build of unchanged sources costs a hash, not a compile.

A compile error becomes one :class:`~keusim.errors.BuildError` whose message starts
with ``file:line:`` of the first error the compiler reported, followed, when the cause
is known, by what to write instead: an SDK header for a kernel-only one, the ``.inst``
encoding of an arm64 instruction the guest assembler rejects (:func:`assembler_hint`).
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


_DIAG = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?:fatal )?error: (?P<msg>.*)$",
                   re.M)
_UNDEF = re.compile(r"error: undefined symbol: (?P<sym>\S+)\n>>> referenced by (?P<where>\S+)")
_ECHO = re.compile(r"^\s*(?:\d+\s*\|)?\s*(?P<text>.*?)\s*$")

# Headers that exist only in kernel/include: a guest that includes them wants the SDK.
_KERNEL_ONLY = {"memlayout.h": "<keusim/layout.h>", "info.h": "<keusim/info.h>",
                "syscall.h": "<keusim/abi.h>", "param.h": "<keusim/layout.h>",
                "descriptor.h": "<keusim/descriptor.h>", "siphash.h": "<keusim/siphash.h>",
                "bootinfo.h": "<keusim/info.h>", "types.h": "<stdint.h>"}

# A CPU that has every optional arm64 feature the assembler may ask for, to encode a
# rejected instruction as `.inst` (zig's LLVM names: cortex_x2 is Armv9.0-A; el3 adds smc).
_ARM64_ENCODER_CPU = "cortex_x2+el3"


def _asm_line(stderr: str, after: int) -> str | None:
    """The assembly text an error at offset ``after`` refers to: the line clang echoes
    under the inline-asm note, or under the error itself for a .S file."""
    rest = stderr[after:].splitlines()[1:]
    for i, ln in enumerate(rest[:6]):
        if "instantiated into assembly here" in ln and i + 1 < len(rest):
            return _ECHO.match(rest[i + 1])["text"] or None
    if rest and not re.match(r"^\S+:\d+:\d+: ", rest[0]):
        return _ECHO.match(rest[0])["text"] or None
    return None


@lru_cache(maxsize=64)
def arm64_encoding(insn: str) -> int | None:
    """The 32-bit encoding of one arm64 instruction, assembled for a CPU with every
    optional feature, or None if even that assembler rejects it."""
    import tempfile

    from elftools.elf.elffile import ELFFile

    with tempfile.TemporaryDirectory() as d:
        src, obj = Path(d) / "one.S", Path(d) / "one.o"
        src.write_text(f".text\n{insn}\n")
        res = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target",
                              "aarch64-freestanding-none", f"-mcpu={_ARM64_ENCODER_CPU}",
                              "-c", str(src), "-o", str(obj)],
                             capture_output=True, text=True, env=_zig_env())
        if res.returncode != 0:
            return None
        with obj.open("rb") as f:
            data = ELFFile(f).get_section_by_name(".text").data()
    return int.from_bytes(data[:4], "little") if len(data) == 4 else None


def assembler_hint(target: str, msg: str, insn: str | None) -> str:
    """What to write instead of an instruction the guest assembler rejected ("" if
    nothing is known). The arm64 guests build for Armv8.0 without FP/SIMD
    (keusim/arch/arm64_facts.py), so LLVM refuses optional-feature instructions
    (``instruction requires: lse``), EL3's ``smc``, and FP system registers
    (``msr fpcr``); the instruction can still be emitted as ``.inst`` with its encoding."""
    if not target.startswith("aarch64") or not insn:
        return ""
    m = re.search(r"instruction requires: (\S+)", msg)
    if not m and "system register" not in msg:
        return ""
    why = (f"the arm64 guest CPU is Armv8.0 without {m[1]}" if m else
           "this system register is not one the guest assembler knows at Armv8.0 without FP")
    sysreg = re.search(r"\b(fpcr|fpsr)\b", insn)
    if sysreg:
        # The generic name S<op0>_<op1>_C<n>_C<m>_<op2> of the same register assembles at
        # Armv8.0 and keeps the compiler's register choice. FPCR is op0=3 op1=3 CRn=4
        # CRm=4 op2=0, FPSR the same with op2=1: the fields of `msr fpcr, x0` = 0xd51b4400
        # and `mrs x3, fpsr` = 0xd53b4423 as the full-featured assembler encodes them.
        gen = "s3_3_c4_c4_0" if sysreg[1] == "fpcr" else "s3_3_c4_c4_1"
        return (f"{why}; write `{gen}` for `{sysreg[1]}` (its generic name), e.g. "
                f"`{insn.replace(sysreg[1], gen)}`")
    enc = arm64_encoding(insn)
    if enc is None:
        return f"{why}; write the instruction as `.inst 0x<encoding>` (Arm ARM encoding)"
    return (f"{why}; to emit it anyway write `.inst {enc:#010x}` (= `{insn}`, with these "
            f"exact registers)")


def _first_error(stderr: str, target: str = "") -> str:
    """One line for a failed build: ``file:line: message`` of the first error, plus what
    to do instead when the cause is known (kernel header, assembler gap, missing symbol)."""
    m = _DIAG.search(stderr)
    if m:
        out = f"{m['file']}:{m['line']}: {m['msg']}"
        inc = re.match(r"'([^']+)' file not found", m["msg"])
        if inc and inc[1] in _KERNEL_ONLY and "freestanding" in target:
            return (f"{out}; kernel headers are not on the guest include path: include "
                    f"<keusim/keusim.h> (it has {_KERNEL_ONLY[inc[1]]}, docs/guest-sdk.md)")
        hint = assembler_hint(target, m["msg"], _asm_line(stderr, m.end()))
        return f"{out}; {hint}" if hint else out
    u = _UNDEF.search(stderr)
    if u:
        return (f"{u['where']}: undefined symbol {u['sym']}; define it, or check the name "
                f"against the SDK (docs/guest-sdk.md)")
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[0] if lines else "compiler failed with no message"


def _zig_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(cache_dir().parent / "zig"))
    env.setdefault("ZIG_LOCAL_CACHE_DIR", str(cache_dir().parent / "zig-local"))
    return env


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
    res = subprocess.run(cmd, capture_output=True, text=True, env=_zig_env())
    if res.returncode != 0:
        raise BuildError(f"{_first_error(res.stderr, spec.target)} "
                         f"(building {name} for {spec.target})")
    os.replace(tmp, out)
    return out


def sources_in(folder: Path, patterns: Iterable[str] = ("*.c", "*.S")) -> tuple[Path, ...]:
    """All sources in ``folder`` (not recursive), sorted for a stable cache key."""
    found: list[Path] = []
    for pat in patterns:
        found.extend(Path(folder).glob(pat))
    return tuple(sorted(found))


def host_target() -> str:
    """The zig target for native programs on this host (x86-64 or arm64 Linux)."""
    from keusim import arch as archmod

    return archmod.toolchain(archmod.host()).host_target


def host_shared_lib(sources: Sequence[Path], name: str, cflags: Sequence[str] = ("-O2",),
                    include_dirs: Sequence[Path] = ()) -> Path:
    """Build a shared library for the host (native hooks, the native harness)."""
    return build(
        BuildSpec(sources=tuple(sources), target=host_target(), cflags=tuple(cflags),
                  include_dirs=tuple(include_dirs), shared=True),
        name=name,
    )


def host_executable(sources: Sequence[Path], name: str, cflags: Sequence[str] = ("-O2",),
                    include_dirs: Sequence[Path] = (), ldflags: Sequence[str] = ()) -> Path:
    """Build an executable for the host (the native harness)."""
    return build(
        BuildSpec(sources=tuple(sources), target=host_target(), cflags=tuple(cflags),
                  include_dirs=tuple(include_dirs), ldflags=tuple(ldflags)),
        name=name,
    )
