/*
 * The emulated NIC and its IOMMU (docs/netd.md, "NetD on the machine"): register
 * offsets, the descriptor-ring layout in guest memory, and the system calls that give a
 * process a NIC queue. One definition, shared by the kernel (kernel/nic.c), the guests
 * (guests/netd/machine/) and the device models (keusim/machine/nic.py, iommu.py read
 * this file through keusim.abi).
 *
 * Physical layout of the device pages:
 *
 *   IOMMU_PA         one page, kernel only: stream table and event queue registers
 *   NIC_PA           NIC control page, kernel only: per-queue DMA set-up, routing
 *   NIC_PA + 0x1000  queue 0 page: doorbell, interrupt arm, timer, status (the owner maps it)
 *   NIC_PA + 0x2000  queue 1 page
 *
 * The NIC reaches memory only through the IOMMU: every descriptor address is an I/O
 * virtual address (IOVA) that the IOMMU translates with the page table the kernel built
 * for the queue's stream. The kernel maps exactly the owner's registered frame region
 * (rings included) at IOVA == the owner's virtual address, so descriptors are the
 * owner's own pointers and nothing else is reachable.
 */
#ifndef KEUSIM_NIC_H
#define KEUSIM_NIC_H

#include <stdint.h>

#define IOMMU_PA           0x40002000ull
#define NIC_PA             0x40010000ull
#define NIC_QUEUES         2
#define NIC_QUEUE_PA(q)    (NIC_PA + 0x1000ull * (uint64_t)((q) + 1))
#define NIC_VA             0x30000000ull   /* where the kernel maps the owner's queue page */

/* IOMMU registers (SMMUv3-like: stream table -> per-stream translation table; faults go
 * to an event queue in memory). 64-bit registers, kernel only. */
#define IOMMU_STRTAB       0x00  /* w: physical address of the stream table (struct iommu_ste[]) */
#define IOMMU_STRTAB_N     0x08  /* w: entries in the stream table */
#define IOMMU_EVTQ         0x10  /* w: physical address of the event queue (struct iommu_event[]) */
#define IOMMU_EVTQ_N       0x18  /* w: entries in the event queue, a power of two */
#define IOMMU_EVTQ_PROD    0x20  /* r: events written (free-running) */
#define IOMMU_EVTQ_CONS    0x28  /* rw: events the kernel has read (free-running) */
#define IOMMU_ENABLE       0x30  /* w: 1 = translate; 0 = every DMA is blocked */

#define STE_VALID 1u
struct iommu_ste {
    uint64_t flags;      /* STE_VALID */
    uint64_t ttb;        /* physical address of the stream's page-table root (the CPU's format) */
};

/* IOMMU fault reasons (struct iommu_event.reason). */
#define IOMMU_F_DISABLED   1  /* the IOMMU is off: all DMA blocked */
#define IOMMU_F_BAD_STREAM 2  /* no valid stream table entry for the device */
#define IOMMU_F_UNMAPPED   3  /* the IOVA has no translation */
#define IOMMU_F_PERM       4  /* a write to a read-only page */
#define IOMMU_ACC_READ  1
#define IOMMU_ACC_WRITE 2
struct iommu_event {
    uint32_t stream;
    uint32_t reason;
    uint32_t access;     /* IOMMU_ACC_* */
    uint32_t len;
    uint64_t iova;
    uint64_t cycle;      /* model time of the blocked access */
};

/* NIC control page (kernel only): queue q's registers at NIC_QCTL(q) + offset. */
#define NIC_MAC            0x00  /* r: the port's MAC address, low 48 bits */
#define NIC_IRQ_STATUS     0x08  /* r: bit q set = queue q raised its interrupt; read clears */
#define NIC_QCTL(q)        (0x100 + 0x40 * (q))
#define NIC_Q_RINGS        0x00  /* w: IOVA of the ring block (struct nic_ring_idx[4] + descriptors) */
#define NIC_Q_UMEM         0x08  /* w: IOVA of the frame region; descriptor addr is an offset into it */
#define NIC_Q_SIZE         0x10  /* w: entries per ring, a power of two <= NIC_RING_MAX */
#define NIC_Q_IRQ_CORE     0x18  /* w: the core that takes this queue's interrupt */
#define NIC_Q_STREAM       0x20  /* w: the IOMMU stream id of the queue's DMA */
#define NIC_Q_ENABLE       0x28  /* w: 1 = the queue receives and transmits */
#define NIC_RING_MAX       4096

/* Queue page (the owner's): 64-bit registers. */
#define NICQ_TX_DOORBELL   0x00  /* w: new descriptors on the tx ring: transmit them now */
#define NICQ_IRQ_ARM       0x08  /* w: raise the interrupt once at the next event (rx, timer, link) */
#define NICQ_TIMER         0x10  /* w: absolute model cycle at which to raise the interrupt (0 off) */
#define NICQ_STATUS        0x18  /* r: bit 0 link up */
#define NICQ_CYCLES_PER_MS 0x20  /* r: model cycles per millisecond of link time */
#define NICQ_MAC           0x28  /* r: the port's MAC address */
#define NICQ_RX_DROPPED    0x30  /* r: frames dropped because the fill ring was empty */
#define NICQ_STATUS_LINK   1u

/*
 * The ring block at NIC_Q_RINGS: four index pairs, each index on its own cache line
 * (the producer's and the consumer's never share one), then the four descriptor arrays
 * of NIC_Q_SIZE entries each (struct xdesc in guests/netd/netif.h: u64 addr, u32 len,
 * u32 options). Rings, in order: fill (owner -> NIC), rx (NIC -> owner),
 * tx (owner -> NIC), completion (NIC -> owner).
 */
#define NIC_RING_FILL 0
#define NIC_RING_RX   1
#define NIC_RING_TX   2
#define NIC_RING_COMP 3
struct nic_ring_idx {
    volatile uint32_t prod;
    uint32_t _pad0[15];
    volatile uint32_t cons;
    uint32_t _pad1[15];
};
#define NIC_IDX_BYTES      128   /* sizeof(struct nic_ring_idx) */
#define NIC_DESC_BYTES     16    /* sizeof(struct xdesc) */
#define NIC_RINGS_HDR      (4 * NIC_IDX_BYTES)
#define NIC_RINGS_BYTES(n) (NIC_RINGS_HDR + 4 * (n) * NIC_DESC_BYTES)

/* One descriptor (the layout of struct xdesc in guests/netd/netif.h). */
struct nic_desc {
    uint64_t addr;       /* byte offset into the frame region */
    uint32_t len;        /* frame bytes (rx, tx); 0 on fill and completion */
    uint32_t options;    /* reserved, 0 */
};

/* Largest frame region a process may register (bytes). */
#define NIC_REGION_MAX     (8u << 20)

#endif /* KEUSIM_NIC_H */
