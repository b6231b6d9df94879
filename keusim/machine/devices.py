"""The keusim platform device (kernel/include/platform.h): one page per core view.

Console output, a per-core deadline timer, inter-processor interrupts (and the cause
register that also says when a device interrupted: IRQ_DEV), an idle/wait register,
power-off and panic reporting, and the report register (PLAT_LOG) through which the
kernel hands over each event record. Register semantics are documented in
docs/architecture.md. The NIC and its IOMMU, present only in systems with a `nic`
process, are keusim/machine/nic.py and iommu.py.
"""

from __future__ import annotations

PLAT_ID, PLAT_NCORES = 0x00, 0x08
PLAT_CONSOLE_PID, PLAT_CONSOLE_ADDR, PLAT_CONSOLE_LEN = 0x10, 0x18, 0x20
PLAT_TIMER, PLAT_IPI, PLAT_IRQ_CAUSE, PLAT_WAIT = 0x28, 0x30, 0x38, 0x40
PLAT_POWEROFF, PLAT_PANIC_ADDR, PLAT_PANIC_LEN = 0x48, 0x50, 0x58
PLAT_LOG, PLAT_READY, PLAT_CYCLES = 0x60, 0x68, 0x70

IRQ_TIMER, IRQ_IPI, IRQ_DEV = 1, 2, 4
DEV_PA = 0x40000000
DEV_SIZE = 0x1000
# The IOMMU page and the NIC's control and queue pages (guests/include/keusim/nic.h);
# the loader maps them into the kernel's half, the machine adds their handlers only
# when the system has a NIC (keusim/machine/nic.py).
IOMMU_PA, NIC_PA, NIC_QUEUES = 0x40002000, 0x40010000, 2
NIC_DEVICE_PAGES = (IOMMU_PA, *(NIC_PA + 0x1000 * i for i in range(NIC_QUEUES + 1)))


class PlatformDevice:
    """Decodes register accesses from one core; the machine holds the state.

    PLAT_IPI, PLAT_WAIT and the PLAT_IRQ_CAUSE read have a native twin (fastpath.c
    ``plat_read``/``plat_write``), used unless ``Machine.native_irqs`` is off or in
    single-slice mode: change both together (tests/test_native_irq.py compares them).
    """

    def __init__(self, machine):
        self.m = machine

    def read(self, core, off: int) -> int:
        if off == PLAT_ID:
            return core.id
        if off == PLAT_NCORES:
            return len(self.m.cores)
        if off == PLAT_IRQ_CAUSE:
            bits = core.irq
            core.irq = 0
            return bits
        if off == PLAT_CYCLES:
            return core.native.k.clock
        return 0

    def write(self, core, off: int, value: int) -> None:
        m = self.m
        if off == PLAT_CONSOLE_PID:
            core.dev_console_pid = value
        elif off == PLAT_CONSOLE_ADDR:
            core.dev_console_addr = value
        elif off == PLAT_CONSOLE_LEN:
            n = min(value, 1 << 16)
            m.console_out(core.dev_console_pid, m.ram.read(core.dev_console_addr, n))
        elif off == PLAT_TIMER:
            core.timer = value
            core.stop("timer")
        elif off == PLAT_IPI:
            m.send_ipi(core, int(value))
        elif off == PLAT_WAIT:
            core.halt()
        elif off == PLAT_POWEROFF:
            m.power_off(core, value)
        elif off == PLAT_PANIC_ADDR:
            core.dev_panic_addr = value
        elif off == PLAT_PANIC_LEN:
            msg = m.ram.read(core.dev_panic_addr, min(value, 256)).decode("utf-8", "replace")
            m.kernel_panic(core, msg)
        elif off == PLAT_LOG:
            m.log_record(core, value)
        elif off == PLAT_READY:
            core.ready = True
            core.stop("ready")
