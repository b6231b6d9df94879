/*
 * ICMP (RFC 792): NetD answers echo requests and counts everything else. An echo
 * reply carries the request's identifier, sequence number and data unchanged (RFC 792
 * "Echo or Echo Reply Message"); replies are rate limited (netd_rate_ok).
 */
#include "netd.h"

void
icmp_input(struct netd *nd, uint32_t src, const uint8_t *p, uint32_t len)
{
    struct pkt out;
    uint8_t *r;

    nd->stats[ST_ICMP_RX]++;
    if (len < 8) {
        nd->stats[ST_ICMP_TRUNC]++;
        return;
    }
    if (cksum_fold(cksum_add(0, p, len)) != 0) {
        nd->stats[ST_ICMP_CKSUM]++;
        return;
    }
    if (p[0] != 8 || p[1] != 0) {
        nd->stats[ST_ICMP_OTHER]++;
        return;
    }
    if (!netd_rate_ok(nd)) {
        nd->stats[ST_ICMP_RATELIMIT]++;
        return;
    }
    if (len > ETH_MTU - IP_HLEN || pkt_alloc(nd, &out) != 0)
        return;
    r = ip_payload(&out);
    memcpy(r, p, len);
    r[0] = 0;                           /* echo reply */
    put16(r + 2, 0);
    put16(r + 2, cksum_fold(cksum_add(0, r, len)));
    if (ip_output(nd, &out, src, 1, len) == 0)
        nd->stats[ST_ICMP_ECHO]++;
}
