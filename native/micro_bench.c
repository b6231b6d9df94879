/*
 * micro_bench: microbenchmarks that calibrate the cycle model (keusim calibrate). They are
 * not validation workloads; each isolates one cost:
 *
 *   tsc                 TSC ticks and CLOCK_MONOTONIC ns over --ms milliseconds
 *   timer_pair          an empty region timed by "lfence; rdtsc" ... "rdtscp; lfence"
 *                       (ticks only; one op = one pair)
 *   mul_chain           dependent 64-bit IMULs; one op = one multiply (3 core cycles on
 *                       every profiled x86-64 core): the core clock
 *   alu_chain           dependent register-register 64-bit ADDs; one op = one add (one
 *                       cycle): the clock's cross-check (see mul_chain below)
 *   load_chain          pointer chase through a random cyclic permutation of the 64-byte
 *                       lines of a --size byte buffer (4 KiB pages, no THP); one op = one
 *                       load. The size picks the level: 4 KiB L1, 128 KiB L2, 4 MiB L3...
 *   cacheline_pingpong  one cache line bounced between two CPUs with plain stores and
 *                       loads (no PAUSE); one op = one round trip (two line transfers)
 *   bulk_handoff        a --size byte buffer (whole 64-byte lines, own pages) handed
 *                       between two CPUs: the parent writes every 8-byte word, raises a
 *                       flag on a separate line; the partner reads and checks every word
 *                       and answers on the flag. One op = one round (the parent's writes
 *                       invalidate the partner's copies, the partner fetches every line
 *                       modified, plus one flag round trip: a cacheline_pingpong op)
 *                       The fill and sum loops are assembly (bulk_fill, bulk_sum) so that
 *                       keusim/model/calibrate.py prices exactly these instructions with the
 *                       model and takes them out of the per-line hand-off cost
 *   bulk_handoff_narrow the same with 4-byte words: sixteen stores and sixteen loads per
 *                       line instead of eight (bulk_fill4, bulk_sum4). A line in flight
 *                       holds a load- or store-queue entry per access, so the two give the
 *                       per-line and per-access parts of a streamed hand-off
 *                       (coherence.stream_line, coherence.stream_access)
 *   mem_mix             8 independent loads and 8 independent stores per iteration (all L1
 *                       hits); one op = one iteration. Zen 3 runs at most three memory
 *                       operations per cycle, loads and stores together (pipeline.memory_ops)
 *   syscall_getppid     syscall(SYS_getppid); one op = one system call round trip
 *
 * Prints one JSON object (bench.c: json_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static struct opts O;

// Read the TSC and CLOCK_MONOTONIC together: of five tries, keep the one whose bracketing
// TSC reads are closest, and take their midpoint.
static void
tsc_point(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = ~0ull, a, b, n;

    for (int k = 0; k < 5; k++) {
        a = tsc_begin();
        n = mono_ns();
        b = tsc_end();
        if (b - a < best) {
            best = b - a;
            *tsc = a + (b - a) / 2;
            *ns = n;
        }
    }
}

static void
run_tsc(void)
{
    uint64_t t0, n0, t1, n1;
    struct timespec d = {(time_t)(O.ms / 1000), (long)(O.ms % 1000) * 1000000L};

    tsc_point(&t0, &n0);
    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
    tsc_point(&t1, &n1);
    json_begin(&O, 0);
    json_u64("tsc_ticks", t1 - t0);
    json_u64("tsc_ns", n1 - n0);
    json_end();
}

static void
finish(const struct samples *s, const struct acct *a, uint64_t errors, int single)
{
    json_begin(&O, single);
    json_u64("warmup", O.warmup);
    json_samples(s);
    json_acct(a);
    json_check(0, errors);
    json_end();
}

static void
run_timer_pair(void)
{
    struct samples s;
    struct acct a;
    uint64_t k, t0;

    samples_init(&s, O.iters, 1);
    for (k = 0; k < O.warmup; k++)
        (void)(tsc_end() - tsc_begin());
    acct_begin(&a, 0);
    for (k = 0; k < O.iters; k++) {
        t0 = tsc_begin();
        s.ticks[k] = tsc_end() - t0;
    }
    s.n = O.iters;
    acct_end(&a);
    json_begin(&O, 0);
    json_u64("ns_from_ticks", 1);  /* samples_ns are zero: harness.py converts ticks */
    json_u64("warmup", O.warmup);
    json_samples(&s);
    json_acct(&a);
    json_check(0, 0);
    json_end();
}

/*
 * The core clock. A dependent chain of 64-bit IMULs: IMUL r64, r64 has a latency of 3
 * cycles on every x86-64 core keusim has a profile for (uops.info: Zen 2-4, Ice Lake,
 * Golden Cove; AMD SOG 19h, Intel OPT), and a multiply cannot be folded, eliminated or
 * executed at rename. A chain of ADDs with an immediate can: Golden Cove executes
 * `add reg, imm` chains at rename, several per cycle, which is why an ADD-immediate
 * chain gave a 21 GHz clock there. The cross-check, alu_chain, is a dependent chain of
 * register-register ADDs (latency 1; the renamer does not know a register's value, so
 * it cannot fold them): keusim/model/calibrate.py fails when the two disagree.
 * Fixed registers (x in rax, the operand in rdx), so that calibrate.py prices exactly
 * these bytes (_MUL_CHAIN, _ADD_CHAIN).
 */
#define MUL10 "imul %%rdx, %%rax\n\t" "imul %%rdx, %%rax\n\t" "imul %%rdx, %%rax\n\t" \
              "imul %%rdx, %%rax\n\t" "imul %%rdx, %%rax\n\t" "imul %%rdx, %%rax\n\t" \
              "imul %%rdx, %%rax\n\t" "imul %%rdx, %%rax\n\t" "imul %%rdx, %%rax\n\t" \
              "imul %%rdx, %%rax\n\t"
#define MUL100 MUL10 MUL10 MUL10 MUL10 MUL10 MUL10 MUL10 MUL10 MUL10 MUL10
#define ADD10 "add %%rdx, %%rax\n\t" "add %%rdx, %%rax\n\t" "add %%rdx, %%rax\n\t" \
              "add %%rdx, %%rax\n\t" "add %%rdx, %%rax\n\t" "add %%rdx, %%rax\n\t" \
              "add %%rdx, %%rax\n\t" "add %%rdx, %%rax\n\t" "add %%rdx, %%rax\n\t" \
              "add %%rdx, %%rax\n\t"
#define ADD100 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10 ADD10

#define MUL_FACTOR 0x9E3779B97F4A7C15ull  /* odd: the product never sticks at 0 */

// reps blocks of 100 dependent multiplies of x by MUL_FACTOR.
__attribute__((noinline)) static uint64_t
mul_chain(uint64_t x, uint64_t reps)
{
    for (uint64_t r = 0; r < reps; r++)
        __asm__ volatile(MUL100 : "+a"(x) : "d"(MUL_FACTOR) : "cc");
    return x;
}

// reps blocks of 100 dependent register adds of 1 to x; the loop counter runs beside.
__attribute__((noinline)) static uint64_t
add_chain(uint64_t x, uint64_t reps)
{
    for (uint64_t r = 0; r < reps; r++)
        __asm__ volatile(ADD100 : "+a"(x) : "d"((uint64_t)1) : "cc");
    return x;
}

// b^e mod 2^64, to check the multiply chain's result.
static uint64_t
pow64(uint64_t b, uint64_t e)
{
    uint64_t r = 1;

    for (; e; e >>= 1, b *= b)
        if (e & 1)
            r *= b;
    return r;
}

// alu_chain (mul = 0) or mul_chain (mul = 1): one op = one instruction of the chain.
static void
run_chain(int mul)
{
    uint64_t reps = O.batch / 100, nsamples = O.iters / O.batch, k, want;
    uint64_t warm = (O.warmup + 99) / 100, x = mul ? 1 : 0;
    struct samples s;
    struct acct a;

    if (reps == 0 || O.batch % 100)
        die(EXIT_USAGE, "%s: --batch must be a multiple of 100", O.bench);
    samples_init(&s, nsamples, O.batch);
    pin(O.cpu[0]);
    x = mul ? mul_chain(x, warm) : add_chain(x, warm);
    acct_begin(&a, 0);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        x = mul ? mul_chain(x, reps) : add_chain(x, reps);
        sample_end(&s);
    }
    acct_end(&a);
    want = (warm + nsamples * reps) * 100;
    finish(&s, &a, x != (mul ? pow64(MUL_FACTOR, want) : want), 0);
}

// Follow n pointers from p.
__attribute__((noinline)) static void **
chase(void **p, uint64_t n)
{
    while (n--)
        p = (void **)*p;
    return p;
}

static void
run_load_chain(void)
{
    uint64_t lines = O.size / 64, nsamples = O.iters / O.batch, st = O.seed, i, k, errors = 0;
    uint32_t *perm;
    uint8_t *buf;
    void **p;
    struct samples s;
    struct acct a;

    if (lines < 2 || O.size % 64)
        die(EXIT_USAGE, "load_chain: --size must be a multiple of 64 bytes, at least 128");
    buf = mmap(0, O.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        die(EXIT_SETUP, "mmap of %llu bytes: %s", (unsigned long long)O.size, strerror(errno));
    madvise(buf, O.size, MADV_NOHUGEPAGE);  /* guests map 4 KiB pages: so do we */
    perm = malloc(lines * sizeof *perm);
    if (!perm)
        die(EXIT_SETUP, "out of memory for a %llu-line permutation", (unsigned long long)lines);
    // Sattolo's algorithm: a uniformly random permutation with a single cycle, so the
    // chase visits every line before it repeats and the prefetchers cannot guess.
    for (i = 0; i < lines; i++)
        perm[i] = (uint32_t)i;
    for (i = lines - 1; i > 0; i--) {
        uint64_t j = splitmix64(&st) % i;
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (i = 0; i < lines; i++)
        *(void **)(buf + i * 64) = buf + (uint64_t)perm[i] * 64;
    free(perm);
    pin(O.cpu[0]);
    // Warm-up and check: one full cycle returns to the start, and not before.
    p = (void **)buf;
    for (i = 1; i <= lines; i++) {
        p = (void **)*p;
        if ((uint8_t *)p == buf && i != lines) {
            errors++;
            break;
        }
    }
    errors += (uint8_t *)p != buf;
    p = chase(p, O.warmup);
    samples_init(&s, nsamples, O.batch);
    acct_begin(&a, 0);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        p = chase(p, O.batch);
        sample_end(&s);
    }
    acct_end(&a);
    *(void *volatile *)&buf = p;  /* keep the chase live */
    finish(&s, &a, errors, 0);
}

/* cacheline_pingpong: the parent writes 2i+1, the partner answers 2i+2. */
static volatile uint64_t *line;
static uint64_t total;

// Spin until *line == want: plain loads, a yield every spin_limit polls (shared CPU).
static inline void
await(uint64_t want)
{
    unsigned spins = 0;
    while (*line != want)
        if (++spins >= spin_limit) {
            spins = 0;
            sched_yield();
        }
}

static void
bounce_partner(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < total; i++) {
        await(2 * i + 1);
        *line = 2 * i + 2;
    }
}

static void
run_cacheline_pingpong(int single)
{
    uint64_t nsamples = O.iters / O.batch, i = 0, k, j;
    struct samples s;
    struct acct a;
    pid_t pid;

    total = O.warmup + nsamples * O.batch;
    line = shm_alloc(4096);  /* page-aligned, so the word has its line to itself */
    samples_init(&s, nsamples, O.batch);
    if (pin(O.cpu[0]) != 0)
        die(EXIT_SETUP, "sched_setaffinity(CPU %d): %s", O.cpu[0], strerror(errno));
    pid = partner_start(O.cpu[1], bounce_partner, 0);
    for (k = 0; k < O.warmup; k++, i++) {
        *line = 2 * i + 1;
        await(2 * i + 2);
    }
    acct_begin(&a, pid);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        for (j = 0; j < O.batch; j++, i++) {
            *line = 2 * i + 1;
            await(2 * i + 2);
        }
        sample_end(&s);
    }
    acct_end(&a);
    partner_finish(pid);
    finish(&s, &a, *line != 2 * total, single);
}

/* bulk_handoff: the buffer and an error word the partner raises (on the flag's page). */
static volatile uint64_t *bulk;
static uint64_t bulk_words;

/*
 * Write v to every word of lines 64-byte lines at p: eight stores per line. Fixed
 * registers, so the bytes are fixed: keusim/model/calibrate.py (_BULK_FILL) prices this loop
 * with the cycle model, and tests/test_profiles.py checks the bytes in the binary.
 */
__attribute__((noinline)) static void
bulk_fill(volatile uint64_t *p, uint64_t lines, uint64_t v)
{
    volatile uint64_t *end = p + 8 * lines;
    __asm__ volatile(
        "1:\n\t"
        "mov %%rdx, (%%rdi)\n\t"    "mov %%rdx, 8(%%rdi)\n\t"
        "mov %%rdx, 16(%%rdi)\n\t"  "mov %%rdx, 24(%%rdi)\n\t"
        "mov %%rdx, 32(%%rdi)\n\t"  "mov %%rdx, 40(%%rdi)\n\t"
        "mov %%rdx, 48(%%rdi)\n\t"  "mov %%rdx, 56(%%rdi)\n\t"
        "add $64, %%rdi\n\t"
        "cmp %%rsi, %%rdi\n\t"
        "jb 1b\n\t"
        : "+D"(p) : "S"(end), "d"(v) : "memory", "cc");
}

/* The sum of every word of lines 64-byte lines at p: eight loads per line, added as a
 * tree so that the loop carries one add (calibrate.py _BULK_SUM). */
__attribute__((noinline)) static uint64_t
bulk_sum(volatile uint64_t *p, uint64_t lines)
{
    volatile uint64_t *end = p + 8 * lines;
    uint64_t sum = 0;
    __asm__ volatile(
        "1:\n\t"
        "mov (%%rdi), %%r8\n\t"     "add 8(%%rdi), %%r8\n\t"
        "mov 16(%%rdi), %%r9\n\t"   "add 24(%%rdi), %%r9\n\t"
        "mov 32(%%rdi), %%r10\n\t"  "add 40(%%rdi), %%r10\n\t"
        "mov 48(%%rdi), %%r11\n\t"  "add 56(%%rdi), %%r11\n\t"
        "add %%r9, %%r8\n\t"        "add %%r11, %%r10\n\t"
        "add %%r10, %%r8\n\t"       "add %%r8, %%rax\n\t"
        "add $64, %%rdi\n\t"
        "cmp %%rsi, %%rdi\n\t"
        "jb 1b\n\t"
        : "+D"(p), "+a"(sum) : "S"(end) : "r8", "r9", "r10", "r11", "memory", "cc");
    return sum;
}

/* bulk_handoff_narrow: write v to every 4-byte word of lines 64-byte lines at p, sixteen
 * stores per line (calibrate.py _BULK_FILL4). */
__attribute__((noinline)) static void
bulk_fill4(volatile uint64_t *p, uint64_t lines, uint64_t v)
{
    volatile uint64_t *end = p + 8 * lines;
    __asm__ volatile(
        "1:\n\t"
        "movl %%edx, (%%rdi)\n\t"    "movl %%edx, 4(%%rdi)\n\t"
        "movl %%edx, 8(%%rdi)\n\t"   "movl %%edx, 12(%%rdi)\n\t"
        "movl %%edx, 16(%%rdi)\n\t"  "movl %%edx, 20(%%rdi)\n\t"
        "movl %%edx, 24(%%rdi)\n\t"  "movl %%edx, 28(%%rdi)\n\t"
        "movl %%edx, 32(%%rdi)\n\t"  "movl %%edx, 36(%%rdi)\n\t"
        "movl %%edx, 40(%%rdi)\n\t"  "movl %%edx, 44(%%rdi)\n\t"
        "movl %%edx, 48(%%rdi)\n\t"  "movl %%edx, 52(%%rdi)\n\t"
        "movl %%edx, 56(%%rdi)\n\t"  "movl %%edx, 60(%%rdi)\n\t"
        "add $64, %%rdi\n\t"
        "cmp %%rsi, %%rdi\n\t"
        "jb 1b\n\t"
        : "+D"(p) : "S"(end), "d"(v) : "memory", "cc");
}

/* The sum mod 2^32 of every 4-byte word of lines 64-byte lines at p: sixteen loads per
 * line, four independent chains (calibrate.py _BULK_SUM4). */
__attribute__((noinline)) static uint32_t
bulk_sum4(volatile uint64_t *p, uint64_t lines)
{
    volatile uint64_t *end = p + 8 * lines;
    uint32_t sum = 0;
    __asm__ volatile(
        "1:\n\t"
        "movl (%%rdi), %%r8d\n\t"    "addl 4(%%rdi), %%r8d\n\t"
        "movl 8(%%rdi), %%r9d\n\t"   "addl 12(%%rdi), %%r9d\n\t"
        "movl 16(%%rdi), %%r10d\n\t" "addl 20(%%rdi), %%r10d\n\t"
        "movl 24(%%rdi), %%r11d\n\t" "addl 28(%%rdi), %%r11d\n\t"
        "addl 32(%%rdi), %%r8d\n\t"  "addl 36(%%rdi), %%r8d\n\t"
        "addl 40(%%rdi), %%r9d\n\t"  "addl 44(%%rdi), %%r9d\n\t"
        "addl 48(%%rdi), %%r10d\n\t" "addl 52(%%rdi), %%r10d\n\t"
        "addl 56(%%rdi), %%r11d\n\t" "addl 60(%%rdi), %%r11d\n\t"
        "addl %%r9d, %%r8d\n\t"      "addl %%r11d, %%r10d\n\t"
        "addl %%r10d, %%r8d\n\t"     "addl %%r8d, %%eax\n\t"
        "add $64, %%rdi\n\t"
        "cmp %%rsi, %%rdi\n\t"
        "jb 1b\n\t"
        : "+D"(p), "+a"(sum) : "S"(end) : "r8", "r9", "r10", "r11", "memory", "cc");
    return sum;
}

static int bulk_narrow;     /* bulk_handoff_narrow: the 4-byte loops */

static void
bulk_partner(void *arg)
{
    (void)arg;
    for (uint64_t i = 0; i < total; i++) {
        int bad;
        await(2 * i + 1);
        if (bulk_narrow)
            bad = bulk_sum4(bulk, bulk_words / 8) != (uint32_t)(2 * bulk_words * i);
        else
            bad = bulk_sum(bulk, bulk_words / 8) != bulk_words * i;
        if (bad)
            line[16]++;   /* error count, its own line (128 bytes past the flag) */
        *line = 2 * i + 2;
    }
}

static void
bulk_write(uint64_t i)
{
    if (bulk_narrow)
        bulk_fill4(bulk, bulk_words / 8, i);
    else
        bulk_fill(bulk, bulk_words / 8, i);
}

static void
run_bulk_handoff(int single)
{
    uint64_t nsamples = O.iters / O.batch, i = 0, k, j;
    struct samples s;
    struct acct a;
    pid_t pid;

    if (O.size < 64 || O.size % 64)
        die(EXIT_USAGE, "bulk_handoff: --size must be a multiple of 64 bytes, at least 64");
    bulk_words = O.size / 8;
    total = O.warmup + nsamples * O.batch;
    line = shm_alloc(4096);                 /* flag: a line (and page) of its own */
    bulk = shm_alloc(O.size);               /* page-aligned: whole lines */
    samples_init(&s, nsamples, O.batch);
    if (pin(O.cpu[0]) != 0)
        die(EXIT_SETUP, "sched_setaffinity(CPU %d): %s", O.cpu[0], strerror(errno));
    pid = partner_start(O.cpu[1], bulk_partner, 0);
    for (k = 0; k < O.warmup; k++, i++) {
        bulk_write(i);
        *line = 2 * i + 1;
        await(2 * i + 2);
    }
    acct_begin(&a, pid);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        for (j = 0; j < O.batch; j++, i++) {
            bulk_write(i);
            *line = 2 * i + 1;              /* TSO: the payload stores are visible first */
            await(2 * i + 2);
        }
        sample_end(&s);
    }
    acct_end(&a);
    partner_finish(pid);
    finish(&s, &a, (*line != 2 * total) + line[16], single);
}

/* mem_mix: reps iterations of 8 loads and 8 stores, all independent, to two L1-resident
 * lines (calibrate.py _MEM_MIX prices the same bytes). */
static uint64_t mix_buf[128] __attribute__((aligned(64)));

#define MIX_PAIR(o) "mov " #o "(%%rdi), %%rax\n\t" "mov %%rdx, " #o "+512(%%rdi)\n\t"

__attribute__((noinline)) static void
mem_mix(uint64_t *p, uint64_t reps, uint64_t v)
{
    __asm__ volatile(
        "1:\n\t"
        MIX_PAIR(0) MIX_PAIR(8) MIX_PAIR(16) MIX_PAIR(24)
        MIX_PAIR(32) MIX_PAIR(40) MIX_PAIR(48) MIX_PAIR(56)
        "sub $1, %%rcx\n\t"
        "jne 1b\n\t"
        : "+c"(reps) : "D"(p), "d"(v) : "rax", "memory", "cc");
}

static void
run_mem_mix(void)
{
    uint64_t nsamples = O.iters / O.batch, k;
    struct samples s;
    struct acct a;

    samples_init(&s, nsamples, O.batch);
    pin(O.cpu[0]);
    mem_mix(mix_buf, O.warmup ? O.warmup : 1, 1);
    acct_begin(&a, 0);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        mem_mix(mix_buf, O.batch, k + 2);
        sample_end(&s);
    }
    acct_end(&a);
    /* The stores landed: the last value is in the second line. */
    finish(&s, &a, mix_buf[64] != nsamples + 1 || mix_buf[71] != nsamples + 1, 0);
}

static void
run_getppid(void)
{
    uint64_t nsamples = O.iters / O.batch, k, j, errors = 0;
    long want = (long)getppid();
    struct samples s;
    struct acct a;

    samples_init(&s, nsamples, O.batch);
    pin(O.cpu[0]);
    for (k = 0; k < O.warmup; k++)
        errors += syscall(SYS_getppid) != want;
    acct_begin(&a, 0);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        for (j = 0; j < O.batch; j++)
            errors += syscall(SYS_getppid) != want;
        sample_end(&s);
    }
    acct_end(&a);
    finish(&s, &a, errors, 0);
}

int
main(int argc, char **argv)
{
    int single;

    parse_opts(&O, argc, argv);
    single = pick_cpus(&O);
    if (strcmp(O.bench, "tsc") == 0)
        run_tsc();
    else if (strcmp(O.bench, "timer_pair") == 0)
        run_timer_pair();
    else if (strcmp(O.bench, "alu_chain") == 0)
        run_chain(0);
    else if (strcmp(O.bench, "mul_chain") == 0)
        run_chain(1);
    else if (strcmp(O.bench, "load_chain") == 0)
        run_load_chain();
    else if (strcmp(O.bench, "cacheline_pingpong") == 0)
        run_cacheline_pingpong(single);
    else if (strcmp(O.bench, "bulk_handoff") == 0)
        run_bulk_handoff(single);
    else if (strcmp(O.bench, "bulk_handoff_narrow") == 0) {
        bulk_narrow = 1;
        run_bulk_handoff(single);
    }
    else if (strcmp(O.bench, "mem_mix") == 0)
        run_mem_mix();
    else if (strcmp(O.bench, "syscall_getppid") == 0)
        run_getppid();
    else
        die(EXIT_USAGE, "unknown --bench '%s' (tsc, timer_pair, mul_chain, alu_chain, load_chain, "
            "cacheline_pingpong, bulk_handoff, bulk_handoff_narrow, mem_mix, syscall_getppid)",
            O.bench);
    return 0;
}
