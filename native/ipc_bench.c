/*
 * ipc_bench: Linux IPC baselines to set beside the ring (docs/host-baselines.md).
 *
 * Round trips between two processes pinned to two CPUs, --size bytes each way, every
 * byte checked at the receiver against a seeded pool (one op = one round trip):
 *   pipe         two pipes, write + read
 *   eventfd      payload in shared memory, an eventfd per direction signals it
 *   unix_dgram   AF_UNIX SOCK_DGRAM socketpair, send + recv
 *   unix_stream  AF_UNIX SOCK_STREAM socketpair, write + read
 *   futex        payload in shared memory, a sequence word per direction, FUTEX_WAIT
 *                until it changes and FUTEX_WAKE after changing it (no spinning)
 * In one process (one op = one call; --batch calls per sample):
 *   funccall     a noinline function that copies --size bytes with string.c's memcpy,
 *                independent calls (same source, alternating destinations)
 *   funccall_dep the same, each call copying the previous call's output
 *
 * Prints one JSON object (bench.c: json_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

void *memcpy(void *restrict dst, const void *restrict src, size_t n);  /* guests/lib/string.c */

struct ctl {
    volatile uint64_t verified, errors;
    volatile uint32_t req_seq, resp_seq;  /* futex words */
    uint8_t pad[40];                      /* payload slots start on their own line */
    uint8_t slot[];                       /* request and reply payloads (eventfd, futex) */
};

static struct opts O;
static struct pool PA, PB;
static struct ctl *C;
static uint8_t *slot_req, *slot_resp;
static uint64_t total;
static int fd_c2s[2], fd_s2c[2];  /* pipe ends, eventfds or socket pairs */

/* One transport: send a message to the other side, receive one from it. */
struct transport {
    const char *name;
    void (*setup)(void);
    void (*send)(int to_server, const uint8_t *msg);
    void (*recv)(int at_server, uint8_t *buf);
};

static void
write_full(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(EXIT_SETUP, "write: %s", w < 0 ? strerror(errno) : "wrote nothing");
        b += w;
        n -= (size_t)w;
    }
}

static void
read_full(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die(EXIT_SETUP, "read: %s", r < 0 ? strerror(errno) : "end of file");
        b += r;
        n -= (size_t)r;
    }
}

/* pipe and unix_stream: a byte stream each way. fd_c2s[1] -> fd_c2s[0], fd_s2c[1] -> fd_s2c[0]. */
static void
pipe_setup(void)
{
    if (pipe(fd_c2s) != 0 || pipe(fd_s2c) != 0)
        die(EXIT_SETUP, "pipe: %s", strerror(errno));
}

static void
stream_send(int to_server, const uint8_t *msg)
{
    write_full(to_server ? fd_c2s[1] : fd_s2c[1], msg, O.size);
}

static void
stream_recv(int at_server, uint8_t *buf)
{
    read_full(at_server ? fd_c2s[0] : fd_s2c[0], buf, O.size);
}

static void
unix_stream_setup(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die(EXIT_SETUP, "socketpair(SOCK_STREAM): %s", strerror(errno));
    /* client writes sv[0], server reads sv[1], and the other way round */
    fd_c2s[1] = sv[0];
    fd_c2s[0] = sv[1];
    fd_s2c[1] = sv[1];
    fd_s2c[0] = sv[0];
}

/* unix_dgram: one datagram per message. */
static void
unix_dgram_setup(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0)
        die(EXIT_SETUP, "socketpair(SOCK_DGRAM): %s", strerror(errno));
    fd_c2s[1] = sv[0];
    fd_c2s[0] = sv[1];
    fd_s2c[1] = sv[1];
    fd_s2c[0] = sv[0];
}

static void
dgram_send(int to_server, const uint8_t *msg)
{
    ssize_t w;
    while ((w = send(to_server ? fd_c2s[1] : fd_s2c[1], msg, O.size, 0)) < 0 && errno == EINTR)
        ;
    if (w != (ssize_t)O.size)
        die(EXIT_SETUP, "send: %s", w < 0 ? strerror(errno) : "short datagram");
}

static void
dgram_recv(int at_server, uint8_t *buf)
{
    ssize_t r;
    while ((r = recv(at_server ? fd_c2s[0] : fd_s2c[0], buf, O.size, 0)) < 0 && errno == EINTR)
        ;
    if (r != (ssize_t)O.size)
        die(EXIT_SETUP, "recv: %s", r < 0 ? strerror(errno) : "short datagram");
}

/* eventfd: payload through shared slots; fd_c2s[0] signals the server, fd_s2c[0] the client. */
static void
eventfd_setup(void)
{
    fd_c2s[0] = eventfd(0, 0);
    fd_s2c[0] = eventfd(0, 0);
    if (fd_c2s[0] < 0 || fd_s2c[0] < 0)
        die(EXIT_SETUP, "eventfd: %s", strerror(errno));
}

static void
eventfd_send(int to_server, const uint8_t *msg)
{
    uint64_t one = 1;
    memcpy(to_server ? slot_req : slot_resp, msg, O.size);
    write_full(to_server ? fd_c2s[0] : fd_s2c[0], &one, 8);  /* a full barrier */
}

static void
eventfd_recv(int at_server, uint8_t *buf)
{
    uint64_t v;
    read_full(at_server ? fd_c2s[0] : fd_s2c[0], &v, 8);
    memcpy(buf, at_server ? slot_req : slot_resp, O.size);
}

/* futex: a sequence word per direction, bumped once per message. The mapping is shared
 * between processes, so the futex is not FUTEX_PRIVATE. */
static uint32_t seq_sent[2], seq_seen[2];

static void
futex_setup(void)
{
}

static void
futex_send(int to_server, const uint8_t *msg)
{
    volatile uint32_t *w = to_server ? &C->req_seq : &C->resp_seq;
    memcpy(to_server ? slot_req : slot_resp, msg, O.size);
    __atomic_store_n(w, ++seq_sent[to_server], __ATOMIC_RELEASE);
    syscall(SYS_futex, w, FUTEX_WAKE, 1, 0, 0, 0);
}

static void
futex_recv(int at_server, uint8_t *buf)
{
    volatile uint32_t *w = at_server ? &C->req_seq : &C->resp_seq;
    uint32_t want = ++seq_seen[at_server], v;

    while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want)
        syscall(SYS_futex, w, FUTEX_WAIT, v, 0, 0, 0);  /* returns at once if *w != v */
    memcpy(buf, at_server ? slot_req : slot_resp, O.size);
}

static const struct transport transports[] = {
    {"pipe", pipe_setup, stream_send, stream_recv},
    {"eventfd", eventfd_setup, eventfd_send, eventfd_recv},
    {"unix_dgram", unix_dgram_setup, dgram_send, dgram_recv},
    {"unix_stream", unix_stream_setup, stream_send, stream_recv},
    {"futex", futex_setup, futex_send, futex_recv},
};
static const struct transport *T;

static uint64_t
check(const uint8_t *got, const struct pool *p, uint64_t i, uint64_t *verified)
{
    *verified += p->size;
    return count_mismatch(got, pool_msg(p, i), p->size);
}

static void
server(void *arg)
{
    uint8_t *buf = aligned_alloc(64, (O.size + 63) & ~63ull);
    uint64_t verified = 0, errors = 0, i;

    (void)arg;
    for (i = 0; i < total; i++) {
        T->recv(1, buf);
        errors += check(buf, &PA, i, &verified);
        T->send(0, pool_msg(&PB, i));
    }
    C->verified = verified;
    C->errors = errors;
}

static void
run_pingpong(int single)
{
    uint8_t *buf = aligned_alloc(64, (O.size + 63) & ~63ull);
    uint64_t nsamples = O.iters / O.batch, verified = 0, errors = 0, i = 0, k, j;
    struct samples s;
    struct acct a;
    pid_t pid;

    total = O.warmup + nsamples * O.batch;
    C = shm_alloc(sizeof *C + 2 * ((O.size + 63) & ~63ull));
    slot_req = C->slot;
    slot_resp = C->slot + ((O.size + 63) & ~63ull);
    T->setup();
    samples_init(&s, nsamples, O.batch);
    if (pin(O.cpu[0]) != 0)
        die(EXIT_SETUP, "sched_setaffinity(CPU %d): %s", O.cpu[0], strerror(errno));
    pid = partner_start(O.cpu[1], server, 0);
    for (k = 0; k < O.warmup; k++, i++) {
        T->send(1, pool_msg(&PA, i));
        T->recv(0, buf);
        errors += check(buf, &PB, i, &verified);
    }
    acct_begin(&a, pid);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        for (j = 0; j < O.batch; j++, i++) {
            T->send(1, pool_msg(&PA, i));
            T->recv(0, buf);
            errors += check(buf, &PB, i, &verified);
        }
        sample_end(&s);
    }
    acct_end(&a);
    partner_finish(pid);
    json_begin(&O, single);
    json_u64("warmup", O.warmup);
    json_samples(&s);
    json_acct(&a);
    json_check(verified + C->verified, errors + C->errors);
    json_end();
}

// The function whose call the funccall baselines time: copy n bytes, out of line.
__attribute__((noinline)) static void
copy_msg(void *dst, const void *src, uint64_t n)
{
    memcpy(dst, src, n);
    __asm__ volatile("" ::: "memory");
}

static void
run_funccall(int dependent)
{
    uint64_t stride = (O.size + 63) & ~63ull;
    uint8_t *b = aligned_alloc(64, 3 * stride);
    uint8_t *src = b, *d0 = b + stride, *d1 = b + 2 * stride;
    uint64_t nsamples = O.iters / O.batch, verified = 0, errors = 0, k, j;
    struct samples s;
    struct acct a;

    memcpy(src, pool_msg(&PA, 0), O.size);
    samples_init(&s, nsamples, O.batch);
    if (pin(O.cpu[0]) != 0)
        die(EXIT_SETUP, "sched_setaffinity(CPU %d): %s", O.cpu[0], strerror(errno));
    for (k = 0; k < O.warmup; k++)
        copy_msg(d0, src, O.size);
    acct_begin(&a, 0);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        if (dependent) {
            /* src -> d0 -> d1 -> d0 ...: each call reads what the previous one wrote */
            copy_msg(d0, src, O.size);
            for (j = 1; j < O.batch; j++)
                copy_msg((j & 1) ? d1 : d0, (j & 1) ? d0 : d1, O.size);
        } else {
            for (j = 0; j < O.batch; j++)
                copy_msg((j & 1) ? d1 : d0, src, O.size);
        }
        sample_end(&s);
        errors += count_mismatch(d0, src, O.size) + count_mismatch(d1, src, O.size);
        verified += 2 * O.size;
    }
    acct_end(&a);
    json_begin(&O, 0);
    json_u64("warmup", O.warmup);
    json_samples(&s);
    json_acct(&a);
    json_check(verified, errors);
    json_end();
}

int
main(int argc, char **argv)
{
    int single;
    size_t t;

    parse_opts(&O, argc, argv);
    if (O.size == 0 || O.size > (1u << 16))
        die(EXIT_USAGE, "--size %llu: want 1..65536 bytes", (unsigned long long)O.size);
    single = pick_cpus(&O);
    pool_init(&PA, O.size, O.seed);
    pool_init(&PB, O.size, O.seed ^ 0x5eed5eed5eedull);
    if (strcmp(O.bench, "funccall") == 0 || strcmp(O.bench, "funccall_dep") == 0) {
        run_funccall(O.bench[8] == '_');
        return 0;
    }
    for (t = 0; t < sizeof transports / sizeof transports[0]; t++)
        if (strcmp(O.bench, transports[t].name) == 0)
            T = &transports[t];
    if (!T)
        die(EXIT_USAGE, "unknown --bench '%s' (pipe, eventfd, unix_dgram, unix_stream, "
            "futex, funccall, funccall_dep)", O.bench);
    run_pingpong(single);
    return 0;
}
