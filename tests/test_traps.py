"""The trap model (issue 11, item 1): every hostile instruction a user process can
execute ends in the architectural exception, reaches the kernel's vector, and kills
only that process, with the right fault kind, while honest processes finish.

One system per architecture runs every behaviour of guests/src/traps.c as its own
process, beside two honest processes (one per core).
"""

from __future__ import annotations

import functools
import json

import pytest

from keusim import manifest
from keusim.machine.loader import BOOT_FLAG_KERNEL_FAULT
from keusim.system import run

# guests/src/traps.c behaviour numbers -> the outcome on each architecture:
# a fault kind, or ("exit", code).
EXPECT = {
    "x86_64": {
        1: "undefined-instruction",        # ud0: UC_ERR_INSN_INVALID turned into #UD
        2: "undefined-instruction",        # __builtin_trap() = ud2
        3: "software-interrupt",           # int $0x80: gate not present -> #NP(0x80*8+2)
        4: "software-interrupt",           # int $32: DPL0 gate -> #GP, not a fake timer tick
        5: "software-interrupt",           # int $13: #GP(13*8+2), not a fault it picks
        6: "software-interrupt",           # int $14
        7: "breakpoint",                   # int3: the DPL3 #BP gate
        8: "breakpoint",                   # int1: #DB, no DPL check
        9: "undefined-instruction",        # into: #UD in 64-bit mode
        10: "privileged-instruction",      # out at IOPL 0 -> #GP(0)
        11: "privileged-instruction",      # sysenter with SYSENTER_CS = 0 -> #GP(0)
        12: "general-protection",          # non-canonical address -> #GP(0)
        13: "write-protect",               # push onto a read-only page
        14: "undefined-instruction",       # rdrand: absent (CPUID says so)
        15: "undefined-instruction",       # rdseed: absent
        16: "undefined-instruction",       # wrfsbase with CR4.FSGSBASE off
        17: "privileged-instruction",      # hlt
        18: "bad-syscall",
        19: ("exit", 0x123456789),         # exit codes keep all 64 bits
        24: "privileged-instruction",      # out then ud2 in one block: the first trap wins
        27: "privileged-instruction",      # rdpmc with CR4.PCE = 0 -> #GP(0)
        28: "undefined-instruction",       # xgetbv with CR4.OSXSAVE = 0 -> #UD
        29: "write-protect",               # rol [info page]: a write, though capstone says read
        30: "divide-error",                # #DE
    },
    "arm64": {
        1: "undefined-instruction",        # udf #0
        2: "breakpoint",                   # __builtin_trap() = brk #1
        3: "privileged-instruction",       # hvc at EL0: UNDEFINED
        4: "privileged-instruction",       # smc at EL0: UNDEFINED
        5: "privileged-instruction",       # mrs sctlr_el1
        6: "privileged-instruction",       # msr daifset (SCTLR_EL1.UMA = 0)
        7: "breakpoint",                   # brk #0
        8: "undefined-instruction",        # hlt #0 (no halting debug)
        9: "privileged-instruction",       # eret at EL0
        10: ("exit", 99),                  # mrs cntpct_el0: the model clock, allowed
        11: "privileged-instruction",      # mrs pmccntr_el0 (PMUSERENR_EL0 = 0)
        12: "non-canonical",               # an address in neither half
        13: "write-protect",               # stp onto text
        14: "privileged-instruction",      # mrs rndr: UNDEFINED on the A72 (no FEAT_RNG)
        15: "privileged-instruction",      # mrs rndrrs
        16: "privileged-instruction",      # msr tpidr_el1
        17: "privileged-instruction",      # wfi (SCTLR_EL1.nTWI = 0)
        18: "bad-syscall",
        19: ("exit", 0x123456789),
        24: ("exit", 99),                  # (x86-only behaviour)
        27: "privileged-instruction",      # mrs pmevcntr0_el0 (PMUSERENR_EL0 = 0)
        28: ("exit", 99),                  # mrs cntvct_el0: the model clock, allowed
        29: "write-protect",               # read-modify-write of the info page
        30: ("exit", 0),                   # udiv by zero gives 0 (Arm ARM, UDIV)
    },
}


def _manifest(arch: str) -> manifest.SystemSpec:
    procs = []
    for b, want in EXPECT[arch].items():
        expect = f"exit:{want[1]}" if isinstance(want, tuple) else f"fault:{want}"
        procs.append(f'[[process]]\nname = "b{b}"\nimage = "@/guests/src/traps.c"\n'
                     f'cflags = ["-DBEHAVIOUR={b}"]\ncore = {b % 2}\nexpect = "{expect}"\n')
    for c in (0, 1):
        procs.append(f'[[process]]\nname = "honest{c}"\nimage = "@/guests/src/traps.c"\n'
                     f'cflags = ["-DBEHAVIOUR=0"]\ncore = {c}\n')
    return manifest.parse('[system]\nname = "traps"\ncores = 2\nmax_cycles = 200_000_000\n'
                          + "\n".join(procs))


@functools.cache
def _traps(arch: str):
    return run(_manifest(arch), arch=arch)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_every_hostile_instruction_kills_only_its_process(arch):
    r = _traps(arch)
    assert r.status == "poweroff", r.message
    got = {}
    for p in r.processes:
        if p.name.startswith("honest"):
            assert p.exit_code == 0 and p.console.startswith("honest: done"), p
            continue
        got[int(p.name[1:])] = ("exit", p.exit_code) if p.fault is None else p.fault.kind
    assert got == EXPECT[arch]
    assert r.ok


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_faults_name_process_core_and_symbol(arch):
    r = _traps(arch)
    p = r.process("b1")
    f = p.fault
    # The pc is in the offender's own image (every image starts at 0x400000).
    assert 0x400000 <= f.pc < 0x10000000
    assert (f.process, f.pid, f.core) == ("b1", p.pid, 1)
    assert f.symbol.startswith(("main", "hostile")), f.symbol
    d = json.loads(r.to_json())["processes"][p.pid - 1]["fault"]
    assert d["process"] == "b1" and d["pid"] == p.pid and d["core"] == 1
    assert d["symbol"] == f.symbol
    assert f"process b1 pid {p.pid}, core 1" in r.summary()


def test_software_interrupt_records_the_vector():
    """int N reports the gate it tried (the IDT error code's index), not a fault it chose."""
    r = _traps("x86_64")
    vectors = {p.name: p.fault.addr for p in r.processes if p.fault
               and p.fault.kind == "software-interrupt"}
    assert vectors == {"b3": 0x80, "b4": 32, "b5": 13, "b6": 14}


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_kernel_mode_exception_reaches_the_kernel_handler(arch):
    """A kernel fault goes to the kernel's own vector; the kernel's handler panics
    (its own message, not one made up by the machine), and the stop names the core."""
    r = run("hello", arch=arch, kernel_flags=BOOT_FLAG_KERNEL_FAULT)
    assert r.status == "panic"
    own = {"x86_64": "x86_trap: exception in kernel mode",
           "arm64": "arm64_sync_el1: exception in kernel mode"}[arch]
    assert own in r.message
    assert "core 0, kernel at " in r.message
    assert json.loads(r.to_json())["message"] == r.message


def test_port_io_faults_before_the_rest_of_its_block():
    """`out` then a store to a ring page in the same translated block: the #GP is taken
    at the `out`, so the consumer never sees the store (Unicorn alone would finish the
    block first)."""
    text = """[system]
name = "outstore"
cores = 2
[[process]]
name = "p"
image = "@/guests/src/traps.c"
cflags = ["-DBEHAVIOUR=25"]
expect = "fault:privileged-instruction"
[[process]]
name = "c"
image = "@/guests/src/traps.c"
cflags = ["-DBEHAVIOUR=26"]
core = 1
[[channel]]
producer = "p"
consumer = "c"
capacity = 4096
"""
    r = run(manifest.parse(text), arch="x86_64")
    assert r.process("p").fault.kind == "privileged-instruction"
    assert r.process("c").exit_code == 0      # 0x5a (90) if the store had run
    assert r.ok


def test_determinism_of_the_trap_model():
    a = run(_manifest("x86_64"), arch="x86_64").to_json()
    assert a == _traps("x86_64").to_json()
