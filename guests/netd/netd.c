/*
 * NetD's event loop and frame bookkeeping (docs/netd.md).
 *
 * netd_poll is one turn of the loop: take back transmitted frames, give the NIC empty
 * frames to receive into, handle received frames (at most NETD_RX_BUDGET), serve
 * application requests, run TCP timers, post deferred events. The caller decides how
 * time passes and when to call again; NetD never reads a clock.
 */
#include "netd.h"

const char *const netd_stat_names[ST_COUNT] = {
    "rx_frames", "tx_frames", "rx_bad_desc", "comp_bad_desc", "tx_nobuf",
    "eth_runt", "eth_not_us", "eth_type",
    "arp_rx", "arp_bad", "arp_replied", "arp_learned", "arp_miss",
    "ip_rx", "ip_trunc", "ip_version", "ip_hlen", "ip_len", "ip_cksum",
    "ip_frag", "ip_not_us", "ip_bad_src", "ip_proto",
    "icmp_rx", "icmp_trunc", "icmp_cksum", "icmp_echo", "icmp_other", "icmp_ratelimit",
    "udp_rx", "udp_trunc", "udp_len", "udp_cksum", "udp_echo", "udp_echo_loop", "udp_noport",
    "udp_delivered", "udp_app_full",
    "tcp_rx", "tcp_trunc", "tcp_hlen", "tcp_cksum", "tcp_noconn", "tcp_rst_sent",
    "tcp_rst_rx", "tcp_syn_drop", "tcp_out_of_order", "tcp_bad_ack", "tcp_app_full",
    "tcp_beyond_wnd",
    "tcp_retransmit", "tcp_timeout", "tcp_challenge_ack", "tcp_accepted",
    "tcp_connected", "tcp_data_in", "tcp_data_out",
    "sock_req", "sock_bad_req", "sock_forged", "sock_ring_err",
};

// Start NetD on nif with cfg. Every frame starts free; netd_poll hands half of them
// to the NIC for receiving and keeps the rest for transmitting.
// Returns 0, or -1 when the netif's geometry is unusable.
int
netd_init(struct netd *nd, const struct netd_config *cfg, struct netif *nif)
{
    memset(nd, 0, sizeof(*nd));
    if (nif->nframes < 4 || nif->nframes > NETIF_MAX_FRAMES ||
        nif->frame_stride < 2048 || (nif->frame_stride & (nif->frame_stride - 1)) != 0 ||
        nif->frame_room < ETH_HLEN + ETH_MTU || nif->frame_room > nif->frame_stride)
        return -1;
    nd->cfg = *cfg;
    nd->nif = nif;
    memcpy(nif->mac, cfg->mac, 6);
    for (uint32_t i = 0; i < nif->nframes; i++)
        nd->free_frames[nd->nfree++] = (uint16_t)(nif->nframes - 1 - i);
    nd->next_eport = 49152;
    return 0;
}

// Connect an application's request and event rings. Returns its index or -1 when full.
int
netd_attach_app(struct netd *nd, const struct ring_ep *req, const struct ring_ep *evt)
{
    for (int i = 0; i < NETD_MAX_APPS; i++) {
        if (!nd->apps[i].used) {
            nd->apps[i].used = 1;
            nd->apps[i].req = *req;
            nd->apps[i].evt = *evt;
            return i;
        }
    }
    return -1;
}

static void
frame_put_free(struct netd *nd, uint32_t f)
{
    nd->frame_state[f] = FRAME_FREE;
    nd->free_frames[nd->nfree++] = (uint16_t)f;
}

// Take a free frame to build an outgoing packet in. Returns 0, or -1 (counted) when
// every frame is in use.
int
pkt_alloc(struct netd *nd, struct pkt *p)
{
    if (nd->nfree == 0) {
        nd->stats[ST_TX_NOBUF]++;
        return -1;
    }
    uint32_t f = nd->free_frames[--nd->nfree];
    nd->frame_state[f] = FRAME_BUSY;
    p->frame = f;
    p->buf = nd->nif->umem + (uint64_t)f * nd->nif->frame_stride;
    return 0;
}

void
pkt_free(struct netd *nd, struct pkt *p)
{
    frame_put_free(nd, p->frame);
    p->buf = 0;
}

// Hand a built frame of len bytes to the NIC. The frame is the NIC's until it comes
// back on the completion ring.
void
pkt_send(struct netd *nd, struct pkt *p, uint32_t len)
{
    struct xdesc d = { (uint64_t)p->frame * nd->nif->frame_stride, len, 0 };

    if (xring_put(&nd->nif->tx, &d) != 0) {
        nd->stats[ST_TX_NOBUF]++;
        pkt_free(nd, p);
        return;
    }
    nd->frame_state[p->frame] = FRAME_TX;
    nd->stats[ST_TX_FRAMES]++;
    p->buf = 0;
}

// Flood control: at most cfg.icmp_per_sec replies NetD makes on its own (echo replies,
// RSTs) per second of caller time. Returns 1 when one more is allowed.
int
netd_rate_ok(struct netd *nd)
{
    uint64_t sec = nd->now / 1000;

    if (sec != nd->rate_window) {
        nd->rate_window = sec;
        nd->rate_used = 0;
    }
    if (nd->rate_used >= nd->cfg.icmp_per_sec)
        return 0;
    nd->rate_used++;
    return 1;
}

// The frame an rx or completion descriptor names, or -1 when the descriptor is not
// inside one frame's writable part (or, for rx, does not hold a minimal frame).
static int
desc_frame(struct netd *nd, const struct xdesc *d, int want_len)
{
    struct netif *nif = nd->nif;
    uint64_t f = d->addr / nif->frame_stride;

    if (f >= nif->nframes)
        return -1;
    if (want_len) {
        uint64_t off = d->addr - f * nif->frame_stride;
        if (d->len > nif->frame_room || off > nif->frame_room - d->len)
            return -1;
    }
    return (int)f;
}

static int
rx_frames(struct netd *nd)
{
    struct netif *nif = nd->nif;
    struct xdesc d;
    int n = 0;

    while (n < NETD_RX_BUDGET && xring_get(&nif->rx, &d) == 0) {
        int f = desc_frame(nd, &d, 1);
        n++;
        if (f < 0 || nd->frame_state[f] != FRAME_FILL) {
            nd->stats[ST_RX_BAD_DESC]++;
            continue;
        }
        nd->stats[ST_RX_FRAMES]++;
        eth_input(nd, nif->umem + d.addr, d.len);
        frame_put_free(nd, (uint32_t)f);
    }
    return n;
}

// One turn of the event loop at caller time now_ms (never decreasing). Returns how
// much it did (frames, requests); 0 means it was idle.
int
netd_poll(struct netd *nd, uint64_t now_ms)
{
    struct netif *nif = nd->nif;
    struct xdesc d;
    int work = 0;

    if (now_ms > nd->now)
        nd->now = now_ms;
    while (xring_get(&nif->comp, &d) == 0) {
        int f = desc_frame(nd, &d, 0);
        if (f < 0 || nd->frame_state[f] != FRAME_TX) {
            nd->stats[ST_COMP_BAD_DESC]++;
            continue;
        }
        frame_put_free(nd, (uint32_t)f);
        work++;
    }
    // Keep half the frames for transmitting; the rest may wait in the fill ring.
    while (nd->nfree > nif->nframes / 2) {
        uint32_t f = nd->free_frames[nd->nfree - 1];
        struct xdesc fd = { (uint64_t)f * nif->frame_stride, 0, 0 };
        if (xring_put(&nif->fill, &fd) != 0)
            break;
        nd->nfree--;
        nd->frame_state[f] = FRAME_FILL;
    }
    work += rx_frames(nd);
    sock_requests(nd);
    tcp_timers(nd);
    sock_flush(nd);
    return work;
}
