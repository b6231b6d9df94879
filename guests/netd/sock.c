/*
 * The application side of NetD: socket requests in, events out (netd_sock.h).
 *
 * An application is as hostile as the network. Its request ring may hold garbage
 * (the ring library reports a corrupt index or length; NetD counts it and stops
 * serving that application for this turn), a request may be short, name a socket that
 * is not its own (counted as forged, answered -NS_EBADF), or claim a payload length
 * the record does not have. A request is handled only when the event ring has room
 * for its answer, so an application that never reads its events stalls only itself.
 */
#include "netd.h"

#define HDR ((uint32_t)sizeof(struct ns_msg))

struct sock *
sock_alloc(struct netd *nd, uint8_t proto, uint8_t app)
{
    for (int i = 0; i < NETD_MAX_SOCKS; i++) {
        struct sock *s = &nd->socks[i];
        if (!s->used) {
            // The send buffer is not cleared: tcp.c never sends bytes it was not given.
            memset(s, 0, offsetof(struct sock, sndbuf));
            s->used = 1;
            if ((uint32_t)i >= nd->sock_hi)
                nd->sock_hi = (uint32_t)i + 1;
            s->proto = proto;
            s->app = app;
            s->parent = -1;
            return s;
        }
    }
    return 0;
}

void
sock_free(struct netd *nd, struct sock *s)
{
    s->used = 0;
    s->state = TCP_CLOSED;
    while (nd->sock_hi > 0 && !nd->socks[nd->sock_hi - 1].used)
        nd->sock_hi--;
}

struct sock *
sock_by_port(struct netd *nd, uint8_t proto, uint16_t lport)
{
    for (uint32_t i = 0; i < nd->sock_hi; i++) {
        struct sock *s = &nd->socks[i];
        if (s->used && s->proto == proto && s->lport == lport && s->parent < 0)
            return s;
    }
    return 0;
}

// An unused ephemeral port (RFC 6335 section 6: 49152-65535), taken round robin.
uint16_t
sock_eport(struct netd *nd, uint8_t proto)
{
    for (int tries = 0; tries < 16384; tries++) {
        uint16_t p = nd->next_eport;
        nd->next_eport = p == 65535 ? 49152 : p + 1;
        if (!sock_by_port(nd, proto, p))
            return p;
    }
    return 0;
}

// Bytes free in an event ring (0 when its indices are corrupt: ring_reserve reports
// that). Read without ordering: a stale tail only understates what is free.
static uint32_t
evt_free(const struct ring_ep *ep)
{
    uint32_t used = *ep->head - *ep->tail;

    return used > ep->capacity ? 0 : ep->capacity - used;
}

// Post an event for s into its application's event ring, payload copied once from
// where it lies (the received frame) into the record. Returns 0 (also when the
// application has closed s: the event is dropped) or -1 when the ring is full. DATA
// leaves about NETD_EVT_HEADROOM bytes free (record rounding and a wrap come out of
// it) for the answers sock_requests reserves room for, so an application that stops
// reading events until its requests go through (an echo waiting for its request
// ring) cannot deadlock with NetD waiting for event room.
int
sock_event(struct netd *nd, struct sock *s, uint8_t op, uint32_t id, uint32_t addr,
           uint16_t port, const uint8_t *data, uint32_t len)
{
    struct netd_app *a = &nd->apps[s->app];
    struct ns_msg m = {
        .op = op, .proto = s->proto, .sock = (uint16_t)(s - nd->socks), .id = id,
        .addr = addr, .port = port, .lport = s->lport, .len = len,
    };
    void *out;

    if (s->app_closed)
        return 0;
    if (op == NS_EV_DATA && evt_free(&a->evt) < HDR + len + RING_ALIGN + NETD_EVT_HEADROOM)
        return -1;
    if (ring_reserve(&a->evt, HDR + len, &out) != 0)
        return -1;
    memcpy(out, &m, HDR);
    if (len)
        memcpy((uint8_t *)out + HDR, data, len);
    return ring_commit(&a->evt, HDR + len) == 0 ? 0 : -1;
}

int
sock_respond(struct netd *nd, uint8_t app, const struct ns_msg *req, uint16_t sock, int32_t status)
{
    struct ns_msg m = {
        .op = (uint8_t)(req->op | NS_RESP), .proto = req->proto, .sock = sock,
        .id = req->id, .status = status, .addr = req->addr, .port = req->port,
        .lport = req->lport, .len = 0,
    };

    return ring_send(&nd->apps[app].evt, &m, HDR) == 0 ? 0 : -1;
}

// The socket a request names, if it belongs to application app and is usable.
static struct sock *
sock_of(struct netd *nd, uint8_t app, uint16_t id)
{
    struct sock *s;

    if (id >= NETD_MAX_SOCKS)
        return 0;
    s = &nd->socks[id];
    if (!s->used || s->app != app || s->app_closed || s->parent >= 0)
        return 0;
    return s;
}

static int
port_taken(struct netd *nd, uint8_t proto, uint16_t port)
{
    for (uint32_t i = 0; i < nd->sock_hi; i++) {
        struct sock *s = &nd->socks[i];
        if (s->used && s->proto == proto && s->lport == port)
            return 1;
    }
    return proto == NS_UDP && port == nd->cfg.udp_echo_port;
}

// Handle one request. Returns 0 when it is done (answered or not), 1 when it must
// wait (a TCP send buffer is full) and stays at the head of the ring.
static int
sock_request(struct netd *nd, uint8_t app, const struct ns_msg *m, const uint8_t *payload)
{
    struct sock *s = 0;
    int32_t st = 0;

    if (m->op != NS_OPEN) {
        s = sock_of(nd, app, m->sock);
        if (!s) {
            nd->stats[ST_SOCK_FORGED]++;
            sock_respond(nd, app, m, m->sock, -NS_EBADF);
            return 0;
        }
    }
    switch (m->op) {
    case NS_OPEN:
        if (m->proto != NS_TCP && m->proto != NS_UDP) {
            st = -NS_EINVAL;
            break;
        }
        s = sock_alloc(nd, m->proto, app);
        if (!s) {
            st = -NS_ENOSPC;
            break;
        }
        sock_respond(nd, app, m, (uint16_t)(s - nd->socks), 0);
        return 0;
    case NS_BIND:
        if (m->lport == 0 || s->lport != 0)
            st = -NS_EINVAL;
        else if (port_taken(nd, s->proto, m->lport))
            st = -NS_EADDRINUSE;
        else {
            s->lport = m->lport;
            if (s->proto == NS_TCP && (st = tcp_listen(nd, s)) != 0)
                s->lport = 0;
        }
        break;
    case NS_CONNECT:
        if (s->proto == NS_TCP) {
            st = tcp_connect(nd, s, m->addr, m->port, m->id);
            if (st == 0)
                return 0;   /* answered when the handshake ends */
        } else if (m->addr == 0 || m->port == 0) {
            st = -NS_EINVAL;
        } else {
            s->raddr = m->addr;
            s->rport = m->port;
        }
        break;
    case NS_SEND:
        if (m->len > NS_MAX_PAYLOAD) {
            st = -NS_ETOOBIG;
        } else if (s->proto == NS_TCP) {
            st = tcp_send(nd, s, payload, m->len);
            if (st == 1)
                return 1;
            if (st == 0)
                return 0;
        } else {
            uint32_t dst = m->addr ? m->addr : s->raddr;
            uint16_t port = m->addr ? m->port : s->rport;
            if (s->lport == 0)
                s->lport = sock_eport(nd, NS_UDP);
            if (udp_send(nd, s->lport, dst, port, payload, m->len) == 0)
                return 0;
            st = -NS_ENOBUFS;
        }
        break;
    case NS_CLOSE:
        sock_respond(nd, app, m, m->sock, 0);
        if (s->proto == NS_TCP)
            tcp_close(nd, s);
        else
            sock_free(nd, s);
        return 0;
    default:
        nd->stats[ST_SOCK_BAD_REQ]++;
        st = -NS_EINVAL;
    }
    sock_respond(nd, app, m, s ? (uint16_t)(s - nd->socks) : m->sock, st);
    return 0;
}

void
sock_requests(struct netd *nd)
{
    for (uint8_t i = 0; i < NETD_MAX_APPS; i++) {
        struct netd_app *a = &nd->apps[i];
        if (!a->used)
            continue;
        for (int n = 0; n < NETD_REQ_BUDGET; n++) {
            const void *rec;
            uint32_t len;
            void *room;
            struct ns_msg m;
            int r = ring_peek(&a->req, &rec, &len);
            if (r == RING_EAGAIN)
                break;
            if (r != 0) {
                nd->stats[ST_SOCK_RING_ERR]++;
                break;
            }
            // Room for the answer first; reserving and not committing publishes nothing.
            if (ring_reserve(&a->evt, HDR, &room) != 0)
                break;
            nd->stats[ST_SOCK_REQ]++;
            if (len < HDR) {
                nd->stats[ST_SOCK_BAD_REQ]++;
                ring_release(&a->req);
                continue;
            }
            memcpy(&m, rec, HDR);   /* read the shared header once */
            if (m.len != len - HDR) {
                nd->stats[ST_SOCK_BAD_REQ]++;
                sock_respond(nd, i, &m, m.sock, -NS_EINVAL);
                ring_release(&a->req);
                continue;
            }
            if (sock_request(nd, i, &m, (const uint8_t *)rec + HDR) == 1)
                break;
            ring_release(&a->req);
        }
    }
}

// Post what found the event ring full earlier: held TCP bytes and EOFs (tcp_drain),
// then RESET events.
void
sock_flush(struct netd *nd)
{
    for (uint32_t i = 0; i < nd->sock_hi; i++) {
        struct sock *s = &nd->socks[i];
        if (s->used && s->proto == NS_TCP && (s->rcv_held || s->eof_held))
            tcp_drain(nd, s);
        if (s->used && s->reset_pending &&
            sock_event(nd, s, NS_EV_RESET, 0, s->raddr, s->rport, 0, 0) == 0)
            s->reset_pending = 0;
    }
}
