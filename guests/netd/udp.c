/*
 * UDP (RFC 768). The length field must cover the header and fit in the IP payload;
 * a non-zero checksum must verify (zero means the sender did not compute one).
 * Datagrams to cfg.udp_echo_port are echoed (unless they come from a well-known port);
 * datagrams to a bound socket become a DATA event written straight into the
 * application's event ring.
 */
#include "netd.h"

#define UDP_HLEN 8

void
udp_input(struct netd *nd, uint32_t src, uint32_t dst, const uint8_t *p, uint32_t len)
{
    uint32_t ulen;
    uint16_t sport, dport;
    struct sock *s;

    nd->stats[ST_UDP_RX]++;
    if (len < UDP_HLEN) {
        nd->stats[ST_UDP_TRUNC]++;
        return;
    }
    ulen = get16(p + 4);
    if (ulen < UDP_HLEN || ulen > len) {
        nd->stats[ST_UDP_LEN]++;
        return;
    }
    if (get16(p + 6) != 0 && l4_cksum(src, dst, 17, p, ulen) != 0) {
        nd->stats[ST_UDP_CKSUM]++;
        return;
    }
    sport = get16(p);
    dport = get16(p + 2);
    if (sport == 0) {
        nd->stats[ST_UDP_LEN]++;
        return;
    }
    if (nd->cfg.udp_echo_port && dport == nd->cfg.udp_echo_port) {
        // A datagram from a well-known port is refused: two echo services answering
        // each other (a spoofed source port 7 or 19) would loop forever (CVE-1999-0103).
        if (sport < 1024) {
            nd->stats[ST_UDP_ECHO_LOOP]++;
            return;
        }
        if (udp_send(nd, dport, src, sport, p + UDP_HLEN, ulen - UDP_HLEN) == 0)
            nd->stats[ST_UDP_ECHO]++;
        return;
    }
    s = sock_by_port(nd, NS_UDP, dport);
    if (!s) {
        nd->stats[ST_UDP_NOPORT]++;
        return;
    }
    if (sock_event(nd, s, NS_EV_DATA, 0, src, sport, p + UDP_HLEN, ulen - UDP_HLEN) == 0)
        nd->stats[ST_UDP_DELIVERED]++;
    else
        nd->stats[ST_UDP_APP_FULL]++;
}

// Send len bytes from our port sport to dst:dport. Returns 0, or -1 when the datagram
// was dropped (too big, no frame, no ARP entry yet).
int
udp_send(struct netd *nd, uint16_t sport, uint32_t dst, uint16_t dport,
         const uint8_t *data, uint32_t len)
{
    struct pkt p;
    uint8_t *u;

    if (len > ETH_MTU - IP_HLEN - UDP_HLEN || dport == 0 || pkt_alloc(nd, &p) != 0)
        return -1;
    u = ip_payload(&p);
    put16(u, sport);
    put16(u + 2, dport);
    put16(u + 4, (uint16_t)(UDP_HLEN + len));
    put16(u + 6, 0);
    memcpy(u + UDP_HLEN, data, len);
    uint16_t c = l4_cksum(nd->cfg.ip, dst, 17, u, UDP_HLEN + len);
    put16(u + 6, c == 0 ? 0xffff : c);  /* RFC 768: a computed zero is sent as all ones */
    return ip_output(nd, &p, dst, 17, UDP_HLEN + len);
}
