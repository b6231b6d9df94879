/* The guest runtime (guests/include/keusim/keusim.h). */
#include <stdarg.h>
#include <keusim/keusim.h>
#include <keusim/ring.h>

const struct info_page *ks_info;
int main(void);

/* Called by crt0 with the info page address. */
_Noreturn void ks_start(const struct info_page *info)
{
    ks_info = info;
    ks_exit(main());
}

_Noreturn void ks_exit(int code)
{
    ks_syscall1(SYS_EXIT, (uint64_t)(int64_t)code);
    for (;;)
        ;
}

int64_t ks_write(const void *buf, uint64_t len) { return ks_syscall2(SYS_WRITE, (uint64_t)buf, len); }
int ks_getpid(void) { return (int)ks_syscall0(SYS_GETPID); }
uint64_t ks_cycles(void) { return (uint64_t)ks_syscall0(SYS_CYCLES); }
void ks_yield(void) { ks_syscall0(SYS_YIELD); }
int64_t ks_nop(void) { return ks_syscall0(SYS_NOP); }
int64_t ks_notify(const struct notify_desc *d) { return ks_syscall1(SYS_NOTIFY, (uint64_t)d); }
int64_t ks_wait(uint32_t ch) { return ks_syscall1(SYS_WAIT, ch); }

int64_t ks_nic_attach(void *region, uint64_t len, uint64_t rings_off, uint32_t ring_size)
{
    return ks_syscall4(SYS_NIC_ATTACH, (uint64_t)region, len, rings_off, ring_size);
}
int64_t ks_nic_wait(void) { return ks_syscall0(SYS_NIC_WAIT); }
int64_t ks_net_send(const void *buf, uint64_t len) { return ks_syscall2(SYS_NET_SEND, (uint64_t)buf, len); }
int64_t ks_net_recv(void *buf, uint64_t max) { return ks_syscall2(SYS_NET_RECV, (uint64_t)buf, max); }

int64_t ks_report(uint32_t ch, uint32_t key, uint64_t v) { return ks_syscall3(SYS_REPORT, ch, key, v); }

int64_t ks_chanfault(uint32_t ch, int64_t code) { return ks_syscall2(SYS_CHANFAULT, ch, (uint64_t)code); }

int ks_find_endpoint(uint32_t ch, uint32_t role)
{
    for (uint32_t i = 0; i < ks_info->nchan; i++)
        if (ks_info->chan[i].id == ch && ks_info->chan[i].role == role)
            return (int)i;
    return -1;
}

void ks_puts(const char *s)
{
    uint64_t n = 0;
    while (s[n])
        n++;
    ks_write(s, n);
}

size_t ks_vformat(char *buf, size_t n, const char *fmt, va_list ap); /* fmt.c */

void ks_vprintf(const char *fmt, va_list ap)
{
    char buf[256];
    ks_write(buf, ks_vformat(buf, sizeof(buf), fmt, ap));
}

void ks_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ks_vprintf(fmt, ap);
    va_end(ap);
}

int ks_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = ks_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

const struct info_chan *ks_endpoint(int i)
{
    if (i < 0 || (uint32_t)i >= ks_info->nchan)
        return 0;
    return &ks_info->chan[i];
}

int ks_ring_open(int i, struct ring_ep *ep)
{
    const struct info_chan *c = ks_endpoint(i);
    if (!c)
        return -1;
    return ring_init(ep, (volatile uint32_t *)c->head_va, (volatile uint32_t *)c->tail_va,
                     (void *)c->data_va, c->capacity) == 0 ? 0 : -1;
}
