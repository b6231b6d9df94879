/*
 * ARP for IPv4 over Ethernet (RFC 826). NetD answers requests for its address and
 * keeps a small cache of on-link neighbours. Following RFC 826's "Packet Reception",
 * a packet from a sender already in the cache refreshes it; a new sender is learned
 * only when the packet is addressed to us, so a flood of gratuitous ARP cannot fill
 * the table.
 */
#include "netd.h"

#define ARP_LEN 28
#define ARP_RETRY_MS 1000

static struct arp_entry *
arp_find(struct netd *nd, uint32_t ip)
{
    for (int i = 0; i < NETD_ARP_SLOTS; i++)
        if ((nd->arp[i].valid || nd->arp[i].pending) && nd->arp[i].ip == ip)
            return &nd->arp[i];
    return 0;
}

static struct arp_entry *
arp_slot(struct netd *nd, uint32_t ip)
{
    struct arp_entry *e = arp_find(nd, ip);

    if (e)
        return e;
    for (int i = 0; i < NETD_ARP_SLOTS; i++)
        if (!nd->arp[i].valid && !nd->arp[i].pending)
            return &nd->arp[i];
    // Full: replace the oldest request first, then slot 0 (a fixed, deterministic choice).
    e = &nd->arp[0];
    for (int i = 1; i < NETD_ARP_SLOTS; i++)
        if (nd->arp[i].asked_at < e->asked_at)
            e = &nd->arp[i];
    return e;
}

static int
on_link(struct netd *nd, uint32_t ip)
{
    return (ip & nd->cfg.netmask) == (nd->cfg.ip & nd->cfg.netmask) &&
           ip != nd->cfg.ip && (ip | nd->cfg.netmask) != 0xffffffffu && ip != 0;
}

static void
arp_send(struct netd *nd, uint16_t oper, const uint8_t *tha, uint32_t tpa, const uint8_t *dst)
{
    struct pkt p;
    uint8_t *a;

    if (pkt_alloc(nd, &p) != 0)
        return;
    a = p.buf + ETH_HLEN;
    put16(a, 1);            /* hardware: Ethernet */
    put16(a + 2, 0x0800);   /* protocol: IPv4 */
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, oper);
    memcpy(a + 8, nd->cfg.mac, 6);
    put32(a + 14, nd->cfg.ip);
    memcpy(a + 18, tha, 6);
    put32(a + 24, tpa);
    eth_output(nd, &p, dst, 0x0806, ARP_LEN);
}

void
arp_input(struct netd *nd, const uint8_t *a, uint32_t len)
{
    nd->stats[ST_ARP_RX]++;
    if (len < ARP_LEN || get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) {
        nd->stats[ST_ARP_BAD]++;
        return;
    }
    uint16_t oper = get16(a + 6);
    uint32_t spa = get32(a + 14), tpa = get32(a + 24);
    const uint8_t *sha = a + 8;
    if ((oper != 1 && oper != 2) || (sha[0] & 1) || !on_link(nd, spa)) {
        nd->stats[ST_ARP_BAD]++;
        return;
    }
    struct arp_entry *e = arp_find(nd, spa);
    if (!e && tpa == nd->cfg.ip) {
        e = arp_slot(nd, spa);
        e->ip = spa;
        e->asked_at = nd->now;
    }
    if (e) {
        int was = e->valid;
        memcpy(e->mac, sha, 6);
        e->valid = 1;
        e->pending = 0;
        if (!was) {
            nd->stats[ST_ARP_LEARNED]++;
            tcp_arp_resolved(nd, spa);
        }
    }
    if (oper == 1 && tpa == nd->cfg.ip) {
        arp_send(nd, 2, sha, spa, sha);
        nd->stats[ST_ARP_REPLIED]++;
    }
}

// The MAC of on-link ip, or 0 when unknown; then a request goes out (at most once per
// ARP_RETRY_MS) and the caller drops its packet: TCP retransmits, UDP counts a loss.
const uint8_t *
arp_resolve(struct netd *nd, uint32_t ip)
{
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t zero[6];
    struct arp_entry *e;

    if (!on_link(nd, ip))
        return 0;
    e = arp_find(nd, ip);
    if (e && e->valid)
        return e->mac;
    nd->stats[ST_ARP_MISS]++;
    if (e && e->pending && nd->now < e->asked_at + ARP_RETRY_MS)
        return 0;
    e = arp_slot(nd, ip);
    e->ip = ip;
    e->valid = 0;
    e->pending = 1;
    e->asked_at = nd->now;
    arp_send(nd, 1, zero, ip, bcast);
    return 0;
}
