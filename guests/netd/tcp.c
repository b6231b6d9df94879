/*
 * TCP (RFC 9293, which obsoletes RFC 793).
 *
 * What NetD implements: passive and active open with the three-way handshake
 * (section 3.5), the MSS option (3.7.1), data in both directions with flow control
 * (3.8.6): the window advertised is the free part of a TCP_RCV_WND receive buffer
 * that holds, in order, bytes the application's event ring had no room for; bytes
 * inside the window are acknowledged and never dropped, and a window that opens
 * again is announced (3.8.6.2.2). No window scaling. Retransmission on timeout with
 * go-back-N from SND.UNA and exponential backoff (RFC 6298 section 5 without RTT
 * sampling: the initial RTO is a configuration value), FIN close from either side
 * (3.6), RST generation and processing (3.10.7), RFC 5961 challenge ACKs for an
 * in-window RST or SYN that is not exact. Segments that are not the next expected
 * one are dropped and answered with an ACK (3.10.7.4 "first check sequence number"),
 * so the peer retransmits: NetD keeps no reassembly queue.
 *
 * Not implemented (and said so in docs/netd.md): congestion control (RFC 5681),
 * SACK, timestamps, window scaling, urgent data, simultaneous open, keepalive.
 *
 * Sequence arithmetic is modulo 2^32 (section 3.4): compare through a signed difference.
 */
#include "netd.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LE(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((a) - (b)) > 0)
#define SEQ_GE(a, b) ((int32_t)((a) - (b)) >= 0)

#define RTO_MAX_MS 60000

// Initial sequence number: RFC 6528 asks for a clock plus a keyed function of the
// connection; here a 32-bit mix of the key, the four-tuple and a counter, plus 250
// per millisecond (RFC 9293 section 3.4.1's 4-microsecond clock).
static uint32_t
tcp_isn(struct netd *nd, uint32_t raddr, uint16_t lport, uint16_t rport)
{
    uint32_t h = nd->cfg.isn_key ^ raddr ^ ((uint32_t)lport << 16 | rport) ^ (nd->isn_count++ * 0x9e3779b9u);

    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h + (uint32_t)(nd->now * 250);
}

// Build and send one segment advertising window wnd. d1/d2 are the payload in up to
// two pieces (the send buffer wraps). Returns 0, or -1 when it could not go out (no
// frame, no ARP entry).
static int
tcp_emit(struct netd *nd, uint32_t raddr, uint16_t lport, uint16_t rport, uint32_t seq,
         uint32_t ack, uint8_t flags, uint32_t wnd, const uint8_t *d1, uint32_t n1,
         const uint8_t *d2, uint32_t n2)
{
    struct pkt p;
    uint8_t *t;
    uint32_t hl = TCP_HLEN + ((flags & TH_SYN) ? 4 : 0);

    if (pkt_alloc(nd, &p) != 0)
        return -1;
    t = ip_payload(&p);
    put16(t, lport);
    put16(t + 2, rport);
    put32(t + 4, seq);
    put32(t + 8, (flags & TH_ACK) ? ack : 0);
    t[12] = (uint8_t)((hl / 4) << 4);
    t[13] = flags;
    put16(t + 14, (flags & TH_RST) ? 0 : (uint16_t)wnd);
    put16(t + 16, 0);
    put16(t + 18, 0);
    if (flags & TH_SYN) {
        t[20] = 2;      /* MSS option, section 3.7.1 */
        t[21] = 4;
        put16(t + 22, TCP_MSS);
    }
    if (n1)
        memcpy(t + hl, d1, n1);
    if (n2)
        memcpy(t + hl + n1, d2, n2);
    put16(t + 16, l4_cksum(nd->cfg.ip, raddr, 6, t, hl + n1 + n2));
    return ip_output(nd, &p, raddr, 6, hl + n1 + n2);
}

// The receive window: what the receive buffer has free.
static uint32_t
rcv_wnd(const struct sock *s)
{
    return TCP_RCV_WND - s->rcv_held;
}

// Send len bytes of s's send buffer starting at sequence number seq.
static int
tcp_xmit(struct netd *nd, struct sock *s, uint8_t flags, uint32_t seq, uint32_t len)
{
    uint32_t off = (seq - (s->iss + 1)) & (TCP_SNDBUF - 1);
    uint32_t n1 = len, n2 = 0;

    if (off + len > TCP_SNDBUF) {
        n1 = TCP_SNDBUF - off;
        n2 = len - n1;
    }
    s->wnd_sent = (uint16_t)rcv_wnd(s);
    return tcp_emit(nd, s->raddr, s->lport, s->rport, seq, s->rcv_nxt, flags, s->wnd_sent,
                    s->sndbuf + off, n1, s->sndbuf, n2);
}

static void
tcp_ack_now(struct netd *nd, struct sock *s)
{
    s->wnd_sent = (uint16_t)rcv_wnd(s);
    tcp_emit(nd, s->raddr, s->lport, s->rport, s->snd_nxt, s->rcv_nxt, TH_ACK, s->wnd_sent,
             0, 0, 0, 0);
}

// RST in answer to a segment that has no connection (section 3.10.7.1), rate limited.
static void
tcp_reset_reply(struct netd *nd, uint32_t raddr, uint16_t lport, uint16_t rport,
                uint8_t flags, uint32_t seq, uint32_t ack, uint32_t seglen)
{
    if (!netd_rate_ok(nd))
        return;
    nd->stats[ST_TCP_RST_SENT]++;
    if (flags & TH_ACK)
        tcp_emit(nd, raddr, lport, rport, ack, 0, TH_RST, 0, 0, 0, 0, 0);
    else
        tcp_emit(nd, raddr, lport, rport, 0, seq + seglen, TH_RST | TH_ACK, 0, 0, 0, 0, 0);
}

static int
fin_acked(const struct sock *s)
{
    return s->fin_pending && s->snd_una == s->snd_end + 1;
}

static int
outstanding(const struct sock *s)
{
    return SEQ_LT(s->snd_una, s->snd_nxt) || SEQ_LT(s->snd_nxt, s->snd_end) ||
           (s->fin_pending && !fin_acked(s));
}

uint32_t
tcp_sndbuf_free(const struct sock *s)
{
    uint32_t base = SEQ_GT(s->snd_una, s->iss + 1) ? s->snd_una : s->iss + 1;

    return TCP_SNDBUF - (s->snd_end - base);
}

// Send what the peer's window allows, then the FIN if the application closed and all
// data is out. Returns 1 when a segment (which carries an ACK) went out.
static int
tcp_output(struct netd *nd, struct sock *s)
{
    int sent = 0;

    switch (s->state) {
    case TCP_ESTABLISHED: case TCP_CLOSE_WAIT: case TCP_FIN_WAIT_1:
    case TCP_CLOSING: case TCP_LAST_ACK:
        break;
    default:
        return 0;
    }
    while (SEQ_LT(s->snd_nxt, s->snd_end)) {
        uint32_t n = s->snd_end - s->snd_nxt;
        int32_t room = (int32_t)(s->snd_una + s->snd_wnd - s->snd_nxt);
        if (n > s->mss)
            n = s->mss;
        if (room <= 0)
            break;
        if (n > (uint32_t)room)
            n = (uint32_t)room;
        if (tcp_xmit(nd, s, TH_ACK | TH_PSH, s->snd_nxt, n) != 0)
            break;
        s->snd_nxt += n;
        nd->stats[ST_TCP_DATA_OUT] += n;
        sent = 1;
    }
    if (s->fin_pending && s->snd_nxt == s->snd_end &&
        tcp_xmit(nd, s, TH_ACK | TH_FIN, s->snd_nxt, 0) == 0) {
        s->snd_nxt = s->snd_end + 1;
        sent = 1;
    }
    if (outstanding(s) && s->rto_at == 0)
        s->rto_at = nd->now + s->rto_ms;
    return sent;
}

// The connection is gone: tell the application (a CONNECT answer or a RESET event)
// and free what nobody will use any more.
static void
tcp_abort(struct netd *nd, struct sock *s, int32_t status)
{
    int connecting = s->state == TCP_SYN_SENT;

    s->state = TCP_CLOSED;
    s->rto_at = 0;
    s->rcv_held = 0;    /* bytes the application has not seen go with the connection */
    s->eof_held = 0;
    if (s->parent >= 0 || s->app_closed) {
        sock_free(nd, s);
        return;
    }
    if (connecting) {
        struct ns_msg req = { .op = NS_CONNECT, .id = s->connect_id };
        if (sock_respond(nd, s->app, &req, (uint16_t)(s - nd->socks), status) != 0)
            s->reset_pending = 1;
    } else {
        s->reset_pending = 1;   /* sock_flush posts it when the event ring has room */
    }
}

// The MSS option of a SYN (section 3.7.1), bounded to what NetD sends and at least
// 64 so a peer cannot make it cut data into tiny segments. 536 when absent.
static uint16_t
parse_mss(const uint8_t *t, uint32_t hl)
{
    uint32_t i = TCP_HLEN;

    while (i < hl) {
        uint8_t kind = t[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hl || t[i + 1] < 2 || i + t[i + 1] > hl)
            break;
        if (kind == 2 && t[i + 1] == 4) {
            uint16_t m = get16(t + i + 2);
            return m > TCP_MSS ? TCP_MSS : m < 64 ? 64 : m;
        }
        i += t[i + 1];
    }
    return 536;
}

static void
tcp_start(struct netd *nd, struct sock *s)
{
    s->snd_una = s->iss;
    s->snd_nxt = s->iss + 1;
    s->snd_end = s->iss + 1;
    s->rto_ms = nd->cfg.rto_ms;
    s->rto_at = nd->now + s->rto_ms;
    s->retries = 0;
}

static void
listen_input(struct netd *nd, struct sock *l, uint32_t src, uint16_t sport, uint8_t flags,
             uint32_t seq, uint32_t ack, uint32_t wnd, const uint8_t *t, uint32_t hl, uint32_t seglen)
{
    int half = 0;
    struct sock *c;

    if (flags & TH_RST)
        return;
    if (flags & TH_ACK) {
        tcp_reset_reply(nd, src, l->lport, sport, flags, seq, ack, seglen);
        return;
    }
    if (!(flags & TH_SYN))
        return;
    for (uint32_t i = 0; i < nd->sock_hi; i++)
        if (nd->socks[i].used && nd->socks[i].parent == l - nd->socks)
            half++;
    if (half >= TCP_MAX_HALF_OPEN || !(c = sock_alloc(nd, NS_TCP, l->app))) {
        nd->stats[ST_TCP_SYN_DROP]++;
        return;
    }
    c->parent = (int16_t)(l - nd->socks);
    c->raddr = src;
    c->rport = sport;
    c->lport = l->lport;
    c->irs = seq;
    c->rcv_nxt = seq + 1;
    c->snd_wnd = wnd;
    c->mss = parse_mss(t, hl);
    c->iss = tcp_isn(nd, src, c->lport, sport);
    c->state = TCP_SYN_RCVD;
    tcp_start(nd, c);
    tcp_emit(nd, src, c->lport, sport, c->iss, c->rcv_nxt, TH_SYN | TH_ACK, TCP_RCV_WND, 0, 0, 0, 0);
}

static void
syn_sent_input(struct netd *nd, struct sock *s, uint8_t flags, uint32_t seq, uint32_t ack,
               uint32_t wnd, const uint8_t *t, uint32_t hl)
{
    if ((flags & TH_ACK) && (SEQ_LE(ack, s->iss) || SEQ_GT(ack, s->snd_nxt))) {
        nd->stats[ST_TCP_BAD_ACK]++;
        if (!(flags & TH_RST))
            tcp_reset_reply(nd, s->raddr, s->lport, s->rport, flags, seq, ack, 0);
        return;
    }
    if (flags & TH_RST) {
        if (flags & TH_ACK) {
            nd->stats[ST_TCP_RST_RX]++;
            tcp_abort(nd, s, -NS_ECONNREFUSED);
        }
        return;
    }
    if (!(flags & TH_SYN) || !(flags & TH_ACK)) {
        nd->stats[ST_TCP_BAD_ACK]++;    /* simultaneous open is not supported */
        return;
    }
    struct ns_msg req = { .op = NS_CONNECT, .id = s->connect_id };
    if (sock_respond(nd, s->app, &req, (uint16_t)(s - nd->socks), 0) != 0) {
        nd->stats[ST_TCP_APP_FULL]++;   /* the peer sends its SYN-ACK again */
        return;
    }
    s->irs = seq;
    s->rcv_nxt = seq + 1;
    s->snd_una = ack;
    s->snd_wnd = wnd;
    s->mss = parse_mss(t, hl);
    s->state = TCP_ESTABLISHED;
    s->retries = 0;
    s->rto_ms = nd->cfg.rto_ms;
    s->rto_at = 0;
    nd->stats[ST_TCP_CONNECTED]++;
    if (!tcp_output(nd, s))
        tcp_ack_now(nd, s);
}

// Segment processing for the synchronized states (section 3.10.7.4).
static void
sync_input(struct netd *nd, struct sock *s, uint8_t flags, uint32_t seq, uint32_t ack,
           uint32_t wnd, const uint8_t *data, uint32_t dlen)
{
    int need_ack = 0;
    uint32_t seglen = dlen + ((flags & TH_FIN) ? 1 : 0);
    int ok;

    // First: is the segment acceptable? NetD takes only the next expected bytes, and of
    // them what the window holds: text beyond it is cut off (and a FIN after it), and
    // with the window shut a segment still counts for its ACK field (section 3.10.7.4).
    uint32_t room = rcv_wnd(s);
    if (seglen == 0)
        ok = room == 0 ? seq == s->rcv_nxt
                       : SEQ_GE(seq, s->rcv_nxt) && SEQ_LT(seq, s->rcv_nxt + room);
    else
        ok = seq == s->rcv_nxt;
    if (ok && dlen > room) {
        // A FIN needs no room (an EOF is a flag until posted), so only text is cut.
        nd->stats[ST_TCP_BEYOND_WND]++;
        need_ack = 1;
        flags &= (uint8_t)~TH_FIN;
        dlen = room;
    }
    if (!ok) {
        nd->stats[ST_TCP_OUT_OF_ORDER]++;
        if (!(flags & TH_RST))
            tcp_ack_now(nd, s);
        return;
    }
    // Second: RST. Exact match resets; in-window but inexact gets a challenge ACK
    // (RFC 5961 section 3.2).
    if (flags & TH_RST) {
        if (seq == s->rcv_nxt) {
            nd->stats[ST_TCP_RST_RX]++;
            tcp_abort(nd, s, -NS_ERESET);
        } else {
            nd->stats[ST_TCP_CHALLENGE_ACK]++;
            tcp_ack_now(nd, s);
        }
        return;
    }
    // Fourth: a SYN here is answered with a challenge ACK (RFC 5961 section 4.2).
    if (flags & TH_SYN) {
        nd->stats[ST_TCP_CHALLENGE_ACK]++;
        tcp_ack_now(nd, s);
        return;
    }
    if (!(flags & TH_ACK))
        return;
    // Fifth: the ACK field.
    if (s->state == TCP_SYN_RCVD) {
        struct sock *l = &nd->socks[s->parent];
        if (!SEQ_LT(s->snd_una, ack) || !SEQ_LE(ack, s->snd_nxt)) {
            nd->stats[ST_TCP_BAD_ACK]++;
            tcp_reset_reply(nd, s->raddr, s->lport, s->rport, flags, seq, ack, seglen);
            return;
        }
        if (!l->used || l->state != TCP_LISTEN || l->lport != s->lport) {
            tcp_reset_reply(nd, s->raddr, s->lport, s->rport, flags, seq, ack, seglen);
            sock_free(nd, s);
            return;
        }
        if (sock_event(nd, s, NS_EV_ACCEPT, (uint32_t)(l - nd->socks), s->raddr, s->rport, 0, 0) != 0) {
            nd->stats[ST_TCP_APP_FULL]++;   /* the peer's next segment tries again */
            return;
        }
        s->parent = -1;
        s->state = TCP_ESTABLISHED;
        nd->stats[ST_TCP_ACCEPTED]++;
    }
    if (SEQ_GT(ack, s->snd_nxt)) {
        nd->stats[ST_TCP_BAD_ACK]++;
        tcp_ack_now(nd, s);
        return;
    }
    if (SEQ_GT(ack, s->snd_una)) {
        s->snd_una = ack;
        s->retries = 0;
        s->rto_ms = nd->cfg.rto_ms;
        s->rto_at = outstanding(s) ? nd->now + s->rto_ms : 0;
    }
    if (SEQ_GE(ack, s->snd_una))
        s->snd_wnd = wnd;
    if (fin_acked(s)) {
        if (s->state == TCP_FIN_WAIT_1)
            s->state = TCP_FIN_WAIT_2;
        else if (s->state == TCP_CLOSING) {
            s->state = TCP_TIME_WAIT;
            s->tw_at = nd->now + nd->cfg.time_wait_ms;
        } else if (s->state == TCP_LAST_ACK) {
            sock_free(nd, s);
            return;
        }
    }
    // Seventh: segment text, written straight into the application's event ring.
    int open = s->state == TCP_ESTABLISHED || s->state == TCP_FIN_WAIT_1 ||
               s->state == TCP_FIN_WAIT_2;
    if (dlen > 0 && open) {
        // Straight into the event ring; when it is full (or bytes already wait, which
        // keeps the order) into the receive buffer, which the window kept room for.
        if (s->rcv_held > 0 ||
            sock_event(nd, s, NS_EV_DATA, 0, s->raddr, s->rport, data, dlen) != 0) {
            nd->stats[ST_TCP_APP_FULL]++;
            memcpy(s->rcvbuf + s->rcv_held, data, dlen);
            s->rcv_held += dlen;
        }
        s->rcv_nxt += dlen;
        nd->stats[ST_TCP_DATA_IN] += dlen;
        need_ack = 1;
    }
    // Eighth: FIN.
    if ((flags & TH_FIN) && open) {
        if (s->rcv_held > 0 || sock_event(nd, s, NS_EV_EOF, 0, s->raddr, s->rport, 0, 0) != 0)
            s->eof_held = 1;    /* posted after the held bytes (tcp_drain) */
        s->rcv_nxt++;
        need_ack = 1;
        if (s->state == TCP_ESTABLISHED) {
            s->state = TCP_CLOSE_WAIT;
        } else if (s->state == TCP_FIN_WAIT_1 && !fin_acked(s)) {
            s->state = TCP_CLOSING;
        } else {
            s->state = TCP_TIME_WAIT;
            s->tw_at = nd->now + nd->cfg.time_wait_ms;
        }
    }
    if (!tcp_output(nd, s) && need_ack)
        tcp_ack_now(nd, s);
}

void
tcp_input(struct netd *nd, uint32_t src, uint32_t dst, const uint8_t *t, uint32_t len)
{
    uint32_t hl, seq, ack, wnd, dlen;
    uint16_t sport, dport;
    uint8_t flags;
    struct sock *s = 0, *l = 0;

    nd->stats[ST_TCP_RX]++;
    if (len < TCP_HLEN) {
        nd->stats[ST_TCP_TRUNC]++;
        return;
    }
    hl = (uint32_t)(t[12] >> 4) * 4;
    if (hl < TCP_HLEN || hl > len) {
        nd->stats[ST_TCP_HLEN]++;
        return;
    }
    if (l4_cksum(src, dst, 6, t, len) != 0) {
        nd->stats[ST_TCP_CKSUM]++;
        return;
    }
    sport = get16(t);
    dport = get16(t + 2);
    seq = get32(t + 4);
    ack = get32(t + 8);
    flags = t[13];
    wnd = get16(t + 14);
    dlen = len - hl;
    if (sport == 0 || dport == 0) {
        nd->stats[ST_TCP_NOCONN]++;
        return;
    }
    for (uint32_t i = 0; i < nd->sock_hi; i++) {
        struct sock *c = &nd->socks[i];
        if (!c->used || c->proto != NS_TCP || c->lport != dport)
            continue;
        if (c->state == TCP_LISTEN)
            l = c;
        else if (c->state != TCP_CLOSED && c->raddr == src && c->rport == sport)
            s = c;
    }
    uint32_t seglen = dlen + ((flags & TH_SYN) ? 1 : 0) + ((flags & TH_FIN) ? 1 : 0);
    if (!s && !l) {
        nd->stats[ST_TCP_NOCONN]++;
        if (!(flags & TH_RST))
            tcp_reset_reply(nd, src, dport, sport, flags, seq, ack, seglen);
        return;
    }
    if (!s)
        listen_input(nd, l, src, sport, flags, seq, ack, wnd, t, hl, seglen);
    else if (s->state == TCP_SYN_SENT)
        syn_sent_input(nd, s, flags, seq, ack, wnd, t, hl);
    else
        sync_input(nd, s, flags, seq, ack, wnd, t + hl, dlen);
}

// Move held bytes (then a held EOF) into the application's event ring as it makes
// room, and announce the window when it has opened by at least min(MSS, half the
// buffer) since it was last advertised (receiver-side SWS avoidance, 3.8.6.2.2).
void
tcp_drain(struct netd *nd, struct sock *s)
{
    uint32_t done = 0;

    if (s->app_closed) {
        s->rcv_held = 0;
        s->eof_held = 0;
    }
    while (done < s->rcv_held) {
        uint32_t n = s->rcv_held - done;
        if (n > s->mss)
            n = s->mss;
        if (sock_event(nd, s, NS_EV_DATA, 0, s->raddr, s->rport, s->rcvbuf + done, n) != 0)
            break;
        done += n;
    }
    if (done > 0) {
        memmove(s->rcvbuf, s->rcvbuf + done, s->rcv_held - done);
        s->rcv_held -= done;
    }
    if (s->eof_held && s->rcv_held == 0 &&
        sock_event(nd, s, NS_EV_EOF, 0, s->raddr, s->rport, 0, 0) == 0)
        s->eof_held = 0;
    if (done > 0 && s->state >= TCP_ESTABLISHED && s->state != TCP_TIME_WAIT) {
        uint32_t step = s->mss < TCP_RCV_WND / 2 ? s->mss : TCP_RCV_WND / 2;
        if (rcv_wnd(s) >= (uint32_t)s->wnd_sent + step)
            tcp_ack_now(nd, s);
    }
}

// Retransmission timer (go-back-N from SND.UNA) and TIME_WAIT expiry.
static void
tcp_timeout(struct netd *nd, struct sock *s)
{
    s->rto_at = 0;
    if (!outstanding(s))
        return;
    // Zero window: probe with the first unacknowledged byte, with backoff, and do not
    // count it as a retry: a receiver may keep its window shut as long as it keeps
    // acknowledging the probes (section 3.8.6.1).
    if (s->state >= TCP_ESTABLISHED && s->snd_wnd == 0 && SEQ_LT(s->snd_una, s->snd_end)) {
        s->snd_nxt = s->snd_una;
        if (tcp_xmit(nd, s, TH_ACK, s->snd_nxt, 1) == 0)
            s->snd_nxt++;
        s->rto_ms = s->rto_ms * 2 > RTO_MAX_MS ? RTO_MAX_MS : s->rto_ms * 2;
        s->rto_at = nd->now + s->rto_ms;
        return;
    }
    if (++s->retries > TCP_MAX_RETRIES) {
        nd->stats[ST_TCP_TIMEOUT]++;
        if (s->state != TCP_SYN_SENT)
            tcp_emit(nd, s->raddr, s->lport, s->rport, s->snd_nxt, 0, TH_RST, 0, 0, 0, 0, 0);
        tcp_abort(nd, s, -NS_ETIMEDOUT);
        return;
    }
    nd->stats[ST_TCP_RETRANSMIT]++;
    s->rto_ms = s->rto_ms * 2 > RTO_MAX_MS ? RTO_MAX_MS : s->rto_ms * 2;
    s->snd_nxt = s->snd_una;
    if (s->state == TCP_SYN_SENT) {
        tcp_emit(nd, s->raddr, s->lport, s->rport, s->iss, 0, TH_SYN, TCP_RCV_WND, 0, 0, 0, 0);
        s->snd_nxt = s->iss + 1;
    } else if (s->state == TCP_SYN_RCVD) {
        tcp_emit(nd, s->raddr, s->lport, s->rport, s->iss, s->rcv_nxt, TH_SYN | TH_ACK, TCP_RCV_WND, 0, 0, 0, 0);
        s->snd_nxt = s->iss + 1;
    } else {
        tcp_output(nd, s);
    }
    if (s->used && s->rto_at == 0)
        s->rto_at = nd->now + s->rto_ms;
}

void
tcp_timers(struct netd *nd)
{
    for (uint32_t i = 0; i < nd->sock_hi; i++) {
        struct sock *s = &nd->socks[i];
        if (!s->used || s->proto != NS_TCP)
            continue;
        if (s->state == TCP_TIME_WAIT) {
            if (nd->now >= s->tw_at)
                sock_free(nd, s);
            continue;
        }
        if (s->rto_at && nd->now >= s->rto_at)
            tcp_timeout(nd, s);
    }
}

// An ARP reply arrived: send the SYN that was waiting for it now instead of after a
// retransmission timeout.
void
tcp_arp_resolved(struct netd *nd, uint32_t ip)
{
    for (uint32_t i = 0; i < nd->sock_hi; i++) {
        struct sock *s = &nd->socks[i];
        if (s->used && s->proto == NS_TCP && s->state == TCP_SYN_SENT && s->raddr == ip)
            tcp_emit(nd, s->raddr, s->lport, s->rport, s->iss, 0, TH_SYN, TCP_RCV_WND, 0, 0, 0, 0);
    }
}

// Active open (section 3.10.1). The CONNECT request is answered when the handshake
// ends or fails. Returns 0 or -NS_E*.
int
tcp_connect(struct netd *nd, struct sock *s, uint32_t addr, uint16_t port, uint32_t id)
{
    if (s->state != TCP_CLOSED || port == 0 || addr == 0)
        return -NS_EINVAL;
    if (s->lport == 0)
        s->lport = sock_eport(nd, NS_TCP);
    s->raddr = addr;
    s->rport = port;
    s->connect_id = id;
    s->mss = 536;
    s->iss = tcp_isn(nd, addr, s->lport, port);
    s->state = TCP_SYN_SENT;
    tcp_start(nd, s);
    tcp_emit(nd, addr, s->lport, port, s->iss, 0, TH_SYN, TCP_RCV_WND, 0, 0, 0, 0);
    return 0;
}

// Passive open on s->lport. Returns 0 or -NS_EINVAL.
int
tcp_listen(struct netd *nd, struct sock *s)
{
    (void)nd;
    if (s->state != TCP_CLOSED)
        return -NS_EINVAL;
    s->state = TCP_LISTEN;
    return 0;
}

// Queue len bytes for sending. Returns 0, 1 when the send buffer lacks room (the
// caller retries later), or -NS_ENOTCONN.
int
tcp_send(struct netd *nd, struct sock *s, const uint8_t *data, uint32_t len)
{
    if ((s->state != TCP_ESTABLISHED && s->state != TCP_CLOSE_WAIT) || s->fin_pending)
        return -NS_ENOTCONN;
    if (len > tcp_sndbuf_free(s))
        return 1;
    uint32_t off = (s->snd_end - (s->iss + 1)) & (TCP_SNDBUF - 1);
    uint32_t n1 = len > TCP_SNDBUF - off ? TCP_SNDBUF - off : len;
    memcpy(s->sndbuf + off, data, n1);
    memcpy(s->sndbuf, data + n1, len - n1);
    s->snd_end += len;
    tcp_output(nd, s);
    return 0;
}

// The application closed s (section 3.10.4): FIN after the queued data, or free.
void
tcp_close(struct netd *nd, struct sock *s)
{
    s->app_closed = 1;
    switch (s->state) {
    case TCP_ESTABLISHED:
        s->fin_pending = 1;
        s->state = TCP_FIN_WAIT_1;
        tcp_output(nd, s);
        break;
    case TCP_CLOSE_WAIT:
        s->fin_pending = 1;
        s->state = TCP_LAST_ACK;
        tcp_output(nd, s);
        break;
    case TCP_LISTEN:
        for (uint32_t i = 0; i < nd->sock_hi; i++)
            if (nd->socks[i].used && nd->socks[i].parent == s - nd->socks)
                tcp_abort(nd, &nd->socks[i], -NS_ERESET);
        sock_free(nd, s);
        break;
    case TCP_CLOSED:
    case TCP_SYN_SENT:
        sock_free(nd, s);
        break;
    default:
        break;      /* already closing */
    }
}
