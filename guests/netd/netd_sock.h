/*
 * The socket protocol between an application and NetD (docs/netd.md).
 *
 * Each application has two SPSC rings from guests/lib/ring.c: a request ring (the
 * application produces, NetD consumes) and an event ring (NetD produces, the
 * application consumes). Every record is a struct ns_msg header followed by len
 * payload bytes.
 *
 * Requests: OPEN, BIND, CONNECT, SEND, CLOSE. OPEN, BIND, CONNECT and CLOSE are each
 * answered by a response (op | NS_RESP) carrying the request's id; CONNECT is answered
 * when the handshake ends. SEND is answered only when it fails. Receiving is reading
 * the event ring: NetD writes a received payload straight into a record it reserved in
 * that ring (ring_reserve), so the application reads it in place with ring_peek and
 * ring_release, with no copy in between. Unsolicited events: ACCEPT (a new connection
 * on a listening socket), DATA, EOF (the peer closed its side), RESET.
 *
 * All numbers are in host byte order. Addresses are IPv4, e.g. 10.77.0.1 = 0x0A4D0001.
 */
#ifndef NETD_SOCK_H
#define NETD_SOCK_H

#include <stdint.h>

enum {
    NS_OPEN = 1,        /* proto = NS_TCP or NS_UDP; response sock = the new socket */
    NS_BIND = 2,        /* lport; on TCP also listens (passive open) */
    NS_CONNECT = 3,     /* addr, port; TCP: active open; UDP: default destination */
    NS_SEND = 4,        /* payload; UDP: to addr, port (or the CONNECT destination) */
    NS_CLOSE = 5,       /* TCP: FIN after the queued data; the id is freed */

    NS_EV_ACCEPT = 0x40,    /* sock = new connection, id = listening socket, addr/port = peer */
    NS_EV_DATA = 0x41,      /* payload; UDP: addr/port = sender */
    NS_EV_EOF = 0x42,       /* the peer sent FIN: no more data on sock */
    NS_EV_RESET = 0x43,     /* the connection is gone (RST, or retransmission gave up) */

    NS_RESP = 0x80,         /* or-ed into a request's op in its response */
};

enum { NS_TCP = 6, NS_UDP = 17 };

/* Negative status codes. */
enum {
    NS_EBADF = 1,       /* no such socket, or not this application's */
    NS_EINVAL = 2,      /* wrong op for the socket's state, or a bad field */
    NS_ENOSPC = 3,      /* socket table full */
    NS_EADDRINUSE = 4,  /* port already bound */
    NS_ETOOBIG = 5,     /* payload larger than NS_MAX_PAYLOAD */
    NS_ENOTCONN = 6,    /* send on a TCP socket that is not connected */
    NS_ECONNREFUSED = 7,/* the peer answered SYN with RST */
    NS_ETIMEDOUT = 8,   /* the peer never answered */
    NS_ERESET = 9,      /* the connection was reset */
    NS_ENOBUFS = 10,    /* UDP: no transmit frame or no ARP entry yet; datagram dropped */
};

#define NS_MAX_PAYLOAD 8192

struct ns_msg {
    uint8_t op;
    uint8_t proto;      /* OPEN: NS_TCP or NS_UDP */
    uint16_t sock;
    uint32_t id;        /* request id, echoed in the response */
    int32_t status;     /* responses: 0 or -NS_E* */
    uint32_t addr;
    uint16_t port;      /* remote port */
    uint16_t lport;     /* local port */
    uint32_t len;       /* payload bytes after this header */
};

#endif /* NETD_SOCK_H */
