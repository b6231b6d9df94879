"""The arm64 backend (keusim/arch/arm64.py) and the arm64 kernel port.

Backend level: the descriptor codec, the start-up discovery of where Unicorn keeps
the syndrome, and host-performed exception entry into a tiny EL1 handler on a bare
Unicorn instance (real page tables, real eret). System level: the kernel boots,
runs `hello` on one and two cores, serves system calls, and classifies user faults
from the syndrome it was given, while an honest process beside them finishes.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest
from unicorn import UC_HOOK_INTR
from unicorn import arm64_const as A

from keusim.arch import arm64
from keusim.machine import Machine, loader
from keusim.machine.pagetable import DEV, PAGE, R, TableBuilder, U, W, X, perm_str, walk_all
from keusim.toolchain import builds

ARCH = arm64.ARCH
KB = arm64.KERNBASE


# -- descriptor codec -------------------------------------------------------------
PERMS = [R, R | W, R | X, R | U, R | W | U, R | X | U, R | W | DEV]


@pytest.mark.parametrize("perm", PERMS, ids=perm_str)
def test_page_descriptor_round_trips(perm):
    pa = 0x12345000
    e = ARCH.pte.leaf(pa, perm, 0)
    assert e & 3 == 3                       # a page descriptor at level 3
    assert ARCH.pte.decode(e, 0) == ("leaf", pa, perm)


def test_descriptor_bits_follow_the_arm_arm():
    c = ARCH.pte
    user_rw = c.leaf(0x5000, R | W | U)
    assert user_rw >> 6 & 3 == 0b01          # AP: EL1 and EL0 read/write
    assert user_rw & 1 << 11                 # nG: ASID-tagged
    assert user_rw & 1 << 53 and user_rw & 1 << 54   # PXN, UXN
    kern_rx = c.leaf(0x5000, R | X)
    assert kern_rx >> 6 & 3 == 0b10          # AP: EL1 read-only, no EL0 access
    assert not kern_rx & 1 << 53 and kern_rx & 1 << 54
    assert not kern_rx & 1 << 11             # global
    for e in (user_rw, kern_rx):
        assert e & 1 << 10 and e >> 8 & 3 == 3   # AF, inner shareable
        assert e >> 2 & 7 == 0                   # MAIR slot 0: normal memory
    assert c.leaf(0x5000, R | W | DEV) >> 2 & 7 == 1


def test_table_block_and_invalid_descriptors_decode():
    c = ARCH.pte
    assert c.decode(c.table(0x7000), 2) == ("table", 0x7000, 0)
    assert c.decode(0, 1)[0] == "invalid"
    # 0b01 is a block at levels 1 and 2 (2 MiB / 1 GiB), reserved at the page level.
    block = c.leaf(0x40000000, R | W, 2)
    assert block & 3 == 1
    assert c.decode(block, 2) == ("leaf", 0x40000000, R | W)
    assert c.decode(c.leaf(0x200000, R | X, 1) | 0x1000, 1) == ("leaf", 0x200000, R | X)
    assert c.decode(block, 0)[0] == "invalid"
    assert c.decode(block, 3)[0] == "invalid"


# -- syndrome discovery -------------------------------------------------------------
def test_syndrome_discovery_is_consistent():
    lay = arm64.syndrome_layout()
    assert lay is arm64.syndrome_layout()               # cached per process
    again = arm64.syndrome_layout.__wrapped__()         # a fresh discovery agrees
    assert again == lay
    assert lay.esr % 4 == 0 and lay.far % 8 == 0 and lay.esr != lay.far


# -- exception entry on a bare instance -----------------------------------------------
def _mrs(rt: int, key) -> int:
    op0, op1, crn, crm, op2 = key
    return 0xD5200000 | op0 << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5 | rt


def _words(ws) -> bytes:
    return b"".join(struct.pack("<I", w) for w in ws)


ERET, B_SELF, NOP = 0xD69F03E0, 0x14000000, 0xD503201F
SVC_42 = 0xD4000001 | 0x42 << 5
LDR_X1_X0 = 0xF9400001                   # ldr x1, [x0]
MOV_X4_SP = 0x910003E4                   # mov x4, sp
# The handler: copy ESR, FAR, ELR, SPSR, SP, SP_EL0 into x0..x5, then spin (the
# test stops it by instruction count).
HANDLER = [_mrs(0, arm64.ESR_EL1), _mrs(1, (3, 0, 6, 0, 0)), _mrs(2, arm64.ELR_EL1),
           _mrs(3, arm64.SPSR_EL1), MOV_X4_SP, _mrs(5, (3, 0, 4, 1, 0)), B_SELF]

USER_VA, USER_STACK, UNMAPPED = 0x400000, 0x70001000, 0x123456780000
KSTACK_TOP = KB + 0x9000


class _Ram:
    def __init__(self, uc):
        self.uc = uc

    def read(self, pa, n):
        return bytes(self.uc.mem_read(pa, n))

    def write(self, pa, data):
        self.uc.mem_write(pa, data)


@pytest.fixture
def bare():
    """A core-like object on a bare instance: kernel at KERNBASE, one user page."""
    uc = ARCH.new_uc()
    uc.mem_map(0, 2 << 20)
    ram = _Ram(uc)
    nxt = [0x100000]

    def alloc():
        pa = nxt[0]
        nxt[0] += PAGE
        ram.write(pa, bytes(PAGE))
        return pa

    kt = TableBuilder(ram, ARCH.pte, alloc)
    kt.map_page(KB + 0x2000, 0x2000, R | X)          # vectors at KB + 0x2000
    kt.map_page(KB + 0x8000, 0x8000, R | W)          # kernel stack
    ut = TableBuilder(ram, ARCH.pte, alloc)
    ut.map_page(USER_VA, 0x10000, R | X | U)
    ut.map_page(USER_STACK - PAGE, 0x11000, R | W | U)
    core = SimpleNamespace(id=0, uc=uc, trap=None, pc=0, arch_state={"boot_ttbr0": ut.root},
                           native=SimpleNamespace(
                               hook_mrs=lambda *a: None,
                               # No native library here: every exception, svc included,
                               # goes to the Python hook and is delivered in Python.
                               hook_intr=lambda f: uc.hook_add(UC_HOOK_INTR, f),
                               set_trap_entry=lambda *a: None,
                               set_irq_entry=lambda *a: None))
    ARCH.boot_core(core, KB + 0x2000, KSTACK_TOP, 0, kt.root)
    ARCH.install(core)
    vbar = KB + 0x2000
    ram.write(0x2000 + 0x400, _words(HANDLER))       # lower EL sync
    ram.write(0x2000 + 0x480, _words(HANDLER))       # lower EL IRQ
    uc.reg_write(A.UC_ARM64_REG_VBAR_EL1, vbar)
    ARCH.kernel_ready(core)
    core.vbar = vbar
    return core


def _enter_user(core, code, expect_trap=True):
    """From EL1, eret to USER_VA and run code (then spin); returns when it traps,
    or, without expect_trap, after the code ran and the core spins at EL0."""
    uc = core.uc
    uc.mem_write(0x10000, _words(code + [B_SELF]))
    uc.ctl_flush_tb()
    uc.reg_write(A.UC_ARM64_REG_ELR_EL1, USER_VA)
    uc.cpr_write(*arm64.SPSR_EL1, 0)                 # EL0t
    uc.reg_write(A.UC_ARM64_REG_SP_EL0, USER_STACK)
    uc.mem_write(0x2000, _words([ERET]))
    uc.emu_start(KB + 0x2000, 0, count=1 + len(code) + (1 if expect_trap else 0))
    assert (core.trap is not None) == expect_trap
    assert ARCH.user_mode(core)


def _take(core, trap):
    """Deliver trap and run HANDLER; returns what it read."""
    core.trap = None
    ARCH.deliver(core, trap)
    core.uc.emu_start(core.pc, 0, count=len(HANDLER))
    r = [core.uc.reg_read(getattr(A, f"UC_ARM64_REG_X{i}")) for i in range(6)]
    return dict(esr=r[0], far=r[1], elr=r[2], spsr=r[3], sp=r[4], sp_el0=r[5])


def test_svc_enters_the_lower_el_sync_vector(bare):
    _enter_user(bare, [NOP, SVC_42])
    trap = bare.trap
    assert trap.kind == "syscall" and trap.intno == arm64.EXCP_SWI
    got = _take(bare, trap)
    assert bare.pc == bare.vbar + 0x400
    assert got["esr"] == 0x15 << 26 | 1 << 25 | 0x42   # EC SVC64, IL, imm16
    assert got["elr"] == USER_VA + 8                   # the instruction after svc
    assert got["spsr"] & 0xF == 0                      # came from EL0t
    assert got["sp"] == KSTACK_TOP and got["sp_el0"] == USER_STACK
    assert bare.uc.reg_read(A.UC_ARM64_REG_PSTATE) & 0x3CF == arm64.PSTATE_EL1H


def test_data_abort_reports_syndrome_and_fault_address(bare):
    _enter_user(bare, [0xD2C00000 | (UNMAPPED >> 32 & 0xFFFF) << 5,   # movz x0, hi, lsl 32
                       0xF2A00000 | (UNMAPPED >> 16 & 0xFFFF) << 5,   # movk x0, mid, lsl 16
                       LDR_X1_X0])
    trap = bare.trap
    assert trap.intno == arm64.EXCP_DATA_ABORT and trap.far == UNMAPPED
    got = _take(bare, trap)
    assert got["esr"] >> 26 == 0x24                    # data abort from a lower EL
    assert not got["esr"] & 1 << 6                     # a read (WnR = 0)
    assert got["far"] == UNMAPPED
    assert got["elr"] == USER_VA + 8                   # the faulting load


def test_kernel_page_is_not_user_accessible(bare):
    _enter_user(bare, [0xD2800000 | (0x8000) << 5,                       # movz x0, #0x8000
                       0xF2A00000 | (0x8000) << 5 | 0x0,                  # movk x0, #0x8000, lsl 16
                       0xF2C00000 | 0xFFFF << 5,                          # movk x0, #0xffff, lsl 32
                       0xF2E00000 | 0xFFFF << 5,                          # movk x0, #0xffff, lsl 48
                       LDR_X1_X0])
    got = _take(bare, bare.trap)
    assert got["far"] == KB + 0x8000
    assert got["esr"] >> 26 == 0x24 and got["esr"] & 0x3C == 0x0C    # permission fault


def test_handler_eret_resumes_user_and_a_second_trap_works(bare):
    _enter_user(bare, [SVC_42, SVC_42 | 1 << 5])
    _take(bare, bare.trap)
    # Leave the spin at the end of HANDLER: eret to the second svc (ELR already points at it).
    bare.uc.mem_write(0x2000 + 0x400 + 4 * (len(HANDLER) - 1), _words([ERET]))
    bare.uc.ctl_flush_tb()
    bare.trap = None
    bare.uc.emu_start(bare.pc, 0, count=len(HANDLER) + 2)
    assert bare.trap is not None and bare.trap.esr & 0xFFFF == 0x43
    assert ARCH.user_mode(bare)


def test_interrupt_from_user_enters_the_irq_vector(bare):
    _enter_user(bare, [SVC_42])
    _take(bare, bare.trap)            # SP_EL1 has been through one entry and eret
    _enter_user(bare, [NOP, NOP], expect_trap=False)
    esr_before = bare.uc.reg_read(A.UC_ARM64_REG_ESR_EL1)
    got = _take(bare, ARCH.interrupt_trap("timer"))
    assert bare.pc == bare.vbar + 0x480
    assert got["elr"] == USER_VA + 8                   # the next instruction to run
    assert got["esr"] == esr_before                    # interrupts leave ESR alone
    assert got["sp"] == KSTACK_TOP and got["sp_el0"] == USER_STACK


# -- the kernel ---------------------------------------------------------------------
GUESTS = {
    "honest": """
        int main(void) {
            for (int i = 0; i < 10; i++) ks_yield();
            ks_printf("honest %d\\n", ks_getpid());
            return 0;
        }""",
    "nop": """
        int main(void) {
            for (int i = 0; i < 1000; i++)
                if (ks_nop() != 0) return 2;
            return 0;
        }""",
    "kread": """
        int main(void) { return (int)*(volatile uint64_t *)0xFFFFFFFF80100000ull; }""",
    "textw": """
        int main(void) { *(volatile uint32_t *)(void *)&main = 0xd503201f; return 0; }""",
    "stackx": """
        int main(void) {
            volatile uint32_t code[2] = {0xd65f03c0, 0};   /* ret */
            ((void (*)(void))(uintptr_t)code)();
            return 0;
        }""",
    "msr": """
        int main(void) { asm volatile("msr ttbr0_el1, xzr" ::: "memory"); return 0; }""",
    "udf": """
        int main(void) { asm volatile(".inst 0x00000000"); return 0; }""",
    "daif": """
        int main(void) { asm volatile("msr daifset, #2"); return 0; }""",
    "align": """
        static uint64_t buf[2];
        int main(void) {
            uint64_t v;
            asm volatile("ldxr %0, [%1]" : "=r"(v) : "r"((char *)buf + 1) : "memory");
            return (int)v;
        }""",
    "pcalign": """
        int main(void) {
            volatile uintptr_t target = (uintptr_t)&main + 2;
            ((void (*)(void))target)();
            return 0;
        }""",
    "counter": """
        int main(void) {
            uint64_t a, f;
            asm volatile("mrs %0, cntvct_el0" : "=r"(a));
            asm volatile("mrs %0, cntfrq_el0" : "=r"(f));
            uint64_t b = ks_cycles();
            ks_printf("%lu %lu %lu\\n", a, b, f);
            return 0;
        }""",
}
FK = {"KERNEL_ACCESS": 2, "WRITE_PROTECT": 3, "EXEC_NX": 4, "PRIV_INSN": 5,
      "UNDEF_INSN": 6, "ALIGNMENT": 7}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("arm64-guests")
    out = {}
    for name, body in GUESTS.items():
        src = d / f"{name}.c"
        src.write_text("#include <keusim/keusim.h>\n" + body + "\n")
        out[name] = loader.ElfImage(builds.guest_image("arm64", [src], name=f"t-{name}-arm64"),
                                    ARCH.elf_machine)
    out["hello"] = loader.ElfImage(builds.guest_image("arm64", [builds.GUESTS / "src" / "hello.c"]),
                                   ARCH.elf_machine)
    return out


def _run(images, procs, ncores=1, timeslice=0):
    kernel = loader.ElfImage(builds.kernel_image("arm64"), ARCH.elf_machine, "kernel")
    ram = 64 << 20
    m = Machine(ARCH, ncores, ram, shared=loader.pool_region(ram, []))
    loader.boot(m, kernel, [loader.BootProc(n, images[n], c) for n, c in procs], [],
                seed=bytes(16), timeslice=timeslice)
    res = m.run(max_cycles=10**9)
    clocks = [c.clock for c in m.cores]
    return m, res, clocks


@pytest.mark.parametrize("ncores", [1, 2])
def test_hello_prints_and_powers_off(images, ncores):
    _, res, _ = _run(images, [("hello", ncores - 1)], ncores)
    assert res.status == "poweroff", res.message
    assert res.consoles[1] == f"hello from keusim: pid 1 on core {ncores - 1}\n".encode()


def test_system_calls_in_a_loop_and_deterministic_cycles(images):
    procs = [("nop", 0), ("honest", 1), ("nop", 1)]
    _, res, clocks = _run(images, procs, 2)
    assert res.status == "poweroff", res.message
    assert [r for r in res.klog if r[0] == 2] == []               # no faults
    assert sorted((r[1], r[2]) for r in res.klog if r[0] == 1) == [(1, 0), (2, 0), (3, 0)]
    _, res2, clocks2 = _run(images, procs, 2)
    assert clocks2 == clocks and res2.klog == res.klog and res2.consoles == res.consoles


def test_user_faults_are_classified_and_the_honest_process_finishes(images):
    bad = ["kread", "textw", "stackx", "msr", "udf", "daif", "align", "pcalign"]
    procs = [(n, i % 2) for i, n in enumerate(bad)] + [("honest", 0), ("honest", 1)]
    _, res, _ = _run(images, procs, 2)
    assert res.status == "poweroff", res.message
    faults = {bad[r[1] - 1]: r for r in res.klog if r[0] == 2}
    kinds = {n: r[2] for n, r in faults.items()}
    assert kinds == {"kread": FK["KERNEL_ACCESS"], "textw": FK["WRITE_PROTECT"],
                     "stackx": FK["EXEC_NX"], "msr": FK["PRIV_INSN"],
                     "udf": FK["UNDEF_INSN"], "daif": FK["PRIV_INSN"],
                     "align": FK["ALIGNMENT"], "pcalign": FK["ALIGNMENT"]}
    assert faults["kread"][3] == 0xFFFFFFFF80100000
    assert faults["stackx"][3] == faults["stackx"][4]          # fetch address = pc
    assert 0x400000 <= faults["textw"][3] < 0x401000           # its own text page
    assert res.consoles[len(bad) + 1] == f"honest {len(bad) + 1}\n".encode()
    assert res.consoles[len(bad) + 2] == f"honest {len(bad) + 2}\n".encode()


def test_counter_reads_model_cycles_at_el0(images):
    _, res, _ = _run(images, [("counter", 0)])
    a, b, f = map(int, res.consoles[1].split())
    assert f == ARCH.counter_hz
    assert 0 < a < b < a + 10_000          # model cycles, a system call apart


def test_kernel_tables_decode_with_the_backend_codec(images):
    m, res, _ = _run(images, [("hello", 0)])
    assert res.status == "poweroff"
    uc = m.cores[0].uc
    user = {va: perm for va, _pa, perm in walk_all(m.ram, ARCH.pte, ARCH.read_root(uc))}
    assert perm_str(user[0x400000]) == "r-x u"
    assert perm_str(user[0x10000000]) == "r-- u"                   # INFO_VA
    assert perm_str(user[0x7FFFFFFF0000 - PAGE]) == "rw- u"        # top stack page
    kroot = uc.reg_read(A.UC_ARM64_REG_TTBR1_EL1) & 0x0000FFFFFFFFF000
    kern = {va: perm for va, _pa, perm in
            walk_all(m.ram, ARCH.pte, kroot, 0xFFFF000000000000, range(511, 512))}
    assert perm_str(kern[KB + 0x100000]) == "r-x k"
    assert kern[KB + 0x40000000] & DEV
