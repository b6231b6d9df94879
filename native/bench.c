/*
 * Shared helpers of the native harness programs: options, CPU pinning, timers, samples,
 * busy-machine accounting, payload pools, the forked partner process and JSON output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static const char *prog = "native";
static pid_t partner_pid;             /* killed by die() and by the watchdog */
static int partner_release_fd = -1;   /* closing it lets the partner exit */
unsigned spin_limit = 1u << 14;       /* ~1 ms of PAUSEs; 1 when sharing a CPU */

// Print "prog: message", kill the partner, exit with status.
void
die(int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (partner_pid > 0)
        kill(partner_pid, SIGKILL);
    exit(status);
}

// SIGALRM: a side stopped making progress (a lost message, a dead partner). The
// message is built without stdio, which is not async-signal-safe.
static void
watchdog(int sig)
{
    static const char msg[] = ": watchdog timeout, no progress\n";
    (void)sig;
    if (partner_pid > 0)
        kill(partner_pid, SIGKILL);
    if (write(2, prog, strlen(prog)) < 0 || write(2, msg, sizeof msg - 1) < 0)
        _exit(EXIT_TIMEOUT);
    _exit(EXIT_TIMEOUT);
}

static uint64_t
parse_u64(const char *opt, const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *s == 0 || *end != 0)
        die(EXIT_USAGE, "%s wants a non-negative integer, got '%s'", opt, s);
    return v;
}

// Parse the shared command line into o (defaults first). Exits with EXIT_USAGE on error.
void
parse_opts(struct opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"bench", required_argument, 0, 'b'},  {"size", required_argument, 0, 's'},
        {"iters", required_argument, 0, 'n'},  {"batch", required_argument, 0, 'B'},
        {"warmup", required_argument, 0, 'w'}, {"seed", required_argument, 0, 'S'},
        {"capacity", required_argument, 0, 'c'}, {"cpus", required_argument, 0, 'C'},
        {"timeout", required_argument, 0, 't'}, {"ms", required_argument, 0, 'm'},
        {0, 0, 0, 0},
    };
    int c;
    char *comma;

    memset(o, 0, sizeof *o);
    o->prog = prog = argv[0] && strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    o->size = 64;
    o->iters = 10000;
    o->batch = 100;
    o->warmup = 1000;
    o->seed = 1;
    o->capacity = 16384;
    o->ms = 50;
    o->cpu[0] = o->cpu[1] = -1;
    o->timeout_s = 120;
    while ((c = getopt_long(argc, argv, "", longopts, 0)) != -1) {
        switch (c) {
        case 'b': o->bench = optarg; break;
        case 's': o->size = parse_u64("--size", optarg); break;
        case 'n': o->iters = parse_u64("--iters", optarg); break;
        case 'B': o->batch = parse_u64("--batch", optarg); break;
        case 'w': o->warmup = parse_u64("--warmup", optarg); break;
        case 'S': o->seed = parse_u64("--seed", optarg); break;
        case 'c': o->capacity = parse_u64("--capacity", optarg); break;
        case 'm': o->ms = parse_u64("--ms", optarg); break;
        case 't': o->timeout_s = (unsigned)parse_u64("--timeout", optarg); break;
        case 'C':
            comma = strchr(optarg, ',');
            if (!comma)
                die(EXIT_USAGE, "--cpus wants two CPU numbers A,B, got '%s'", optarg);
            *comma = 0;
            o->cpu[0] = (int)parse_u64("--cpus", optarg);
            o->cpu[1] = (int)parse_u64("--cpus", comma + 1);
            break;
        default: die(EXIT_USAGE, "unknown option (see native/bench.c)");
        }
    }
    if (!o->bench)
        die(EXIT_USAGE, "--bench NAME is required");
    if (o->batch == 0 || o->iters < o->batch)
        die(EXIT_USAGE, "--iters (%llu) must be at least --batch (%llu) > 0",
            (unsigned long long)o->iters, (unsigned long long)o->batch);
    signal(SIGALRM, watchdog);
    alarm(o->timeout_s);
}

// Choose the two CPUs: the ones given, or the first two in our affinity mask.
// Returns 1 if only one CPU is available (both sides on it; poll loops yield).
int
pick_cpus(struct opts *o)
{
    cpu_set_t set;
    int i, k = 0;

    if (o->cpu[0] < 0) {
        if (sched_getaffinity(0, sizeof set, &set) != 0)
            die(EXIT_SETUP, "sched_getaffinity: %s", strerror(errno));
        for (i = 0; i < CPU_SETSIZE && k < 2; i++)
            if (CPU_ISSET(i, &set))
                o->cpu[k++] = i;
        if (k == 1)
            o->cpu[1] = o->cpu[0];
    }
    if (o->cpu[0] == o->cpu[1]) {
        spin_limit = 1;
        return 1;
    }
    return 0;
}

// Pin the calling process to cpu. Returns 0, or -1 (errno set).
int
pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

// One poll of a wait loop: PAUSE, and every spin_limit polls give the CPU away, so a
// partner that shares our CPU (or lost its own) still runs.
void
spin_pause(unsigned *spins)
{
    __asm__ volatile("pause" ::: "memory");
    if (++*spins >= spin_limit) {
        *spins = 0;
        sched_yield();
    }
}

uint64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
samples_init(struct samples *s, uint64_t nsamples, uint64_t ops_per_sample)
{
    memset(s, 0, sizeof *s);
    s->ns = calloc(nsamples ? nsamples : 1, sizeof *s->ns);
    s->ticks = calloc(nsamples ? nsamples : 1, sizeof *s->ticks);
    if (!s->ns || !s->ticks)
        die(EXIT_SETUP, "out of memory for %llu samples", (unsigned long long)nsamples);
    s->cap = nsamples;
    s->ops_per_sample = ops_per_sample;
}

// Busy CPU ticks of the whole system: the first line of /proc/stat is
// "cpu user nice system idle iowait irq softirq steal ..." (proc(5)). Steal counts as
// busy: the hypervisor ran something else on our vCPU.
static uint64_t
system_busy_ticks(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");

    if (!f)
        return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
        v[0] = v[1] = v[2] = v[5] = v[6] = v[7] = 0;
    fclose(f);
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

// utime + stime of pid in clock ticks: fields 14 and 15 of /proc/PID/stat, counted
// after the ")" that ends the command name (which may contain spaces).
static uint64_t
process_ticks(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    const char *p;
    size_t n;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (!(p = strrchr(buf, ')')))
        return 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

static uint64_t
own_ticks(pid_t partner)
{
    return process_ticks(getpid()) + (partner > 0 ? process_ticks(partner) : 0);
}

void
acct_begin(struct acct *a, pid_t partner)
{
    a->partner = partner;
    a->own = own_ticks(partner);
    a->sys_busy = system_busy_ticks();
    a->wall_ns = mono_ns();
}

void
acct_end(struct acct *a)
{
    a->wall_ns = mono_ns() - a->wall_ns;
    a->sys_busy = system_busy_ticks() - a->sys_busy;
    a->own = own_ticks(a->partner) - a->own;
}

uint64_t
splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Fill a pool of POOL_N messages of size bytes from seed. Entries are 8-byte aligned.
void
pool_init(struct pool *p, uint64_t size, uint64_t seed)
{
    uint64_t st = seed, i;

    p->size = size;
    p->stride = (size + 7) & ~7ull;
    if (p->stride == 0)
        p->stride = 8;
    p->buf = aligned_alloc(64, (p->stride * POOL_N + 63) & ~63ull);
    if (!p->buf)
        die(EXIT_SETUP, "out of memory for the payload pool");
    for (i = 0; i < p->stride * POOL_N; i += 8) {
        uint64_t r = splitmix64(&st);
        memcpy(p->buf + i, &r, 8);
    }
}

// Number of bytes that differ between got and want (n bytes each). Compares words and
// counts bytes only inside a differing word, so the common case costs n/8 compares.
uint64_t
count_mismatch(const uint8_t *got, const uint8_t *want, uint64_t n)
{
    uint64_t bad = 0, i = 0, a, b;

    for (; i + 8 <= n; i += 8) {
        __builtin_memcpy(&a, got + i, 8);  /* unaligned-safe; one mov on x86-64 */
        __builtin_memcpy(&b, want + i, 8);
        if (a != b)
            for (int k = 0; k < 8; k++)
                bad += got[i + k] != want[i + k];
    }
    for (; i < n; i++)
        bad += got[i] != want[i];
    return bad;
}

// Anonymous shared memory, zeroed, inherited across fork.
void *
shm_alloc(size_t bytes)
{
    void *p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die(EXIT_SETUP, "mmap of %zu shared bytes: %s", bytes, strerror(errno));
    return p;
}

// Fork the partner, pin it to cpu and run fn(arg) in it. It then waits, holding its
// CPU-time counters readable, until partner_finish; it dies with us (PDEATHSIG).
pid_t
partner_start(int cpu, partner_fn fn, void *arg)
{
    int fds[2];
    pid_t parent = getpid(), pid;
    char c;

    if (pipe(fds) != 0)
        die(EXIT_SETUP, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        die(EXIT_SETUP, "fork: %s", strerror(errno));
    if (pid == 0) {
        partner_pid = 0;
        alarm(0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(EXIT_CHILD);
        close(fds[1]);
        if (pin(cpu) != 0)
            die(EXIT_SETUP, "partner: sched_setaffinity(CPU %d): %s", cpu, strerror(errno));
        fn(arg);
        while (read(fds[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(fds[0]);
    partner_pid = pid;
    partner_release_fd = fds[1];
    return pid;
}

// Let the partner exit and reap it. Dies with EXIT_CHILD if it failed.
void
partner_finish(pid_t pid)
{
    int st;

    close(partner_release_fd);
    partner_release_fd = -1;
    if (waitpid(pid, &st, 0) != pid)
        die(EXIT_CHILD, "waitpid: %s", strerror(errno));
    partner_pid = 0;
    if (WIFSIGNALED(st))
        die(EXIT_CHILD, "partner process died with signal %d", WTERMSIG(st));
    if (WEXITSTATUS(st) != 0)
        die(EXIT_CHILD, "partner process exited with status %d", WEXITSTATUS(st));
}

/* JSON: keys are fixed identifiers and values integers or plain names, so no escaping. */
static int json_first;

void
json_begin(const struct opts *o, int single_cpu)
{
    printf("{\"program\": \"%s\", \"bench\": \"%s\"", o->prog, o->bench);
    json_first = 0;
    json_u64("size", o->size);
    json_u64("seed", o->seed);
    printf(", \"cpus\": [%d, %d], \"single_cpu\": %s", o->cpu[0], o->cpu[1],
           single_cpu ? "true" : "false");
}

void
json_u64(const char *key, uint64_t v)
{
    printf(", \"%s\": %llu", key, (unsigned long long)v);
}

void
json_str(const char *key, const char *v)
{
    printf(", \"%s\": \"%s\"", key, v);
}

static void
json_array(const char *key, const uint64_t *v, uint64_t n)
{
    printf(", \"%s\": [", key);
    for (uint64_t i = 0; i < n; i++)
        printf(i ? ", %llu" : "%llu", (unsigned long long)v[i]);
    printf("]");
}

void
json_samples(const struct samples *s)
{
    json_u64("ops_per_sample", s->ops_per_sample);
    json_array("samples_ns", s->ns, s->n);
    json_array("samples_ticks", s->ticks, s->n);
}

void
json_acct(const struct acct *a)
{
    printf(", \"acct\": {\"wall_ns\": %llu, \"sys_busy_ticks\": %llu, \"own_ticks\": %llu, "
           "\"clk_tck\": %ld, \"ncpu\": %ld}",
           (unsigned long long)a->wall_ns, (unsigned long long)a->sys_busy,
           (unsigned long long)a->own, sysconf(_SC_CLK_TCK), sysconf(_SC_NPROCESSORS_ONLN));
}

void
json_check(uint64_t verified_bytes, uint64_t errors)
{
    json_u64("verified_bytes", verified_bytes);
    json_u64("errors", errors);
}

void
json_end(void)
{
    printf("}\n");
    fflush(stdout);
}
