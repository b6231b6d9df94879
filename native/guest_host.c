/*
 * guest_host: the keusim guest runtime for a Linux process, so that a guest program
 * (guests/src/pingpong.c, stream.c, callchain.c) runs natively from the same C source.
 *
 * keusim/model/validate.py builds each guest program for the host with this file,
 * guests/lib/ring.c and guests/lib/string.c (the native harness's flags), starts one
 * Linux process per guest process pinned to its own CPU, and compares the program's own
 * cycle figures: model cycles in the emulator, TSC ticks here (ks_rdcycles is rdtsc on
 * both sides; validate.py converts ticks to core cycles).
 *
 * Channels live in one shared file (KEUSIM_SHM) that validate.py lays out:
 *
 *   page 0          struct host_ctl: channel table, start barrier
 *   per channel     head page | tail page | data (capacity bytes)
 *
 * as the kernel maps them for guests (the MMU's read-only views are not reproduced).
 * KEUSIM_PID (1-based, as the kernel numbers processes) says which process this is.
 * Without KEUSIM_SHM the process has no channels (callchain).
 *
 * ks_report and ks_chanfault print "#stat CH KEY VALUE" / "#chanfault CH CODE" lines;
 * ks_write prints the console text. Notify-mode calls are not available natively.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <keusim/keusim.h>
#include <keusim/notify.h>
#include <keusim/ring.h>

#define HOST_MAGIC 0x74736f684b45554bull  /* "KEUKhost" */
#define HOST_SPIN_LIMIT 20000000000ull    /* ~10 s of polls: a partner that never came */

struct host_chan {
    uint32_t producer, consumer, capacity, _pad;   /* pids (1-based) */
    uint64_t head_off, tail_off, data_off;          /* byte offsets in the file */
};

struct host_ctl {
    uint64_t magic;
    uint32_t nproc, nchan;
    volatile uint32_t ready;      /* start barrier: processes that finished set-up */
    uint32_t _pad;
    struct host_chan chan[MAXCHAN];
};

static struct info_page info;
const struct info_page *ks_info = &info;

__attribute__((noreturn)) static void
host_die(const char *msg)
{
    fprintf(stderr, "guest_host: %s\n", msg);
    exit(70);
}

// Map the shared file, fill the info page with this process's endpoints, and wait
// until every process got this far, so that no one's start-up is timed.
__attribute__((constructor)) static void
host_init(void)
{
    const char *path = getenv("KEUSIM_SHM"), *pid = getenv("KEUSIM_PID");
    struct host_ctl *ctl;
    struct stat st;
    uint8_t *base;
    int fd;

    info.magic = INFO_MAGIC;
    info.pid = pid ? (uint32_t)atoi(pid) : 1;
    info.nproc = 1;
    strcpy(info.name, "native");
    if (!path)
        return;
    if ((fd = open(path, O_RDWR)) < 0 || fstat(fd, &st) != 0)
        host_die("cannot open KEUSIM_SHM");
    /* MAP_POPULATE: page-table entries exist before the timed region starts. */
    base = mmap(0, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (base == MAP_FAILED)
        host_die("cannot map KEUSIM_SHM");
    close(fd);
    ctl = (struct host_ctl *)base;
    if (ctl->magic != HOST_MAGIC || ctl->nchan > MAXCHAN)
        host_die("KEUSIM_SHM is not a guest_host channel file");
    info.nproc = ctl->nproc;
    for (uint32_t c = 0; c < ctl->nchan; c++) {
        const struct host_chan *h = &ctl->chan[c];
        uint32_t roles[2] = {h->producer == info.pid ? EP_PRODUCER : 0,
                             h->consumer == info.pid ? EP_CONSUMER : 0};
        for (int r = 0; r < 2; r++) {
            if (!roles[r] || info.nchan >= MAXCHAN)
                continue;
            struct info_chan *e = &info.chan[info.nchan++];
            e->id = c;
            e->role = roles[r];
            e->capacity = h->capacity;
            e->mode = CHAN_POLL;
            e->peer = roles[r] == EP_PRODUCER ? h->consumer : h->producer;
            e->head_va = (uint64_t)(base + h->head_off);
            e->tail_va = (uint64_t)(base + h->tail_off);
            e->data_va = (uint64_t)(base + h->data_off);
        }
    }
    __atomic_fetch_add(&ctl->ready, 1, __ATOMIC_SEQ_CST);
    for (uint64_t spins = 0; __atomic_load_n(&ctl->ready, __ATOMIC_ACQUIRE) < ctl->nproc; spins++) {
        __asm__ volatile("pause" ::: "memory");
        if ((spins & 0xffff) == 0xffff)
            sched_yield();        /* both on one CPU: let the partner run */
        if (spins > HOST_SPIN_LIMIT)
            host_die("the partner process never started");
    }
}

_Noreturn void
ks_exit(int code)
{
    fflush(stdout);
    exit(code);
}

int64_t
ks_write(const void *buf, uint64_t len)
{
    return (int64_t)fwrite(buf, 1, len, stdout);
}

int ks_getpid(void) { return (int)info.pid; }
uint64_t ks_cycles(void) { return ks_rdcycles(); }
void ks_yield(void) { sched_yield(); }
int64_t ks_nop(void) { return 0; }

int64_t
ks_report(uint32_t ch, uint32_t key, uint64_t v)
{
    printf("#stat %u %u %llu\n", ch, key, (unsigned long long)v);
    return 0;
}

int64_t
ks_chanfault(uint32_t ch, int64_t code)
{
    printf("#chanfault %u %lld\n", ch, (long long)code);
    return 0;
}

int
ks_find_endpoint(uint32_t ch, uint32_t role)
{
    for (uint32_t i = 0; i < info.nchan; i++)
        if (info.chan[i].id == ch && info.chan[i].role == role)
            return (int)i;
    return -1;
}

const struct info_chan *
ks_endpoint(int i)
{
    return i < 0 || (uint32_t)i >= info.nchan ? 0 : &info.chan[i];
}

int
ks_ring_open(int i, struct ring_ep *ep)
{
    const struct info_chan *c = ks_endpoint(i);
    if (!c)
        return -1;
    return ring_init(ep, (volatile uint32_t *)c->head_va, (volatile uint32_t *)c->tail_va,
                     (void *)c->data_va, c->capacity) == 0 ? 0 : -1;
}

void
ks_puts(const char *s)
{
    fputs(s, stdout);
}

// The guest runtime's printf subset (guests/lib/rt.c): %d %u %x take 64-bit arguments.
void
ks_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            putchar(*fmt);
            continue;
        }
        fmt++;
        while (*fmt == 'l')
            fmt++;
        switch (*fmt) {
        case 's': fputs(va_arg(ap, const char *), stdout); break;
        case 'c': putchar(va_arg(ap, int)); break;
        case 'd': printf("%lld", (long long)va_arg(ap, int64_t)); break;
        case 'u': printf("%llu", (unsigned long long)va_arg(ap, uint64_t)); break;
        case 'x': case 'p': printf("%llx", (unsigned long long)va_arg(ap, uint64_t)); break;
        default: putchar(*fmt);
        }
        if (!*fmt)
            break;
    }
    va_end(ap);
}

/* Notify mode needs the kernel: natively every channel is a poll-mode channel. */
int ks_is_notify(uint32_t ch, uint32_t role) { (void)ch; (void)role; return 0; }
int ks_notifier_open(struct ks_notifier *n, uint32_t ch) { (void)n; (void)ch; return -1; }

int
ks_send_notified(struct ring_ep *ep, struct ks_notifier *n, const void *buf, uint32_t len)
{
    (void)ep; (void)n; (void)buf; (void)len;
    host_die("notify-mode channels are not available natively");
}

int
ks_recv_notified(struct ring_ep *ep, uint32_t ch, void *buf, uint32_t maxlen, uint32_t *len,
                 uint64_t *waits)
{
    (void)ep; (void)ch; (void)buf; (void)maxlen; (void)len; (void)waits;
    host_die("notify-mode channels are not available natively");
}
