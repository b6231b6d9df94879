/*
 * keusim fast path: the per-block and shared-line hooks, in C.
 *
 * A Python callback costs ~0.6-0.9 us, which caps per-block hooks at 1-3 M blocks/s
 * (docs/unicorn.md). These hooks run once per translated-block execution and once
 * per access to a shared (ring) page, so they live here. Python fills the block
 * cost table once per block (capstone + the microarchitecture profile) through the
 * `miss` callback; everything else is table lookups and counter updates.
 *
 * Layouts of `struct fastcore` and `struct kcoh` are mirrored by ctypes in
 * keusim/machine/fastpath.py: change both together.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void (*emu_stop_fn)(void *uc);
typedef int (*reg_write_fn)(void *uc, int regid, const void *value);
/* Returns (cycles << 32) | instructions for the block at va (root: user MMU root). */
typedef uint64_t (*miss_fn)(uint64_t core, uint64_t va, uint64_t size, uint64_t root);

struct bentry {
    uint64_t va;
    uint64_t root;      /* 0 for kernel addresses (shared by every address space) */
    uint32_t cost;      /* 1/256 cycles (keusim.model.costmodel.FRACTION) */
    uint32_t ninsn;
    uint64_t count;     /* executions: for attribution by function after the run */
};

/* Coherence state of the shared region, one record per 64-byte line (MSI-like). */
struct kcoh {
    uint64_t base, size;        /* physical range watched */
    uint64_t xfer_cycles;       /* line held modified by another core */
    uint64_t inval_cycles;      /* write to a line other cores hold shared */
    uint64_t fill_cycles;       /* first touch by this core: from the memory side */
    uint8_t *owner;             /* 0: none; else 1 + core holding it modified */
    uint64_t *sharers;          /* bit per core holding a valid copy */
    /* Pipelined hand-offs (added at the end: keep the offsets above). A transfer or an
     * invalidation within stream_stride lines (either way, not the same line) of the same
     * core's previous one is charged stream_cycles, not xfer/inval_cycles: real cores keep
     * several line fetches in flight (L2 stream prefetcher, miss buffers) and retire
     * stores into the store buffer, so a run of consecutive lines costs the per-line
     * throughput, not the latency, after the first. stream_cycles == xfer_cycles and
     * stream_stride == 0 is the serial model. */
    uint64_t stream_cycles;
    uint64_t stream_stride;     /* lines; 0: no streaming */
    /* Posted writes (added at the end). When `posted` is set, a store that must take a
     * line from another core does not stall its core (it retires into the store buffer);
     * the line becomes visible to other cores at ready[line] instead, and a core that
     * reads it pays the wait up to then on top of its transfer. A core's posted stores
     * become visible in program order (fastcore.wready). A store that continues a run of
     * nearby lines still stalls stream_cycles: the store buffer fills at that rate. */
    uint64_t posted;
    uint64_t *ready;            /* model cycle at which the line's last write is visible */
};

enum { STOP_NONE = 0, STOP_SLICE = 1 };
#define MISS_RETRANSLATE UINT64_MAX   /* keusim/machine/fastpath.py */

struct fastcore {
    uint64_t clock;             /* model cycles: guest-visible time */
    uint64_t insns;             /* guest instructions (whole blocks) */
    uint64_t slice_end;         /* stop before a block that starts at clock >= this */
    uint64_t root;              /* current user MMU root, set at root switches */
    uint64_t kbase;             /* va >= kbase is kernel code */
    uint64_t kinsns, kcycles;   /* kernel share of insns and cycles */
    uint64_t coh_cycles, coh_xfers, shared_reads, shared_writes;
    uint64_t id;
    uint64_t stop_reason;
    struct bentry *table;
    uint64_t tmask, tcount;
    miss_fn miss;
    emu_stop_fn emu_stop;
    reg_write_fn reg_write;
    struct kcoh *coh;
    uint64_t reg_a, reg_b, reg_c; /* arch register ids: rax/rdx/rcx, or unused */
    uint64_t tsc_aux;           /* rdtscp: RCX value (the core id) */
    uint64_t counter_hz;        /* cntfrq_el0 */
    uint64_t nblocks;
    /* Added at the end (keep the offsets above): the stream state of fast_mem. */
    uint64_t coh_last;          /* 1 + line of this core's last transfer/invalidation; 0: none */
    uint64_t coh_streamed;      /* transfers/invalidations charged stream_cycles */
    uint64_t wready;            /* posted writes: when this core's last posted store is visible */
    uint64_t coh_posted;        /* hand-offs by stores that did not stall (posted) */
    uint64_t coh_waited;        /* cycles reads waited for a posted store to become visible */
    uint64_t frac;              /* block costs are in 1/256 cycles: the part not yet on clock */
    /* Added at the end: an interrupt is pending. The kernel runs with interrupts
     * masked, so the CPU takes it at the first user instruction: stop before the
     * first user block (va < kbase) so the machine can deliver it there. */
    uint64_t user_stop;
};

/* Charge a block cost of fp/256 cycles: whole cycles go to the clock, the rest waits in
 * frac. Returns the whole cycles charged. */
static inline uint64_t charge(struct fastcore *c, uint64_t fp)
{
    uint64_t acc = c->frac + fp;
    c->frac = acc & 255;
    c->clock += acc >> 8;
    return acc >> 8;
}

/* Allocate the block table with 2^log2 entries. Returns 0, or -1 on OOM. */
int fastcore_init(struct fastcore *c, unsigned log2)
{
    c->tmask = (1ull << log2) - 1;
    c->tcount = 0;
    c->table = calloc(c->tmask + 1, sizeof(struct bentry));
    return c->table ? 0 : -1;
}

void fastcore_free(struct fastcore *c)
{
    free(c->table);
    c->table = NULL;
}

static inline uint64_t hash(uint64_t va, uint64_t root)
{
    uint64_t x = va ^ (root * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 32);
}

static void insert(struct fastcore *c, uint64_t va, uint64_t root, uint32_t cost, uint32_t n);

static void grow(struct fastcore *c)
{
    struct bentry *old = c->table;
    uint64_t oldn = c->tmask + 1;
    c->tmask = oldn * 2 - 1;
    c->tcount = 0;
    c->table = calloc(c->tmask + 1, sizeof(struct bentry));
    for (uint64_t i = 0; i < oldn; i++)
        if (old[i].va) {
            insert(c, old[i].va, old[i].root, old[i].cost, old[i].ninsn);
            uint64_t j = hash(old[i].va, old[i].root) & c->tmask;
            while (!(c->table[j].va == old[i].va && c->table[j].root == old[i].root))
                j = (j + 1) & c->tmask;
            c->table[j].count = old[i].count;
        }
    free(old);
}

static void insert(struct fastcore *c, uint64_t va, uint64_t root, uint32_t cost, uint32_t n)
{
    if ((c->tcount + 1) * 4 > (c->tmask + 1) * 3)
        grow(c);
    uint64_t i = hash(va, root) & c->tmask;
    while (c->table[i].va && !(c->table[i].va == va && c->table[i].root == root))
        i = (i + 1) & c->tmask;
    if (!c->table[i].va)
        c->tcount++;
    c->table[i] = (struct bentry){va, root, cost, n, 0};
}

/* Copy up to max table entries with a nonzero count to out; returns how many. */
uint64_t fastcore_dump(struct fastcore *c, struct bentry *out, uint64_t max)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i <= c->tmask && n < max; i++)
        if (c->table[i].va && c->table[i].count)
            out[n++] = c->table[i];
    return n;
}

/* Forget every cached block cost (after a profile change or code reload). */
void fastcore_clear(struct fastcore *c)
{
    memset(c->table, 0, (c->tmask + 1) * sizeof(struct bentry));
    c->tcount = 0;
}

/* UC_HOOK_BLOCK: end the slice, or charge the block's precomputed cost. */
void fast_block(void *uc, uint64_t va, uint32_t size, struct fastcore *c)
{
    if (c->clock >= c->slice_end || (c->user_stop && va < c->kbase)) {
        c->stop_reason = STOP_SLICE;
        c->emu_stop(uc);
        return;
    }
    uint64_t root = va >= c->kbase ? 0 : c->root;
    uint64_t i = hash(va, root) & c->tmask;
    struct bentry *e;
    for (;;) {
        e = &c->table[i];
        if (e->va == va && e->root == root)
            break;
        if (!e->va) {
            uint64_t r = c->miss(c->id, va, size, root);
            if (r == MISS_RETRANSLATE) {
                /* Python added an instruction hook inside this block and dropped its
                 * translation: stop before it runs; it is translated again, with the
                 * hook, when the core resumes here. Nothing is charged or cached. */
                c->stop_reason = STOP_SLICE;
                c->emu_stop(uc);
                return;
            }
            insert(c, va, root, (uint32_t)(r >> 32), (uint32_t)r);
            uint64_t j = hash(va, root) & c->tmask;
            while (!(c->table[j].va == va && c->table[j].root == root))
                j = (j + 1) & c->tmask;
            c->table[j].count = 1;
            uint64_t whole = charge(c, r >> 32);
            c->insns += (uint32_t)r;
            if (!root) {
                c->kinsns += (uint32_t)r;
                c->kcycles += whole;
            }
            c->nblocks++;
            return;
        }
        i = (i + 1) & c->tmask;
    }
    uint64_t whole = charge(c, e->cost);
    c->insns += e->ninsn;
    c->nblocks++;
    e->count++;
    if (!root) {
        c->kinsns += e->ninsn;
        c->kcycles += whole;
    }
}

/* UC_HOOK_INSN(RDTSC) on x86-64: EDX:EAX = model cycles; the instruction is skipped. */
int fast_rdtsc(void *uc, struct fastcore *c)
{
    uint64_t lo = c->clock & 0xffffffffu, hi = c->clock >> 32;
    c->reg_write(uc, (int)c->reg_a, &lo);
    c->reg_write(uc, (int)c->reg_b, &hi);
    return 1;
}

/* UC_HOOK_INSN(RDTSCP): as rdtsc, plus ECX = TSC_AUX (the core id). */
int fast_rdtscp(void *uc, struct fastcore *c)
{
    fast_rdtsc(uc, c);
    c->reg_write(uc, (int)c->reg_c, &c->tsc_aux);
    return 1;
}

struct cp_reg { uint32_t crn, crm, op0, op1, op2; uint64_t val; };

/* UC_HOOK_INSN(MRS) on arm64: CNTVCT/CNTPCT read model cycles, CNTFRQ the rate. */
uint32_t fast_mrs(void *uc, int reg, const struct cp_reg *cp, struct fastcore *c)
{
    if (cp->op0 == 3 && cp->op1 == 3 && cp->crn == 14 && cp->crm == 0) {
        uint64_t v;
        if (cp->op2 == 1 || cp->op2 == 2)
            v = c->clock;
        else if (cp->op2 == 0)
            v = c->counter_hz;
        else
            return 0;
        c->reg_write(uc, reg, &v);
        return 1;
    }
    return 0;
}

/* The cost of a transfer or invalidation (full) of `line` by core c: stream_cycles when
 * it continues this core's run of nearby lines, else full. Updates the stream state. */
static inline uint64_t handoff(struct fastcore *c, const struct kcoh *h, uint64_t line,
                               uint64_t full, int *streamed)
{
    uint64_t last = c->coh_last, d;
    c->coh_last = line + 1;
    c->coh_xfers++;
    *streamed = 0;
    if (last) {
        d = line + 1 > last ? line + 1 - last : last - line - 1;
        if (d && d <= h->stream_stride) {
            c->coh_streamed++;
            *streamed = 1;
            return h->stream_cycles < full ? h->stream_cycles : full;
        }
    }
    return full;
}

/* UC_HOOK_MEM_READ|WRITE over the shared region: charge cache-line transfers. */
void fast_mem(void *uc, int type, uint64_t addr, int size, int64_t value, struct fastcore *c)
{
    struct kcoh *h = c->coh;
    (void)uc; (void)size; (void)value;
    if (addr < h->base || addr >= h->base + h->size)
        return;
    uint64_t line = (addr - h->base) >> 6;
    uint64_t me = 1ull << c->id;
    uint8_t owner = h->owner[line];
    uint64_t cost = 0;
    int streamed;
    if (type == 17 /* UC_MEM_WRITE */) {
        c->shared_writes++;
        if (owner != c->id + 1) {
            if (owner || (h->sharers[line] & ~me)) {
                cost = handoff(c, h, line, owner ? h->xfer_cycles : h->inval_cycles,
                               &streamed);
                if (h->posted) {
                    /* Visible after the hand-off, and not before this core's earlier
                     * stores or the line's previous write. */
                    uint64_t start = c->clock > h->ready[line] ? c->clock : h->ready[line];
                    uint64_t vis = start + cost;
                    if (vis < c->wready)
                        vis = c->wready;
                    h->ready[line] = c->wready = vis;
                    if (!streamed) {        /* retires into the store buffer */
                        c->coh_posted++;
                        cost = 0;
                    }
                }
            } else if (!(h->sharers[line] & me)) {
                cost = h->fill_cycles;
            }
            h->owner[line] = (uint8_t)(c->id + 1);
            h->sharers[line] = me;
        }
    } else {
        c->shared_reads++;
        if (owner && owner != c->id + 1) {
            cost = handoff(c, h, line, h->xfer_cycles, &streamed);
            if (h->posted && h->ready[line] > c->clock) {
                c->coh_waited += h->ready[line] - c->clock;
                cost += h->ready[line] - c->clock;
            }
            h->owner[line] = 0;
            h->sharers[line] |= me;
        } else if (!(h->sharers[line] & me)) {
            cost = h->fill_cycles;
            h->sharers[line] |= me;
        }
    }
    c->clock += cost;
    c->coh_cycles += cost;
}
