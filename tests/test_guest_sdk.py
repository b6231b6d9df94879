"""The guest SDK (guests/include/keusim, docs/guest-sdk.md).

- Every example in docs/guest-sdk.md builds and runs on both architectures and prints
  exactly the output the page shows.
- The SDK's ABI copies (layout constants, system-call numbers, error codes, the info
  page and descriptor layouts, the tag function) equal the kernel's (drift test).
- ks_printf formats as the C library's printf does, argument widths included.
- Guest builds cannot see the kernel's headers.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from keusim import manifest
from keusim.errors import BuildError
from keusim.system import run
from keusim.toolchain import ROOT, builds, host_executable

DOC = ROOT / "docs" / "guest-sdk.md"
_EXAMPLE = re.compile(
    r"Example `(?P<name>\w+)` \(`(?P<opts>[^`]*)`\):\n\n```c\n(?P<code>.*?)```\n\n"
    r"Output:\n\n```text\n(?P<out>.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    name: str
    code: str
    output: str
    processes: int
    expect: str
    channel: str | None     # "poll", "notify" or "notify,verified"
    complete: bool


def examples(text: str | None = None) -> list[Example]:
    """The examples of docs/guest-sdk.md, in page order."""
    out = []
    for m in _EXAMPLE.finditer(DOC.read_text() if text is None else text):
        opts = dict(o.partition("=")[::2] for o in m["opts"].split("; "))
        out.append(Example(m["name"], m["code"], m["out"], int(opts.get("processes", 1)),
                           opts.get("expect", "exit:0"), opts.get("channel"),
                           "complete" in opts))
    return out


def manifest_for(ex: Example, folder: Path) -> Path:
    """Write ex's program and its manifest (the layout docs/guest-sdk.md describes)."""
    (folder / "ex.c").write_text(ex.code)
    toml = [f'[system]\nname = "sdk-{ex.name}"\n']
    expects = ex.expect.split("|")      # one for all processes, or one per process
    for k in range(1, ex.processes + 1):
        toml.append(f'[[process]]\nname = "p{k}"\nimage = "ex.c"\ncore = {k - 1}\n'
                    f'expect = "{expects[min(k, len(expects)) - 1]}"\n')
    if ex.channel:
        mode = ex.channel.split(",")[0]
        toml.append(f'[[channel]]\nproducer = "p1"\nconsumer = "p2"\nmode = "{mode}"\n'
                    f'verified = {"true" if "verified" in ex.channel else "false"}\n')
    p = folder / "system.toml"
    p.write_text("".join(toml))
    return p


def run_example(ex: Example, folder: Path, arch: str):
    rep = run(manifest.load(manifest_for(ex, folder)), arch=arch)
    return rep, "".join(p.console for p in rep.processes)


def test_the_page_has_an_example_per_api():
    names = [e.name for e in examples()]
    assert names == ["layout", "syscalls", "printf", "ring", "notify", "rawnotify",
                     "descriptor", "counters", "fault", "chanfault", "cpu"]
    assert all(e.output.strip() for e in examples()), "an example lacks its output"


@pytest.mark.parametrize("ex", examples(), ids=lambda e: e.name)
def test_doc_example_runs_as_shown(ex, arch, tmp_path):
    rep, console = run_example(ex, tmp_path, arch)
    assert rep.ok, rep.summary()
    assert console == ex.output, f"{ex.name} on {arch} printed:\n{console}"
    if ex.complete:
        assert rep.channel(0).complete
    for p, expect in zip(rep.processes, ex.expect.split("|") * ex.processes, strict=False):
        if expect.startswith("fault:"):
            assert p.fault is not None and p.fault.kind == expect[6:]
        if expect.startswith("chanfault"):
            assert rep.channel(0).faults, "the recorded channel fault is in the report"


# --------------------------------------------------------------------------- printf

PRINTF_CASES = r"""
    P("[%d] [%d] [%d]\n", -1, 0, 2147483647);
    P("[%u] [%x] [%X] [%o] [%#x] [%#o] [%#x]\n", 4294967295u, 3054u, 3054u, 8u, 255u, 8u, 0u);
    P("[%ld] [%lu] [%lx] [%lld] [%llu]\n", -5000000000l, 18446744073709551615ul,
      0xfedcba9876543210ul, -9223372036854775807ll - 1, 12345678901234ull);
    P("[%zu] [%zd] [%jd] [%td]\n", (size_t)77, (long)-3, (long)-4, (long)-5);
    P("[%hhd] [%hhu] [%hd] [%hu]\n", (signed char)-128, (unsigned char)255, (short)-32768,
      (unsigned short)65535);
    P("[%5d] [%-5d|] [%05d] [%+d] [% d] [%+d] [%.3d] [%8.3d] [%-8.3d|] [%.0d]\n", 42, 42,
      -42, 42, 42, -7, 7, -7, 7, 0);
    P("[%*d] [%-*d|] [%.*d] [%*d]\n", 6, 1, 6, 2, 4, 3, -6, 4);
    P("[%s] [%.2s] [%8s] [%-8s|] [%.*s] [%c] [%3c] [%-3c|] [%%]\n", "keusim", "keusim",
      "ring", "ring", 3, "notify", 'x', 'y', 'z');
    P("[%#lx] [%08x] [%-#10x|] [%+5d] [%x]\n", 0x7fffffff0000ul, 0xbeefu, 0xbeefu, 3, 0u);
"""

_GUEST = """#include <keusim/keusim.h>
#define P ks_printf
int main(void)
{
%s
    return 0;
}
"""

_HOST = """#include <stdio.h>
#include <stddef.h>
#define P printf
int main(void)
{
%s
    return 0;
}
"""


def test_printf_matches_the_c_library(arch, tmp_path):
    """The same calls through ks_printf in the guest and the C library's printf on the
    host print the same bytes (glibc's printf is the reference for C's format rules)."""
    g, h = tmp_path / "fmt_guest.c", tmp_path / "fmt_host.c"
    g.write_text(_GUEST % PRINTF_CASES)
    h.write_text(_HOST % PRINTF_CASES)
    exe = host_executable([h], "sdk-printf-host", cflags=("-O1",), ldflags=("-lc",))
    want = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    (tmp_path / "system.toml").write_text('[[process]]\nname = "fmt"\nimage = "fmt_guest.c"\n')
    rep = run(manifest.load(tmp_path / "system.toml"), arch=arch)
    assert rep.ok, rep.summary()
    assert rep.process("fmt").console == want
    assert "[-1] [0] [2147483647]" in want          # %d reads an int, not 64 bits


def test_a_format_mismatch_is_a_build_error(tmp_path):
    src = tmp_path / "bad.c"
    src.write_text('#include <keusim/keusim.h>\n'
                   'int main(void)\n{\n    ks_printf("%d\\n", ks_cycles());\n    return 0;\n}\n')
    with pytest.raises(BuildError, match=r"bad\.c:4: format specifies type 'int'"):
        builds.guest_image("x86_64", [src], name="sdk-bad-format")


# --------------------------------------------------------------------------- drift

_NAMES = ["PGSIZE", "PGSHIFT", "USER_BASE", "INFO_VA", "CHAN_VA_BASE", "CHAN_STRIDE",
          "CHAN_VA(0)", "CHAN_VA(5)", "CHAN_HEAD_OFF", "CHAN_TAIL_OFF", "CHAN_DATA_OFF",
          "USTACK_TOP", "USER_TOP", "KERNBASE", "MAXCPU", "MAXPROC", "MAXCHAN", "MAXNAME",
          "SYS_EXIT", "SYS_WRITE", "SYS_YIELD", "SYS_GETPID", "SYS_CYCLES", "SYS_NOTIFY",
          "SYS_WAIT", "SYS_CHANFAULT", "SYS_NOP", "SYS_REPORT", "NSYSCALL",
          "EINVAL", "EFAULT", "ENOSYS", "EPERM", "EPIPE",
          "INFO_MAGIC", "EP_PRODUCER", "EP_CONSUMER", "CHAN_POLL", "CHAN_NOTIFY",
          "SIPHASH_KEY_LEN", "DESC_ENC_LEN",
          "sizeof(struct info_page)", "sizeof(struct info_chan)",
          "offsetof(struct info_page, name)", "offsetof(struct info_page, chan)",
          "offsetof(struct info_page, ctl_va)", "offsetof(struct info_chan, head_va)",
          "offsetof(struct info_chan, key)", "sizeof(struct notify_desc)",
          "offsetof(struct notify_desc, seq)", "offsetof(struct notify_desc, tag)",
          "tag_of_fixed_descriptor()"]

_PROBE = """#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#ifdef KERNEL_SIDE
#include "memlayout.h"
#include "param.h"
#include "syscall.h"
#include "info.h"
#include "bootinfo.h"
#include "descriptor.h"
#else
#include <keusim/layout.h>
#include <keusim/abi.h>
#include <keusim/info.h>
#include <keusim/descriptor.h>
#endif
static uint64_t tag_of_fixed_descriptor(void)
{
    uint8_t key[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(0xa0 + i);
    struct notify_desc d = {3, 0x1000, 48, 0, 0x100000001ull, 0};
    return desc_tag(key, &d);
}
int main(void)
{
%s
    return 0;
}
"""


def _probe(kernel_side: bool, tmp_path: Path) -> dict[str, str]:
    body = "\n".join(f'    printf("{n} %llu\\n", (unsigned long long)({n}));' for n in _NAMES)
    src = tmp_path / ("probe_kernel.c" if kernel_side else "probe_sdk.c")
    src.write_text(_PROBE % body)
    inc = ((ROOT / "kernel" / "include", builds.SDK_INCLUDE) if kernel_side
           else (builds.SDK_INCLUDE, ROOT / "guests" / "arch" / "x86_64" / "include"))
    exe = host_executable([src, ROOT / "kernel" / "lib" / "siphash.c"],
                          "sdk-probe-" + ("kernel" if kernel_side else "sdk"),
                          cflags=("-O1", "-DKERNEL_SIDE") if kernel_side
                          else ("-O1", *builds.GUEST_CFLAGS),
                          include_dirs=inc, ldflags=("-lc",))
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    vals = dict(ln.rsplit(" ", 1) for ln in out.splitlines())
    assert len(vals) == len(_NAMES)
    return vals


def test_sdk_abi_matches_the_kernel(tmp_path):
    kernel, sdk = _probe(True, tmp_path), _probe(False, tmp_path)
    drift = {n: (kernel[n], sdk[n]) for n in _NAMES if kernel[n] != sdk[n]}
    assert not drift, f"the SDK and kernel/include disagree (kernel, sdk): {drift}"
    assert int(sdk["INFO_VA"]) == 0x10000000 and int(sdk["sizeof(struct notify_desc)"]) == 32


def test_guests_cannot_see_kernel_headers(tmp_path):
    src = tmp_path / "k.c"
    src.write_text('#include <keusim/keusim.h>\n#include "memlayout.h"\nint main(void) { return 0; }\n')
    with pytest.raises(BuildError, match=r"k\.c:2: 'memlayout.h' file not found; kernel "
                                         r"headers are not on the guest include path"):
        builds.guest_image("arm64", [src], name="sdk-kernel-header")
    assert all("kernel" not in str(d) for d in builds.guest_include_dirs("x86_64"))
