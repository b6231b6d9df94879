/*
 * The keusim guest SDK (docs/guest-sdk.md): everything a guest program needs, with no
 * kernel header on the include path.
 *
 *   <keusim/keusim.h>      this file: system calls, console output, counters, endpoints;
 *                          includes layout.h, abi.h, info.h and the arch's syscall stubs
 *   <keusim/layout.h>      INFO_VA, CHAN_VA(i), USTACK_TOP, ... and limits (MAXCHAN, ...)
 *   <keusim/abi.h>         SYS_* numbers, E* error codes
 *   <keusim/info.h>        the info page (struct info_page, EP_*, CHAN_POLL/CHAN_NOTIFY)
 *   <keusim/ring.h>        the SPSC ring (ring_send, ring_recv, ...)
 *   <keusim/notify.h>      notify-mode channels (ks_send_notified, ks_recv_notified, ...)
 *   <keusim/descriptor.h>  notification descriptors and their SipHash-2-4 tags
 *   <keusim/siphash.h>     siphash24()
 *   <keusim/workload.h>    seeded payloads and per-channel counters for ring workloads
 *   <keusim/cpu.h>         cpu_relax() (the arch's spin-wait hint)
 *   <keusim/string.h>      memcpy, memmove, memset, memcmp (included here)
 *
 * A guest defines `int main(void)`; returning from it exits with that code.
 */
#ifndef KEUSIM_KEUSIM_H
#define KEUSIM_KEUSIM_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <keusim/layout.h>
#include <keusim/abi.h>
#include <keusim/info.h>
#include <keusim/syscall_arch.h>
#include <keusim/string.h>

struct ring_ep;
struct notify_desc;

/* The info page the kernel mapped read-only at INFO_VA. */
extern const struct info_page *ks_info;

/* System calls, one wrapper each (docs/abi.md). */
_Noreturn void ks_exit(int code);
int64_t ks_write(const void *buf, uint64_t len);
int ks_getpid(void);
uint64_t ks_cycles(void);
void ks_yield(void);
int64_t ks_nop(void);
int64_t ks_notify(const struct notify_desc *d);
int64_t ks_wait(uint32_t channel);
/* The NIC (docs/abi.md, <keusim/nic.h>): attach a frame region to this process's
 * queue (returns the queue page's address, or an E* code), sleep until the queue
 * interrupts or a notification arrives, and the traditional copy path. */
int64_t ks_nic_attach(void *region, uint64_t len, uint64_t rings_off, uint32_t ring_size);
int64_t ks_nic_wait(void);
int64_t ks_net_send(const void *buf, uint64_t len);
int64_t ks_net_recv(void *buf, uint64_t max);
/* Record that this process found the channel corrupt (code: RING_E*). */
int64_t ks_chanfault(uint32_t channel, int64_t code);

/* Report a counter for the run report's channel section (key: STAT_*; another key shows
 * as "keyN"). The last value reported for a (channel, key) wins (keusim/system.py). */
int64_t ks_report(uint32_t channel, uint32_t key, uint64_t value);
#define STAT_SENT_MSGS      1
#define STAT_SENT_BYTES     2
#define STAT_RECV_MSGS      3
#define STAT_RECV_BYTES     4
#define STAT_VERIFIED_BYTES 5
#define STAT_STREAM_HASH    6   /* FNV-1a 64 of every payload byte delivered, in order */
#define STAT_MISMATCHES     7   /* bytes that differed from the expected payload */
#define STAT_ROUND_TRIPS    8
#define STAT_RT_CYCLES      9   /* model cycles spent in the measured round trips */
#define STAT_NOTIFIED       10  /* notifications sent (producer) or received via wait (consumer) */

/* FNV-1a 64-bit over n bytes, continuing from h (start with KS_FNV_INIT). */
#define KS_FNV_INIT 0xcbf29ce484222325ull
static inline uint64_t ks_fnv(uint64_t h, const void *p, uint64_t n)
{
    const uint8_t *b = p;
    while (n--)
        h = (h ^ *b++) * 0x100000001b3ull;
    return h;
}

/*
 * Console output. The formats follow C's printf for what they accept: conversions
 * %d %i %u %x %X %o %c %s %p %%, length modifiers hh h l ll z j t, flags '-' '0',
 * a field width (a number or *). %d reads an int, %ld a long, %lld a long long,
 * %zu a size_t; uint64_t is unsigned long on both architectures (%lu, %lx).
 * No floating point (guests build without FP). The compiler checks every call
 * (the format attribute; guest builds make a mismatch an error).
 * One ks_printf call writes at most 256 bytes; the rest is cut off.
 */
void ks_puts(const char *s);
void ks_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ks_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Format into buf (size bytes, always NUL-terminated if size > 0); returns the length
 * the whole output would have had (as C's snprintf). */
int ks_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ks_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The i-th endpoint on the info page, or 0. */
const struct info_chan *ks_endpoint(int i);
/* Fill ep from the i-th endpoint; returns 0, or -1 if there is none. */
int ks_ring_open(int i, struct ring_ep *ep);
/* The index of this process's endpoint on channel ch with role (EP_*), or -1. */
int ks_find_endpoint(uint32_t ch, uint32_t role);

/* A small deterministic PRNG (xorshift64*) for payloads both ends can regenerate. */
static inline uint64_t ks_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

#endif /* KEUSIM_KEUSIM_H */
