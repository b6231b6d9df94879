/*
 * IPv4 (RFC 791) and the Internet checksum (RFC 1071).
 *
 * Input checks, in order, each counted when it fails: a whole header is present
 * (20 bytes), version 4, IHL >= 5 and within the frame, total length covers the
 * header and is within the frame (Ethernet padding beyond it is ignored), header
 * checksum, not a fragment (NetD does not reassemble: MF set or a fragment offset is a
 * drop, RFC 791 section 3.2 lets a host that cannot reassemble discard), addressed to
 * us, and a source that is not broadcast, multicast or our own address.
 */
#include "netd.h"

// Add len bytes at p to a one's complement sum (RFC 1071 section 4.1), as 16-bit
// big-endian words; an odd last byte is padded with zero.
uint32_t
cksum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
    uint64_t s = sum;

    for (; len >= 2; len -= 2, p += 2)
        s += (uint32_t)(p[0] << 8 | p[1]);
    if (len)
        s += (uint32_t)p[0] << 8;
    while (s >> 32)
        s = (s & 0xffffffffu) + (s >> 32);
    return (uint32_t)s;
}

uint16_t
cksum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

// Checksum of a TCP or UDP segment with its pseudo-header (RFC 793 section 3.1,
// RFC 768). 0 when p carries a correct checksum.
uint16_t
l4_cksum(uint32_t src, uint32_t dst, uint8_t proto, const uint8_t *p, uint32_t len)
{
    uint8_t ph[12];

    put32(ph, src);
    put32(ph + 4, dst);
    ph[8] = 0;
    ph[9] = proto;
    put16(ph + 10, (uint16_t)len);
    return cksum_fold(cksum_add(cksum_add(0, ph, 12), p, len));
}

void
ip_input(struct netd *nd, const uint8_t *p, uint32_t len)
{
    uint32_t hlen, tlen, src, dst;

    nd->stats[ST_IP_RX]++;
    if (len < IP_HLEN) {
        nd->stats[ST_IP_TRUNC]++;
        return;
    }
    if (p[0] >> 4 != 4) {
        nd->stats[ST_IP_VERSION]++;
        return;
    }
    hlen = (uint32_t)(p[0] & 0xf) * 4;
    if (hlen < IP_HLEN || hlen > len) {
        nd->stats[ST_IP_HLEN]++;
        return;
    }
    tlen = get16(p + 2);
    if (tlen < hlen || tlen > len) {
        nd->stats[ST_IP_LEN]++;
        return;
    }
    if (cksum_fold(cksum_add(0, p, hlen)) != 0) {
        nd->stats[ST_IP_CKSUM]++;
        return;
    }
    if (get16(p + 6) & 0x3fff) {        /* MF flag or a fragment offset */
        nd->stats[ST_IP_FRAG]++;
        return;
    }
    src = get32(p + 12);
    dst = get32(p + 16);
    if (dst != nd->cfg.ip) {
        nd->stats[ST_IP_NOT_US]++;
        return;
    }
    if (src == nd->cfg.ip || src == 0xffffffffu || (src >> 28) == 0xe || src == 0 ||
        (src | nd->cfg.netmask) == 0xffffffffu) {
        nd->stats[ST_IP_BAD_SRC]++;
        return;
    }
    switch (p[9]) {
    case 1:
        icmp_input(nd, src, p + hlen, tlen - hlen);
        break;
    case 17:
        udp_input(nd, src, dst, p + hlen, tlen - hlen);
        break;
    case 6:
        tcp_input(nd, src, dst, p + hlen, tlen - hlen);
        break;
    default:
        nd->stats[ST_IP_PROTO]++;
    }
}

// Where the transport header of an outgoing packet goes.
uint8_t *
ip_payload(struct pkt *p)
{
    return p->buf + ETH_HLEN + IP_HLEN;
}

// Prepend an IPv4 header to the l4len bytes at ip_payload(p), resolve the next hop
// and send. Consumes p in every case. Returns 0, or -1 when the packet was dropped
// (no ARP entry yet: a request went out instead).
int
ip_output(struct netd *nd, struct pkt *p, uint32_t dst, uint8_t proto, uint32_t l4len)
{
    uint8_t *h = p->buf + ETH_HLEN;
    const uint8_t *mac = arp_resolve(nd, dst);

    if (!mac || l4len > ETH_MTU - IP_HLEN) {
        pkt_free(nd, p);
        return -1;
    }
    h[0] = 0x45;
    h[1] = 0;
    put16(h + 2, (uint16_t)(IP_HLEN + l4len));
    put16(h + 4, nd->ip_ident++);
    put16(h + 6, 0x4000);               /* DF: NetD never fragments */
    h[8] = 64;
    h[9] = proto;
    put16(h + 10, 0);
    put32(h + 12, nd->cfg.ip);
    put32(h + 16, dst);
    put16(h + 10, cksum_fold(cksum_add(0, h, IP_HLEN)));
    eth_output(nd, p, mac, 0x0800, IP_HLEN + l4len);
    return 0;
}
