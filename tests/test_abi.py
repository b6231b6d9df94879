"""Every ABI constant Python spells agrees with the C that defines it.

The headers are the one source (keusim.abi reads them); these checks fail as soon as a
header and a Python copy drift apart. The ctypes mirror of the native fast path's structs
is checked against the compiler's own layout (DWARF of fastpath.c).
"""

from __future__ import annotations

import ctypes

import pytest
from elftools.elf.elffile import ELFFile

from keusim import abi, manifest, report, system
from keusim import arch as archmod
from keusim.crypto import drbg
from keusim.machine import fastpath, loader
from keusim.machine import machine as machmod
from keusim.toolchain import host_shared_lib


def test_header_reader_evaluates_and_rejects():
    lay = abi.defines("memlayout.h")
    assert lay["DEV_VA"] == lay["KERNBASE"] + lay["DEV_PA"]       # an expression of names
    assert "CHAN_VA" not in lay and "P2V" not in lay                # function-like: skipped
    with pytest.raises(abi.AbiError, match="no integer #define NOPE"):
        abi.define("memlayout.h", "NOPE")
    with pytest.raises(abi.AbiError, match="not found"):
        abi.defines("no-such-header.h")


def test_memory_layout():
    lay = abi.defines("memlayout.h")
    assert (system.USER_BASE, system.INFO_VA, system.CHAN_VA_BASE, system.CHAN_STRIDE) == (
        lay["USER_BASE"], lay["INFO_VA"], lay["CHAN_VA_BASE"], lay["CHAN_STRIDE"])
    assert loader.BOOTINFO_PA == lay["BOOTINFO_PA"]
    for name in archmod.ARCH_NAMES:
        assert archmod.get(name).kernbase == lay["KERNBASE"]


def test_boot_info_and_limits():
    bi = abi.defines("bootinfo.h")
    assert (loader.BOOTINFO_MAGIC, loader.BOOTINFO_VERSION, loader.BOOT_FLAG_BROKEN_LAYOUT) == (
        bi["BOOTINFO_MAGIC"], bi["BOOTINFO_VERSION"], bi["BOOT_FLAG_BROKEN_LAYOUT"])
    par = abi.defines("param.h")
    assert (loader.MAXPROC, loader.MAXCHAN, loader.MAXNAME, loader.MAXCPU) == (
        par["MAXPROC"], par["MAXCHAN"], par["MAXNAME"], par["MAXCPU"])
    assert (manifest.MAXPROC, manifest.MAXCHAN, manifest.MAXCPU) == (
        par["MAXPROC"], par["MAXCHAN"], par["MAXCPU"])
    assert (machmod.KLOG_PROC, machmod.KLOG_EXIT, machmod.KLOG_FAULT) == tuple(
        abi.enums("klog.h")[n] for n in ("KLOG_PROC", "KLOG_EXIT", "KLOG_FAULT"))
    ch = abi.defines("channel.h")
    assert (loader.CHAN_MIN, loader.CHAN_MAX) == (ch["CHAN_MIN_CAPACITY"], ch["CHAN_MAX_CAPACITY"])


def test_seed_and_drbg():
    d = abi.defines("drbg.h")
    assert manifest.DEFAULT_SEED == drbg.DEFAULT_SEED == d["DRBG_DEFAULT_SEED"]
    assert (drbg.SEED_LEN, drbg.BLOCK_LEN, drbg.CHANNEL_KEY_LEN, drbg.SEED_TWEAK) == (
        d["DRBG_SEED_LEN"], d["DRBG_BLOCK_LEN"], d["DRBG_KEY_LEN"], d["DRBG_SEED_TWEAK"])


def test_event_log_types():
    kl = abi.prefixed(abi.enums("klog.h"), "KLOG_")
    for name, value in kl.items():
        assert getattr(report, f"KLOG_{name}") == value, name


# The report's words for the kernel's fault kinds (klog.h enum fault_kind).
FAULT_WORDS = {
    "UNMAPPED": "unmapped", "KERNEL_ACCESS": "kernel-access", "WRITE_PROTECT": "write-protect",
    "EXEC_NX": "exec-nx", "PRIV_INSN": "privileged-instruction",
    "UNDEF_INSN": "undefined-instruction", "ALIGNMENT": "alignment",
    "BAD_SYSCALL": "bad-syscall", "BAD_TAG": "bad-tag", "REPLAY": "replay",
    "BAD_DESCRIPTOR": "bad-descriptor", "NO_CAPABILITY": "no-capability",
    "BAD_POINTER": "bad-pointer", "CHANNEL": "channel-fault", "OTHER": "other",
    "GENERAL_PROTECTION": "general-protection", "BREAKPOINT": "breakpoint",
    "SOFT_INTERRUPT": "software-interrupt", "NON_CANONICAL": "non-canonical",
    "DIVIDE": "divide-error", "FP_EXCEPTION": "fp-exception",
}


def test_fault_kinds():
    fk = abi.prefixed(abi.enums("klog.h"), "FK_")
    assert set(fk) <= set(FAULT_WORDS), f"new fault kinds need a report word: {set(fk) - set(FAULT_WORDS)}"
    for name, value in fk.items():
        assert report.FAULT_KINDS.get(value) == FAULT_WORDS[name], name
    assert set(report.FAULT_KINDS) == set(fk.values())


def test_channel_and_ring_errors_and_stat_keys():
    ch = abi.prefixed(abi.defines("channel.h"), "CHERR_")
    assert set(report.CHANNEL_SETUP_ERRORS) == set(ch.values())
    ring = abi.prefixed(abi.defines("ring.h"), "RING_E")
    assert set(report.RING_ERRORS) == set(ring.values())
    stats = abi.prefixed(abi.defines("keusim.h"), "STAT_")
    assert report.STAT_KEYS == {v: k.lower() for k, v in stats.items()}


def _dwarf_structs(path, names: set[str]) -> dict[str, dict[str, int]]:
    """struct name -> {member: byte offset}, from the DWARF of a built object."""
    out: dict[str, dict[str, int]] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        dw = elf.get_dwarf_info()
        for cu in dw.iter_CUs():
            for die in cu.iter_DIEs():
                if die.tag != "DW_TAG_structure_type" or "DW_AT_name" not in die.attributes:
                    continue
                name = die.attributes["DW_AT_name"].value.decode()
                if name not in names or name in out:
                    continue
                out[name] = {c.attributes["DW_AT_name"].value.decode():
                             c.attributes["DW_AT_data_member_location"].value
                             for c in die.iter_children() if c.tag == "DW_TAG_member"}
    return out


def test_fastpath_ctypes_mirror_matches_the_c_layout():
    from pathlib import Path

    import unicorn

    src = Path(fastpath.__file__).with_name("fastpath.c")
    so = host_shared_lib([src], "fastpath-dwarf", cflags=("-O0", "-g"),
                         include_dirs=[Path(unicorn.__file__).parent / "include"])
    c = _dwarf_structs(so, {"fastcore", "kcoh", "bentry", "sched"})
    for cname, cls in (("fastcore", fastpath.FastCore), ("kcoh", fastpath.KCoh),
                       ("bentry", fastpath.BEntry), ("sched", fastpath.Sched)):
        py = {n: getattr(cls, n).offset for n, _t in cls._fields_}
        assert py == c[cname], f"ctypes {cls.__name__} differs from struct {cname} in fastpath.c"
        assert ctypes.sizeof(cls) >= max(c[cname].values())


def test_native_trap_entry_ctypes_mirrors_match_the_c_layout():
    """The arch trap files' argument structs (keusim/arch/<arch>_trap.c: system-call and
    interrupt entry) against their ctypes mirrors in the backends."""
    from pathlib import Path

    import unicorn

    from keusim.arch.arm64 import Arm64Entry
    from keusim.arch.x86_64 import X86Entry

    so = host_shared_lib(list(fastpath.SOURCES), "fastpath-arch-dwarf", cflags=("-O0", "-g"),
                         include_dirs=[Path(unicorn.__file__).parent / "include",
                                       Path(fastpath.__file__).parent])
    c = _dwarf_structs(so, {"x86_entry", "arm64_entry"})
    for cname, cls in (("x86_entry", X86Entry), ("arm64_entry", Arm64Entry)):
        py = {n: getattr(cls, n).offset for n, _t in cls._fields_}
        assert py == c[cname], f"ctypes {cls.__name__} differs from struct {cname}"
