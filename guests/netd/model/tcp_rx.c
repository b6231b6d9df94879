/*
 * NetD inside the machine: model cycles to take one in-order TCP segment from the NIC's
 * rx ring into an application's event ring (and acknowledge it), and for the
 * application to read it there (keusim.net.model, docs/netd.md "Measured").
 *
 * One process plays three parts: the software NIC (as in udp_echo.c), the peer (it
 * builds the segments and reads NetD's SYN-ACK and ACKs), and the application, which
 * talks to NetD only through its two rings with ns_client.h. The application listens,
 * the peer connects, then PACKETS segments of SIZE bytes arrive one at a time. Timed:
 * each netd_poll (ks_rdcycles around it), and the application's ns_recv and ns_done
 * (receiving in place; its check of the bytes between them is not timed). Every
 * segment's bytes are checked and every ACK must acknowledge exactly them.
 *
 * Parameters (-D): PACKETS, SIZE (TCP payload bytes, at most 1460).
 */
#include <keusim/keusim.h>
#include "../netd.h"
#include "../ns_client.h"

#ifndef PACKETS
#define PACKETS 200
#endif
#ifndef SIZE
#define SIZE 64
#endif
#define NFRAMES 64
#define STRIDE 2048
#define RSIZE 64
#define APP_CAP 65536
#define PEER_IP 0x0A4D0001u
#define NETD_IP 0x0A4D0002u
#define PEER_PORT 40000
#define PORT 80
#define PEER_ISS 1000u

static uint8_t umem[NFRAMES * STRIDE] __attribute__((aligned(4096)));
static uint32_t idx[8];
static struct xdesc descs[4][RSIZE];
static struct netif nif;
static struct netd nd;
static uint8_t frame[ETH_HLEN + ETH_MTU], out[ETH_HLEN + ETH_MTU];
static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t netd_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static struct { uint32_t head, tail; uint8_t data[APP_CAP] __attribute__((aligned(8))); } req, evt;
static struct ring_ep req_app, req_netd, evt_app, evt_netd;

static int
nic_receive(uint32_t len)
{
    struct xdesc d;

    if (xring_get(&nif.fill, &d) != 0)
        return -1;
    memcpy(umem + d.addr, frame, len);
    d.len = len;
    return xring_put(&nif.rx, &d);
}

// One frame NetD sent, into out; its length, or 0 when none.
static uint32_t
nic_transmit(void)
{
    struct xdesc d;
    uint32_t len;

    if (xring_get(&nif.tx, &d) != 0)
        return 0;
    len = d.len <= sizeof(out) ? d.len : 0;
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

// A segment from the peer: flags, seq, ack, n payload bytes made from seq.
static uint32_t
build_tcp(uint8_t flags, uint32_t seq, uint32_t ack, uint32_t n)
{
    uint8_t *ip = frame + ETH_HLEN, *t = ip + IP_HLEN;

    put16(frame + 12, 0x0800);
    memset(ip, 0, IP_HLEN + TCP_HLEN);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(IP_HLEN + TCP_HLEN + n));
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, PEER_IP);
    put32(ip + 16, NETD_IP);
    put16(ip + 10, cksum_fold(cksum_add(0, ip, IP_HLEN)));
    put16(t, PEER_PORT);
    put16(t + 2, PORT);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = 5 << 4;
    t[13] = flags;
    put16(t + 14, 65535);
    for (uint32_t i = 0; i < n; i++)
        t[TCP_HLEN + i] = (uint8_t)(seq + i);
    put16(t + 16, l4_cksum(PEER_IP, NETD_IP, 6, t, TCP_HLEN + n));
    uint32_t len = ETH_HLEN + IP_HLEN + TCP_HLEN + n;
    return len < 60 ? 60 : len;
}

int
main(void)
{
    struct netd_config cfg = {
        .ip = NETD_IP, .netmask = 0xffffff00, .mac = { 0x02, 0, 0, 0, 0, 0x02 },
        .udp_echo_port = 7, .rto_ms = 200, .time_wait_ms = 1000, .icmp_per_sec = 1000,
        .isn_key = 1,
    };
    struct ns_client app = { &req_app, &evt_app, 1 };
    struct ns_msg ev;
    const uint8_t *p;
    uint64_t netd_cycles = 0, app_cycles = 0, now = 1;
    uint32_t seq = PEER_ISS + 1, iss;
    int sock = -1, listen_sock = -1;

    nif.umem = umem;
    nif.nframes = NFRAMES;
    nif.frame_stride = STRIDE;
    nif.frame_room = STRIDE;
    xring_init(&nif.fill, &idx[0], &idx[1], descs[0], RSIZE);
    xring_init(&nif.rx, &idx[2], &idx[3], descs[1], RSIZE);
    xring_init(&nif.tx, &idx[4], &idx[5], descs[2], RSIZE);
    xring_init(&nif.comp, &idx[6], &idx[7], descs[3], RSIZE);
    if (netd_init(&nd, &cfg, &nif) != 0 ||
        ring_init(&req_app, &req.head, &req.tail, req.data, APP_CAP) ||
        ring_init(&req_netd, &req.head, &req.tail, req.data, APP_CAP) ||
        ring_init(&evt_app, &evt.head, &evt.tail, evt.data, APP_CAP) ||
        ring_init(&evt_netd, &evt.head, &evt.tail, evt.data, APP_CAP) ||
        netd_attach_app(&nd, &req_netd, &evt_netd) != 0)
        return 2;

    // The application listens on PORT.
    ns_open(&app, NS_TCP);
    netd_poll(&nd, now);
    if (ns_recv(&app, &ev, &p) != 0 || ev.status != 0)
        return 3;
    listen_sock = ev.sock;
    ns_done(&app);
    ns_bind(&app, (uint16_t)listen_sock, PORT);
    netd_poll(&nd, now);
    if (ns_recv(&app, &ev, &p) != 0 || ev.status != 0)
        return 3;
    ns_done(&app);

    // The peer: ARP, SYN, read the SYN-ACK, ACK.
    nic_receive(build_arp());
    netd_poll(&nd, now);
    while (nic_transmit())
        ;
    nic_receive(build_tcp(0x02, PEER_ISS, 0, 0));
    netd_poll(&nd, now);
    if (nic_transmit() == 0 || out[47] != 0x12 || get32(out + 42) != PEER_ISS + 1)
        return 4;
    iss = get32(out + 38);
    nic_receive(build_tcp(0x10, seq, iss + 1, 0));
    netd_poll(&nd, now);
    if (ns_recv(&app, &ev, &p) != 0 || ev.op != NS_EV_ACCEPT)
        return 5;
    sock = ev.sock;
    ns_done(&app);

    for (uint32_t i = 0; i < PACKETS; i++) {
        nic_receive(build_tcp(0x18, seq, iss + 1, SIZE));
        uint64_t t0 = ks_rdcycles();
        netd_poll(&nd, ++now);
        uint64_t t1 = ks_rdcycles();
        int r = ns_recv(&app, &ev, &p);
        uint64_t t2 = ks_rdcycles();
        // The check reads the payload in place; it is the application's work, not timed.
        int ok = r == 0 && ev.op == NS_EV_DATA && ev.sock == sock && ev.len == SIZE;
        for (uint32_t k = 0; ok && k < SIZE; k++)
            ok = p[k] == (uint8_t)(seq + k);
        uint64_t t3 = ks_rdcycles();
        if (r == 0)
            ns_done(&app);
        uint64_t t4 = ks_rdcycles();
        netd_cycles += t1 - t0;
        app_cycles += (t2 - t1) + (t4 - t3);
        seq += SIZE;
        // NetD's ACK for exactly these bytes.
        if (!ok || nic_transmit() == 0 || !(out[47] & 0x10) || get32(out + 42) != seq) {
            ks_printf("netd-tcp-rx: segment %u not delivered or not acknowledged\n", i);
            return 1;
        }
        while (nic_transmit())
            ;
    }
    ks_printf("netd-tcp-rx: size %u packets %u netd %lu app %lu per-packet %lu\n",
              (uint32_t)SIZE, (uint32_t)PACKETS, netd_cycles, app_cycles,
              netd_cycles / PACKETS);
    return 0;
}
