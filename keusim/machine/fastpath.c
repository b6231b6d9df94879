/*
 * keusim fast path: the per-block and shared-line hooks, in C.
 *
 * A Python callback costs ~0.6-0.9 us, which caps per-block hooks at 1-3 M blocks/s
 * (docs/unicorn.md). These hooks run once per translated-block execution and once
 * per access to a shared (ring) page, so they live here. Python fills the block
 * cost table once per block (capstone + the microarchitecture profile) through the
 * `miss` callback; everything else is table lookups and counter updates.
 *
 * The scheduler loop (sched_run) and spin fast-forward live here too: see the section
 * at the end of this file and docs/architecture.md, "virtual time".
 *
 * Layouts of `struct fastcore`, `struct kcoh`, `struct bentry` and `struct sched` are
 * mirrored by ctypes in keusim/machine/fastpath.py (tests/test_abi.py compares them with
 * the compiler's DWARF): change both together.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fiber.h"
#include "ucapi.h"

typedef void (*emu_stop_fn)(void *uc);
typedef int (*reg_write_fn)(void *uc, int regid, const void *value);
/* Returns (cycles << 32) | instructions for the block at va (root: user MMU root), and
 * sets fastcore.miss_flags to its BF_* flags. */
typedef uint64_t (*miss_fn)(uint64_t core, uint64_t va, uint64_t size, uint64_t root);

struct bentry {
    uint64_t va;
    uint64_t root;      /* 0 for kernel addresses (shared by every address space) */
    uint32_t cost;      /* 1/256 cycles (keusim.model.costmodel.FRACTION) */
    uint32_t ninsn;
    uint64_t count;     /* executions: for attribution by function after the run */
    uint32_t flags;     /* BF_*: what the block may do (set by Python when it prices it) */
    uint32_t skip;      /* spin detection: times to skip this block as a loop head */
    uint64_t fails;     /* spin detection: failed recordings headed here (back-off) */
};

/* bentry.flags. BF_SPIN: the block may be part of a fast-forwarded spin loop: user code
 * whose instructions touch only general registers, flags and memory (no system,
 * counter, FP/SIMD, atomic or string instructions; keusim/arch/<arch>.py spin_eligible). */
#define BF_SPIN 1u
/* BF_SVC: the block ends in a system call instruction whose immediate is in bits 16-31
 * (arm64 svc #imm: the syndrome records it). */
#define BF_SVC 2u
/* BF_SYNC: a hook in the block reads the PC (x86 sysenter, port I/O): keep Unicorn's
 * per-access PC sync for it (fastcore.sync_skip). */
#define BF_SYNC 4u
/* BF_NOSTORE: no instruction of the block writes memory (keusim.arch.isa.may_store). A
 * loop made only of such blocks cannot store, so its second iteration is recorded without
 * the all-RAM store hook (fast_spin_write could never fire). With a Unicorn that keeps the
 * inline fast path for unhooked pages, adding that hook empties the emulated TLB. */
#define BF_NOSTORE 8u

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
    /* Added at the end: bit per parked core whose spin loop reads the line (wake it when
     * another core writes the line). */
    uint64_t *watch;
    /* Added at the end: the cost, in 1/256 cycles, of each access to the line a core is
     * streaming (the line of its last hand-off, when that hand-off continued a run). A
     * run's lines are in flight together, and how many fit is bounded by the load and
     * store queues: every access to a line in flight holds an entry until the line
     * arrives, so a run of lines touched by 4-byte copies is slower per line than one
     * touched by 8-byte copies (docs/cycle-model.md §3). 0: off. */
    uint64_t stream_access;
    /* Added at the end: poll phase. A core that re-reads a line within poll_max cycles of
     * its previous read of it is polling: a read that finds the line's new value not yet
     * visible (ready[line] in the future) would natively return the old value, and the
     * loop would read again one period later. The wait is therefore rounded up to whole
     * poll periods (the time since the previous read). 0: off. */
    uint64_t poll_max;
    uint64_t mlp;               /* added at the end: overlap a streaming reader's misses */
};

enum { STOP_NONE = 0, STOP_SLICE = 1, STOP_TRAP = 2 };
enum { ST_RUN = 0, ST_HALT = 1 };
enum { SP_IDLE = 0, SP_REC1 = 1, SP_REC2 = 2, SP_PARKED = 3 };
#define MISS_RETRANSLATE UINT64_MAX   /* keusim/machine/fastpath.py */

struct sched;
struct spin;

#define MRU_SLOTS 256         /* fastcore.mru (keusim/machine/fastpath.py FastCore: 256) */

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
    /* Added at the end: the scheduler state of the core (keusim/machine/machine.py Core
     * reads and writes these), for the native scheduler loop below. */
    struct sched *sched;
    void *uc;
    uint64_t state;             /* ST_RUN | ST_HALT */
    uint64_t irq;               /* pending IRQ_* bits */
    uint64_t wake_at;           /* earliest model time an IPI can wake it */
    uint64_t timer;             /* absolute deadline, 0 = off */
    uint64_t pc;                /* where the core resumes */
    uint64_t need_py;           /* a Python hook acted in this slice: Python must follow up */
    uint64_t pc_reg;            /* arch register id of the PC */
    uint64_t nregs;             /* registers a spin-loop snapshot holds (regs[]) */
    int32_t regs[40];           /* their arch register ids */
    struct spin *spin;
    /* Added at the end: native trap delivery (keusim/arch/<arch>_trap.c). */
    trap_entry_fn trap_fn;      /* NULL: Python delivers every trap */
    void *trap_arg;
    uint64_t trap_pending;      /* a system call stopped the core; not delivered yet */
    uint64_t syndrome;          /* its syndrome (arm64 ESR), when the arch has one */
    uint64_t last_flags;        /* bentry.flags of the block running now */
    uint64_t root_reg, root_mask;   /* the user MMU root: arch register id, address bits */
    void *py_intr;              /* Python UC_HOOK_INTR callback for what C does not take */
    uint64_t miss_flags;        /* set by the miss callback: the new block's BF_* flags */
    uint64_t syscalls;          /* system calls delivered to the kernel (native or Python) */
    uint64_t coh_run;           /* added at the end: the last hand-off continued a run */
    /* Added at the end: the poll state of fast_mem, the last read of each of the last
     * POLL_LINES lines this core read (1 + line, 0: free; replaced round robin). */
    uint64_t pl_line[8], pl_clock[8], pl_next;
    uint64_t pl_fresh;          /* bit per slot: that read fetched the line (a new value) */
    uint64_t pl_coh[8];         /* coh_cycles at that read: stalls are no work to hide under */
    uint64_t flush_clock;       /* the last poll exit: a mispredicted loop branch */
    uint64_t pipe;              /* 1/256 cycles: when this core's run of lines is through */
    /* Added at the end: Unicorn's uc_struct.skip_sync_pc_on_exit of this core's instance
     * (keusim/machine/ucutil.py find_skip_sync_offset), or NULL. Set, Unicorn does not
     * rebuild the guest PC (cpu_restore_state) before each memory-hook callback; fast_mem
     * and fast_spin_write never read it. fast_block sets it for every block without
     * BF_SYNC: Unicorn wrote the block's start PC before calling the block hook, so a stop
     * at the block start (the exit-request check right after the hook) is unaffected. */
    uint8_t *sync_skip;
    /* Added at the end: the native wake-up path (docs/architecture.md, "The native
     * scheduler loop"). Model cycles spent halted (Core.idle, machine.py); the arch's
     * interrupt entry (keusim/arch/<arch>_trap.c) and its argument, NULL until the kernel
     * reported ready; the Python callbacks of the platform device, for the registers the
     * native device (plat_read/plat_write) does not take. */
    uint64_t idle;
    irq_entry_fn irq_fn;
    void *irq_arg;
    void *py_mmio_read, *py_mmio_write;
    /* Added at the end: the last entry found at each of MRU_SLOTS slots (by address), for
     * lookup without hashing; emptied whenever the table's entries move. */
    struct bentry *mru[MRU_SLOTS];
};
#define POLL_LINES 8                /* = SPIN_LINES: a parked loop's lines all fit */

/* The native scheduler and spin fast-forward: see the section at the end of this file. */
#define INF UINT64_MAX
#define SPIN_MAX 16           /* blocks in a fast-forwarded loop */
#define SPIN_LINES 8          /* shared lines it may read */
#define SPIN_NREG 40          /* registers in a snapshot (fastcore.regs) */
#define SPIN_BACKOFF 12       /* a head that failed k times is skipped 2^min(k, 12) - 1 times */

struct ucapi ucapi;

/* The libunicorn entry points this library calls (the ones the Python binding loaded). */
void fastpath_api(void *emu_start, void *reg_read, void *reg_write, void *read_batch,
                  void *write_batch, void *hook_add, void *hook_del, void *context_restore,
                  void *ctl)
{
    ucapi.emu_start = emu_start;
    ucapi.reg_read = reg_read;
    ucapi.reg_write = reg_write;
    ucapi.read_batch = read_batch;
    ucapi.write_batch = write_batch;
    ucapi.hook_add = hook_add;
    ucapi.hook_del = hook_del;
    ucapi.context_restore = context_restore;
    ucapi.ctl = ctl;
}

struct spin {
    uint64_t state;             /* SP_* */
    uint64_t head, n, pos;      /* first block, blocks per iteration, position in it */
    uint64_t va[SPIN_MAX];
    uint32_t cost[SPIN_MAX], ninsn[SPIN_MAX];
    uint64_t reads[SPIN_MAX];   /* shared-region reads by each block */
    uint8_t rmask[SPIN_MAX];    /* the loop's lines (bits: index in lines[]) each block reads */
    uint64_t r0, w0, c0;        /* shared reads, writes, coherence cycles at the start */
    uint64_t rblk;              /* shared reads at the start of the current block */
    uint64_t lines[SPIN_LINES], nlines;
    uint64_t bad;               /* a store that was not silent, or too many lines */
    uint64_t disturbed;         /* another agent may have written what it read */
    size_t whook;
    uint64_t hooked;
    uint64_t stores;            /* a block of the loop may write memory (no BF_NOSTORE) */
    uint64_t storeless;         /* only loops without stores park (fastcore_spin_storeless) */
    uint64_t wake;              /* parked, and something it reads may have changed */
    uint64_t fixed, insns, sreads;  /* per iteration: cost (1/256 cycles), insns, reads */
    uint64_t regs[SPIN_MAX][SPIN_NREG];
    void *ptrs[SPIN_MAX][SPIN_NREG];
    /* statistics (not part of any report) */
    uint64_t parks, wakes, ff_blocks;
    uint64_t recordings, failed;    /* second iterations recorded, and those that failed */
};

#define MAX_CORES 64

struct sched {
    uint64_t ncores;
    struct fastcore *core[MAX_CORES];
    uint64_t lookahead, quantum, max_cycles;
    uint64_t ff;                /* spin fast-forward on */
    uint64_t inline_ok;         /* sched_continue may start slices in the block hook */
    uint64_t nparked;
    uint8_t *ram;
    uint64_t ram_size;
    uint64_t err;               /* uc_err of the emu_start sched_run returned after */
    uint64_t device_next;       /* model time of the next device event (INF: none) */
    uint64_t slices, vslices;   /* statistics: real and fast-forwarded slices */
    uint64_t check_stores;      /* 1; 0 plants a bug for tests: stores need not be silent */
    uint64_t starts;            /* statistics: uc_emu_start calls by sched_run */
    uint64_t native_traps;      /* deliver system calls natively (trap_fn); 0: in Python */
    uint64_t ntraps;            /* statistics: system calls delivered natively */
    uint64_t yield_at;          /* return to Python before a slice that starts here or later */
    uint64_t parked_timers;     /* statistics: timer deadlines reached by a parked core */
    /* Added at the end: the native wake-up path. native_irqs: halted cores are woken and
     * interrupts delivered by sched_run, and the platform device's PLAT_IPI, PLAT_WAIT and
     * PLAT_IRQ_CAUSE are taken natively (0: all in Python, Machine.native_irqs). */
    uint64_t native_irqs;
    uint64_t ipi_cycles;        /* Machine.ipi_cycles */
    uint64_t exception_cycles;  /* Machine.exception_cycles */
    uint64_t nwakes;            /* statistics: wake-ups and interrupts taken natively */
    uint64_t ndev;              /* statistics: platform-device accesses taken natively */
    /* Added at the end: the nested core switch (sched_continue). nest: on (1) or off
     * (Machine.nested_switch); in_run: sched_run is running slices (a slice Python started
     * never nests); depth: a nested slice is running; pending: 1 + the id of a nested core
     * whose slice Python must finish (0: none), pending_err its uc_err; nested: statistics,
     * slices started nested. */
    uint64_t nest, in_run, depth, pending, pending_err, nested;
    /* Added at the end: the resident-core switch (fiber_wait), which supersedes the
     * nested one when on. fibers: on (1) or off (Machine.resident_cores); switches:
     * statistics, slices resumed in the block hook a core waits in; fib: the cores' fibers
     * (struct fibers: sched_run allocates them, sched_free frees them). */
    uint64_t fibers, switches;
    void *fib;
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
    memset(c->mru, 0, sizeof c->mru);
    return c->table ? 0 : -1;
}

void fastcore_free(struct fastcore *c)
{
    free(c->table);
    c->table = NULL;
    memset(c->mru, 0, sizeof c->mru);
}

static inline uint64_t hash(uint64_t va, uint64_t root)
{
    uint64_t x = va ^ (root * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 32);
}

static struct bentry *insert(struct fastcore *c, uint64_t va, uint64_t root, uint32_t cost,
                             uint32_t n, uint32_t flags);

static void grow(struct fastcore *c)
{
    struct bentry *old = c->table;
    uint64_t oldn = c->tmask + 1;
    c->tmask = oldn * 2 - 1;
    c->tcount = 0;
    c->table = calloc(c->tmask + 1, sizeof(struct bentry));
    memset(c->mru, 0, sizeof c->mru);
    for (uint64_t i = 0; i < oldn; i++)
        if (old[i].va) {
            struct bentry *e = insert(c, old[i].va, old[i].root, old[i].cost, old[i].ninsn,
                                      old[i].flags);
            e->count = old[i].count;
            e->skip = old[i].skip;
            e->fails = old[i].fails;
        }
    free(old);
}

/* Add (or replace) the entry for (va, root); returns it. */
static struct bentry *insert(struct fastcore *c, uint64_t va, uint64_t root, uint32_t cost,
                             uint32_t n, uint32_t flags)
{
    if ((c->tcount + 1) * 4 > (c->tmask + 1) * 3)
        grow(c);
    uint64_t i = hash(va, root) & c->tmask;
    while (c->table[i].va && !(c->table[i].va == va && c->table[i].root == root))
        i = (i + 1) & c->tmask;
    if (!c->table[i].va)
        c->tcount++;
    c->table[i] = (struct bentry){va, root, cost, n, 0, flags, 0, 0};
    return &c->table[i];
}

/* The entry for (va, root), or NULL. */
static inline struct bentry *lookup(struct fastcore *c, uint64_t va, uint64_t root)
{
    uint64_t i = hash(va, root) & c->tmask;
    for (;;) {
        struct bentry *e = &c->table[i];
        if (e->va == va && e->root == root)
            return e;
        if (!e->va)
            return NULL;
        i = (i + 1) & c->tmask;
    }
}

/* The MRU slot of (va, root). */
static inline struct bentry **mru_slot(struct fastcore *c, uint64_t va, uint64_t root)
{
    return &c->mru[((va >> 2) ^ (root >> 12)) & (MRU_SLOTS - 1)];
}

/* lookup, first in the MRU slots: a block that ran recently is found without hashing. */
static inline struct bentry *lookup_mru(struct fastcore *c, uint64_t va, uint64_t root)
{
    struct bentry **slot = mru_slot(c, va, root);
    struct bentry *e = *slot;
    if (e && e->va == va && e->root == root)
        return e;
    e = lookup(c, va, root);
    if (e)
        *slot = e;
    return e;
}

/* Copy up to max table entries with a nonzero count to out; returns how many. */
uint64_t fastcore_dump(struct fastcore *c, struct bentry *out, uint64_t max)
{
    uint64_t n = 0;
    if (!c->table)          /* freed (Machine.close): nothing to report */
        return 0;
    for (uint64_t i = 0; i <= c->tmask && n < max; i++)
        if (c->table[i].va && c->table[i].count)
            out[n++] = c->table[i];
    return n;
}

/* Forget every cached block cost (after a profile change or code reload). */
void fastcore_clear(struct fastcore *c)
{
    memset(c->table, 0, (c->tmask + 1) * sizeof(struct bentry));
    memset(c->mru, 0, sizeof c->mru);
    c->tcount = 0;
}

static int sched_continue(struct fastcore *c, uint64_t va);
static int spin_track(void *uc, struct fastcore *c, struct bentry *e, uint64_t va);
static inline void start_rec1(struct fastcore *c, struct bentry *e, uint64_t va);
static void wake_others(struct fastcore *c);

/* Can the priced block e at va be part of a fast-forwarded loop now? (The block's own flag
 * first: most blocks are decided there.) */
static inline int spin_candidate(const struct fastcore *c, const struct bentry *e, uint64_t va)
{
    return (e->flags & BF_SPIN) && c->sched && c->sched->ff && va < c->kbase && !c->user_stop;
}

/* start_rec1's early outcomes, which leave the core idle: a block that may store while
 * only storeless loops park, or a loop head in back-off (counted down). Returns 1 for
 * those, 0 when a recording starts. */
static inline int rec1_declined(struct spin *sp, struct bentry *e)
{
    if (sp->storeless && !(e->flags & BF_NOSTORE))
        return 1;
    if (e->skip) {
        e->skip--;
        return 1;
    }
    return 0;
}

/* Count block e as executed: its cost, instructions, execution count, and the flags the
 * other hooks read. Returns the whole cycles charged. */
static inline uint64_t count_block(struct fastcore *c, struct bentry *e)
{
    if (c->sync_skip)
        *c->sync_skip = !(e->flags & BF_SYNC);
    c->last_flags = e->flags;
    uint64_t whole = charge(c, e->cost);
    c->insns += e->ninsn;
    c->nblocks++;
    e->count++;
    return whole;
}

/* fast_block's whole work: end the slice (or start the next one of the same core, see
 * sched_continue), or charge the block's precomputed cost. */
static __attribute__((noinline))
void block_slow(void *uc, uint64_t va, uint32_t size, struct fastcore *c)
{
    if (c->user_stop && va < c->kbase) {
        c->stop_reason = STOP_SLICE;
        c->emu_stop(uc);
        return;
    }
    if (c->clock >= c->slice_end && !(c->sched && sched_continue(c, va))) {
        c->stop_reason = STOP_SLICE;
        c->emu_stop(uc);
        return;
    }
    uint64_t root = va >= c->kbase ? 0 : c->root;
    struct bentry *e = lookup_mru(c, va, root);
    if (!e) {
        uint64_t r = c->miss(c->id, va, size, root);
        if (r == MISS_RETRANSLATE) {
            /* Python added an instruction hook inside this block and dropped its
             * translation: stop before it runs; it is translated again, with the
             * hook, when the core resumes here. Nothing is charged or cached. */
            c->stop_reason = STOP_SLICE;
            c->emu_stop(uc);
            return;
        }
        e = insert(c, va, root, (uint32_t)(r >> 32), (uint32_t)r, (uint32_t)c->miss_flags);
        c->miss_flags = 0;
        if (c->spin && c->spin->state)
            spin_track(uc, c, NULL, va);    /* a new block is no repetition: reset */
    } else if (c->spin && c->spin->state) {
        if (spin_track(uc, c, e, va))
            return;                         /* parked: stopped before this block */
    } else if (c->spin && spin_candidate(c, e, va)) {
        start_rec1(c, e, va);   /* spin_track's idle case, without the call (mostly a back-off) */
    }
    if (!root && c->sched)
        wake_others(c);     /* kernel code may write any process's memory: see below */
    uint64_t whole = count_block(c, e);
    if (!root) {
        c->kinsns += e->ninsn;
        c->kcycles += whole;
    }
}

/* UC_HOOK_BLOCK. The common case takes block_slow's path with nothing to decide: a user
 * block (nonzero root) seen before, inside the slice, no interrupt waiting, no spin
 * recording, and, where it may head a loop, start_rec1's early outcomes (the block may
 * store while only storeless loops park; or it is in back-off). That case is charged
 * here with the same effects in the same order; everything else goes to block_slow. Kept
 * a leaf, the compiler saves no registers for it: it runs for every block executed. */
void fast_block(void *uc, uint64_t va, uint32_t size, struct fastcore *c)
{
    uint64_t root = c->root;
    if (__builtin_expect(c->user_stop || c->clock >= c->slice_end || va >= c->kbase || !root,
                         0))
        return block_slow(uc, va, size, c);
    struct bentry *e = *mru_slot(c, va, root);
    if (__builtin_expect(!e || e->va != va || e->root != root, 0))
        return block_slow(uc, va, size, c);
    struct spin *sp = c->spin;
    if (sp && (sp->state || (spin_candidate(c, e, va) && !rec1_declined(sp, e))))
        return block_slow(uc, va, size, c);     /* spin tracking, or a recording starts */
    count_block(c, e);
}

/* UC_HOOK_INSN(SYSCALL) on x86-64: stop; the trap is delivered after the stop (natively
 * by sched_run, or by Python). */
void fast_syscall(void *uc, struct fastcore *c)
{
    c->trap_pending = 1;
    c->syndrome = 0;
    c->stop_reason = STOP_TRAP;
    c->emu_stop(uc);
}

typedef void (*intr_fn)(void *uc, uint32_t intno, void *ud);

/* UC_HOOK_INTR on arm64: an svc from a block priced with its immediate (BF_SVC) is
 * recorded here with its syndrome (Arm ARM, ESR_ELx: EC 0x15, IL, imm16); anything else
 * goes to the Python hook, which reads the syndrome from the emulator's state. */
void fast_intr(void *uc, uint32_t intno, struct fastcore *c)
{
    if (intno == 2 /* EXCP_SWI */ && (c->last_flags & BF_SVC) && !c->trap_pending
            && !c->need_py) {
        c->trap_pending = 1;
        c->syndrome = 0x15u << 26 | 1u << 25 | (c->last_flags >> 16);
        c->stop_reason = STOP_TRAP;
        c->emu_stop(uc);
        return;
    }
    ((intr_fn)c->py_intr)(uc, intno, NULL);
}

/* UC_HOOK_CODE at the kernel's root-switch label: the user MMU root (block-cost keys). */
void fast_root(void *uc, uint64_t addr, uint32_t size, struct fastcore *c)
{
    uint64_t v = 0;
    (void)addr; (void)size;
    ucapi.reg_read(uc, (int)c->root_reg, &v);
    c->root = v & c->root_mask;
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
    c->coh_run = 0;
    *streamed = 0;
    if (last) {
        d = line + 1 > last ? line + 1 - last : last - line - 1;
        if (d && d <= h->stream_stride) {
            c->coh_streamed++;
            c->coh_run = h->stream_access != 0;
            *streamed = 1;
            return h->stream_cycles < full ? h->stream_cycles : full;
        }
    }
    return full;
}

static void wake_watchers(struct fastcore *c, uint64_t who);
static void spin_line(struct fastcore *c, uint64_t line);

/* The slot of line in c's poll state, or -1. */
static inline int poll_slot(const struct fastcore *c, uint64_t line)
{
    for (int i = 0; i < POLL_LINES; i++)
        if (c->pl_line[i] == line + 1)
            return i;
    return -1;
}

/* A shared read of line by c now: returns the clock of c's previous read of it (INF:
 * none remembered), remembers this one and sets *slot to the line's slot. */
static inline uint64_t poll_note(struct fastcore *c, uint64_t line, int *fresh,
                                 uint64_t *stalled, int *slot)
{
    int i = poll_slot(c, line);
    uint64_t prev = INF;
    *fresh = 0;
    *stalled = 0;
    if (i >= 0) {
        prev = c->pl_clock[i];
        *fresh = (int)(c->pl_fresh >> i) & 1;
        *stalled = c->coh_cycles - c->pl_coh[i];
    } else {
        i = (int)c->pl_next;
        c->pl_next = (c->pl_next + 1) % POLL_LINES;
        c->pl_line[i] = line + 1;
    }
    c->pl_clock[i] = c->clock;
    c->pl_coh[i] = c->coh_cycles;
    c->pl_fresh &= ~(1ull << i);
    *slot = i;
    return prev;
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
    uint64_t cost = 0, pipe_add = 0;
    int streamed = 0, hoff = 0;
    int in_run = c->coh_run && line + 1 == c->coh_last;   /* the line in flight */
    if (type == 17 /* UC_MEM_WRITE */) {
        c->shared_writes++;
        if (h->watch[line] & ~me)
            wake_watchers(c, h->watch[line] & ~me);
        if (owner != c->id + 1) {
            if (owner || (h->sharers[line] & ~me)) {
                cost = handoff(c, h, line, owner ? h->xfer_cycles : h->inval_cycles,
                               &streamed);
                hoff = 1;
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
                if (streamed) {             /* the run's throughput: see the end */
                    pipe_add = cost << 8;
                    cost = 0;
                }
            } else if (!(h->sharers[line] & me)) {
                cost = h->fill_cycles;
            }
            h->owner[line] = (uint8_t)(c->id + 1);
            h->sharers[line] = me;
        }
    } else {
        int was_fresh;
        uint64_t stalled;
        int slot;
        uint64_t prev = poll_note(c, line, &was_fresh, &stalled, &slot);
        c->shared_reads++;
        if (c->spin && c->spin->state == SP_REC2)
            spin_line(c, line);
        if (owner && owner != c->id + 1) {
            cost = handoff(c, h, line, h->xfer_cycles, &streamed);
            hoff = 1;
            if (streamed) {
                pipe_add = cost << 8;
                cost = 0;
            }
            if (h->posted && h->ready[line] > c->clock) {
                uint64_t wait = h->ready[line] - c->clock;
                if (h->poll_max && prev != INF) {
                    /* Polling: the read that sees the store is the loop's first one at or
                     * after ready; the earlier ones saw the old value. */
                    uint64_t period = c->clock - prev;
                    if (period && period <= h->poll_max)
                        wait = (wait + period - 1) / period * period;
                }
                c->coh_waited += wait;
                cost += wait;
            } else if (h->mlp && was_fresh && prev != INF && !streamed
                       && c->flush_clock <= prev) {
                /* The previous read of this line fetched a new value too: the reader
                 * is streaming, not spinning, its branch predicts data and this load
                 * issued early, under the work (not the stalls) since that read. */
                uint64_t since = c->clock - prev - stalled;
                cost = since >= cost ? 0 : cost - since;
            }
            if (!was_fresh && prev != INF && c->clock - prev <= h->poll_max)
                c->flush_clock = c->clock;      /* a poll loop ends: its branch mispredicts */
            c->pl_fresh |= 1ull << slot;
            h->owner[line] = 0;
            h->sharers[line] |= me;
        } else if (!(h->sharers[line] & me)) {
            cost = h->fill_cycles;
            h->sharers[line] |= me;
        }
    }
    c->clock += cost;
    c->coh_cycles += cost;
    /* A run of lines is a pipe: every line continuing it (stream_cycles) and every access
     * to the line in flight (stream_access) adds to when the run is through, and the core
     * stalls only when it gets ahead of that: the work it does between lines overlaps
     * with the fetches. The pipe runs at most one transfer behind the core (the fetches
     * it can have issued early); a hand-off that starts a run restarts it. */
    if (hoff && !streamed)
        c->pipe = (c->clock << 8) | c->frac;
    if (streamed || in_run)
        pipe_add += h->stream_access;
    if (pipe_add) {
        uint64_t now = (c->clock << 8) | c->frac, ahead = h->xfer_cycles << 8;
        uint64_t floor = now > ahead ? now - ahead : 0;
        uint64_t p = (c->pipe > floor ? c->pipe : floor) + pipe_add;
        c->pipe = p;
        if (p > now) {      /* whole cycles, as every coherence charge (frac is the blocks') */
            uint64_t stall = (p - now + 255) >> 8;
            c->clock += stall;
            c->coh_cycles += stall;
        }
    }
}

/* ======================================================================================
 * The native scheduler loop and spin fast-forward (docs/architecture.md, "virtual time").
 *
 * The scheduler is the one machine.py describes: the core with the lowest next time runs
 * (ties: lowest id) until its clock reaches the next-lowest core's time plus `lookahead`,
 * `quantum` cycles, `max_cycles` or its timer deadline, checked before each block. Here
 * it runs without returning to Python: sched_run starts slices with uc_emu_start, and
 * sched_continue, called by the block hook at a slice end, starts the same core's next
 * slice in place when the scheduler would pick it again. Python is entered only for what
 * it must do: a trap to deliver, a device access, a core waking from halt, an interrupt,
 * the end of the run.
 *
 * Spin fast-forward. A core polling a ring re-executes a loop whose outcome cannot change
 * until another core writes a line it reads. spin_track recognises one: the same cycle of
 * at most SPIN_MAX blocks twice in a row, all user code of BF_SPIN blocks, the second
 * time with the registers back at their values at its start, at least one read of the
 * shared region, no write to it, every other store silent (it writes the value already
 * there, checked by a temporary write hook), and no coherence cost. The loop's effect on
 * everything but the clock and the counters is then nil, so every later iteration is the
 * same as that second one. The core is parked: its slices are computed here, block by
 * block with the costs recorded (or whole iterations at a time), exactly where
 * uc_emu_start would have ended them, so the clock, the instruction and block counts and
 * the shared-read count are those of a core that spun. It is woken (made real again at
 * exactly its position: registers from the snapshot taken at that block of the second
 * iteration, PC at that block) when another core writes a line the loop reads (the
 * coherence hook sees the write), when any other core runs kernel code (the kernel may
 * write any process's memory), and whenever the loop returns to Python (devices, trap
 * delivery). Until then nothing it could read has changed, so it would have spun.
 * ==================================================================================== */

static inline uint64_t next_time(const struct fastcore *c)
{
    if (c->state == ST_RUN)
        return c->clock;
    if (c->irq)
        return c->clock > c->wake_at ? c->clock : c->wake_at;
    if (c->timer)
        return c->clock > c->timer ? c->clock : c->timer;
    return INF;
}

/* The core that runs next (lowest next time, ties lowest id); *t its time, *horizon the
 * lowest time among the others. */
static struct fastcore *pick(struct sched *s, uint64_t *t, uint64_t *horizon)
{
    struct fastcore *best = NULL;
    uint64_t bt = INF, second = INF;
    for (uint64_t i = 0; i < s->ncores; i++) {
        uint64_t x = next_time(s->core[i]);
        if (!best || x < bt) {
            if (best)
                second = bt < second ? bt : second;
            best = s->core[i];
            bt = x;
        } else if (x < second) {
            second = x;
        }
    }
    *t = bt;
    *horizon = second;
    return best;
}

/* The slice end machine.py's step() computes for core c picked with the given horizon. */
static inline uint64_t slice_end(struct sched *s, struct fastcore *c, uint64_t horizon)
{
    uint64_t end = horizon < INF ? horizon + s->lookahead : INF;
    if (c->clock + s->quantum < end)
        end = c->clock + s->quantum;
    if (s->max_cycles < end)
        end = s->max_cycles;
    if (s->device_next < end)
        end = s->device_next;
    if (c->timer && c->timer < end)
        end = c->timer;
    return end > c->clock + 1 ? end : c->clock + 1;
}

/* Can core c, picked at time t, start a slice without Python? (Python's step() would do
 * nothing but compute its slice end.) */
static inline int plain_start(struct sched *s, struct fastcore *c, uint64_t t)
{
    return t < INF && t < s->max_cycles && t < s->device_next && c->state == ST_RUN
        && !c->irq && !(c->timer && c->clock >= c->timer);
}

/* -- spin fast-forward ---------------------------------------------------------------- */

/* A shared read in the recorded iteration: remember the line and watch it from now on
 * (a write by another core before the core parks disqualifies the recording). */
static void spin_line(struct fastcore *c, uint64_t line)
{
    struct spin *sp = c->spin;
    for (uint64_t i = 0; i < sp->nlines; i++)
        if (sp->lines[i] == line) {
            sp->rmask[sp->pos - 1] |= (uint8_t)(1u << i);
            return;
        }
    if (sp->nlines == SPIN_LINES) {
        sp->bad = 1;
        return;
    }
    sp->rmask[sp->pos - 1] |= (uint8_t)(1u << sp->nlines);
    sp->lines[sp->nlines++] = line;
    c->coh->watch[line] |= 1ull << c->id;
}

/* UC_HOOK_MEM_WRITE over all RAM, only while a loop's second iteration is recorded: a
 * store that changes memory disqualifies it. Called before the store happens. */
void fast_spin_write(void *uc, int type, uint64_t addr, int size, int64_t value,
                     struct fastcore *c)
{
    struct sched *s = c->sched;
    (void)uc; (void)type;
    if (c->spin->state != SP_REC2 || !s->check_stores)
        return;
    if (size <= 0 || size > 8 || addr + (uint64_t)size > s->ram_size
            || memcmp(s->ram + addr, &value, (size_t)size) != 0)
        c->spin->bad = 1;
}

static void unhook(struct fastcore *c)
{
    struct spin *sp = c->spin;
    if (sp->hooked) {
        ucapi.hook_del(c->uc, sp->whook);
        sp->hooked = 0;
    }
}

/* Give up recording; back off on the head block if it was a real candidate. */
static void watch(struct fastcore *c, int on);

static void spin_fail(struct fastcore *c, int backoff)
{
    struct spin *sp = c->spin;
    unhook(c);
    if (sp->state == SP_REC2) {
        watch(c, 0);
        sp->failed++;
    }
    if (backoff) {
        struct bentry *h = lookup(c, sp->head, c->root);
        if (h) {
            uint64_t k = h->fails < SPIN_BACKOFF ? h->fails : SPIN_BACKOFF;
            h->fails++;
            h->skip = (uint32_t)((1u << k) - 1);
        }
    }
    sp->state = SP_IDLE;
}

/* Read the snapshot registers (fastcore.regs) into the slots ptrs point to. Returns a
 * uc_err. */
static int read_regs(struct fastcore *c, void **ptrs)
{
    return ucapi.read_batch(c->uc, c->regs, ptrs, (int)c->nregs);
}

/* Inlined: it runs at every block that may start a loop, and mostly returns at once. */
static inline __attribute__((always_inline))
void start_rec1(struct fastcore *c, struct bentry *e, uint64_t va)
{
    struct spin *sp = c->spin;
    if (rec1_declined(sp, e)) {
        sp->state = SP_IDLE;
        return;
    }
    sp->state = SP_REC1;
    sp->head = va;
    sp->n = 1;
    sp->va[0] = va;
    sp->cost[0] = e->cost;
    sp->ninsn[0] = e->ninsn;
    sp->stores = !(e->flags & BF_NOSTORE);
    sp->r0 = c->shared_reads;
    sp->w0 = c->shared_writes;
}

/* Advance parked core c, as its slices would have run, until a block starts at clock >=
 * end. Counts every block as executed. */
static void spin_advance(struct fastcore *c, uint64_t end)
{
    struct spin *sp = c->spin;
    if (c->clock >= end)
        return;
    /* Whole iterations first: the clock only grows, so if it is still below end after k
     * whole iterations, every block boundary in them was too. */
    uint64_t have = (c->clock << 8) | c->frac, want = end << 8;
    if (want - have > sp->fixed) {
        uint64_t k = (want - have - 1) / sp->fixed;
        if (k) {
            uint64_t acc = have + k * sp->fixed;
            c->clock = acc >> 8;
            c->frac = acc & 255;
            c->insns += k * sp->insns;
            c->nblocks += k * sp->n;
            c->shared_reads += k * sp->sreads;
            sp->ff_blocks += k * sp->n;
            for (uint64_t j = 0; j < sp->n; j++) {
                struct bentry *e = lookup(c, sp->va[j], c->root);
                if (e)
                    e->count += k;
            }
        }
    }
    while (c->clock < end) {
        uint64_t j = sp->pos;
        charge(c, sp->cost[j]);
        c->insns += sp->ninsn[j];
        c->nblocks++;
        c->shared_reads += sp->reads[j];
        sp->ff_blocks++;
        struct bentry *e = lookup(c, sp->va[j], c->root);
        if (e)
            e->count++;
        sp->pos = j + 1 == sp->n ? 0 : j + 1;
    }
}

static void watch(struct fastcore *c, int on)
{
    struct spin *sp = c->spin;
    uint64_t me = 1ull << c->id;
    for (uint64_t i = 0; i < sp->nlines; i++) {
        if (on)
            c->coh->watch[sp->lines[i]] |= me;
        else
            c->coh->watch[sp->lines[i]] &= ~me;
    }
}

/* Make parked core c real again at its position: registers of that block of the loop,
 * PC at it. Returns 0, or -1 if the registers could not be written. */
static int materialize(struct fastcore *c)
{
    struct spin *sp = c->spin;
    if (sp->state != SP_PARKED)
        return 0;
    watch(c, 0);
    c->sched->nparked--;
    sp->state = SP_IDLE;
    sp->wake = 0;
    sp->wakes++;
    /* The poll state (fast_mem) of a core that spun: each line the loop reads was last
     * read in the nearest block before pos that reads it, at the clock just after that
     * block's charge (the loop has no coherence costs). Its slot is there: the recorded
     * iterations read it, and the state holds as many lines as a loop may read. */
    for (uint64_t i = 0; i < sp->nlines; i++) {
        uint64_t acc = (c->clock << 8) | c->frac;
        int slot = poll_slot(c, sp->lines[i]);
        for (uint64_t k = 1; slot >= 0 && k <= sp->n; k++) {
            uint64_t j = (sp->pos + sp->n - k) % sp->n;
            if (sp->rmask[j] & (1u << i)) {
                c->pl_clock[slot] = acc >> 8;
                c->pl_coh[slot] = c->coh_cycles;    /* a parked loop stalls nowhere */
                break;
            }
            acc -= sp->cost[j];
        }
    }
    c->pc = sp->va[sp->pos];
    if (ucapi.write_batch(c->uc, c->regs, sp->ptrs[sp->pos], (int)c->nregs))
        return -1;
    return c->reg_write(c->uc, (int)c->pc_reg, &c->pc) ? -1 : 0;
}

/* c may have written what another core's loop reads: wake a parked one, disqualify a
 * recording one. */
static inline void touched(struct fastcore *o)
{
    if (o->spin->state == SP_PARKED)
        o->spin->wake = 1;
    else if (o->spin->state == SP_REC2)
        o->spin->disturbed = 1;
}

/* Every core but c (it runs kernel code, which may write any process's memory). */
static void wake_others(struct fastcore *c)
{
    struct sched *s = c->sched;
    for (uint64_t i = 0; i < s->ncores; i++)
        if (s->core[i] != c)
            touched(s->core[i]);
}

/* The cores in `who` (c wrote a shared line they watch). */
static void wake_watchers(struct fastcore *c, uint64_t who)
{
    struct sched *s = c->sched;
    for (uint64_t i = 0; i < s->ncores; i++)
        if (who & (1ull << i))
            touched(s->core[i]);
}

/* Is every line the loop read still valid in this core's cache (no other core wrote it
 * since the loop read it)? */
static int lines_valid(struct fastcore *c)
{
    struct spin *sp = c->spin;
    struct kcoh *h = c->coh;
    uint64_t me = 1ull << c->id;
    for (uint64_t i = 0; i < sp->nlines; i++) {
        uint64_t l = sp->lines[i];
        uint8_t o = h->owner[l];
        if ((o && o != c->id + 1) || !(h->sharers[l] & me))
            return 0;
    }
    return 1;
}

/* The second iteration ended (the head comes round again): park if it qualifies. */
static int spin_finish(void *uc, struct fastcore *c)
{
    struct spin *sp = c->spin;
    uint64_t now[SPIN_NREG] = {0};  /* zeroed: a 32-bit register (NZCV) fills half a slot */
    void *ptrs[SPIN_NREG];
    unhook(c);
    for (uint64_t i = 0; i < c->nregs; i++)
        ptrs[i] = &now[i];
    sp->reads[sp->n - 1] = c->shared_reads - sp->rblk;
    if (sp->disturbed) {            /* not the loop's fault: no back-off */
        spin_fail(c, 0);
        return 0;
    }
    if (sp->bad || c->shared_writes != sp->w0 || c->coh_cycles != sp->c0
            || c->shared_reads == sp->r0 || read_regs(c, ptrs)
            || memcmp(now, sp->regs[0], c->nregs * 8) != 0 || !lines_valid(c)) {
        spin_fail(c, 1);
        return 0;
    }
    uint64_t fixed = 0, insns = 0, reads = 0;
    for (uint64_t j = 0; j < sp->n; j++) {
        fixed += sp->cost[j];
        insns += sp->ninsn[j];
        reads += sp->reads[j];
    }
    if (!fixed) {
        spin_fail(c, 1);
        return 0;
    }
    struct bentry *h = lookup(c, sp->head, c->root);
    if (h)
        h->fails = 0;
    sp->fixed = fixed;
    sp->insns = insns;
    sp->sreads = reads;
    sp->state = SP_PARKED;
    sp->pos = 0;
    sp->wake = 0;
    sp->parks++;
    c->sched->nparked++;
    watch(c, 1);
    /* The rest of this slice, fast-forwarded; the scheduler takes it from there. */
    spin_advance(c, c->slice_end);
    c->pc = sp->head;
    c->stop_reason = STOP_SLICE;
    c->emu_stop(uc);
    return 1;
}

/* Called at the start of a block (before it is charged) when recording or when the block
 * may belong to a loop; e is its entry (NULL: just priced, never a repetition). Returns
 * 1 when the core parked (emulation stopped before this block). */
static int spin_track(void *uc, struct fastcore *c, struct bentry *e, uint64_t va)
{
    struct spin *sp = c->spin;
    if (!e || !spin_candidate(c, e, va)) {
        if (sp->state == SP_REC2)
            spin_fail(c, 1);
        sp->state = SP_IDLE;
        return 0;
    }
    switch (sp->state) {
    case SP_IDLE:
        start_rec1(c, e, va);
        return 0;
    case SP_REC1:
        if (va != sp->head) {
            if (sp->n == SPIN_MAX) {
                spin_fail(c, 1);
                start_rec1(c, e, va);
            } else {
                if (sp->storeless && !(e->flags & BF_NOSTORE)) {
                    spin_fail(c, 1);
                    return 0;
                }
                sp->va[sp->n] = va;
                sp->cost[sp->n] = e->cost;
                sp->ninsn[sp->n] = e->ninsn;
                sp->stores |= !(e->flags & BF_NOSTORE);
                sp->n++;
            }
            return 0;
        }
        /* One iteration seen. It must read the shared region and not write it. */
        if (c->shared_reads == sp->r0 || c->shared_writes != sp->w0) {
            spin_fail(c, 1);
            return 0;
        }
        if (read_regs(c, sp->ptrs[0])) {
            spin_fail(c, 1);
            return 0;
        }
        if (sp->stores) {           /* never with storeless: such loops ended above */
            if (ucapi.hook_add(c->uc, &sp->whook, 1 << 11 /* UC_HOOK_MEM_WRITE */,
                             (void *)fast_spin_write, c, 1, 0) != 0) {
                spin_fail(c, 1);
                return 0;
            }
            sp->hooked = 1;
        }
        sp->recordings++;
        sp->state = SP_REC2;
        sp->pos = 1;
        sp->bad = 0;
        sp->disturbed = 0;
        sp->nlines = 0;
        memset(sp->rmask, 0, sizeof sp->rmask);
        sp->r0 = sp->rblk = c->shared_reads;
        sp->w0 = c->shared_writes;
        sp->c0 = c->coh_cycles;
        return 0;
    case SP_REC2:
        if (sp->pos == sp->n && va == sp->head)
            return spin_finish(uc, c);
        if (sp->pos == sp->n || va != sp->va[sp->pos] || e->cost != sp->cost[sp->pos]) {
            spin_fail(c, 1);
            return 0;
        }
        sp->reads[sp->pos - 1] = c->shared_reads - sp->rblk;
        sp->rblk = c->shared_reads;
        if (read_regs(c, sp->ptrs[sp->pos])) {
            spin_fail(c, 1);
            return 0;
        }
        sp->pos++;
        return 0;
    default:
        return 0;
    }
}

/* -- the loop ------------------------------------------------------------------------ */

/* Fast-forward every parked core the scheduler picks before a real one; stop at the first
 * real pick. Returns that core (its slice end set) or NULL when Python must act next. */
static struct fastcore *next_real(struct sched *s)
{
    for (;;) {
        uint64_t t, horizon;
        struct fastcore *p = pick(s, &t, &horizon);
        if (!plain_start(s, p, t) || t >= s->yield_at) {
            if (p->spin->state == SP_PARKED && p->timer && p->clock >= p->timer)
                s->parked_timers++;
            return NULL;
        }
        p->slice_end = slice_end(s, p, horizon);
        if (p->spin->state != SP_PARKED)
            return p;
        if (p->spin->wake) {
            if (materialize(p))
                return NULL;
            return p;
        }
        spin_advance(p, p->slice_end);
        s->vslices++;
    }
}

/* Before p's slice starts (in uc_emu_start, from the start of its block at p->pc). */
static inline void slice_begin(struct sched *s, struct fastcore *p, uint64_t ustop)
{
    p->user_stop = ustop;
    p->need_py = 0;
    p->stop_reason = STOP_NONE;
    s->slices++;
    s->starts++;
}

/* After p's uc_emu_start returned err: note where p stopped and deliver natively what
 * stopped it, if it can (a system call: trap_fn). Returns 0 when the scheduler goes on,
 * or 1 when Python must finish p's slice (*errp: the uc_err of its emu_start). */
static int slice_done(struct sched *s, struct fastcore *p, int err, int *errp)
{
    uint64_t pc = 0;
    ucapi.reg_read(p->uc, (int)p->pc_reg, &pc);
    if (p->spin->state != SP_PARKED)
        p->pc = pc;
    if (!err && p->trap_pending && p->stop_reason == STOP_TRAP && !p->need_py
            && p->trap_fn && s->native_traps) {
        int r = p->trap_fn(p->uc, p->trap_arg, p->syndrome, &p->pc);
        if (r == 0) {
            p->trap_pending = 0;
            p->syscalls++;
            s->ntraps++;
            *errp = 0;
            return 0;
        }
        if (r != TRAP_TO_PYTHON)
            err = r;
    }
    *errp = err;
    return err || p->need_py || p->stop_reason != STOP_SLICE;
}

/* Start the slice of p (its slice end set) and finish it (slice_done). */
static int run_slice(struct sched *s, struct fastcore *p, uint64_t ustop, int *errp)
{
    slice_begin(s, p, ustop);
    return slice_done(s, p, ucapi.emu_start(p->uc, p->pc, 0, 0, 0), errp);
}

/* -- the resident-core switch ------------------------------------------------------------
 *
 * The nested switch below saves one uc_emu_start per pair of slices; this one saves them
 * all. Every core's uc_emu_start runs on a fiber of its own (fiber.c). At a slice end
 * where the scheduler picks another core p, the core c does not stop: it waits in its
 * block hook, resident, and p runs, resumed in its own waiting hook if it is resident
 * too, else started on its fiber. A resident core that the scheduler picks again goes on
 * from its hook exactly as sched_continue's own core does, so the slices and their order
 * are sched_run's. The decisions are the same next_real everywhere.
 *
 * A core that stops (a trap, Python's turn, an error, or its slice end when the scheduler
 * has nothing native to start) leaves its uc_emu_start, and its fiber returns to
 * sched_run, which finishes the slice as run_slice does. Before sched_run does anything
 * but start the next picked core (an interrupt entry, a return to Python), it settles:
 * every resident core is told to stop and stops at the block start it waits at, as it
 * would have at its slice end without this switch. Python therefore never sees a resident
 * core. Only slices sched_run runs use fibers (in_run). */

#define FIBER_STACK (8u << 20)  /* bytes: Python callbacks (block pricing) run on it */
enum { FB_IDLE = 0, FB_RUNNING = 1, FB_RESIDENT = 2 };

struct fiber {
    void *sp;                   /* the saved context while it is switched out */
    void *stack;                /* FIBER_STACK bytes (fiber_init) */
    uint64_t state;             /* FB_* */
    uint64_t stop;              /* resumed resident: stop at the block start (settle) */
};

struct fibers {
    void *main_sp;              /* sched_run's context while a fiber runs */
    uint64_t active;            /* sched_run is running slices on the fibers */
    struct fastcore *ret;       /* the core whose uc_emu_start just returned */
    int ret_py, ret_err;        /* its slice_done */
    uint64_t has_next;          /* the fiber took the scheduler's next decision: */
    struct fastcore *next;      /* next_real's answer, for sched_run */
    struct fiber f[MAX_CORES];
};

/* A core's fiber: uc_emu_start from p->pc; when it returns, what sched_run does after a
 * slice (slice_done, then the next decision), and back to sched_run unless the next slice
 * is p's own again (a system call delivered natively, mostly): that one starts here. A
 * settled core (stop) takes no decision: sched_run is settling. */
static void fiber_main(void *arg)
{
    struct fastcore *p = arg;
    struct sched *s = p->sched;
    struct fibers *fb = s->fib;
    struct fiber *f = &fb->f[p->id];
    for (;;) {
        int err = 0;
        int py = slice_done(s, p, ucapi.emu_start(p->uc, p->pc, 0, 0, 0), &err);
        struct fastcore *next = NULL;
        if (!py && !f->stop) {
            next = next_real(s);
            if (next == p) {
                slice_begin(s, p, 0);
                continue;
            }
        }
        fb->ret = p;
        fb->ret_py = py;
        fb->ret_err = err;
        fb->has_next = !py && !f->stop;
        fb->next = next;
        f->state = FB_IDLE;
        keusim_fiber_switch(&f->sp, fb->main_sp);
    }
}

/* Switch from the context saved at *from to core p: resume it in its waiting hook, or
 * start its slice (slice_begin with ustop) on its fiber. */
static void fiber_go(struct sched *s, struct fastcore *p, uint64_t ustop, void **from)
{
    struct fibers *fb = s->fib;
    struct fiber *f = &fb->f[p->id];
    if (f->state == FB_RESIDENT) {
        s->switches++;          /* it goes on in sched_continue, picked */
    } else {
        slice_begin(s, p, ustop);
        f->sp = fiber_prepare(f->stack, FIBER_STACK, fiber_main, p);    /* fiber_init */
    }
    f->stop = 0;
    f->state = FB_RUNNING;
    keusim_fiber_switch(from, f->sp);
}

/* sched_continue with fibers: c, at a slice end at the start of its block, waits here,
 * resident, while the picked core p runs. Returns 1 when c is resumed because it was
 * picked, 0 when it is settled (it stops). */
static int fiber_wait(struct sched *s, struct fastcore *c, struct fastcore *p)
{
    struct fiber *me = &((struct fibers *)s->fib)->f[c->id];
    me->state = FB_RESIDENT;
    fiber_go(s, p, 0, &me->sp);
    return !me->stop;
}

/* Is sched_run running slices on the fibers? */
static inline int fibers_active(const struct sched *s)
{
    return s->fib && ((const struct fibers *)s->fib)->active;
}

/* Run p's slice on its fiber (fiber_go from sched_run) until a fiber returns: some core's
 * uc_emu_start returned and its slice is finished (fiber_main). Returns that core; *pyp
 * and *errp as run_slice. */
static struct fastcore *fiber_run(struct sched *s, struct fastcore *p, uint64_t ustop,
                                  int *pyp, int *errp)
{
    struct fibers *fb = s->fib;
    fiber_go(s, p, ustop, &fb->main_sp);
    *pyp = fb->ret_py;
    *errp = fb->ret_err;
    return fb->ret;
}

/* The next core sched_run runs: next_real's answer, unless a fiber took it already. */
static struct fastcore *fiber_next(struct sched *s, struct fibers *fb)
{
    if (fb && fb->has_next) {
        fb->has_next = 0;
        return fb->next;
    }
    return next_real(s);
}

/* Stop every resident core at the block start it waits at (see above). None needs Python
 * for it: a core begins to wait only without need_py (sched_continue), and it has run no
 * hook since, so its slice ends as any slice end does (slice_done: STOP_SLICE, no error). */
static void fiber_settle(struct sched *s, struct fibers *fb)
{
    for (uint64_t i = 0; i < s->ncores; i++) {
        struct fiber *f = &fb->f[i];
        if (f->state != FB_RESIDENT)
            continue;
        f->stop = 1;
        f->state = FB_RUNNING;
        keusim_fiber_switch(&fb->main_sp, f->sp);
    }
}

/* The fibers of s, every stack allocated: 0, or -1 (out of memory: no fibers). */
static int fiber_init(struct sched *s)
{
    if (s->fib)
        return 0;
    struct fibers *fb = calloc(1, sizeof *fb);
    if (!fb)
        return -1;
    for (uint64_t i = 0; i < s->ncores; i++)
        if (fiber_stack_new(&fb->f[i].stack, FIBER_STACK) != 0) {
            for (uint64_t j = 0; j < i; j++)
                fiber_stack_free(fb->f[j].stack, FIBER_STACK);
            free(fb);
            return -1;
        }
    s->fib = fb;
    return 0;
}

/* Free the fibers of s (Machine.close). None runs: sched_run settles before it returns. */
void sched_free(struct sched *s)
{
    struct fibers *fb = s->fib;
    if (!fb)
        return;
    for (uint64_t i = 0; i < MAX_CORES; i++)
        if (fb->f[i].stack)
            fiber_stack_free(fb->f[i].stack, FIBER_STACK);
    free(fb);
    s->fib = NULL;
}

/* Can this host run the resident-core switch? (Machine.resident_cores) */
int sched_fibers_available(void)
{
    return fiber_available();
}

/* Block hook at a slice end of c, at the start of its block at va: when the scheduler
 * would run c again next (possibly after fast-forwarding parked cores), set its new slice
 * end and return 1; c goes on without leaving uc_emu_start.
 *
 * The nested core switch. When the scheduler would run another core p next, stopping c
 * and returning to sched_run, which starts p, costs an emu_start exit and a restart of c
 * later. Instead p's slice runs here, inside c's block hook (Unicorn instances share no
 * state, so a second one can run while the first waits in a hook): c is the base, p the
 * nested core, at depth 1 only. p's own slice end decides again: p goes on in place, or
 * p stops and the decision comes back here, where c goes on (it was picked), or the next
 * nested core starts. The slices and their order are exactly sched_run's: c was stopped
 * at a block start, where it waits now, and every decision is the same next_real. When
 * Python must act for the nested core, its id waits in s->pending and c stops at this
 * block start as it would have at its slice end; sched_run then returns that id. Only
 * inside sched_run (in_run): a slice Python started returns to Python. */
static int sched_continue(struct fastcore *c, uint64_t va)
{
    struct sched *s = c->sched;
    if (!s->inline_ok || c->need_py)
        return 0;
    for (;;) {
        struct fastcore *p = next_real(s);
        if (p == c)
            break;
        if (!p)
            return 0;
        if (fibers_active(s)) {
            c->pc = va;         /* where c waits (Machine.describe, as if it had stopped) */
            if (!fiber_wait(s, c, p))
                return 0;       /* settled: it stops here */
            break;              /* picked again (by whoever resumed it) */
        }
        if (!s->nest || !s->in_run || s->depth)
            return 0;
        int err = 0;
        c->pc = va;
        s->depth = 1;
        s->nested++;
        int py = run_slice(s, p, 0, &err);
        s->depth = 0;
        if (py) {
            s->pending = p->id + 1;
            s->pending_err = (uint64_t)err;
            return 0;
        }
    }
    c->user_stop = 0;
    s->slices++;
    return 1;
}

/* Wake every parked core (before Python looks at or changes the machine). */
static int wake_all(struct sched *s)
{
    int bad = 0;
    for (uint64_t i = 0; i < s->ncores; i++)
        if (s->core[i]->spin->state == SP_PARKED)
            bad |= materialize(s->core[i]);
        else if (s->core[i]->spin->state != SP_IDLE)
            spin_fail(s->core[i], 0);
    return bad;
}

/* -- the native wake-up path ------------------------------------------------------------
 *
 * What Machine._python_slice (keusim/machine/machine.py) does when the next core to run
 * is halted or has an interrupt pending, for the common case: the core is in the kernel
 * (halted by PLAT_WAIT at CPL0/EL1, or running kernel code with an interrupt pending).
 * The same decisions in the same order: a halted core's idle time grows by the time it
 * slept and its clock becomes the wake time; a deadline it reached raises IRQ_TIMER and
 * turns the timer off; a woken core takes the interrupt (exception_cycles on its clock,
 * the arch's entry, keusim/arch/<arch>_trap.c); a pending interrupt stops the core at the
 * first user block (user_stop); the slice ends where Python's would. Everything else
 * (user mode, a device event or the run's end first, a parked core, a core not ready)
 * returns NULL, having changed nothing: Python does it as before. The Python yield point
 * (yield_at) does not stop a wake-up: Python would take the same decisions, only slower;
 * the loop yields at the next plain start instead. Called with every core real
 * (wake_all), as Python sees them. */
static struct fastcore *wake_native(struct sched *s)
{
    uint64_t t, horizon, pc = 0;
    if (!s->native_irqs || !s->inline_ok)
        return NULL;
    struct fastcore *p = pick(s, &t, &horizon);
    if (t >= INF || t >= s->max_cycles || t >= s->device_next || !p->irq_fn
            || p->spin->state != SP_IDLE)
        return NULL;
    int woke = p->state == ST_HALT;
    uint64_t clock = woke ? t : p->clock;
    uint64_t irq = p->irq, timer = p->timer;
    if (timer && clock >= timer) {
        irq |= 1;   /* IRQ_TIMER (keusim/machine/devices.py) */
        timer = 0;
    }
    if (!irq)
        return NULL;    /* never: plain_start would have taken it */
    if (p->irq_fn(p->uc, p->irq_arg, irq, woke, s->ram, s->ram_size, &pc) != 0)
        return NULL;
    if (woke) {
        p->idle += t > p->clock ? t - p->clock : 0;
        p->clock = t;
        p->state = ST_RUN;
    }
    p->irq = irq;
    p->timer = timer;
    if (woke) {
        p->clock += s->exception_cycles;
        p->pc = pc;
    }
    p->slice_end = slice_end(s, p, horizon);
    s->nwakes++;
    return p;
}

/* The platform device (keusim/machine/devices.py, kernel/include/platform.h), mapped with
 * these two callbacks on every core (user data: the core). PLAT_IPI, PLAT_WAIT and the
 * PLAT_IRQ_CAUSE read are taken here when the native wake-up path is on (and not in
 * single-slice mode, whose trace shows Python's device events); every other access, and
 * all of them otherwise, goes to the Python device, exactly as before. Offsets and values
 * are Unicorn's, as the Python callbacks get them (an 8-byte access arrives as two 4-byte
 * ones: the register's offset, then offset + 4, which no register has). */
#define PLAT_IPI 0x30
#define PLAT_IRQ_CAUSE 0x38
#define PLAT_WAIT 0x40
typedef uint64_t (*mmio_read_fn)(void *uc, uint64_t off, unsigned size, void *ud);
typedef void (*mmio_write_fn)(void *uc, uint64_t off, unsigned size, uint64_t value, void *ud);

uint64_t plat_read(void *uc, uint64_t off, unsigned size, struct fastcore *c)
{
    struct sched *s = c->sched;
    if (s->native_irqs && s->inline_ok) {
        if (off == PLAT_IRQ_CAUSE) {
            uint64_t bits = c->irq;
            c->irq = 0;
            s->ndev++;
            return bits;
        }
        if (off == PLAT_IRQ_CAUSE + 4)  /* the high half: no register, the device reads 0 */
            return 0;
    }
    return ((mmio_read_fn)c->py_mmio_read)(uc, off, size, NULL);
}

void plat_write(void *uc, uint64_t off, unsigned size, uint64_t value, struct fastcore *c)
{
    struct sched *s = c->sched;
    if (s->native_irqs && s->inline_ok && (off == PLAT_IPI + 4 || off == PLAT_WAIT + 4))
        return;     /* the high half of an 8-byte write: no register, the device ignores it */
    if (s->native_irqs && s->inline_ok && (off == PLAT_IPI || off == PLAT_WAIT)) {
        s->ndev++;
        if (off == PLAT_IPI) {      /* Machine.send_ipi */
            if (value >= s->ncores)
                return;
            struct fastcore *t = s->core[value];
            uint64_t at = c->clock + s->ipi_cycles;
            t->irq |= 2;            /* IRQ_IPI */
            if (at > t->wake_at)
                t->wake_at = at;
        } else {                    /* Core.halt */
            c->state = ST_HALT;
        }
        /* Core.stop: end the slice at the next block boundary. Python's stop also sets
         * need_py, whose only effect is that the scheduler's next decision is taken by
         * sched_run after a return to Python, which makes every parked core real: the
         * same decision is taken here (sched_continue), with the cores made real now. */
        c->slice_end = 0;
        wake_all(s);
        return;
    }
    ((mmio_write_fn)c->py_mmio_write)(uc, off, size, value, NULL);
}

/* With the native wake-up path on: did the loop stop only at the yield point (the next
 * core could start a plain slice, but at or after yield_at)? Then Python has nothing to
 * do but look (progress): sched_run returns SCHED_YIELD, not -1, and Python does not
 * start that slice itself (machine.py step). */
#define SCHED_YIELD (-2)
static int only_yield(struct sched *s)
{
    uint64_t t, horizon;
    struct fastcore *p = pick(s, &t, &horizon);
    return s->native_irqs && s->inline_ok && plain_start(s, p, t) && t >= s->yield_at;
}

/* Run slices until Python must act. Returns the id of a core whose slice Python must
 * finish (a hook acted, or emu_start failed: s->err), -1 when Python must start the
 * next slice itself (or the run is over), or SCHED_YIELD (above). Every core is real
 * again on return. */
int64_t sched_run(struct sched *s)
{
    /* Python sees the machine at least every `quantum` cycles of the first core to run
     * (progress, tools that act between slices); this never changes results. */
    uint64_t t0, h0;
    pick(s, &t0, &h0);
    s->yield_at = t0 < INF - s->quantum ? t0 + s->quantum : INF;
    if (s->fibers && fiber_available() && !s->fib && fiber_init(s) != 0)
        s->fibers = 0;      /* no memory for the stacks: the nested switch instead */
    struct fibers *fb = s->fibers ? s->fib : NULL;     /* fiber_wait: while active */
    if (fb) {
        fb->active = 1;
        fb->has_next = 0;
    }
    s->in_run = 1;
    for (;;) {
        struct fastcore *p = fiber_next(s, fb);
        uint64_t ustop = 0;
        int err = 0, py;
        if (!p) {
            if (fb)
                fiber_settle(s, fb);
            wake_all(s);
            p = wake_native(s);
            if (!p) {
                s->in_run = 0;
                if (fb)
                    fb->active = 0;
                return only_yield(s) ? SCHED_YIELD : -1;
            }
            ustop = 1;      /* an interrupt is pending: Python's k.user_stop = 1 */
        }
        if (fb) {
            p = fiber_run(s, p, ustop, &py, &err);
        } else {
            py = run_slice(s, p, ustop, &err);
            if (s->pending) {
                /* A nested core needs Python. The base p stopped at a block start, at its
                 * slice end (sched_continue), with nothing for Python to finish. */
                p = s->core[s->pending - 1];
                err = (int)s->pending_err;
                s->pending = 0;
                py = 1;
            }
        }
        if (py) {
            if (fb) {
                fiber_settle(s, fb);    /* resident cores stop at their slice ends */
                fb->active = 0;
            }
            s->err = (uint64_t)err;
            s->in_run = 0;
            wake_all(s);
            return (int64_t)p->id;
        }
    }
}

/* Before Python starts a slice or reads the machine: every core real again. */
int sched_wake_all(struct sched *s)
{
    return wake_all(s);
}

/* Allocate a core's spin state. Returns 0, or -1 on OOM. */
int fastcore_spin_init(struct fastcore *c)
{
    c->spin = calloc(1, sizeof(struct spin));
    if (!c->spin)
        return -1;
    for (int j = 0; j < SPIN_MAX; j++)
        for (int i = 0; i < SPIN_NREG; i++)
            c->spin->ptrs[j][i] = &c->spin->regs[j][i];
    return 0;
}

/* Park only loops that cannot store (every block BF_NOSTORE): a block that may store is
 * no loop head (start_rec1), and ends a recording with the usual back-off (spin_track). For a Unicorn
 * whose translated code keeps the inline TLB path for pages no memory hook covers
 * (docs/unicorn.md, "hooked pages"): there, adding the store hook empties the emulated
 * TLB, which costs far more than letting the loop spin; keeping it installed for the
 * whole run would send every store down the slow path. Either way results are the same
 * (fast-forward is exact); only host speed differs. */
void fastcore_spin_storeless(struct fastcore *c, uint64_t on)
{
    c->spin->storeless = on;
}

void fastcore_spin_free(struct fastcore *c)
{
    free(c->spin);
    c->spin = NULL;
}

/* Statistics of core c: parks, wakes, fast-forwarded blocks, recorded second iterations,
 * failed ones. */
void fastcore_spin_stats(struct fastcore *c, uint64_t out[5])
{
    out[0] = c->spin ? c->spin->parks : 0;
    out[1] = c->spin ? c->spin->wakes : 0;
    out[2] = c->spin ? c->spin->ff_blocks : 0;
    out[3] = c->spin ? c->spin->recordings : 0;
    out[4] = c->spin ? c->spin->failed : 0;
}

/* -- Unicorn's physical-address lookup, answered for RAM from a cache -----------------
 *
 * With a memory hook installed, every guest load and store takes QEMU's slow path
 * (docs/unicorn.md), and there Unicorn 2.1.4 asks uc_struct.memory_mapping (its
 * find_memory_mapping: address_space_translate, a walk of the flat view) which memory
 * region holds the physical address, only to check that it is mapped and its
 * permissions. keusim's RAM is one region mapped once at [0, ram size) (machine.py,
 * mem_map_ptr) whose region never changes, so the answer for a RAM address is always
 * that region. mm_patch checks this page by page with Unicorn's own function, then points
 * the instance's memory_mapping at fast_memory_mapping, which answers RAM addresses from
 * the cache and everything else (devices, unmapped addresses) from Unicorn's function:
 * the same answer for every address. The field is found by value
 * (keusim/machine/ucutil.py find_memory_mapping_offset). */

typedef void *(*mm_fn)(void *uc, uint64_t addr);
struct mmslot { void *uc; mm_fn orig; uint64_t ram_end; void *ram_mr; };
#define MM_SLOTS 1024u
#define MM_TOMB ((void *)1)
static struct mmslot mm_slots[MM_SLOTS];
static struct mmslot *mm_last = &mm_slots[0];

static struct mmslot *mm_find(void *uc, int add)
{
    uint64_t h = ((uint64_t)(uintptr_t)uc >> 4) * 0x9E3779B97F4A7C15ull >> 54;
    struct mmslot *free_slot = NULL;
    for (uint64_t i = 0; i < MM_SLOTS; i++) {
        struct mmslot *s = &mm_slots[(h + i) & (MM_SLOTS - 1)];
        if (s->uc == uc)
            return s;
        if (s->uc == MM_TOMB && !free_slot)
            free_slot = s;
        if (!s->uc)
            return add ? (free_slot ? free_slot : s) : NULL;
    }
    return add ? free_slot : NULL;
}

void *fast_memory_mapping(void *uc, uint64_t addr)
{
    struct mmslot *s = mm_last;
    if (s->uc != uc) {
        s = mm_find(uc, 0);
        if (!s)
            return NULL;    /* never: only registered instances point here */
        mm_last = s;
    }
    if (addr < s->ram_end)
        return s->ram_mr;
    return s->orig(uc, addr);
}

/* Point the instance's memory_mapping (at byte offset `off` of its uc_struct, holding
 * `orig`) at fast_memory_mapping, caching the region of RAM [0, ram_size). Returns 0, or
 * -1 (nothing changed) when the field does not hold orig, RAM is not one region, or the
 * table is full. */
int mm_patch(void *uc, uint64_t off, void *orig, uint64_t ram_size)
{
    mm_fn *field = (mm_fn *)((char *)uc + off);
    mm_fn f = (mm_fn)orig;
    if (*field != f || !ram_size)
        return -1;
    void *mr = f(uc, 0);
    if (!mr || f(uc, ram_size - 1) != mr)
        return -1;
    for (uint64_t a = 0; a < ram_size; a += 4096)
        if (f(uc, a) != mr)
            return -1;
    struct mmslot *s = mm_find(uc, 1);
    if (!s)
        return -1;
    s->uc = uc;
    s->orig = f;
    s->ram_end = ram_size;
    s->ram_mr = mr;
    *field = (mm_fn)fast_memory_mapping;
    return 0;
}

/* Undo mm_patch (before the instance is closed, or to run as plain Unicorn). */
void mm_unpatch(void *uc, uint64_t off)
{
    struct mmslot *s = mm_find(uc, 0);
    if (!s)
        return;
    mm_fn *field = (mm_fn *)((char *)uc + off);
    if (*field == (mm_fn)fast_memory_mapping)
        *field = s->orig;
    if (mm_last == s)
        mm_last = &mm_slots[0];
    s->uc = MM_TOMB;
    s->orig = NULL;
    s->ram_end = 0;
    s->ram_mr = NULL;
}
