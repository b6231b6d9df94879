/*
 * Shared helpers of the native harness programs (ring_bench, ipc_bench, micro_bench).
 *
 * The harness runs on the x86-64 Linux host. It is built with the guests' ISA flags (no
 * SSE, so guests/lib/ring.c and string.c compile to the same instructions as in an
 * x86-64 guest), which is why nothing here uses floating point: the programs print raw
 * integer samples and keusim/model/harness.py does the statistics.
 */
#ifndef KEUSIM_NATIVE_BENCH_H
#define KEUSIM_NATIVE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if !defined(__x86_64__)
#error "the native harness times with rdtsc/rdtscp: build it for x86_64-linux-gnu"
#endif

/* Exit statuses; keusim/model/harness.py turns each into a sentence. */
#define EXIT_USAGE   2  /* bad command line */
#define EXIT_SETUP   3  /* a system call the benchmark needs failed */
#define EXIT_TIMEOUT 4  /* the watchdog fired: a side stopped making progress */
#define EXIT_RING    5  /* the ring library returned an error other than EAGAIN */
#define EXIT_CHILD   6  /* the forked partner process failed */

/* Command line shared by all programs: --bench NAME [--size N] [--iters N] ... */
struct opts {
    const char *prog;      /* program name, for messages and the JSON */
    const char *bench;     /* which benchmark */
    uint64_t size;         /* message size or working-set size in bytes */
    uint64_t iters;        /* timed operations (round trips, messages, loads, ...) */
    uint64_t batch;        /* operations per timed sample */
    uint64_t warmup;       /* untimed operations first */
    uint64_t seed;         /* payload PRNG seed */
    uint64_t capacity;     /* ring capacity in bytes */
    uint64_t ms;           /* tsc: calibration interval in milliseconds */
    int cpu[2];            /* the two CPUs to pin to (-1: first two allowed) */
    unsigned timeout_s;    /* watchdog */
};
void parse_opts(struct opts *o, int argc, char **argv);

/* CPUs. pick_cpus fills o->cpu from the affinity mask and returns 1 if only one CPU is
 * allowed (then both sides share it and poll loops yield). pin() returns 0 or -1. */
int  pick_cpus(struct opts *o);
int  pin(int cpu);
extern unsigned spin_limit;  /* polls before a poll loop calls sched_yield */
void spin_pause(unsigned *spins);

/* Time. */
static inline uint64_t
tsc_begin(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t
tsc_end(void)
{
    uint32_t lo, hi, aux;
    __asm__ volatile("rdtscp; lfence" : "=a"(lo), "=d"(hi), "=c"(aux) :: "memory");
    return ((uint64_t)hi << 32) | lo;
}

uint64_t mono_ns(void);

/* Timed samples: each covers ops_per_sample operations. */
struct samples {
    uint64_t *ns, *ticks;
    uint64_t n, cap, ops_per_sample;
    uint64_t ns0, t0;
};
void samples_init(struct samples *s, uint64_t nsamples, uint64_t ops_per_sample);
static inline void
sample_begin(struct samples *s)
{
    s->ns0 = mono_ns();
    s->t0 = tsc_begin();
}
static inline void
sample_end(struct samples *s)
{
    uint64_t t1 = tsc_end();
    uint64_t ns1 = mono_ns();
    if (s->n < s->cap) {
        s->ns[s->n] = ns1 - s->ns0;
        s->ticks[s->n] = t1 - s->t0;
        s->n++;
    }
}

/* Busy-machine accounting over the timed region: CPU time of the whole system versus
 * that of this process and its partner, in clock ticks (/proc/stat, /proc/PID/stat). */
struct acct {
    uint64_t wall_ns, sys_busy, own;
    pid_t partner;
};
void acct_begin(struct acct *a, pid_t partner);
void acct_end(struct acct *a);

/* Payloads: a pool of POOL_N pseudo-random messages; message i is pool entry i % POOL_N. */
#define POOL_N 61
struct pool {
    uint8_t *buf;
    uint64_t size, stride;
};
void pool_init(struct pool *p, uint64_t size, uint64_t seed);
static inline const uint8_t *
pool_msg(const struct pool *p, uint64_t i)
{
    return p->buf + (i % POOL_N) * p->stride;
}
uint64_t count_mismatch(const uint8_t *got, const uint8_t *want, uint64_t n);

// Compare a received message with message i of pool p: returns mismatched bytes (a wrong
// length counts as all of it) and adds the compared bytes to *verified.
static inline uint64_t
check_msg(const uint8_t *got, uint32_t n, const struct pool *p, uint64_t i, uint64_t *verified)
{
    if (n != p->size)
        return p->size ? p->size : 1;
    *verified += n;
    return count_mismatch(got, pool_msg(p, i), n);
}
uint64_t splitmix64(uint64_t *state);

/* Shared memory and the forked partner. */
void *shm_alloc(size_t bytes);

/* One ring's shared pages, laid out as the kernel maps them: guard, head, tail, data
 * (capacity bytes), guard (ring_mem.c, for the programs that link guests/lib/ring.c). */
struct ring_mem {
    volatile uint32_t *head, *tail;
    uint8_t *data;
};
struct ring_ep;
void ring_map(struct ring_mem *m, uint64_t capacity);
/* ring_init on m's pages; dies with a usage error if capacity is not a valid ring size. */
void ring_open(struct ring_ep *ep, const struct ring_mem *m, uint64_t capacity);
typedef void (*partner_fn)(void *arg);
pid_t partner_start(int cpu, partner_fn fn, void *arg);
void partner_finish(pid_t pid);

/* Fatal errors: print "prog: message" to stderr, kill the partner, exit with status. */
void die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* JSON on stdout: one object per run. */
void json_begin(const struct opts *o, int single_cpu);
void json_u64(const char *key, uint64_t v);
void json_str(const char *key, const char *v);
void json_samples(const struct samples *s);
void json_acct(const struct acct *a);
void json_check(uint64_t verified_bytes, uint64_t errors);
void json_end(void);

#endif /* KEUSIM_NATIVE_BENCH_H */
