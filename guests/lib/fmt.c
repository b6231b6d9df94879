/*
 * The one printf formatter, shared by the kernel (kprintf, kernel/platform.c) and the
 * guest runtime (ks_printf, guests/lib/rt.c): %s %c %d %u %x %p, with l/ll accepted.
 * Like string.c, the kernel build compiles this file too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

static char *putnum(char *p, char *end, uint64_t v, unsigned base, int neg)
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

/* Format into buf (at most n bytes, not NUL-terminated); returns the length. */
size_t ks_vformat(char *buf, size_t n, const char *fmt, va_list ap)
{
    char *p = buf, *end = buf + n;
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
    return (size_t)(p - buf);
}
