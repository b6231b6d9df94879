/*
 * The traditional, kernel-mediated path (the NetD table's baseline, experiments/
 * netd_table.py): the same protocol code as NetD (guests/netd/), linked into the
 * application, but the application does not own a NIC queue. The kernel does
 * (`nic = "syscalls"`): every received frame is copied out by SYS_NET_RECV and every
 * frame sent is copied in by SYS_NET_SEND, one system call per packet each way, and
 * SYS_NIC_WAIT sleeps when nothing has arrived. UDP echo on port 7 answers.
 *
 * The application's frames are an in-process netif: it receives straight into the
 * frame a fill descriptor names and sends straight from the frame a tx descriptor
 * names, so the only copies are the kernel's. It exits when the link goes down,
 * printing its counters and the system calls it made.
 */
#include <keusim/keusim.h>
#include "../netd.h"

#define NFRAMES 64
#define STRIDE 2048
#define RSIZE 64

static uint8_t umem[NFRAMES * STRIDE] __attribute__((aligned(4096)));
static uint32_t idx[8];
static struct xdesc descs[4][RSIZE];
static struct netif nif;
static struct netd nd;
static uint64_t recvs, sends, waits, again;

int main(void)
{
    struct netd_config cfg = {
        .ip = 0x0A4D0002u, .netmask = 0xffffff00u, .mac = { 2, 0, 0, 0, 0, 2 },
        .udp_echo_port = 7, .rto_ms = 200, .time_wait_ms = 1000, .icmp_per_sec = 1000000,
        .isn_key = 0x6b657573u,
    };
    nif.umem = umem;
    nif.nframes = NFRAMES;
    nif.frame_stride = STRIDE;
    nif.frame_room = STRIDE;
    xring_init(&nif.fill, &idx[0], &idx[1], descs[0], RSIZE);
    xring_init(&nif.rx, &idx[2], &idx[3], descs[1], RSIZE);
    xring_init(&nif.tx, &idx[4], &idx[5], descs[2], RSIZE);
    xring_init(&nif.comp, &idx[6], &idx[7], descs[3], RSIZE);
    if (netd_init(&nd, &cfg, &nif) != 0)
        return 3;
    struct xdesc held;
    int holding = 0;
    uint64_t cpms = 3000000;     /* keusim.machine.nic.LinkParams.core_hz / 1000 */
    for (;;) {
        int work = 0;
        // Receive: into the frame of the next fill descriptor, by system call.
        for (;;) {
            if (!holding && xring_get(&nif.fill, &held) != 0)
                break;
            holding = 1;
            int64_t n = ks_net_recv(umem + held.addr, STRIDE);
            recvs++;
            if (n < 0) {
                again++;
                break;
            }
            held.len = (uint32_t)n;
            xring_put(&nif.rx, &held);
            holding = 0;
            work++;
        }
        work += netd_poll(&nd, ks_rdcycles() / cpms);
        // Transmit: from the frame of each tx descriptor, by system call.
        struct xdesc d;
        while (xring_get(&nif.tx, &d) == 0) {
            while (ks_net_send(umem + d.addr, d.len) == EAGAIN)
                ks_yield();
            sends++;
            d.len = 0;
            xring_put(&nif.comp, &d);
            work++;
        }
        if (work)
            continue;
        int64_t w = ks_nic_wait();
        waits++;
        if ((w & 4) && !(w & 1))
            break;
    }
    ks_printf("trad: %lu recv calls (%lu empty), %lu send calls, %lu waits, udp echo %lu\n",
              recvs, again, sends, waits, (unsigned long)nd.stats[ST_UDP_ECHO]);
    return 0;
}
