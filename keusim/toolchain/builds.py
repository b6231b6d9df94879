"""Building the kernel and guest programs for an architecture (cached; see toolchain)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from keusim import arch as archmod
from keusim.errors import BuildError
from keusim.toolchain import ROOT, BuildSpec, build, sources_in

KERNEL = ROOT / "kernel"
GUESTS = ROOT / "guests"
_LINK = ("-nostdlib", "-static", "-Wl,--build-id=none", "-Wl,-z,max-page-size=4096")


def kernel_image(arch: str, extra_cflags: Sequence[str] = (), root: Path | None = None) -> Path:
    """Build the kernel ELF for arch (kernel/ + kernel/lib + kernel/arch/<arch>).

    ``root`` builds from another source tree laid out like this one (the proof
    mutation harness builds mutated copies); default: this checkout.
    """
    a = archmod.normalize(arch)
    facts = archmod.toolchain(a)
    kernel = Path(root) / "kernel" if root else KERNEL
    guests = Path(root) / "guests" if root else GUESTS
    adir = kernel / "arch" / a
    srcs = (sources_in(kernel) + sources_in(kernel / "lib") + sources_in(adir)
            + (guests / "lib" / "string.c", guests / "lib" / "fmt.c"))
    spec = BuildSpec(sources=srcs, target=facts.zig_target,
                     cflags=facts.kernel_cflags + tuple(extra_cflags),
                     # The SDK's headers hold the ABI the kernel shares with guests
                     # (system-call numbers, notify descriptors): one definition each.
                     include_dirs=(kernel / "include", guests / "include", adir),
                     linker_script=adir / "link.ld",
                     ldflags=_LINK)
    return build(spec, name=f"kernel-{a}")


SDK_INCLUDE = GUESTS / "include"
"""The guest SDK's public headers (``#include <keusim/...>``, docs/guest-sdk.md)."""

GUEST_CFLAGS: tuple[str, ...] = (
    # ks_printf carries a format attribute; a mismatched argument is a bug that prints
    # garbage at run time, so a guest build refuses it (file:line in the BuildError).
    "-Werror=format",
    # kernel/lib/siphash.c (the one SipHash the kernel and the guests share) includes
    # "siphash.h"; -iquote lets that resolve to the SDK's <keusim/siphash.h>, so the
    # kernel's include folder stays off the guests' include path.
    "-iquote", str(SDK_INCLUDE / "keusim"),
)


def guest_include_dirs(arch: str) -> tuple[Path, ...]:
    """The folders a guest build searches: the SDK and the arch's SDK headers, only."""
    return (SDK_INCLUDE, GUESTS / "arch" / archmod.normalize(arch) / "include")


def guest_image(arch: str, sources: Sequence[Path | str], name: str | None = None,
                extra_cflags: Sequence[str] = ()) -> Path:
    """Build a user program from C sources plus the guest runtime (guests/lib).

    The program sees the guest SDK (:func:`guest_include_dirs`) and nothing of the
    kernel's headers. Raises BuildError naming the source file and line of the first
    error (with a hint for known assembler gaps, see :mod:`keusim.toolchain`).
    """
    a = archmod.normalize(arch)
    facts = archmod.toolchain(a)
    srcs = tuple(Path(s).resolve() for s in sources)
    for s in srcs:
        if not s.exists():
            raise BuildError(f"{s}: guest source file not found; check the manifest's image path")
    adir = GUESTS / "arch" / a
    runtime = sources_in(GUESTS / "lib") + sources_in(adir) + (KERNEL / "lib" / "siphash.c",)
    spec = BuildSpec(sources=srcs + runtime, target=facts.zig_target,
                     cflags=facts.cflags + GUEST_CFLAGS + tuple(extra_cflags),
                     include_dirs=guest_include_dirs(a),
                     linker_script=GUESTS / "lib" / "user.ld", ldflags=_LINK)
    return build(spec, name=name or f"{srcs[0].stem}-{a}")
