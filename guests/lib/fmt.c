/*
 * The one printf formatter, shared by the kernel (kprintf, kernel/platform.c) and the
 * guest runtime (ks_printf, guests/lib/rt.c). Like string.c, the kernel build compiles
 * this file too, so it needs nothing but the compiler's freestanding headers.
 *
 * It reads each argument with the type C's printf gives the conversion (ISO C11
 * 7.21.6.1): %d reads an int, %ld a long, %lld a long long, %zu a size_t, %p a pointer.
 * Reading every integer as 64 bits, as this file once did, prints (int)-1 as 4294967295
 * on both architectures: an int occupies a 64-bit register or stack slot whose upper
 * half the caller need not set.
 *
 * Accepted: flags - 0 + space #, a width (digits or *), a precision (.digits or .*),
 * length modifiers hh h l ll z j t, conversions d i u o x X c s p %. No floating point.
 * An unknown conversion is copied out as written. %p prints 0x and hex digits (for a null
 * pointer 0x0, where glibc prints "(nil)"); a null %s prints "(null)", as glibc does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct out {
    char *p, *end;      /* where the next byte goes; one past the buffer */
    size_t total;       /* bytes the whole output needs (written or not) */
};

static void put(struct out *o, char c)
{
    if (o->p < o->end)
        *o->p++ = c;
    o->total++;
}

static void pad(struct out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

enum { F_LEFT = 1, F_ZERO = 2, F_PLUS = 4, F_SPACE = 8, F_ALT = 16 };

/* One integer: sign or prefix, zero padding up to the precision, then the digits. */
static void putint(struct out *o, uint64_t v, int neg, unsigned base, int upper, int flags,
                   int width, int prec)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    int n = 0;
    while (v) {
        tmp[n++] = digits[v % base];
        v /= base;
    }
    if (prec < 0 && n == 0)
        tmp[n++] = '0';
    const char *pre = neg ? "-" : (flags & F_PLUS) ? "+" : (flags & F_SPACE) ? " " : "";
    if ((flags & F_ALT) && base == 16 && n && !(n == 1 && tmp[0] == '0'))
        pre = upper ? "0X" : "0x";
    if ((flags & F_ALT) && base == 8 && (n == 0 || tmp[n - 1] != '0'))
        pre = "0";
    int prelen = 0;
    while (pre[prelen])
        prelen++;
    int zeros = prec > n ? prec - n : 0;
    int len = prelen + zeros + n;
    if (!(flags & F_LEFT) && (!(flags & F_ZERO) || prec >= 0))
        pad(o, ' ', width - len);
    for (int i = 0; i < prelen; i++)
        put(o, pre[i]);
    if (!(flags & F_LEFT) && (flags & F_ZERO) && prec < 0)
        pad(o, '0', width - len);
    pad(o, '0', zeros);
    while (n)
        put(o, tmp[--n]);
    if (flags & F_LEFT)
        pad(o, ' ', width - len);
}

static void vfmt(struct out *o, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(o, *fmt);
            continue;
        }
        const char *start = fmt++;
        int flags = 0, width = 0, prec = -1;
        for (;; fmt++) {
            if (*fmt == '-')
                flags |= F_LEFT;
            else if (*fmt == '0')
                flags |= F_ZERO;
            else if (*fmt == '+')
                flags |= F_PLUS;
            else if (*fmt == ' ')
                flags |= F_SPACE;
            else if (*fmt == '#')
                flags |= F_ALT;
            else
                break;
        }
        if (*fmt == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                flags |= F_LEFT;
                width = -width;
            }
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9')
                width = width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') {
                prec = va_arg(ap, int);
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9')
                    prec = prec * 10 + (*fmt++ - '0');
            }
        }
        /* Length: 'H' hh, 'h' h, 'l' l, 'L' ll; z, j, t are 64-bit on both targets. */
        char len = 0;
        if (*fmt == 'h') {
            len = 'h';
            if (*++fmt == 'h') {
                len = 'H';
                fmt++;
            }
        } else if (*fmt == 'l') {
            len = 'l';
            if (*++fmt == 'l') {
                len = 'L';
                fmt++;
            }
        } else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') {
            len = 'L';
            fmt++;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t v;
            if (len == 'L')
                v = va_arg(ap, long long);
            else if (len == 'l')
                v = va_arg(ap, long);
            else if (len == 'H')
                v = (signed char)va_arg(ap, int);
            else if (len == 'h')
                v = (short)va_arg(ap, int);
            else
                v = va_arg(ap, int);
            putint(o, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, 0, flags, width, prec);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            uint64_t v;
            if (len == 'L')
                v = va_arg(ap, unsigned long long);
            else if (len == 'l')
                v = va_arg(ap, unsigned long);
            else if (len == 'H')
                v = (unsigned char)va_arg(ap, unsigned int);
            else if (len == 'h')
                v = (unsigned short)va_arg(ap, unsigned int);
            else
                v = va_arg(ap, unsigned int);
            unsigned base = *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16;
            putint(o, v, 0, base, *fmt == 'X', flags & ~(F_PLUS | F_SPACE), width, prec);
            break;
        }
        case 'p':
            putint(o, (uintptr_t)va_arg(ap, void *), 0, 16, 0, (flags & F_LEFT) | F_ALT,
                   width, -1);
            break;
        case 'c':
            if (!(flags & F_LEFT))
                pad(o, ' ', width - 1);
            put(o, (char)va_arg(ap, int));
            if (flags & F_LEFT)
                pad(o, ' ', width - 1);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            int n = 0;
            while (s[n] && (prec < 0 || n < prec))
                n++;
            if (!(flags & F_LEFT))
                pad(o, ' ', width - n);
            for (int i = 0; i < n; i++)
                put(o, s[i]);
            if (flags & F_LEFT)
                pad(o, ' ', width - n);
            break;
        }
        case '%':
            put(o, '%');
            break;
        default:
            /* Not a conversion: copy it out as written, so the mistake shows. */
            for (const char *q = start; q <= fmt && *q; q++)
                put(o, *q);
            if (!*fmt)
                return;
        }
    }
}

/* Format into buf (at most n bytes, not NUL-terminated); returns the bytes written. */
size_t ks_vformat(char *buf, size_t n, const char *fmt, va_list ap)
{
    struct out o = {buf, buf + n, 0};
    vfmt(&o, fmt, ap);
    return (size_t)(o.p - buf);
}

/* C's vsnprintf: NUL-terminated when size > 0; returns the length the whole output
 * needs, so a return >= size means it was cut off. */
int ks_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = {buf, buf + (size ? size - 1 : 0), 0};
    vfmt(&o, fmt, ap);
    if (size)
        *o.p = 0;
    return (int)o.total;
}
