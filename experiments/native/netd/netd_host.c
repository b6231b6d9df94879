/*
 * Host build of NetD (docs/netd.md): the NetD sources from guests/netd/ with a host
 * "NIC" behind the netif rings, so NetD can be tested before the emulated NIC exists.
 *
 *   netd_host --pipe [options]   frames, time and application requests arrive on stdin,
 *                                frames and events leave on stdout (keusim/net/host.py)
 *   netd_host --tap IF [options] frames come from and go to the TAP device IF; time is
 *                                the host's monotonic clock (not deterministic)
 *   netd_host --bench N [--size S]  N UDP echoes through NetD, host-timed (bench/netd_host.py)
 *
 * Options: --ip A.B.C.D  --mac aa:bb:cc:dd:ee:ff  --prefix N  --udp-echo PORT
 *          --tcp-echo PORT (built-in application: echoes every TCP byte, over rings)
 *          --udp-app PORT  (built-in application: echoes UDP datagrams, over rings)
 *          --pcap FILE (every frame in and out, at NetD's time)
 *          --rto MS  --frames N  --guard (every received frame ends at a PROT_NONE page,
 *          so a read past a frame's end faults) --icmp-rate N --isn-key K
 *
 * Pipe records, both directions: one type byte, a little-endian uint32 length, payload.
 *   in:  F frame   T uint64 ms (time moves)   A request (struct ns_msg + payload)
 *        S (stats wanted)   H 1 byte (1: application 0 stops reading events, 0: reads)
 *        C uint32 (application 0 overwrites its request ring's head index: an attack)
 *        Q (quit)
 *   out: F frame sent   A event for application 0   S stats text   E end of a batch
 * After every input record NetD runs until it is idle, then 'E' closes the batch.
 *
 * Exit status: 0 on Q or SIGTERM, 2 bad command line, 3 set-up failure, 4 bad pipe record,
 * 5 a benchmark packet was not echoed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "netd.h"
#include "ns_client.h"

#define RING_SIZE 256
#define APP_RING_CAP 65536

static struct netif nif;
static struct netd nd;
static uint32_t idx[8];                 /* prod/cons for fill, rx, tx, comp */
static struct xdesc descs[4][RING_SIZE];
static uint64_t now_ms;
static uint64_t nic_rx_drop, nic_tx_bad, tap_tx_drop;
static volatile sig_atomic_t stop;
static FILE *pcap;                     /* --pcap FILE: every frame in and out */
static int hold_events;                 /* pipe: application 0 stops reading its events */

struct appring {
    uint32_t head, tail;
    uint8_t data[APP_RING_CAP] __attribute__((aligned(8)));
};
struct appchan {
    struct appring req, evt;
    struct ring_ep req_app, req_netd, evt_app, evt_netd;
    struct ns_client cl;
    int index;
};
static struct appchan chans[3];         /* 0: the pipe's application, 1: TCP echo, 2: UDP echo */

static void
die(int code, const char *fmt, const char *arg)
{
    fprintf(stderr, "netd_host: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(code);
}

static void
chan_open(struct appchan *c)
{
    if (ring_init(&c->req_app, &c->req.head, &c->req.tail, c->req.data, APP_RING_CAP) ||
        ring_init(&c->req_netd, &c->req.head, &c->req.tail, c->req.data, APP_RING_CAP) ||
        ring_init(&c->evt_app, &c->evt.head, &c->evt.tail, c->evt.data, APP_RING_CAP) ||
        ring_init(&c->evt_netd, &c->evt.head, &c->evt.tail, c->evt.data, APP_RING_CAP))
        die(3, "%s", "ring_init failed");
    c->cl.req = &c->req_app;
    c->cl.evt = &c->evt_app;
    c->cl.next_id = 1;
    c->index = netd_attach_app(&nd, &c->req_netd, &c->evt_netd);
    if (c->index < 0)
        die(3, "%s", "netd_attach_app failed");
}

static void
nic_setup(uint32_t nframes, int guard)
{
    size_t stride = guard ? 8192 : 2048;
    uint8_t *m = mmap(0, nframes * stride, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (m == MAP_FAILED)
        die(3, "mmap: %s", strerror(errno));
    if (guard)
        for (uint32_t i = 0; i < nframes; i++)
            if (mprotect(m + i * stride + 4096, 4096, PROT_NONE) != 0)
                die(3, "mprotect: %s", strerror(errno));
    nif.umem = m;
    nif.nframes = nframes;
    nif.frame_stride = (uint32_t)stride;
    nif.frame_room = guard ? 4096 : 2048;
    xring_init(&nif.fill, &idx[0], &idx[1], descs[0], RING_SIZE);
    xring_init(&nif.rx, &idx[2], &idx[3], descs[1], RING_SIZE);
    xring_init(&nif.tx, &idx[4], &idx[5], descs[2], RING_SIZE);
    xring_init(&nif.comp, &idx[6], &idx[7], descs[3], RING_SIZE);
}

// Append a frame to the --pcap capture (classic libpcap, LINKTYPE_ETHERNET; the format
// keusim/net/pcap.py writes), stamped with NetD's time.
static void
pcap_frame(const uint8_t *f, uint32_t len)
{
    uint32_t rec[4] = { (uint32_t)(now_ms / 1000), (uint32_t)(now_ms % 1000) * 1000, len, len };

    if (!pcap)
        return;
    fwrite(rec, sizeof(rec), 1, pcap);
    fwrite(f, 1, len, pcap);
}

static void
pcap_open(const char *path)
{
    uint32_t hdr[6] = { 0xa1b2c3d4u, 2 | 4u << 16, 0, 0, 65535, 1 };

    pcap = fopen(path, "wb");
    if (!pcap || fwrite(hdr, sizeof(hdr), 1, pcap) != 1)
        die(3, "--pcap %s: cannot write the file", path);
}

// The NIC received len bytes: into a frame from the fill ring, placed so that the
// frame's data ends at the end of its writable part (in --guard mode, right before a
// PROT_NONE page), then onto the rx ring. No fill frame: dropped, as a NIC does.
static void
nic_receive(const uint8_t *f, uint32_t len)
{
    struct xdesc d;

    pcap_frame(f, len);
    if (len > nif.frame_room || xring_get(&nif.fill, &d) != 0) {
        nic_rx_drop++;
        return;
    }
    d.addr += nif.frame_room - len;
    d.len = len;
    memcpy(nif.umem + d.addr, f, len);
    if (xring_put(&nif.rx, &d) != 0)
        nic_rx_drop++;
}

static void
put_record(char type, const void *p, uint32_t len)
{
    uint8_t h[5] = { (uint8_t)type, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                     (uint8_t)(len >> 24) };
    if (fwrite(h, 1, 5, stdout) != 5 || (len && fwrite(p, 1, len, stdout) != len))
        exit(0);    /* the reader went away */
}

// The NIC sends what NetD queued: to the TAP device (tapfd >= 0), to stdout (-1), or
// nowhere (-2, before the pipe is open).
static int
nic_transmit(int tapfd)
{
    struct xdesc d;
    int n = 0;

    while (xring_get(&nif.tx, &d) == 0) {
        uint8_t *f = nif.umem + d.addr;
        n++;
        if (d.len == 0 || d.len > nif.frame_room ||
            d.addr + d.len > (uint64_t)nif.nframes * nif.frame_stride) {
            nic_tx_bad++;
        } else {
            pcap_frame(f, d.len);
            if (tapfd >= 0 && write(tapfd, f, d.len) < 0)
                tap_tx_drop++;      /* a full TAP queue drops, as a wire would */
            else if (tapfd == -1)
                put_record('F', f, d.len);
        }
        d.len = 0;
        xring_put(&nif.comp, &d);
    }
    return n;
}

static int
drain_events(void)
{
    const void *p;
    uint32_t len;
    int n = 0;

    while (ring_peek(&chans[0].evt_app, &p, &len) == 0) {
        put_record('A', p, len);
        ring_release(&chans[0].evt_app);
        n++;
    }
    return n;
}

// A built-in echo application: one socket, bound to port, every byte or datagram sent
// back. It talks to NetD only through its rings (ns_client.h): a received payload is
// read in place from the event ring and copied once into the request ring.
static int
echo_app(struct appchan *c, uint8_t proto, uint16_t port, int *started)
{
    struct ns_msg m;
    const uint8_t *p;
    int n = 0;

    if (!*started) {
        *started = ns_open(&c->cl, proto) >= 0;
        return 1;
    }
    while (ns_recv(&c->cl, &m, &p) == 0) {
        int r = 0;
        if (m.op == (NS_OPEN | NS_RESP) && m.status == 0)
            r = ns_bind(&c->cl, m.sock, port);
        else if (m.op == NS_EV_DATA && proto == NS_TCP)
            r = ns_send(&c->cl, m.sock, p, m.len);
        else if (m.op == NS_EV_DATA)
            r = ns_sendto(&c->cl, m.sock, m.addr, m.port, p, m.len);
        else if (m.op == NS_EV_EOF || m.op == NS_EV_RESET)
            r = ns_close(&c->cl, m.sock);
        else if ((m.op & NS_RESP) && m.status != 0)
            fprintf(stderr, "netd_host: echo app: op %u on socket %u failed: %d\n",
                    m.op & 0x7f, m.sock, m.status);
        if (r < 0)
            break;  /* request ring full: keep the event, try next turn */
        ns_done(&c->cl);
        n++;
    }
    return n;
}

static uint16_t tcp_echo, udp_app;
static int tcp_started, udp_started;

static int
step(int tapfd)
{
    int n = netd_poll(&nd, now_ms);

    n += nic_transmit(tapfd);
    if (tcp_echo)
        n += echo_app(&chans[1], NS_TCP, tcp_echo, &tcp_started);
    if (udp_app)
        n += echo_app(&chans[2], NS_UDP, udp_app, &udp_started);
    if (tapfd == -1 && !hold_events)
        n += drain_events();
    return n;
}

static void
run_until_idle(int tapfd)
{
    for (int i = 0; i < 10000 && step(tapfd) > 0; i++)
        ;
}

static void
print_stats(FILE *out)
{
    for (int i = 0; i < ST_COUNT; i++)
        fprintf(out, "%s %llu\n", netd_stat_names[i], (unsigned long long)nd.stats[i]);
    fprintf(out, "nic_rx_drop %llu\nnic_tx_bad %llu\ntap_tx_drop %llu\n",
            (unsigned long long)nic_rx_drop, (unsigned long long)nic_tx_bad,
            (unsigned long long)tap_tx_drop);
}

static int
read_full(void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n) {
        ssize_t r = read(0, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int
pipe_loop(void)
{
    static uint8_t buf[1 << 16];

    for (;;) {
        uint8_t h[5];
        uint32_t len;
        if (read_full(h, 5) != 0)
            return 0;
        len = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16 | (uint32_t)h[4] << 24;
        if (len > sizeof(buf) || read_full(buf, len) != 0)
            die(4, "%s", "a pipe record is longer than 65536 bytes or cut short");
        switch (h[0]) {
        case 'F':
            nic_receive(buf, len);
            break;
        case 'T':
            if (len != 8)
                die(4, "%s", "a T record carries 8 bytes");
            memcpy(&now_ms, buf, 8);
            break;
        case 'A':
            if (ring_send(&chans[0].req_app, buf, len) != 0)
                die(4, "%s", "the application request ring is full or the request too big");
            break;
        case 'S': {
            char *text = 0;
            size_t n = 0;
            FILE *m = open_memstream(&text, &n);
            print_stats(m);
            fclose(m);
            put_record('S', text, (uint32_t)n);
            free(text);
            break;
        }
        case 'C':
            // Attack: application 0 writes garbage into its request ring's head index.
            if (len != 4)
                die(4, "%s", "a C record carries 4 bytes");
            memcpy((void *)&chans[0].req.head, buf, 4);
            break;
        case 'H':
            if (len != 1)
                die(4, "%s", "an H record carries 1 byte");
            hold_events = buf[0] != 0;
            break;
        case 'Q':
            fflush(stdout);
            if (pcap)
                fclose(pcap);
            return 0;
        default:
            die(4, "unknown pipe record type %s", "(not F, T, A, S, H, C or Q)");
        }
        run_until_idle(-1);
        put_record('E', 0, 0);
        fflush(stdout);
    }
}

static int
tap_open(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);

    if (fd < 0)
        die(3, "open /dev/net/tun: %s", strerror(errno));
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (strlen(name) >= IFNAMSIZ)
        die(2, "--tap %s: interface name too long", name);
    strcpy(ifr.ifr_name, name);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0)
        die(3, "TUNSETIFF: %s (is the TAP device there, and are we root?)", strerror(errno));
    return fd;
}

static uint64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int
tap_loop(int fd)
{
    static uint8_t buf[1 << 16];
    uint64_t t0 = mono_ms();

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int busy;
        now_ms = mono_ms() - t0 + 1;
        for (int i = 0; i < 256; i++) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0)
                break;
            nic_receive(buf, (uint32_t)r);
        }
        busy = 0;
        for (int i = 0; i < 64 && step(fd) > 0; i++)
            busy = 1;
        if (!busy)
            poll(&pfd, 1, 5);
    }
    print_stats(stdout);
    if (pcap)
        fclose(pcap);
    return 0;
}

// --bench N --size S: N UDP echo round trips through NetD's receive and transmit paths
// (the NIC copy into the frame region included, the wire excluded), timed with the
// host's monotonic clock. Prints one JSON line. Host time: a measurement, not a model.
static int
bench_loop(unsigned long n, uint32_t size)
{
    static uint8_t f[ETH_HLEN + ETH_MTU];
    static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
    uint32_t peer = (nd.cfg.ip & nd.cfg.netmask) | 1;
    uint8_t *ip = f + ETH_HLEN, *u = ip + IP_HLEN;
    struct timespec t0, t1;

    if (size > ETH_MTU - IP_HLEN - 8 || nd.cfg.udp_echo_port == 0)
        die(2, "%s", "--size must be at most 1472 and --udp-echo non-zero");
    // Teach NetD the peer's MAC (an ARP request to it), so replies need no resolution.
    memcpy(f, nd.cfg.mac, 6);
    memcpy(f + 6, peer_mac, 6);
    put16(f + 12, 0x0806);
    put16(ip, 1); put16(ip + 2, 0x0800); ip[4] = 6; ip[5] = 4; put16(ip + 6, 1);
    memcpy(ip + 8, peer_mac, 6); put32(ip + 14, peer); memset(ip + 18, 0, 6); put32(ip + 24, nd.cfg.ip);
    nic_receive(f, 60);
    run_until_idle(-2);
    // One UDP datagram to the echo port, reused for every round.
    put16(f + 12, 0x0800);
    memset(ip, 0, IP_HLEN);
    ip[0] = 0x45; put16(ip + 2, (uint16_t)(IP_HLEN + 8 + size)); ip[8] = 64; ip[9] = 17;
    put32(ip + 12, peer); put32(ip + 16, nd.cfg.ip);
    put16(ip + 10, cksum_fold(cksum_add(0, ip, IP_HLEN)));
    put16(u, 40000); put16(u + 2, nd.cfg.udp_echo_port); put16(u + 4, (uint16_t)(8 + size)); put16(u + 6, 0);
    for (uint32_t i = 0; i < size; i++)
        u[8 + i] = (uint8_t)i;
    put16(u + 6, l4_cksum(peer, nd.cfg.ip, 17, u, 8 + size));
    uint64_t before = nd.stats[ST_UDP_ECHO];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned long i = 0; i < n; i++) {
        nic_receive(f, ETH_HLEN + IP_HLEN + 8 + size);
        now_ms++;
        netd_poll(&nd, now_ms);
        nic_transmit(-2);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("{\"bench\": \"udp_echo\", \"size\": %u, \"packets\": %lu, \"echoed\": %llu, "
           "\"ns_per_packet\": %.1f}\n", size, n,
           (unsigned long long)(nd.stats[ST_UDP_ECHO] - before), ns / (double)n);
    return nd.stats[ST_UDP_ECHO] - before == n ? 0 : 5;
}

static uint32_t
parse_ip(const char *s)
{
    unsigned a, b, c, d;
    char tail;

    if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 || c > 255 || d > 255)
        die(2, "--ip %s: not a dotted IPv4 address", s);
    return a << 24 | b << 16 | c << 8 | d;
}

static unsigned long
parse_num(const char *opt, const char *s, unsigned long max)
{
    char *end;
    unsigned long v = strtoul(s, &end, 0);

    if (*s == 0 || *end != 0 || v > max)
        die(2, "bad number for %s", opt);
    return v;
}

int
main(int argc, char **argv)
{
    struct netd_config cfg = {
        .ip = 0x0A4D0002, .netmask = 0xffffff00, .mac = { 0x02, 0, 0, 0, 0, 0x02 },
        .udp_echo_port = 7, .rto_ms = 200, .time_wait_ms = 1000, .icmp_per_sec = 1000,
        .isn_key = 0x6b657573,
    };
    const char *tap = 0;
    int pipe_mode = 0, guard = 0;
    unsigned long bench = 0, size = 64;
    unsigned long frames = 256;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : 0;
        if (!strcmp(a, "--pipe")) { pipe_mode = 1; continue; }
        if (!strcmp(a, "--guard")) { guard = 1; continue; }
        if (!v)
            die(2, "%s needs a value", a);
        i++;
        if (!strcmp(a, "--tap")) tap = v;
        else if (!strcmp(a, "--ip")) cfg.ip = parse_ip(v);
        else if (!strcmp(a, "--prefix")) {
            unsigned long n = parse_num(a, v, 30);
            cfg.netmask = n ? 0xffffffffu << (32 - n) : 0;
        } else if (!strcmp(a, "--mac")) {
            unsigned m[6];
            if (sscanf(v, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
                die(2, "--mac %s: want aa:bb:cc:dd:ee:ff", v);
            for (int k = 0; k < 6; k++)
                cfg.mac[k] = (uint8_t)m[k];
        } else if (!strcmp(a, "--udp-echo")) cfg.udp_echo_port = (uint16_t)parse_num(a, v, 65535);
        else if (!strcmp(a, "--tcp-echo")) tcp_echo = (uint16_t)parse_num(a, v, 65535);
        else if (!strcmp(a, "--udp-app")) udp_app = (uint16_t)parse_num(a, v, 65535);
        else if (!strcmp(a, "--rto")) cfg.rto_ms = (uint32_t)parse_num(a, v, 60000);
        else if (!strcmp(a, "--pcap")) pcap_open(v);
        else if (!strcmp(a, "--bench")) bench = parse_num(a, v, 1ul << 40);
        else if (!strcmp(a, "--size")) size = parse_num(a, v, 65535);
        else if (!strcmp(a, "--frames")) frames = parse_num(a, v, NETIF_MAX_FRAMES);
        else if (!strcmp(a, "--icmp-rate")) cfg.icmp_per_sec = (uint32_t)parse_num(a, v, 1000000);
        else if (!strcmp(a, "--isn-key")) cfg.isn_key = (uint32_t)parse_num(a, v, 0xffffffffu);
        else die(2, "unknown option %s", a);
    }
    if (pipe_mode + (tap != 0) + (bench != 0) != 1)
        die(2, "%s", "give exactly one of --pipe, --tap IF and --bench N");
    if (frames < 8)
        die(2, "%s", "--frames must be at least 8");
    nic_setup((uint32_t)frames, guard);
    if (netd_init(&nd, &cfg, &nif) != 0)
        die(3, "%s", "netd_init refused the frame region");
    for (int i = 0; i < 3; i++)
        chan_open(&chans[i]);
    run_until_idle(-2);     /* the fill ring gets its frames before the first one arrives */
    if (pipe_mode)
        return pipe_loop();
    if (bench)
        return bench_loop(bench, (uint32_t)size);
    return tap_loop(tap_open(tap));
}
