"""The block cost model (keusim.model.costmodel): classification coverage, determinism, and the
behaviour of the pricing rules (docs/cycle-model.md). No test here depends on host timing.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from keusim import arch as archmod
from keusim.arch.isa import _DECODED
from keusim.errors import ArchError, BuildError
from keusim.model.costmodel import (
    CATEGORIES,
    FRACTION,
    OTHER_ALLOWED,
    BlockCost,
    FlatCost,
    ProfileCost,
    block_from_bytes,
    census,
    classify,
    decode,
    disassembler,
)
from keusim.model.profiles import CLASS_NAMES, TRAP_CLASSES, load_profile
from keusim.toolchain import BuildSpec, builds
from keusim.toolchain import build as tc_build

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "guests" / "src" / "hello.c"
PRICED = set(CLASS_NAMES) | set(TRAP_CLASSES)


def x86(hexcode: str):
    return block_from_bytes(bytes.fromhex(hexcode), "x86_64")


def a64(*words: int):
    return block_from_bytes(b"".join(struct.pack("<I", w) for w in words), "arm64")


def text_insns(path: Path, arch: str) -> list:
    md = disassembler(arch)
    out = []
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for sec in elf.iter_sections():
            if sec["sh_flags"] & 0x4:     # SHF_EXECINSTR
                out += list(md.disasm(sec.data(), sec["sh_addr"]))
    return out


def assemble(tmp_path: Path, arch: str, asm: str) -> list:
    """Assemble ``asm`` with the pinned zig cc into an object and disassemble it."""
    src = tmp_path / f"corpus-{arch}.S"
    src.write_text(".text\n" + asm)
    target = archmod.toolchain(arch).zig_target
    obj = tc_build(BuildSpec(sources=(src,), target=target, cflags=("-c",)), name=f"corpus-{arch}")
    return text_insns(obj, arch)


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_every_compiled_mnemonic_is_classified(arch):
    images = [builds.guest_image(arch, [HELLO])]
    try:
        images.append(builds.kernel_image(arch))
    except BuildError as e:  # the arm64 kernel may not exist yet on a branch
        pytest.skip(f"kernel for {arch} does not build here: {e}")
    insns = [i for p in images for i in text_insns(p, arch)]
    assert len(insns) > 500
    found = census(insns, arch)
    assert set(found) <= PRICED
    other = set(found.get("other", {})) - OTHER_ALLOWED
    assert not other, f"{arch}: mnemonics with no class: {sorted(other)}"
    # The kernel's privileged paths are recognised, not lumped with ALU work.
    for cls in ("syscall", "trap_return", "mmu_switch", "system", "load", "store", "call",
                "ret"):
        assert cls in found, f"{arch}: no {cls} instruction classified in kernel + guest"


X86_CORPUS = {
    "div rcx": "div", "idiv rcx": "div", "imul rax, rcx": "mul", "lfence": "fence_light",
    "sfence": "fence_light", "mfence": "fence", "invlpg [rax]": "tlb_flush",
    "cpuid": "system", "wrmsr": "system", "mov cr3, rax": "mmu_switch",
    "mov cr0, rax": "system", "mov rax, cr2": "system_light", "swapgs": "system_light",
    "hlt": "system_light", "rep movsb": "string", "rep stosq": "string",
    "lock cmpxchg [rdi], rcx": "atomic", "xchg [rdi], rax": "atomic",
    "xchg rax, rcx": "move", "syscall": "syscall", "sysretq": "sysret", "iretq": "trap_return",
    "ud2": "exception", "int3": "exception", "rdtscp": "counter", "pause": "pause",
    "nop": "nop", "push rbx": "store", "pop rbx": "load", "mov rax, [rdi]": "move",
    "add rax, [rdi]": "alu", "sar rax, 3": "shift", "cmovne rax, rcx": "alu",
}

A64_CORPUS = {
    "udiv x0, x1, x2": "div", "mul x0, x1, x2": "mul", "umulh x0, x1, x2": "mul",
    "ldar x0, [x1]": "load_acquire", "stlr x0, [x1]": "store_release",
    "ldaxr x0, [x1]": "atomic", "stlxr w2, x0, [x1]": "atomic",
    "ldaddal x1, x0, [x2]": "atomic", "casal x0, x1, [x2]": "atomic", "swpal x0, x1, [x2]": "atomic",
    "dmb ish": "fence", "dsb sy": "fence", "isb": "fence_light",
    "msr ttbr0_el1, x0": "mmu_switch", "msr ttbr1_el1, x0": "mmu_switch",
    "msr sctlr_el1, x0": "system", "msr vbar_el1, x0": "system",
    "msr elr_el1, x0": "system_light", "mrs x0, esr_el1": "system_light",
    "msr daifset, #2": "system_light", "mrs x0, cntvct_el0": "counter",
    "tlbi vmalle1is": "tlb_flush", "svc #0": "syscall", "eret": "trap_return",
    "brk #0": "exception", "wfi": "system_light", "yield": "pause", "nop": "nop",
    "ldp x0, x1, [sp], #16": "load", "stp x29, x30, [sp, #-16]!": "store",
    "lsr x0, x1, #3": "shift", "csel x0, x1, x2, eq": "alu", "movk x0, #1, lsl #16": "move",
    "bl .": "call", "blr x3": "call", "ret": "ret", "br x3": "branch_taken",
    "dc civac, x0": "system", "ic iallu": "system",
}


@pytest.mark.parametrize("arch,corpus,prologue", [
    ("x86_64", X86_CORPUS, ".intel_syntax noprefix"), ("arm64", A64_CORPUS, ".arch armv8.1-a")])
def test_system_and_atomic_instructions_are_classified(tmp_path, arch, corpus, prologue):
    asm = prologue + "\n" + "\n".join(corpus) + "\n"
    insns = assemble(tmp_path, arch, asm)
    assert len(insns) == len(corpus)
    got = {line: classify(i, arch) for line, i in zip(corpus, insns, strict=True)}
    wrong = {k: (v, corpus[k]) for k, v in got.items() if v != corpus[k]}
    assert not wrong, f"(got, expected): {wrong}"


def test_branch_direction_is_static_backward_taken():
    back, fwd = x86("4883e90175fa"), x86("4883e9017502")   # sub rcx,1; jne -6 / jne +2
    assert classify(back[1], "x86_64") == "branch_taken"
    assert classify(fwd[1], "x86_64") == "branch"


def test_unknown_architecture_is_one_clear_error():
    with pytest.raises(ArchError, match="unknown architecture 'mips'"):
        ProfileCost("zen3", "mips")


# --------------------------------------------------------------------------- pricing


def test_flat_cost_unchanged():
    assert FlatCost().block(x86("90" * 5)) == BlockCost(5, 5)
    assert FlatCost().block([]) == BlockCost(0, 0)


@pytest.mark.parametrize("profile", ["host", "zen3", "raptorlake", "neoverse-n1", "cortex-a76"])
def test_same_block_same_cost(profile):
    arch = load_profile(profile).isa
    code = {"x86_64": lambda: x86("488b04c6" "4801c8" "48890437" "4883c108" "4839d1" "72ee"),
            "arm64": lambda: a64(0xF8408C20, 0x8B000063, 0xF8008C40, 0xF1000484, 0x54FFFF81),
            }[arch]()
    first = ProfileCost(profile, arch).block(code)
    _DECODED.clear()
    again = [ProfileCost(load_profile(profile), arch).block(code) for _ in range(3)]
    assert all(b == first for b in again)
    assert isinstance(first.cycles, int) and first.cycles >= 1 and first.insns == len(code)


@pytest.mark.parametrize("profile,arch,dep,indep", [
    ("zen3", "x86_64", x86("4883c001" * 4), x86("4883c0014883c1014883c2014883c301")),
    ("raptorlake", "x86_64", x86("4883c001" * 4), x86("4883c0014883c1014883c2014883c301")),
    ("neoverse-n1", "arm64", a64(*[0x91000400] * 4),
     a64(0x91000400, 0x91000421, 0x91000442, 0x91000463)),
])
def test_dependent_chain_costs_more_than_independent_work(profile, arch, dep, indep):
    pc = ProfileCost(profile, arch)
    assert pc.block(dep).cycles == 4                 # 4 x ADD latency 1
    assert pc.block(indep).cycles < pc.block(dep).cycles


def test_a_chain_through_several_registers_is_carried():
    # add rbx, rax; add rcx, rbx; add rax, rcx: rax on exit depends on rax on entry by 3.
    pc = ProfileCost("zen3", "x86_64")
    assert pc.block(x86("4801c3" "4801d9" "4801c8")).cycles == 3


def test_pointer_chase_costs_the_l1_hit():
    for name in ("zen3", "raptorlake"):
        p = load_profile(name)
        chase = x86("488b00" "4883e901" "75f6")          # mov rax,[rax]; sub rcx,1; jne
        assert ProfileCost(p, "x86_64").block(chase).cycles == p.cycles("memory.l1")
    n1 = load_profile("neoverse-n1")
    chase = a64(0xF9400000, 0xF1000421, 0x54FFFFC1)      # ldr x0,[x0]; subs; b.ne
    assert ProfileCost(n1, "arm64").block(chase).cycles == n1.cycles("memory.l1")


def test_copy_loop_is_throughput_bound_not_latency_bound():
    # mov rax,[rsi+rcx]; mov [rdi+rcx],rax; add rcx,8; cmp rcx,rdx; jb: iterations overlap,
    # so the load latency is not charged per iteration.
    b = ProfileCost("zen3", "x86_64").breakdown(x86("488b040e" "4889040f" "4883c108" "4839d1"
                                                    "72f0"))
    t_bound, chain, fixed, drained = b.segments[0]
    assert b.cycles == 1 and chain == 1.0 and not drained and fixed == 0


def test_loads_and_stores_share_the_memory_ops_bound():
    # string.c's 4-byte-aligned copy loop (what a ring payload copy runs): 8 loads and
    # 8 stores per 32 bytes. Separately they need 8/3 and 8/2 = 4 cycles; together they
    # are 16 memory operations at pipeline.memory_ops (3 on Zen 3, AMD SOG 2.12) per cycle.
    loop = ("8b3e" "8939" "8b7e04" "897904" "8b7e08" "897908" "8b7e0c" "89790c"
            "8b7e10" "897910" "8b7e14" "897914" "8b7e18" "897918" "8b7e1c" "89791c"
            "4883c2e0" "4883c120" "4883c620" "4883fa03" "77c0")
    zen3 = load_profile("zen3")
    b = ProfileCost(zen3, "x86_64").breakdown(x86(loop))
    assert zen3.memory_ops == 3
    assert b.segments[0][0] == pytest.approx(16 / 3)  # the throughput bound
    assert b.cycles == 5
    # The machine charges it exactly, to 1/FRACTION cycle: 16/3 = 5.33, not 5.
    assert ProfileCost(zen3, "x86_64").block(x86(loop)).fixed == round(16 / 3 * FRACTION)
    wide = zen3.with_params({"pipeline.memory_ops": replace(
        zen3.param("pipeline.memory_ops"), value=16.0)})
    assert ProfileCost(wide, "x86_64").block(x86(loop)).cycles == 4   # the store pipe


def test_stack_engine_makes_pushes_independent():
    b = ProfileCost("zen3", "x86_64").breakdown(x86("50" "53" "55" "4154" "4155"))
    assert b.segments[0][1] == 0.0                     # no RSP chain
    assert b.cycles == 3                               # five stores at two per cycle


def test_trap_and_serializing_costs_come_from_the_profile():
    for name, arch, sys_, ret_, cr3, exit_key in (
            ("zen3", "x86_64", x86("0f05"), x86("480f07"), x86("0f22d8"), "trap.syscall_exit"),
            ("neoverse-n1", "arm64", a64(0xD4000001), a64(0xD69F03E0), a64(0xD5182000),
             "trap.exception_return")):
        p = load_profile(name)
        pc = ProfileCost(p, arch)
        assert pc.block(sys_).cycles == p.cycles("trap.syscall_entry")
        assert pc.block(ret_).cycles == p.cycles(exit_key)
        assert pc.block(cr3).cycles == p.cycles("trap.mmu_switch")
        assert pc.attribute(sys_) == {"compute": 0, "memory": 0, "trap": pc.block(sys_).cycles}


def test_a_fence_exposes_the_whole_chain_before_it():
    # mov rax,[rdi]; add rax,1; mov [rsi],rax; mfence: the store must complete first.
    p = load_profile("zen3")
    pc = ProfileCost(p, "x86_64")
    b = pc.breakdown(x86("488b07" "4883c001" "488906" "0faef0"))
    chain = p.cycles("memory.l1") + 1 + 1              # load, add, store
    assert b.segments[0][3] and b.segments[0][1] == chain
    assert b.cycles == chain + p.classes["fence"].latency
    no_fence = pc.block(x86("488b07" "4883c001" "488906")).cycles
    assert no_fence < chain                            # without the drain it overlaps


def test_pause_is_a_delay():
    p = load_profile("raptorlake")
    assert ProfileCost(p, "x86_64").block(x86("f390")).cycles == p.classes["pause"].latency


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_attribution_adds_up_over_real_blocks(arch):
    insns = text_insns(builds.guest_image(arch, [HELLO]), arch)
    pc = ProfileCost("host", arch)
    for k in range(0, min(len(insns), 1200), 7):
        blk = insns[k:k + 7]
        parts = pc.attribute(blk)
        assert set(parts) == set(CATEGORIES)
        assert all(v >= 0 for v in parts.values())
        assert sum(parts.values()) == pc.block(blk).cycles


def test_attribution_follows_what_bounds_the_block():
    pc = ProfileCost("zen3", "x86_64")
    chase = pc.attribute(x86("488b00" "4883e901" "75f6"))
    assert chase["memory"] == 4 and chase["compute"] == 0
    adds = pc.attribute(x86("4883c001" * 8))
    assert adds == {"compute": 8, "memory": 0, "trap": 0}


def test_decode_sees_arm64_writeback_and_compare_operands():
    d = decode(a64(0xF8408C20)[0], "arm64")            # ldr x0, [x1, #8]!
    assert d.writeback == ("x1",) and d.writes == ("x0",) and d.addr == ("x1",)
    c = decode(a64(0xEB01001F)[0], "arm64")            # cmp x0, x1
    assert set(c.data) == {"x0", "x1"} and c.writes == ("flags",)


def test_empty_block_costs_nothing():
    assert ProfileCost("zen3", "x86_64").block([]) == BlockCost(0, 0)


def test_profile_cost_exposes_machine_parameters():
    pc = ProfileCost("zen3", "x86_64")
    assert pc.coherence() == pc.profile.coherence()
    assert pc.ipi_cycles == pc.profile.ipi_cycles > 0
