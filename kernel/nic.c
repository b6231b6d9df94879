/*
 * The NIC and its IOMMU (docs/netd.md, "NetD on the machine"; registers in
 * <keusim/nic.h>). The kernel decides who may use the NIC and what it may reach:
 *
 *   - A process whose manifest entry says `nic = "queue"` owns a NIC queue. Its
 *     SYS_NIC_ATTACH registers a frame region of its own memory: the kernel builds an
 *     I/O page table that maps exactly that region (IOVA = the process's virtual
 *     address), points the queue's IOMMU stream at it, programs the queue's DMA
 *     registers, and maps the queue's register page (and only it) at NIC_VA. From
 *     then on the process drives the NIC with loads and stores; the kernel is involved
 *     only when it sleeps (SYS_NIC_WAIT) until the queue interrupts or an application
 *     notifies it.
 *   - A process with `nic = "syscalls"` gets the traditional path: the kernel owns
 *     the queue and its frames, and SYS_NET_SEND / SYS_NET_RECV copy every frame
 *     between the process and the kernel's frames (the baseline of the NetD table).
 *
 * The I/O page tables use the CPU's own format (SMMUv3 uses VMSAv8-64 tables; VT-d
 * second-level tables follow IA-32e paging), so they are built with mappages().
 * Everything runs under the big kernel lock.
 */
#include "types.h"
#include "param.h"
#include "memlayout.h"
#include "bootinfo.h"
#include "platform.h"
#include "syscall.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "channel.h"
#include "defs.h"
#include <keusim/nic.h>

/* The kernel-owned queue of the traditional path: frames, rings, one IOVA window. */
#define KQ_FRAMES  64            /* half on the fill ring, half for transmitting */
#define KQ_STRIDE  2048
#define KQ_RING    64
#define KQ_IOVA    0x100000000ull
#define KQ_FRAME_BYTES (KQ_FRAMES * KQ_STRIDE)
#define KQ_BYTES   (KQ_FRAME_BYTES + PGROUNDUP(NIC_RINGS_BYTES(KQ_RING)))
#define MAX_FRAME  1514          /* Ethernet header + MTU 1500 */

struct nicq {
    int owner;               /* process index, or -1 */
    int mode;                /* NIC_CAP_* */
    int attached;            /* DMA set up and the queue enabled */
    int pending;             /* the queue interrupted; SYS_NIC_WAIT consumes it */
    /* kernel-owned queue (NIC_CAP_SYSCALLS) */
    uint8_t *region;         /* kernel address of the frame region + ring block */
    uint16_t txfree[KQ_FRAMES];
    uint32_t ntxfree;
};

static struct nicq nicq[NIC_QUEUES];
static struct iommu_ste *strtab;
static int nic_on;
int nic_owners;
char nic_chan[MAXPROC];

static uint64_t iommu_reg(uint64_t off) { return *(volatile uint64_t *)P2V(IOMMU_PA + off); }
static void iommu_set(uint64_t off, uint64_t v) { *(volatile uint64_t *)P2V(IOMMU_PA + off) = v; }
static uint64_t nic_reg(uint64_t off) { return *(volatile uint64_t *)P2V(NIC_PA + off); }
static void nic_set(uint64_t off, uint64_t v) { *(volatile uint64_t *)P2V(NIC_PA + off) = v; }
static void nicq_set(int q, uint64_t off, uint64_t v)
{
    *(volatile uint64_t *)P2V(NIC_QUEUE_PA(q) + off) = v;
}

/* Give stream q an I/O page table (root_pa) and start queue q's DMA engine on it. */
static void queue_start(int q, uint64_t root_pa, uint64_t umem, uint64_t rings, uint64_t size,
                        int core)
{
    strtab[q].ttb = root_pa;
    arch_mb();
    strtab[q].flags = STE_VALID;
    arch_mb();
    nic_set(NIC_QCTL(q) + NIC_Q_RINGS, rings);
    nic_set(NIC_QCTL(q) + NIC_Q_UMEM, umem);
    nic_set(NIC_QCTL(q) + NIC_Q_SIZE, size);
    nic_set(NIC_QCTL(q) + NIC_Q_IRQ_CORE, (uint64_t)core);
    nic_set(NIC_QCTL(q) + NIC_Q_STREAM, (uint64_t)q);
    nic_set(NIC_QCTL(q) + NIC_Q_ENABLE, 1);
    nicq[q].attached = 1;
}

static struct nic_ring_idx *kq_idx(struct nicq *k, int ring)
{
    return (struct nic_ring_idx *)(k->region + KQ_FRAME_BYTES + (uint64_t)ring * NIC_IDX_BYTES);
}

static struct nic_desc *kq_desc(struct nicq *k, int ring)
{
    return (struct nic_desc *)(k->region + KQ_FRAME_BYTES + NIC_RINGS_HDR) + ring * KQ_RING;
}

/* Put frame f (index) on the kernel queue's fill ring. */
static void kq_fill(struct nicq *k, uint32_t f)
{
    struct nic_ring_idx *x = kq_idx(k, NIC_RING_FILL);
    uint32_t prod = x->prod;
    struct nic_desc *d = &kq_desc(k, NIC_RING_FILL)[prod & (KQ_RING - 1)];
    d->addr = (uint64_t)f * KQ_STRIDE;
    d->len = 0;
    d->options = 0;
    __atomic_store_n(&x->prod, prod + 1, __ATOMIC_RELEASE);
}

/* The kernel owns queue q for process pi (traditional path): frames, rings, IOMMU. */
static void kq_setup(int q, int pi)
{
    struct nicq *k = &nicq[q];
    k->region = kalloc();
    for (uint64_t off = PGSIZE; off < KQ_BYTES; off += PGSIZE)
        if ((uint8_t *)kalloc() != k->region + off)
            panic("nic: kernel frame region not contiguous");
    pagetable_t io = kalloc();
    mappages(io, KQ_IOVA, KQ_BYTES, V2P(k->region), PTE_R | PTE_W);
    for (uint32_t f = 0; f < KQ_FRAMES / 2; f++)
        kq_fill(k, f);
    for (uint32_t f = KQ_FRAMES / 2; f < KQ_FRAMES; f++)
        k->txfree[k->ntxfree++] = (uint16_t)f;
    queue_start(q, V2P(io), KQ_IOVA, KQ_IOVA + KQ_FRAME_BYTES, KQ_RING, procs[pi].core);
}

/* Boot, core 0: program the IOMMU and hand out the queues the manifest names. */
void nic_init(void)
{
    if (!bootinfo->nic)
        return;
    nic_on = 1;
    strtab = kalloc();
    struct iommu_event *evtq = kalloc();
    iommu_set(IOMMU_STRTAB, V2P(strtab));
    iommu_set(IOMMU_STRTAB_N, NIC_QUEUES);
    iommu_set(IOMMU_EVTQ, V2P(evtq));
    iommu_set(IOMMU_EVTQ_N, PGSIZE / sizeof(struct iommu_event));
    iommu_set(IOMMU_ENABLE, 1);
    for (int q = 0; q < NIC_QUEUES; q++)
        nicq[q].owner = -1;
    int q = 0;
    for (int i = 0; i < nproc; i++) {
        uint32_t cap = bootinfo->procs[i].nic;
        if (cap == NIC_CAP_NONE)
            continue;
        if (q >= NIC_QUEUES || cap > NIC_CAP_SYSCALLS)
            panic("nic_init: more NIC users than queues, or a bad capability (the loader checks)");
        nicq[q].owner = i;
        nicq[q].mode = (int)cap;
        nic_owners++;
        if (cap == NIC_CAP_SYSCALLS)
            kq_setup(q, i);
        q++;
    }
}

/* The queue process p holds with capability mode, or -1. */
static int queue_of(struct proc *p, int mode)
{
    for (int q = 0; q < NIC_QUEUES; q++)
        if (nic_on && nicq[q].owner == p->pid - 1 && nicq[q].mode == mode)
            return q;
    return -1;
}

/*
 * SYS_NIC_ATTACH: register [va, va+len) of the caller's memory as its queue's frame
 * region, with the ring block at va + rings_off holding rings of size entries.
 * Returns NIC_VA (the queue page's address); EPERM without a queue capability, EBUSY
 * if already attached, EINVAL for a bad geometry, EFAULT unless every page of the
 * region is the caller's own writable memory.
 */
int64_t sys_nic_attach(uint64_t va, uint64_t len, uint64_t rings_off, uint64_t size)
{
    struct proc *p = myproc();
    int q = queue_of(p, NIC_CAP_QUEUE);
    if (q < 0)
        return EPERM;
    if (nicq[q].attached)
        return EBUSY;
    if ((va | len) & (PGSIZE - 1) || len == 0 || len > NIC_REGION_MAX)
        return EINVAL;
    if (size < 8 || size > NIC_RING_MAX || (size & (size - 1)))
        return EINVAL;
    if ((rings_off & 63) || rings_off > len || NIC_RINGS_BYTES(size) > len - rings_off)
        return EINVAL;
    if (!user_range_ok(p->root, va, len, PTE_R | PTE_W))
        return EFAULT;
    /* Exactly the region, at the same addresses, read-write; nothing else. */
    pagetable_t io = kalloc();
    for (uint64_t off = 0; off < len; off += PGSIZE) {
        pte_t *e = walk(p->root, va + off, 0);
        mappages(io, va + off, PGSIZE, arch_pte_pa(*e), PTE_R | PTE_W);
    }
    queue_start(q, V2P(io), va, va + rings_off, size, p->core);
    mappages(p->root, NIC_VA, PGSIZE, NIC_QUEUE_PA(q), PTE_U | PTE_R | PTE_W | PTE_DEV);
    return (int64_t)NIC_VA;
}

/* 1 (and consumed) if a notification waits on a channel process index pi consumes. */
static int take_notifications(int pi)
{
    int any = 0;
    for (int i = 0; i < nchan; i++)
        if (chantab[i].ok && chantab[i].consumer == pi && chantab[i].pending) {
            chantab[i].pending = 0;
            any = 1;
        }
    return any;
}

/* 1 if the kernel queue q has received frames the owner has not taken yet. */
static int kq_rx_waiting(int q)
{
    struct nic_ring_idx *x = kq_idx(&nicq[q], NIC_RING_RX);
    return __atomic_load_n(&x->prod, __ATOMIC_ACQUIRE) != x->cons;
}

static uint64_t nicq_reg(int q, uint64_t off)
{
    return *(volatile uint64_t *)P2V(NIC_QUEUE_PA(q) + off);
}

/*
 * SYS_NIC_WAIT: sleep until the caller's queue has interrupted (bit 0 of the result)
 * or an application has notified the caller on any channel it consumes (bit 1); both
 * are consumed. Bit 2: the link is down. For a queue owner the owner arms the
 * interrupt itself (its queue page); for the traditional path the kernel arms it and
 * returns at once when frames are waiting. EPERM unless the caller holds an attached
 * queue.
 */
int64_t sys_nic_wait(void)
{
    struct proc *p = myproc();
    int q = queue_of(p, NIC_CAP_QUEUE);
    int kq = q < 0;
    if (kq)
        q = queue_of(p, NIC_CAP_SYSCALLS);
    if (q < 0 || !nicq[q].attached)
        return EPERM;
    for (;;) {
        int64_t r = 0;
        if (kq)
            nicq_set(q, NICQ_IRQ_ARM, 1);
        if (nicq[q].pending || (kq && kq_rx_waiting(q))) {
            nicq[q].pending = 0;
            r |= 1;
        }
        if (take_notifications(p->pid - 1))
            r |= 2;
        if (!(nicq_reg(q, NICQ_STATUS) & NICQ_STATUS_LINK))
            r |= 4;
        if (r)
            return r;
        sleep_on(&nic_chan[p->pid - 1]);
    }
}

/* The NIC interrupted this core (PLAT_IRQ_CAUSE bit IRQ_DEV): note which queues. */
void nic_intr(void)
{
    if (!nic_on)
        return;
    uint64_t st = nic_reg(NIC_IRQ_STATUS);
    for (int q = 0; q < NIC_QUEUES; q++)
        if ((st & (1ull << q)) && nicq[q].owner >= 0) {
            nicq[q].pending = 1;
            wakeup(&nic_chan[nicq[q].owner]);
        }
}

/* Take back transmitted frames of the kernel queue. */
static void kq_reap(struct nicq *k)
{
    struct nic_ring_idx *x = kq_idx(k, NIC_RING_COMP);
    uint32_t cons = x->cons, prod = __atomic_load_n(&x->prod, __ATOMIC_ACQUIRE);
    if (prod - cons > KQ_RING)
        panic("nic: completion ring index corrupt (device bug)");
    for (; cons != prod; cons++) {
        uint64_t a = kq_desc(k, NIC_RING_COMP)[cons & (KQ_RING - 1)].addr;
        uint32_t f = (uint32_t)(a / KQ_STRIDE);
        if (f >= KQ_FRAMES / 2 && f < KQ_FRAMES && k->ntxfree < KQ_FRAMES)
            k->txfree[k->ntxfree++] = (uint16_t)f;
    }
    __atomic_store_n(&x->cons, cons, __ATOMIC_RELEASE);
}

/*
 * SYS_NET_SEND (traditional path): copy len bytes at user va into a kernel frame and
 * transmit it. Returns len; EAGAIN when no transmit frame is free; EINVAL for a bad
 * length; EFAULT for a bad buffer; EPERM without the syscalls capability.
 */
int64_t sys_net_send(uint64_t va, uint64_t len)
{
    struct proc *p = myproc();
    int q = queue_of(p, NIC_CAP_SYSCALLS);
    if (q < 0)
        return EPERM;
    struct nicq *k = &nicq[q];
    if (len < 14 || len > MAX_FRAME)
        return EINVAL;
    kq_reap(k);
    if (k->ntxfree == 0)
        return EAGAIN;
    uint32_t f = k->txfree[k->ntxfree - 1];
    if (copyin(p->root, k->region + (uint64_t)f * KQ_STRIDE, va, len) != 0)
        return EFAULT;
    k->ntxfree--;
    struct nic_ring_idx *x = kq_idx(k, NIC_RING_TX);
    uint32_t prod = x->prod;
    struct nic_desc *d = &kq_desc(k, NIC_RING_TX)[prod & (KQ_RING - 1)];
    d->addr = (uint64_t)f * KQ_STRIDE;
    d->len = (uint32_t)len;
    d->options = 0;
    __atomic_store_n(&x->prod, prod + 1, __ATOMIC_RELEASE);
    nicq_set(q, NICQ_TX_DOORBELL, 1);
    return (int64_t)len;
}

/*
 * SYS_NET_RECV (traditional path): copy the next received frame (at most max bytes)
 * to user va and give its kernel frame back to the NIC. Returns the bytes copied;
 * EAGAIN when nothing was received; EFAULT for a bad buffer (the frame stays queued).
 */
int64_t sys_net_recv(uint64_t va, uint64_t max)
{
    struct proc *p = myproc();
    int q = queue_of(p, NIC_CAP_SYSCALLS);
    if (q < 0)
        return EPERM;
    struct nicq *k = &nicq[q];
    struct nic_ring_idx *x = kq_idx(k, NIC_RING_RX);
    uint32_t cons = x->cons, prod = __atomic_load_n(&x->prod, __ATOMIC_ACQUIRE);
    if (prod == cons)
        return EAGAIN;
    if (prod - cons > KQ_RING)
        panic("nic: rx ring index corrupt (device bug)");
    struct nic_desc d = kq_desc(k, NIC_RING_RX)[cons & (KQ_RING - 1)];
    uint32_t f = (uint32_t)(d.addr / KQ_STRIDE);
    uint64_t off = d.addr - (uint64_t)f * KQ_STRIDE;
    if (f >= KQ_FRAMES / 2 || d.len > KQ_STRIDE || off > KQ_STRIDE - d.len)
        panic("nic: rx descriptor outside the kernel's fill frames (device bug)");
    uint64_t n = d.len < max ? d.len : max;
    if (copyout(p->root, va, k->region + d.addr, n) != 0)
        return EFAULT;
    __atomic_store_n(&x->cons, cons + 1, __ATOMIC_RELEASE);
    kq_fill(k, f);
    return (int64_t)n;
}
