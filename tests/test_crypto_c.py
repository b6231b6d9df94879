"""The kernel's SipHash, channel-key generator and descriptor tags, compiled for the host
and called through ctypes, must agree byte for byte with keusim.crypto; the same sources
must also compile cleanly, without SIMD/FP registers, for both guest targets.

The lead runs the same reference vectors inside the emulator; this file is the native half.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest
from capstone import CS_ARCH_ARM64, CS_ARCH_X86, CS_MODE_64, CS_MODE_ARM, Cs
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from keusim import arch
from keusim.crypto import descriptor, drbg
from keusim.crypto.siphash import REFERENCE_KEY, REFERENCE_VECTORS, reference_message, siphash24
from keusim.toolchain import ROOT, BuildSpec, build, host_shared_lib

INCLUDE = ROOT / "kernel" / "include"
SDK = ROOT / "guests" / "include"   # kernel/include/descriptor.h takes the SDK's definition
LIB = ROOT / "kernel" / "lib"
STRICT = ("-Wall", "-Wextra", "-Werror")

# descriptor.h is header-only (static inline); this shim gives its functions symbols.
SHIM = r"""
#include <stddef.h>
#include <stdint.h>
#include "descriptor.h"
#include "drbg.h"

void t_desc_encode(const struct notify_desc *d, uint8_t out[DESC_ENC_LEN]) { desc_encode(d, out); }
uint64_t t_desc_tag(const uint8_t key[16], const struct notify_desc *d) { return desc_tag(key, d); }
int t_desc_tag_ok(const uint8_t key[16], const struct notify_desc *d) { return desc_tag_ok(key, d); }
size_t t_drbg_size(void) { return sizeof(struct drbg); }
void t_desc_layout(size_t out[7])
{
    out[0] = sizeof(struct notify_desc);
    out[1] = offsetof(struct notify_desc, channel);
    out[2] = offsetof(struct notify_desc, offset);
    out[3] = offsetof(struct notify_desc, length);
    out[4] = offsetof(struct notify_desc, flags);
    out[5] = offsetof(struct notify_desc, seq);
    out[6] = offsetof(struct notify_desc, tag);
}
"""

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
keys = st.binary(min_size=16, max_size=16)
descs = st.builds(descriptor.NotifyDesc, u32, u32, u32, u32, u64, u64)


@pytest.fixture(scope="module")
def shim_c(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("crypto_shim") / "crypto_shim.c"
    p.write_text(SHIM)
    return p


@pytest.fixture(scope="module")
def lib(shim_c) -> ctypes.CDLL:
    so = host_shared_lib([LIB / "siphash.c", LIB / "drbg.c", shim_c], name="crypto_test",
                         cflags=("-O2", *STRICT), include_dirs=[INCLUDE, SDK])
    dll = ctypes.CDLL(str(so))
    vp, sz, u64_t = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64
    sigs = {
        "siphash24": ([vp, vp, sz], u64_t),
        "drbg_seed64": ([u64_t, vp], None),
        "drbg_init": ([vp, vp], None),
        "drbg_bytes": ([vp, vp, sz], None),
        "drbg_channel_key": ([vp, u64_t, vp], None),
        "t_desc_encode": ([vp, vp], None),
        "t_desc_tag": ([vp, vp], u64_t),
        "t_desc_tag_ok": ([vp, vp], ctypes.c_int),
        "t_drbg_size": ([], sz),
        "t_desc_layout": ([vp], None),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(dll, name)
        fn.argtypes, fn.restype = args, res
    return dll


def c_siphash(lib, key: bytes, msg: bytes, key_off: int = 0, msg_off: int = 0) -> int:
    """Call the C siphash24 with key and msg placed at the given misalignments."""
    kbuf = ctypes.create_string_buffer(16 + 8)
    mbuf = ctypes.create_string_buffer(len(msg) + 8)
    ctypes.memmove(ctypes.addressof(kbuf) + key_off, key, 16)
    ctypes.memmove(ctypes.addressof(mbuf) + msg_off, msg, len(msg))
    return lib.siphash24(ctypes.addressof(kbuf) + key_off, ctypes.addressof(mbuf) + msg_off,
                         len(msg))


def c_desc(d: descriptor.NotifyDesc) -> ctypes.Array:
    return ctypes.create_string_buffer(descriptor.pack(d), descriptor.SIZE)


# ---- SipHash ------------------------------------------------------------------------

def test_c_reference_vectors(lib):
    for i in range(64):
        got = lib.siphash24(REFERENCE_KEY, reference_message(i), i)
        assert got.to_bytes(8, "little") == REFERENCE_VECTORS[i], f"vector {i}"


def test_c_unaligned_inputs(lib):
    for i in (0, 7, 8, 15, 24, 63):
        want = int.from_bytes(REFERENCE_VECTORS[i], "little")
        for off in range(8):
            assert c_siphash(lib, REFERENCE_KEY, reference_message(i), off, 7 - off) == want


@settings(max_examples=300, deadline=None)
@given(keys, st.binary(max_size=300), st.integers(0, 7), st.integers(0, 7))
def test_c_matches_python(lib, key, msg, koff, moff):
    assert c_siphash(lib, key, msg, koff, moff) == siphash24(key, msg)


# ---- channel-key generator ----------------------------------------------------------

def c_seed64(lib, seed: int) -> bytes:
    out = ctypes.create_string_buffer(16)
    lib.drbg_seed64(seed, out)
    return out.raw


@settings(max_examples=100, deadline=None)
@given(u64)
def test_c_seed_expansion(lib, seed):
    assert c_seed64(lib, seed) == drbg.seed_key(seed)


@settings(max_examples=50, deadline=None)
@given(st.one_of(u64, keys), st.lists(st.integers(0, 40), max_size=10))
def test_c_stream_matches_python_for_any_split(lib, seed, sizes):
    g = ctypes.create_string_buffer(lib.t_drbg_size())
    lib.drbg_init(g, drbg.seed_key(seed))
    chunks = []
    for n in sizes:
        out = ctypes.create_string_buffer(n + 1)
        out.raw = b"\xa5" * (n + 1)
        lib.drbg_bytes(g, out, n)
        assert out.raw[n] == 0xA5, "drbg_bytes wrote past n bytes"
        chunks.append(out.raw[:n])
    assert b"".join(chunks) == drbg.stream(seed, sum(sizes))


@settings(max_examples=50, deadline=None)
@given(st.one_of(u64, keys), st.one_of(st.integers(0, 300), st.integers(0, 2**63 - 1)))
def test_c_channel_key_matches_python(lib, seed, index):
    out = ctypes.create_string_buffer(16)
    lib.drbg_channel_key(drbg.seed_key(seed), index, out)
    assert out.raw == drbg.channel_key(seed, index)


def test_c_default_seed_channel_keys(lib):
    # What the kernel computes at boot for channels 0..15 with the default manifest seed.
    seed = c_seed64(lib, drbg.DEFAULT_SEED)
    g = ctypes.create_string_buffer(lib.t_drbg_size())
    lib.drbg_init(g, seed)
    for i in range(16):
        out = ctypes.create_string_buffer(16)
        lib.drbg_bytes(g, out, 16)
        assert out.raw == drbg.channel_key(drbg.DEFAULT_SEED, i)


# ---- descriptors --------------------------------------------------------------------

def test_c_struct_layout_matches_python_pack(lib):
    out = (ctypes.c_size_t * 7)()
    lib.t_desc_layout(out)
    assert list(out) == [descriptor.SIZE, 0, 4, 8, 12, 16, 24]


@settings(max_examples=200, deadline=None)
@given(keys, descs)
def test_c_descriptor_tags_match_python(lib, key, d):
    enc = ctypes.create_string_buffer(descriptor.ENC_LEN)
    lib.t_desc_encode(c_desc(d), enc)
    assert enc.raw == descriptor.encode(d)
    assert lib.t_desc_tag(key, c_desc(d)) == descriptor.tag(key, d)
    assert lib.t_desc_tag_ok(key, c_desc(d)) == int(descriptor.tag_ok(key, d))
    signed = descriptor.sign(key, d)
    assert lib.t_desc_tag_ok(key, c_desc(signed)) == 1


@settings(max_examples=100, deadline=None)
@given(keys, descs, st.integers(0, 63))
def test_c_rejects_any_single_bit_tag_error(lib, key, d, bit):
    signed = descriptor.sign(key, d)
    bad = descriptor.NotifyDesc(signed.channel, signed.offset, signed.length, signed.flags,
                                signed.seq, signed.tag ^ (1 << bit))
    assert lib.t_desc_tag_ok(key, c_desc(bad)) == 0


# ---- guest builds -------------------------------------------------------------------

# FP/SIMD register names in capstone's operand text.
_SIMD = {
    "x86_64": re.compile(r"\b[xyz]mm\d+\b"),
    "arm64": re.compile(r"\b[bhsdqv]([0-9]|[12][0-9]|3[01])\b"),
}
_CS = {"x86_64": (CS_ARCH_X86, CS_MODE_64), "arm64": (CS_ARCH_ARM64, CS_MODE_ARM)}
_MACHINE = {"x86_64": "EM_X86_64", "arm64": "EM_AARCH64"}
_COND_BRANCH = {
    "x86_64": re.compile(r"^j(?!mp)"),
    "arm64": re.compile(r"^(b\.|cbn?z|tbn?z)"),
}


def guest_object(a: str, src: Path, name: str) -> Path:
    tc = arch.toolchain(a)
    spec = BuildSpec(sources=(src,), target=tc.zig_target,
                     cflags=(*tc.kernel_cflags, *STRICT, "-c"), include_dirs=(INCLUDE, SDK))
    return build(spec, name=f"{name}-{a}")


def disassemble(a: str, path: Path) -> tuple[dict[str, list], set[str]]:
    """Instructions of each defined function, and the undefined symbols, of an object."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        assert elf["e_type"] == "ET_REL" and elf["e_machine"] == _MACHINE[a]
        symtab = elf.get_section_by_name(".symtab")
        undefined = {s.name for s in symtab.iter_symbols()
                     if s["st_shndx"] == "SHN_UNDEF" and s.name}
        md = Cs(*_CS[a])
        funcs = {}
        for s in symtab.iter_symbols():
            if s["st_info"]["type"] != "STT_FUNC" or s["st_shndx"] == "SHN_UNDEF":
                continue
            sec = elf.get_section(s["st_shndx"])
            code = sec.data()[s["st_value"]:s["st_value"] + s["st_size"]]
            funcs[s.name] = list(md.disasm(code, s["st_value"]))
    return funcs, undefined


@pytest.mark.parametrize("a", arch.ARCH_NAMES)
def test_guest_objects_build_without_simd(a, shim_c):
    objs = {
        "siphash": (LIB / "siphash.c", {"siphash24"}),
        "drbg": (LIB / "drbg.c", {"drbg_seed64", "drbg_init", "drbg_bytes", "drbg_channel_key"}),
        "crypto_shim": (shim_c, {"t_desc_encode", "t_desc_tag", "t_desc_tag_ok"}),
    }
    for name, (src, exported) in objs.items():
        funcs, undefined = disassemble(a, guest_object(a, src, name))
        assert exported <= set(funcs), f"{name}: missing {exported - set(funcs)}"
        # The kernel provides siphash24, memcpy and memset; nothing else may be pulled in.
        assert undefined <= {"siphash24", "memcpy", "memset"}, f"{name}: {undefined}"
        for fn, insns in funcs.items():
            for i in insns:
                assert not _SIMD[a].search(i.op_str), f"{a} {fn}: {i.mnemonic} {i.op_str}"


@pytest.mark.parametrize("a", arch.ARCH_NAMES)
def test_guest_tag_compare_has_no_branches(a, shim_c):
    # desc_tag_ok's compare must be branch-free (constant time); the only control flow
    # allowed in the wrapper is the call to siphash24 and the return.
    funcs, _ = disassemble(a, guest_object(a, shim_c, "crypto_shim"))
    insns = funcs["t_desc_tag_ok"]
    assert insns, "t_desc_tag_ok has no code"
    conds = [f"{i.mnemonic} {i.op_str}" for i in insns if _COND_BRANCH[a].match(i.mnemonic)]
    assert conds == []
