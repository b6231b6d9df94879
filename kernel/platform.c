/* The platform device (include/platform.h): console, timer, IPIs, power. */
#include <stdarg.h>
#include "types.h"
#include "memlayout.h"
#include "platform.h"
#include "defs.h"

uint64_t plat_read(uint64_t reg)
{
    return *(volatile uint64_t *)(DEV_VA + reg);
}

void plat_write(uint64_t reg, uint64_t v)
{
    *(volatile uint64_t *)(DEV_VA + reg) = v;
}

/* This core's id, from the device (valid before per-cpu state exists). */
int cpuid(void)
{
    return (int)plat_read(PLAT_ID);
}

/* Emit len bytes at kernel address buf on the console, attributed to pid (0: kernel). */
void console_write(int pid, const void *buf, uint64_t len)
{
    plat_write(PLAT_CONSOLE_PID, (uint64_t)pid);
    plat_write(PLAT_CONSOLE_ADDR, V2P(buf));
    plat_write(PLAT_CONSOLE_LEN, len);
}

/* Halt this core until an interrupt is pending. */
void plat_wait(void)
{
    plat_write(PLAT_WAIT, 1);
}

/* End the run. Does not return. */
void poweroff(uint64_t status)
{
    plat_write(PLAT_POWEROFF, status);
    for (;;)
        plat_wait();
}

/* Report msg as a kernel panic; the machine ends the run. Does not return. */
_Noreturn void panic(const char *msg)
{
    plat_write(PLAT_PANIC_ADDR, V2P(msg));
    plat_write(PLAT_PANIC_LEN, strnlen(msg, 256));
    for (;;)
        plat_wait();
}

size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

size_t ks_vformat(char *buf, size_t n, const char *fmt, va_list ap); /* guests/lib/fmt.c */

/* printf to the kernel console (pid 0): %s %c %d %u %x %p. */
void kprintf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    size_t n = ks_vformat(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    console_write(0, buf, n);
}
