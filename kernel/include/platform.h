/*
 * The keusim platform device: one page at DEV_PA, seen per core (like a local
 * APIC). Registers are 64-bit. Modelled in keusim/machine/devices.py.
 */
#pragma once
#define PLAT_ID            0x00  /* r: this core's id */
#define PLAT_NCORES        0x08  /* r: number of cores */
#define PLAT_CONSOLE_PID   0x10  /* w: owner of the next console write */
#define PLAT_CONSOLE_ADDR  0x18  /* w: physical address of bytes */
#define PLAT_CONSOLE_LEN   0x20  /* w: length; writing it emits the bytes */
#define PLAT_TIMER         0x28  /* w: absolute model-cycle deadline, 0 = off */
#define PLAT_IPI           0x30  /* w: raise an IPI on core N */
#define PLAT_IRQ_CAUSE     0x38  /* r: pending causes, read clears (bit0 timer, bit1 ipi, bit2 device) */
#define PLAT_WAIT          0x40  /* w: halt this core until an interrupt is pending */
#define PLAT_POWEROFF      0x48  /* w: end the run; value = kernel status (0 ok) */
#define PLAT_PANIC_ADDR    0x50  /* w: physical address of a panic message */
#define PLAT_PANIC_LEN     0x58  /* w: length; writing it ends the run with a panic */
#define PLAT_LOG           0x60  /* w: physical address of one struct klog_rec: the machine copies it out now */
#define PLAT_READY         0x68  /* w: this core's trap vectors are installed */
#define PLAT_CYCLES        0x70  /* r: this core's model clock */

#define IRQ_TIMER 1
#define IRQ_IPI   2
#define IRQ_DEV   4   /* a device (the NIC) raised its interrupt line to this core */
