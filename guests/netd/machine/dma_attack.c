/*
 * A hostile NIC owner (tests/test_nic.py): it holds a queue (`nic = "queue"`) and tries
 * to make the NIC reach memory outside the frame region it registered.
 *
 *   1. SYS_NIC_ATTACH refusals first: a region that is not its memory (EFAULT), bad
 *      ring geometry (EINVAL); then the real attach, and a second one (EBUSY).
 *   2. Fill descriptors whose offsets put the receive DMA at IOVA 0x1000 (the
 *      boot-info block's physical address: a device in passthrough would write it) and
 *      at its own `canary` page, which it did not register.
 *   3. A transmit descriptor that would read the kernel image (IOVA 0x100000) onto
 *      the wire.
 *
 * The IOMMU must block all three and record them; nothing may change. It waits for the
 * frames the wire sends, then for the link to go down, checks its canary and prints it.
 */
#include <keusim/keusim.h>
#include <keusim/nic.h>

#define RSIZE 16
#define FRAMES 8
#define STRIDE 2048
#define REGION (FRAMES * STRIDE + 4096)

static uint8_t region[REGION] __attribute__((aligned(4096)));
static uint8_t canary[4096] __attribute__((aligned(4096)));

struct ring { struct nic_ring_idx *idx; struct nic_desc *d; };

static struct ring ring_at(int which)
{
    struct nic_ring_idx *idx = (struct nic_ring_idx *)(region + FRAMES * STRIDE);
    struct nic_desc *d = (struct nic_desc *)(region + FRAMES * STRIDE + NIC_RINGS_HDR);
    return (struct ring){ &idx[which], d + which * RSIZE };
}

static void put(int which, uint64_t addr, uint32_t len)
{
    struct ring r = ring_at(which);
    uint32_t p = r.idx->prod;
    r.d[p & (RSIZE - 1)] = (struct nic_desc){ addr, len, 0 };
    __atomic_store_n(&r.idx->prod, p + 1, __ATOMIC_RELEASE);
}

int main(void)
{
    for (int i = 0; i < 4096; i++)
        canary[i] = (uint8_t)(i * 13 + 5);
    int64_t e1 = ks_nic_attach((void *)0x1000, 4096, 0, RSIZE);           /* not its memory */
    int64_t e2 = ks_nic_attach(region, REGION, FRAMES * STRIDE, 24);     /* not a power of two */
    int64_t e3 = ks_nic_attach(region, REGION, REGION - 64, RSIZE);      /* rings past the end */
    int64_t va = ks_nic_attach(region, REGION, FRAMES * STRIDE, RSIZE);
    int64_t e4 = ks_nic_attach(region, REGION, FRAMES * STRIDE, RSIZE);   /* twice */
    ks_printf("attack: attach refusals %ld %ld %ld, attach %lx, again %ld\n",
              (long)e1, (long)e2, (long)e3, (unsigned long)va, (long)e4);
    if (va < 0)
        return 2;
    volatile uint64_t *q = (volatile uint64_t *)(uintptr_t)va;
    uint64_t base = (uint64_t)(uintptr_t)region;
    put(NIC_RING_FILL, 0x1000 - base, 0);                                 /* IOVA 0x1000 */
    put(NIC_RING_FILL, (uint64_t)(uintptr_t)canary - base, 0);            /* unregistered page */
    put(NIC_RING_TX, 0x100000 - base, 64);                                /* the kernel image */
    q[NICQ_TX_DOORBELL / 8] = 1;
    uint64_t wakes = 0;
    while (q[NICQ_STATUS / 8] & NICQ_STATUS_LINK) {
        q[NICQ_IRQ_ARM / 8] = 1;
        if (!(q[NICQ_STATUS / 8] & NICQ_STATUS_LINK))
            break;
        ks_nic_wait();
        wakes++;
    }
    int bad = 0;
    for (int i = 0; i < 4096; i++)
        bad += canary[i] != (uint8_t)(i * 13 + 5);
    struct ring rx = ring_at(NIC_RING_RX), comp = ring_at(NIC_RING_COMP);
    ks_printf("attack: canary %s (%d bytes changed); rx descriptors %u, completions %u, "
              "dropped %lu, wakes %lu\n", bad ? "CHANGED" : "intact", bad, rx.idx->prod,
              comp.idx->prod, (unsigned long)q[NICQ_RX_DROPPED / 8], (unsigned long)wakes);
    return bad ? 1 : 0;
}
