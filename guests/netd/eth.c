/*
 * Ethernet II framing (IEEE 802.3 clause 3.2.6 with the EtherType of RFC 894).
 * Accepts frames to our MAC or to broadcast; anything shorter than a header is a runt.
 */
#include "netd.h"

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void
eth_input(struct netd *nd, const uint8_t *f, uint32_t len)
{
#ifdef NETD_PLANTED_OVERREAD
    // A planted bug for tests/test_netd.py: read one byte past the frame. The host
    // backend's --guard mode must turn it into a fault.
    volatile uint8_t past = f[len];
    (void)past;
#endif
    if (len < ETH_HLEN) {
        nd->stats[ST_ETH_RUNT]++;
        return;
    }
    if (memcmp(f, nd->cfg.mac, 6) != 0 && memcmp(f, bcast, 6) != 0) {
        nd->stats[ST_ETH_NOT_US]++;
        return;
    }
    switch (get16(f + 12)) {
    case 0x0806:
        arp_input(nd, f + ETH_HLEN, len - ETH_HLEN);
        break;
    case 0x0800:
        ip_input(nd, f + ETH_HLEN, len - ETH_HLEN);
        break;
    default:
        nd->stats[ST_ETH_TYPE]++;
    }
}

// Fill the Ethernet header of p (payload of len bytes already at p->buf + ETH_HLEN)
// and send it. Frames shorter than the 60-byte minimum are padded with zeros.
void
eth_output(struct netd *nd, struct pkt *p, const uint8_t *dst, uint16_t type, uint32_t len)
{
    memcpy(p->buf, dst, 6);
    memcpy(p->buf + 6, nd->cfg.mac, 6);
    put16(p->buf + 12, type);
    len += ETH_HLEN;
    if (len < 60) {
        memset(p->buf + len, 0, 60 - len);
        len = 60;
    }
    pkt_send(nd, p, len);
}
