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

static char *putnum(char *p, char *end, uint64_t v, int base, int neg)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg && p < end)
        *p++ = '-';
    while (n && p < end)
        *p++ = tmp[--n];
    return p;
}

/* Minimal printf to the kernel console: %s %c %d %u %x %p, with l/ll ignored. */
void kprintf(const char *fmt, ...)
{
    char buf[256];
    char *p = buf, *end = buf + sizeof(buf);
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt && p < end; fmt++) {
        if (*fmt != '%') {
            *p++ = *fmt;
            continue;
        }
        fmt++;
        while (*fmt == 'l')
            fmt++;
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (s && *s && p < end)
                *p++ = *s++;
            break;
        }
        case 'c':
            *p++ = (char)va_arg(ap, int);
            break;
        case 'd': {
            int64_t v = va_arg(ap, int64_t);
            p = putnum(p, end, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0);
            break;
        }
        case 'u':
            p = putnum(p, end, va_arg(ap, uint64_t), 10, 0);
            break;
        case 'x':
        case 'p':
            p = putnum(p, end, va_arg(ap, uint64_t), 16, 0);
            break;
        default:
            *p++ = *fmt;
        }
    }
    va_end(ap);
    console_write(0, buf, (uint64_t)(p - buf));
}
