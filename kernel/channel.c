/*
 * Channel set-up: the kernel lays out each SPSC ring and maps it into its two
 * processes so that the MMU enforces the single-writer property
 * (docs/design.md, "ring layout"). Window i at CHAN_VA(i), in both processes:
 *
 *   +0x0000 guard (unmapped)
 *   +0x1000 head page: RW-NX to the producer, R-NX to the consumer
 *   +0x2000 tail page: RW-NX to the consumer, R-NX to the producer
 *   +0x3000 guard (unmapped)
 *   +0x4000 data pages (capacity bytes): RW-NX in both
 *   +0x4000+capacity guard (unmapped)
 *
 * Head and tail each sit alone on a page, so neither shares a cache line with
 * data or with the other index. The channel table with the keys lives on
 * supervisor-only pages; only the producer of a verified channel gets its key
 * (on its read-only info page).
 */
#include "types.h"
#include "memlayout.h"
#include "bootinfo.h"
#include "klog.h"
#include "syscall.h"
#include "info.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "channel.h"
#include "drbg.h"
#include "defs.h"

struct channel *chantab;
int nchan;

struct info_page *proc_info(struct proc *p);

static int check(const struct boot_chan *b)
{
    if (b->capacity == 0 || (b->capacity & (b->capacity - 1)))
        return CHERR_CAPACITY_NOT_POW2;
    if (b->capacity < CHAN_MIN_CAPACITY)
        return CHERR_CAPACITY_TOO_SMALL;
    if (b->capacity > CHAN_MAX_CAPACITY)
        return CHERR_CAPACITY_TOO_LARGE;
    if (b->producer >= (uint32_t)nproc || b->consumer >= (uint32_t)nproc)
        return CHERR_UNKNOWN_PROCESS;
    if (b->producer == b->consumer)
        return CHERR_SAME_PROCESS;
    if (b->mode != CHAN_POLL && b->mode != CHAN_NOTIFY)
        return CHERR_BAD_MODE;
    return 0;
}

static void add_endpoint(struct proc *p, int id, int role, struct channel *c, int peer)
{
    struct info_page *info = proc_info(p);
    struct info_chan *e = &info->chan[info->nchan++];
    uint64_t w = CHAN_VA(id);
    e->id = (uint32_t)id;
    e->role = (uint32_t)role;
    e->capacity = c->capacity;
    e->mode = c->mode;
    e->verified = c->verified;
    e->peer = (uint32_t)procs[peer].pid;
    e->head_va = w + CHAN_HEAD_OFF;
    e->tail_va = w + CHAN_TAIL_OFF;
    e->data_va = w + CHAN_DATA_OFF;
    if (role == EP_PRODUCER && c->verified)
        memcpy(e->key, c->key, 16);
}

/* Map channel id's pages into p as role (EP_PRODUCER or EP_CONSUMER). */
static void map_endpoint(struct proc *p, int id, int role, struct channel *c)
{
    uint64_t w = CHAN_VA(id);
    int ro = PTE_U | PTE_R, rw = PTE_U | PTE_R | PTE_W;
    int head = role == EP_PRODUCER ? rw : ro;
    int tail = role == EP_CONSUMER ? rw : ro;
    if (bootinfo->flags & BOOT_FLAG_BROKEN_LAYOUT)
        head = rw; /* test-only: the consumer may write head; the gate proof must catch it */
    mappages(p->root, w + CHAN_HEAD_OFF, PGSIZE, c->head_pa, head);
    mappages(p->root, w + CHAN_TAIL_OFF, PGSIZE, c->tail_pa, tail);
    for (uint32_t i = 0; i < c->capacity / PGSIZE; i++)
        mappages(p->root, w + CHAN_DATA_OFF + i * PGSIZE, PGSIZE, c->data_pa[i], rw);
}

/* Set up every channel in the boot-info block; bad ones are logged and skipped. */
void channels_init(void)
{
    nchan = (int)bootinfo->nchan;
    uint64_t bytes = sizeof(struct channel) * (uint64_t)(nchan ? nchan : 1);
    chantab = kalloc();
    for (uint64_t off = PGSIZE; off < bytes; off += PGSIZE)
        if ((uint8_t *)kalloc() != (uint8_t *)chantab + off)
            panic("channels_init: table pages not contiguous");
    klog(KLOG_CTL, 0, V2P(chantab), PGROUNDUP(bytes), 0);
    for (int i = 0; i < nproc; i++)
        proc_info(&procs[i])->ctl_va = (uint64_t)chantab;
    struct drbg rng;
    uint8_t seed[16];
    memcpy(seed, bootinfo->seed, 16);
    drbg_init(&rng, seed);
    for (int i = 0; i < nchan; i++) {
        const struct boot_chan *b = &bootinfo->chans[i];
        struct channel *c = &chantab[i];
        /* Every channel draws its key, valid or not, so key i depends only on i. */
        drbg_bytes(&rng, c->key, 16);
        int err = check(b);
        if (err) {
            klog(KLOG_CHAN_ERR, 0, (uint64_t)i, (uint64_t)err, b->capacity);
            continue;
        }
        c->producer = (int)b->producer;
        c->consumer = (int)b->consumer;
        c->capacity = b->capacity;
        c->mode = b->mode;
        c->verified = b->verified;
        c->head_pa = V2P(kalloc_pool());
        c->tail_pa = V2P(kalloc_pool());
        for (uint32_t k = 0; k < c->capacity / PGSIZE; k++)
            c->data_pa[k] = V2P(kalloc_pool());
        klog(KLOG_CHAN_IDX, 0, (uint64_t)i, c->head_pa, c->tail_pa);
        klog(KLOG_CHAN_DATA, 0, (uint64_t)i, c->data_pa[0], c->capacity);
        map_endpoint(&procs[c->producer], i, EP_PRODUCER, c);
        map_endpoint(&procs[c->consumer], i, EP_CONSUMER, c);
        add_endpoint(&procs[c->producer], i, EP_PRODUCER, c, c->consumer);
        add_endpoint(&procs[c->consumer], i, EP_CONSUMER, c, c->producer);
        c->ok = 1;
    }
}

/* Log every channel's notification counters (the run report reads them). */
void channels_report(void)
{
    for (int i = 0; i < nchan; i++) {
        struct channel *c = &chantab[i];
        uint64_t rej = 0;
        for (int k = 0; k < 16; k++)
            rej += c->rejected[k];
        if (c->ok)
            klog(KLOG_CHAN_STATS, 0, (uint64_t)i, c->accepted, rej);
    }
}

/* The side (0 producer, 1 consumer) p holds on channel ch, or -1 if it holds none. */
static int chan_side(struct proc *p, uint64_t ch)
{
    if (ch >= (uint64_t)nchan || !chantab[ch].ok)
        return -1;
    if (chantab[ch].producer == p->pid - 1)
        return 0;
    if (chantab[ch].consumer == p->pid - 1)
        return 1;
    return -1;
}

/*
 * SYS_REPORT: p sets counter key of its own side of channel ch. Kept in the
 * channel table and logged once when p finishes (chan_flush_stats), so any
 * number of calls costs the log nothing. EPERM unless p is an endpoint of ch.
 */
int64_t chan_report(struct proc *p, uint64_t ch, uint64_t key, uint64_t value)
{
    int side = chan_side(p, ch);
    if (side < 0)
        return EPERM;
    if (key == 0 || key >= NSTAT)
        return EINVAL;
    chantab[ch].stat[side][key] = value;
    chantab[ch].statset[side] |= 1u << key;
    return 0;
}

/*
 * SYS_CHANFAULT: p found its channel ch corrupt. Only an endpoint may say so,
 * and only its first report is logged (a flood adds nothing). EPERM otherwise.
 */
int64_t chan_fault(struct proc *p, uint64_t ch, int64_t code)
{
    int side = chan_side(p, ch);
    if (side < 0)
        return EPERM;
    if (!chantab[ch].faulted[side]) {
        chantab[ch].faulted[side] = 1;
        klog(KLOG_CHAN_ERR, (uint32_t)p->pid, ch, (uint64_t)code, 1);
    }
    return 0;
}

/* p is finishing: log the counters it reported on its channels (bounded: NSTAT per side). */
void chan_flush_stats(struct proc *p)
{
    for (int i = 0; i < nchan; i++) {
        int side = chan_side(p, (uint64_t)i);
        if (side < 0)
            continue;
        struct channel *c = &chantab[i];
        for (uint64_t k = 1; k < NSTAT; k++)
            if (c->statset[side] & (1u << k))
                klog(KLOG_STAT, (uint32_t)p->pid, (uint64_t)i, k, c->stat[side][k]);
    }
}
