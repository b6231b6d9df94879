/*
 * NetD as a process of the machine (docs/netd.md, "NetD on the machine"): the daemon
 * of guests/netd/ on a real NIC queue.
 *
 * It registers a frame region of its own memory (the frames and the four descriptor
 * rings) with SYS_NIC_ATTACH; the kernel maps exactly that region in the IOMMU for the
 * queue's stream and maps the queue's register page here. From then on NetD drives the
 * NIC with plain loads and stores: it writes the transmit doorbell after queueing
 * frames, arms the queue's interrupt before sleeping, and sets the queue's timer for
 * its TCP timers. It sleeps in SYS_NIC_WAIT until the NIC interrupts or an application
 * notifies it. Applications are the processes it shares a request channel (app ->
 * NetD) and an event channel (NetD -> app) with; NetD notifies each after posting its
 * events. Time is model time: rdtsc / cntvct divided by the NIC's cycles per ms.
 *
 * When the link goes down (the wire's script is over) NetD prints its nonzero
 * counters and exits 0. Parameters: NETD_FRAMES (frames in the region), NETD_TICK_MS.
 */
#include <keusim/keusim.h>
#include <keusim/nic.h>
#include "../netd.h"
#include "nm.h"

#ifndef NETD_FRAMES
#define NETD_FRAMES 256
#endif
#ifndef NETD_TICK_MS
#define NETD_TICK_MS 10
#endif
#define STRIDE 2048
#define RSIZE 256
#define FRAME_BYTES ((uint64_t)NETD_FRAMES * STRIDE)
#define REGION_BYTES (FRAME_BYTES + ((NIC_RINGS_BYTES(RSIZE) + 4095) & ~4095ull))

_Static_assert(sizeof(struct xdesc) == NIC_DESC_BYTES, "netif descriptors are the NIC's");
_Static_assert(sizeof(struct nic_ring_idx) == NIC_IDX_BYTES, "index block layout");
_Static_assert(RSIZE >= NETD_FRAMES, "every frame fits on any ring");

static uint8_t region[REGION_BYTES] __attribute__((aligned(4096)));
static struct netif nif;
static struct netd nd;
static struct ring_ep req[NETD_MAX_APPS], evt[NETD_MAX_APPS];
static struct nm_out out[NETD_MAX_APPS];
static int napps;
static volatile uint64_t *nq;        /* the queue's registers (NIC_VA) */

#define NQ(r) nq[(r) / 8]

static void ring(struct xring *r, int which)
{
    struct nic_ring_idx *idx = (struct nic_ring_idx *)(region + FRAME_BYTES);
    struct xdesc *d = (struct xdesc *)(region + FRAME_BYTES + NIC_RINGS_HDR) + which * RSIZE;
    xring_init(r, &idx[which].prod, &idx[which].cons, d, RSIZE);
}

// Every pair of channels with one peer (it produces requests, we produce its events)
// is an application.
static void attach_apps(void)
{
    for (uint32_t i = 0; i < ks_info->nchan && napps < NETD_MAX_APPS; i++) {
        const struct info_chan *rq = &ks_info->chan[i];
        if (rq->role != EP_CONSUMER)
            continue;
        for (uint32_t j = 0; j < ks_info->nchan; j++) {
            const struct info_chan *ev = &ks_info->chan[j];
            if (ev->role != EP_PRODUCER || ev->peer != rq->peer)
                continue;
            ks_ring_open((int)i, &req[napps]);
            ks_ring_open((int)j, &evt[napps]);
            if (netd_attach_app(&nd, &req[napps], &evt[napps]) < 0)
                return;
            nm_open(&out[napps], ev->id, &evt[napps]);
            napps++;
            break;
        }
    }
}

// One turn of the event loop at model time now_ms; the NIC is told about new
// transmit descriptors and the applications about new events. Returns the work done.
static int turn(uint64_t cpms)
{
    uint32_t tx = *nif.tx.prod;
    int n = netd_poll(&nd, ks_rdcycles() / cpms);

    if (*nif.tx.prod != tx) {
        NQ(NICQ_TX_DOORBELL) = 1;
        n++;
    }
    for (int a = 0; a < napps; a++)
        nm_flush(&out[a]);
    return n;
}

int main(void)
{
    int64_t va = ks_nic_attach(region, REGION_BYTES, FRAME_BYTES, RSIZE);
    if (va < 0) {
        ks_printf("netd: SYS_NIC_ATTACH refused: %ld\n", (long)va);
        return 2;
    }
    nq = (volatile uint64_t *)(uintptr_t)va;
    uint64_t mac = NQ(NICQ_MAC), cpms = NQ(NICQ_CYCLES_PER_MS);
    struct netd_config cfg = {
        .ip = 0x0A4D0002u, .netmask = 0xffffff00u, .udp_echo_port = 7, .rto_ms = 200,
        .time_wait_ms = 1000, .icmp_per_sec = 1000, .isn_key = 0x6b657573u,
    };
    for (int i = 0; i < 6; i++)
        cfg.mac[i] = (uint8_t)(mac >> (40 - 8 * i));
    nif.umem = region;
    nif.nframes = NETD_FRAMES;
    nif.frame_stride = STRIDE;
    nif.frame_room = STRIDE;
    ring(&nif.fill, NIC_RING_FILL);
    ring(&nif.rx, NIC_RING_RX);
    ring(&nif.tx, NIC_RING_TX);
    ring(&nif.comp, NIC_RING_COMP);
    if (netd_init(&nd, &cfg, &nif) != 0)
        return 3;
    attach_apps();
    uint64_t waits = 0;
    for (;;) {
        if (turn(cpms))
            continue;
        if (!(NQ(NICQ_STATUS) & NICQ_STATUS_LINK))
            break;
        // Arm, then look once more: a frame that came in between is not slept on.
        NQ(NICQ_IRQ_ARM) = 1;
        NQ(NICQ_TIMER) = ks_rdcycles() + NETD_TICK_MS * cpms;
        if (turn(cpms))
            continue;
        ks_nic_wait();
        waits++;
    }
    ks_printf("netd: link down after %lu waits; %d apps; nic rx dropped %lu\n",
              waits, napps, (unsigned long)NQ(NICQ_RX_DROPPED));
    for (int i = 0; i < ST_COUNT; i++)
        if (nd.stats[i])
            ks_printf("netd: %s %lu\n", netd_stat_names[i], (unsigned long)nd.stats[i]);
    return 0;
}
