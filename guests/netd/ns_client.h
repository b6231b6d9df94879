/*
 * The application's side of the socket protocol (netd_sock.h), as inline functions over
 * the two rings an application shares with NetD. Freestanding; guests and host programs
 * include it alike (experiments/native/netd/netd_host.c's echo applications use it).
 *
 * Requests return the request id (>= 0) that NetD's answer will carry, or a negative
 * RING_E* code (RING_EAGAIN: the request ring is full, try again later).
 *
 * Receiving is zero-copy: ns_recv hands out the next event and a pointer to its payload
 * inside the event ring; the bytes stay valid, and the ring slot stays taken, until
 * ns_done. An application that wants to keep an event (say its answer could not be
 * queued yet) calls ns_recv again later and gets the same event.
 */
#ifndef NETD_NS_CLIENT_H
#define NETD_NS_CLIENT_H

#include <keusim/ring.h>
#include "netd_sock.h"

void *memcpy(void *restrict dst, const void *restrict src, size_t n);

struct ns_client {
    struct ring_ep *req;    /* application -> NetD */
    struct ring_ep *evt;    /* NetD -> application */
    uint32_t next_id;
};

static inline int
ns_request(struct ns_client *c, uint8_t op, uint8_t proto, uint16_t sock, uint32_t addr,
           uint16_t port, uint16_t lport, const void *data, uint32_t len)
{
    struct ns_msg m = { op, proto, sock, c->next_id, 0, addr, port, lport, len };
    void *out;
    int r = ring_reserve(c->req, (uint32_t)sizeof(m) + len, &out);

    if (r != 0)
        return r;
    memcpy(out, &m, sizeof(m));
    if (len)
        memcpy((uint8_t *)out + sizeof(m), data, len);
    if ((r = ring_commit(c->req, (uint32_t)sizeof(m) + len)) != 0)
        return r;
    return (int)(c->next_id++ & 0x7fffffff);
}

static inline int ns_open(struct ns_client *c, uint8_t proto)
{ return ns_request(c, NS_OPEN, proto, 0, 0, 0, 0, 0, 0); }

static inline int ns_bind(struct ns_client *c, uint16_t sock, uint16_t lport)
{ return ns_request(c, NS_BIND, 0, sock, 0, 0, lport, 0, 0); }

static inline int ns_connect(struct ns_client *c, uint16_t sock, uint32_t addr, uint16_t port)
{ return ns_request(c, NS_CONNECT, 0, sock, addr, port, 0, 0, 0); }

static inline int ns_send(struct ns_client *c, uint16_t sock, const void *data, uint32_t len)
{ return ns_request(c, NS_SEND, 0, sock, 0, 0, 0, data, len); }

static inline int ns_sendto(struct ns_client *c, uint16_t sock, uint32_t addr, uint16_t port,
                            const void *data, uint32_t len)
{ return ns_request(c, NS_SEND, 0, sock, addr, port, 0, data, len); }

static inline int ns_close(struct ns_client *c, uint16_t sock)
{ return ns_request(c, NS_CLOSE, 0, sock, 0, 0, 0, 0, 0); }

// The next event: its header copied to *ev, *payload pointing at ev->len bytes in the
// ring. Returns 0, RING_EAGAIN (no event), or RING_ECORRUPT_LEN when the record is
// shorter than a header or its length disagrees with ev->len (then it is skipped).
static inline int
ns_recv(struct ns_client *c, struct ns_msg *ev, const uint8_t **payload)
{
    const void *rec;
    uint32_t len;
    int r = ring_peek(c->evt, &rec, &len);

    if (r != 0)
        return r;
    if (len < sizeof(*ev)) {
        ring_release(c->evt);
        return RING_ECORRUPT_LEN;
    }
    memcpy(ev, rec, sizeof(*ev));
    if (ev->len != len - sizeof(*ev)) {
        ring_release(c->evt);
        return RING_ECORRUPT_LEN;
    }
    *payload = (const uint8_t *)rec + sizeof(*ev);
    return 0;
}

// Done with the event ns_recv returned: its ring slot is free again.
static inline void
ns_done(struct ns_client *c)
{
    ring_release(c->evt);
}

#endif /* NETD_NS_CLIENT_H */
