/*
 * NetD inside the machine, before the NIC exists: a keusim guest that links NetD with a
 * software NIC in the same process and measures, in model cycles, what one netd_poll
 * costs to answer a UDP echo (keusim.net.model, docs/netd.md "Measured").
 *
 * The software NIC does in this process what the emulated NIC will do from outside:
 * it takes a frame from the fill ring, writes a datagram into it, posts it on the rx
 * ring, and after the poll takes the echo off the tx ring and returns its frame on the
 * completion ring. Only netd_poll is timed (ks_rdcycles before and after), and once
 * more with nothing to do (the fixed cost of a turn). Every echo is checked byte for
 * byte; the program exits 1 at the first wrong one.
 *
 * Parameters (-D, from the manifest's [params]): PACKETS, SIZE (UDP payload bytes).
 */
#include <keusim/keusim.h>
#include "../netd.h"

#ifndef PACKETS
#define PACKETS 200
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define NFRAMES 64
#define STRIDE 2048
#define RSIZE 64
#define PEER_IP 0x0A4D0001u
#define NETD_IP 0x0A4D0002u

static uint8_t umem[NFRAMES * STRIDE] __attribute__((aligned(4096)));
static uint32_t idx[8];
static struct xdesc descs[4][RSIZE];
static struct netif nif;
static struct netd nd;
static uint8_t frame[ETH_HLEN + ETH_MTU];
static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t netd_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };

// The software NIC's receive: a fill frame, the bytes, an rx descriptor.
static int
nic_receive(const uint8_t *f, uint32_t len)
{
    struct xdesc d;

    if (xring_get(&nif.fill, &d) != 0)
        return -1;
    memcpy(umem + d.addr, f, len);
    d.len = len;
    return xring_put(&nif.rx, &d);
}

// The software NIC's transmit: one frame off the tx ring into out (if given), its
// frame back on the completion ring. Returns its length, or 0 when none was queued.
static uint32_t
nic_transmit(uint8_t *out)
{
    struct xdesc d;
    uint32_t len;

    if (xring_get(&nif.tx, &d) != 0)
        return 0;
    len = d.len;
    if (out && len <= ETH_HLEN + ETH_MTU)
        memcpy(out, umem + d.addr, len);
    d.len = 0;
    xring_put(&nif.comp, &d);
    return len;
}

static uint32_t
build_arp(void)
{
    uint8_t *a = frame + ETH_HLEN;

    memcpy(frame, netd_mac, 6);
    memcpy(frame + 6, peer_mac, 6);
    put16(frame + 12, 0x0806);
    put16(a, 1); put16(a + 2, 0x0800); a[4] = 6; a[5] = 4; put16(a + 6, 1);
    memcpy(a + 8, peer_mac, 6); put32(a + 14, PEER_IP);
    memset(a + 18, 0, 6); put32(a + 24, NETD_IP);
    return 60;
}

static uint32_t
build_udp(uint32_t seq)
{
    uint8_t *ip = frame + ETH_HLEN, *u = ip + IP_HLEN;

    put16(frame + 12, 0x0800);
    memset(ip, 0, IP_HLEN);
    ip[0] = 0x45;
    put16(ip + 2, IP_HLEN + 8 + SIZE);
    put16(ip + 4, (uint16_t)seq);
    ip[8] = 64;
    ip[9] = 17;
    put32(ip + 12, PEER_IP);
    put32(ip + 16, NETD_IP);
    put16(ip + 10, cksum_fold(cksum_add(0, ip, IP_HLEN)));
    put16(u, 40000);
    put16(u + 2, 7);
    put16(u + 4, 8 + SIZE);
    put16(u + 6, 0);
    for (uint32_t i = 0; i < SIZE; i++)
        u[8 + i] = (uint8_t)(i * 7 + seq);
    put16(u + 6, l4_cksum(PEER_IP, NETD_IP, 17, u, 8 + SIZE));
    return ETH_HLEN + IP_HLEN + 8 + SIZE;
}

int
main(void)
{
    static uint8_t out[ETH_HLEN + ETH_MTU];
    struct netd_config cfg = {
        .ip = NETD_IP, .netmask = 0xffffff00, .mac = { 0x02, 0, 0, 0, 0, 0x02 },
        .udp_echo_port = 7, .rto_ms = 200, .time_wait_ms = 1000, .icmp_per_sec = 1000,
        .isn_key = 1,
    };
    uint64_t cycles = 0, lo = ~0ull, hi = 0;

    nif.umem = umem;
    nif.nframes = NFRAMES;
    nif.frame_stride = STRIDE;
    nif.frame_room = STRIDE;
    xring_init(&nif.fill, &idx[0], &idx[1], descs[0], RSIZE);
    xring_init(&nif.rx, &idx[2], &idx[3], descs[1], RSIZE);
    xring_init(&nif.tx, &idx[4], &idx[5], descs[2], RSIZE);
    xring_init(&nif.comp, &idx[6], &idx[7], descs[3], RSIZE);
    if (netd_init(&nd, &cfg, &nif) != 0)
        return 2;
    netd_poll(&nd, 1);                       /* fill ring gets its frames */
    if (nic_receive(frame, build_arp()) != 0)
        return 3;
    netd_poll(&nd, 1);                       /* NetD learns the peer and answers */
    while (nic_transmit(0))
        ;
    for (uint32_t i = 0; i < PACKETS; i++) {
        uint32_t len = build_udp(i);
        if (nic_receive(frame, len) != 0)
            return 4;
        uint64_t t0 = ks_rdcycles();
        netd_poll(&nd, 2 + i);
        uint64_t dt = ks_rdcycles() - t0;
        cycles += dt;
        lo = dt < lo ? dt : lo;
        hi = dt > hi ? dt : hi;
        // The echo: same length, addresses and ports swapped, same payload.
        if (nic_transmit(out) != len || memcmp(out, peer_mac, 6) != 0 ||
            get32(out + 26) != NETD_IP || get32(out + 30) != PEER_IP ||
            get16(out + 34) != 7 || get16(out + 36) != 40000 ||
            memcmp(out + 42, frame + 42, SIZE) != 0) {
            ks_printf("netd-udp-echo: packet %u not echoed correctly\n", i);
            return 1;
        }
    }
    // One turn of the loop with nothing to do: the fixed cost every poll pays.
    uint64_t t0 = ks_rdcycles();
    netd_poll(&nd, 2 + PACKETS);
    uint64_t idle = ks_rdcycles() - t0;
    ks_printf("netd-udp-echo: size %u packets %u cycles %lu min %lu max %lu per-packet %lu idle %lu\n",
              (uint32_t)SIZE, (uint32_t)PACKETS, cycles, lo, hi, cycles / PACKETS, idle);
    return 0;
}
