/*
 * The fuzzer's attacker: an interpreter for an attack program the fuzzer
 * (keusim/fuzz) patches into this image's ELF file before boot, so that one build
 * per architecture serves every run (docs/fuzzing.md).
 *
 * fuzz_prog holds up to FUZZ_MAXOPS fixed-size operations: raw system calls with
 * chosen arguments, loads and stores to chosen addresses (ring indices, data, the
 * info page, text, kernel addresses), ring-index forgeries, ring traffic,
 * notification descriptors with chosen fields, and calls into fuzz_code, where
 * the fuzzer writes instruction snippets (fuzz_tramp_<arch>.S).
 *
 * An operation marked FUZZ_F_MUST_FAULT is one the MMU must refuse (a store to a
 * read-only index page, a load from a kernel address, ...). If it returns, the
 * attacker prints "fuzz: op N escaped" and goes on; the fuzzer treats that line
 * as a broken gate. After a snippet it prints the snippet's result register, so
 * that anything nondeterministic a snippet can read reaches the report. The layout in keusim/fuzz/program.py mirrors this file.
 */
#include <keusim/workload.h>
#include <keusim/notify.h>

#define FUZZ_MAGIC 0x47525046355a5546ull /* "FUZ5FPRG" */
#define FUZZ_MAXOPS 256

enum {
    OP_SYSCALL = 1, /* x0 number, x1..x3 arguments, x4 repeat count */
    OP_STORE = 2,   /* x0 address, x1 value, x2 size (1, 2, 4 or 8) */
    OP_LOAD = 3,    /* x0 address, x2 size */
    OP_ADD32 = 4,   /* x0 address: *(u32 *)x0 += x1 (index forgery relative to its value) */
    OP_SEND = 5,    /* x0 channel, x1 payload length, x2 fill seed: ring_send (and notify) */
    OP_RECV = 6,    /* x0 channel: ring_recv once */
    OP_NOTIFY = 7,  /* x0 channel, x1 offset, x2 length, x3 flags, x4 seq, x5 tag */
    OP_EXEC = 8,    /* x0 offset into fuzz_code: call the snippet there */
    OP_SPIN = 9,    /* x0 iterations (~0: forever) */
    OP_EXIT = 10,   /* x0 exit code */
};

#define FUZZ_F_MUST_FAULT 1   /* the MMU must stop this access */
#define FUZZ_F_TAG_VALID 2    /* notify: tag under our key for x0, not x5 */
#define FUZZ_F_SEQ_REL 4      /* notify: seq = last accepted + x4 */
#define FUZZ_F_OFF_REL 8      /* notify: offset = our head index + x1 */
#define FUZZ_F_SPIN_SYSCALL 16 /* spin: a nop system call in every iteration */

struct fuzz_op {
    uint32_t op;
    uint32_t flags;
    uint64_t x[7];
};

struct fuzz_prog {
    uint64_t magic;
    uint32_t nops;
    uint32_t _pad;
    struct fuzz_op ops[FUZZ_MAXOPS];
};

_Static_assert(sizeof(struct fuzz_op) == 64, "fuzz_op is 64 bytes (keusim/fuzz/program.py)");

/* Initialised, so that it lies in the file's data segment where the fuzzer patches it. */
__attribute__((used, aligned(4096))) struct fuzz_prog fuzz_prog = {FUZZ_MAGIC, 0, 0, {{0}}};

extern uint8_t fuzz_code[];
/* Run the snippet at code (fuzz_tramp_<arch>.S); returns its final rax / x0. */
uint64_t fuzz_call(void *code);

static uint64_t last_seq[MAXCHAN];
static uint8_t buf[4096 + 64];
static volatile uint64_t sink;

static const struct info_chan *endpoint(uint64_t ch, uint32_t role)
{
    return ch < MAXCHAN ? ks_endpoint(ks_find_endpoint((uint32_t)ch, role)) : 0;
}

static void store(uint64_t a, uint64_t v, uint64_t size)
{
    switch (size) {
    case 1: *(volatile uint8_t *)a = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)a = (uint16_t)v; break;
    case 4: *(volatile uint32_t *)a = (uint32_t)v; break;
    default: *(volatile uint64_t *)a = v; break;
    }
}

static uint64_t load(uint64_t a, uint64_t size)
{
    switch (size) {
    case 1: return *(volatile uint8_t *)a;
    case 2: return *(volatile uint16_t *)a;
    case 4: return *(volatile uint32_t *)a;
    default: return *(volatile uint64_t *)a;
    }
}

static void send(const struct fuzz_op *o)
{
    struct ring_ep ep;
    int i = ks_find_endpoint((uint32_t)o->x[0], EP_PRODUCER);
    if (i < 0 || ks_ring_open(i, &ep) != 0)
        return;
    uint32_t len = (uint32_t)(o->x[1] % sizeof(buf));
    uint64_t s = o->x[2] | 1;
    ks_fill(buf, len, &s);
    if (ring_send(&ep, buf, len) != 0)
        return;
    const struct info_chan *e = ks_endpoint(i);
    if (e->mode == CHAN_NOTIFY) {
        struct notify_desc d;
        ks_desc_make(&d, e->id, ks_record_pos(&ep, len), RING_HDR_SIZE + len, 0,
                     last_seq[e->id] + 1, e->verified ? e->key : 0);
        if (ks_notify(&d) == 0)
            last_seq[e->id] = d.seq;
    }
}

static void recv(const struct fuzz_op *o)
{
    struct ring_ep ep;
    uint32_t n;
    int i = ks_find_endpoint((uint32_t)o->x[0], EP_CONSUMER);
    if (i >= 0 && ks_ring_open(i, &ep) == 0)
        ring_recv(&ep, buf, sizeof(buf), &n);
}

static void notify(const struct fuzz_op *o)
{
    static const uint8_t nokey[16];
    const struct info_chan *e = endpoint(o->x[0], EP_PRODUCER);
    uint32_t ch = (uint32_t)o->x[0];
    uint64_t last = ch < MAXCHAN ? last_seq[ch] : 0;
    uint32_t off = (uint32_t)o->x[1];
    if ((o->flags & FUZZ_F_OFF_REL) && e)
        off += *(volatile uint32_t *)e->head_va;
    uint64_t seq = (o->flags & FUZZ_F_SEQ_REL) ? last + o->x[4] : o->x[4];
    struct notify_desc d;
    ks_desc_make(&d, ch, off, (uint32_t)o->x[2], (uint32_t)o->x[3], seq,
                 e && e->verified ? e->key : nokey);
    if (!(o->flags & FUZZ_F_TAG_VALID))
        d.tag = o->x[5];
    if (ks_notify(&d) == 0 && ch < MAXCHAN)
        last_seq[ch] = seq;
}

static void spin(const struct fuzz_op *o)
{
    for (uint64_t i = 0; o->x[0] == ~0ull || i < o->x[0]; i++) {
        if (o->flags & FUZZ_F_SPIN_SYSCALL)
            ks_nop();
        sink += i;
    }
}

int main(void)
{
    if (fuzz_prog.magic != FUZZ_MAGIC)
        return 99;
    uint32_t n = fuzz_prog.nops < FUZZ_MAXOPS ? fuzz_prog.nops : FUZZ_MAXOPS;
    for (uint32_t i = 0; i < n; i++) {
        const struct fuzz_op *o = &fuzz_prog.ops[i];
        switch (o->op) {
        case OP_SYSCALL:
            for (uint64_t k = 0; k < (o->x[4] ? o->x[4] : 1); k++)
                ks_syscall3(o->x[0], o->x[1], o->x[2], o->x[3]);
            break;
        case OP_STORE:
            store(o->x[0], o->x[1], o->x[2]);
            break;
        case OP_LOAD:
            sink += load(o->x[0], o->x[2]);
            break;
        case OP_ADD32:
            *(volatile uint32_t *)o->x[0] += (uint32_t)o->x[1];
            break;
        case OP_SEND:
            send(o);
            break;
        case OP_RECV:
            recv(o);
            break;
        case OP_NOTIFY:
            notify(o);
            break;
        case OP_EXEC:
            ks_printf("fuzz: op %lu -> %lx\n", (unsigned long)i,
                      (unsigned long)fuzz_call(fuzz_code + (o->x[0] & 0x3fff)));
            break;
        case OP_SPIN:
            spin(o);
            break;
        case OP_EXIT:
            return (int)o->x[0];
        }
        if (o->flags & FUZZ_F_MUST_FAULT)
            ks_printf("fuzz: op %lu escaped\n", (unsigned long)i);
    }
    return 0;
}
