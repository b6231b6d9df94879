/*
 * NetD: a userspace network stack with one event loop (docs/netd.md).
 *
 * NetD owns a netif (netif.h) and serves applications over SPSC rings (netd_sock.h).
 * The caller supplies time: netd_poll(nd, now_ms) is the whole interface of the event
 * loop, so the same code runs on model time inside keusim and on a host clock outside.
 *
 * One file per protocol: eth.c (Ethernet II), arp.c (RFC 826), ip.c (RFC 791),
 * icmp.c (RFC 792), udp.c (RFC 768), tcp.c (RFC 9293), sock.c (the application side).
 * Every received byte is hostile: each parser checks a length before it reads a field.
 */
#ifndef NETD_NETD_H
#define NETD_NETD_H

#include <stddef.h>
#include <stdint.h>
#include <keusim/ring.h>
#include "netif.h"
#include "netd_sock.h"

void *memcpy(void *restrict dst, const void *restrict src, size_t n);  /* guests/lib/string.c */
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memmove(void *dst, const void *src, size_t n);

#define ETH_HLEN 14
#define ETH_MTU 1500
#define IP_HLEN 20
#define TCP_HLEN 20
#define TCP_MSS (ETH_MTU - IP_HLEN - TCP_HLEN)

#define NETD_MAX_SOCKS 32
#define NETD_MAX_APPS 4
#define NETD_ARP_SLOTS 16
#define NETD_RX_BUDGET 64       /* rx frames handled per poll: a flood waits in the NIC */
#define NETD_REQ_BUDGET 64      /* requests per application per poll */
#define NETD_EVT_HEADROOM 512   /* event-ring bytes DATA events leave for answers */
#define TCP_SNDBUF 32768        /* per connection, power of two: kept until acked */
#define TCP_RCV_WND 16384       /* receive buffer; window = what of it is free (no scaling) */
#define TCP_MAX_RETRIES 8
#define TCP_MAX_HALF_OPEN 8     /* SYN_RCVD connections per listener: a SYN flood stops here */

/* Counters; netd_stat_names[] (netd.c) gives each its name. */
enum netd_stat {
    ST_RX_FRAMES, ST_TX_FRAMES, ST_RX_BAD_DESC, ST_COMP_BAD_DESC, ST_TX_NOBUF,
    ST_ETH_RUNT, ST_ETH_NOT_US, ST_ETH_TYPE,
    ST_ARP_RX, ST_ARP_BAD, ST_ARP_REPLIED, ST_ARP_LEARNED, ST_ARP_MISS,
    ST_IP_RX, ST_IP_TRUNC, ST_IP_VERSION, ST_IP_HLEN, ST_IP_LEN, ST_IP_CKSUM,
    ST_IP_FRAG, ST_IP_NOT_US, ST_IP_BAD_SRC, ST_IP_PROTO,
    ST_ICMP_RX, ST_ICMP_TRUNC, ST_ICMP_CKSUM, ST_ICMP_ECHO, ST_ICMP_OTHER, ST_ICMP_RATELIMIT,
    ST_UDP_RX, ST_UDP_TRUNC, ST_UDP_LEN, ST_UDP_CKSUM, ST_UDP_ECHO, ST_UDP_ECHO_LOOP, ST_UDP_NOPORT,
    ST_UDP_DELIVERED, ST_UDP_APP_FULL,
    ST_TCP_RX, ST_TCP_TRUNC, ST_TCP_HLEN, ST_TCP_CKSUM, ST_TCP_NOCONN, ST_TCP_RST_SENT,
    ST_TCP_RST_RX, ST_TCP_SYN_DROP, ST_TCP_OUT_OF_ORDER, ST_TCP_BAD_ACK, ST_TCP_APP_FULL,
    ST_TCP_BEYOND_WND,
    ST_TCP_RETRANSMIT, ST_TCP_TIMEOUT, ST_TCP_CHALLENGE_ACK, ST_TCP_ACCEPTED,
    ST_TCP_CONNECTED, ST_TCP_DATA_IN, ST_TCP_DATA_OUT,
    ST_SOCK_REQ, ST_SOCK_BAD_REQ, ST_SOCK_FORGED, ST_SOCK_RING_ERR,
    ST_COUNT
};
extern const char *const netd_stat_names[ST_COUNT];

enum tcp_state {
    TCP_CLOSED, TCP_LISTEN, TCP_SYN_SENT, TCP_SYN_RCVD, TCP_ESTABLISHED,
    TCP_FIN_WAIT_1, TCP_FIN_WAIT_2, TCP_CLOSING, TCP_TIME_WAIT, TCP_CLOSE_WAIT,
    TCP_LAST_ACK,
};

struct sock {
    uint8_t used;
    uint8_t proto;          /* NS_TCP or NS_UDP */
    uint8_t app;            /* owning application */
    uint8_t app_closed;     /* the application sent CLOSE: no more events */
    uint8_t reset_pending;  /* a RESET event still to post */
    uint16_t lport, rport;
    uint32_t raddr;
    /* TCP (RFC 9293 section 3.3.1 names) */
    uint8_t state;
    uint8_t fin_pending;    /* send FIN once the buffered data is out */
    uint8_t retries;
    int16_t parent;         /* SYN_RCVD: the listening socket, else -1 */
    uint32_t connect_id;    /* CONNECT request id to answer */
    uint32_t iss, irs;
    uint32_t snd_una, snd_nxt, snd_wnd, snd_end;  /* snd_end: seq after the last buffered byte */
    uint32_t rcv_nxt;
    uint16_t mss;
    uint32_t rto_ms;
    uint64_t rto_at;        /* 0 = timer off */
    uint64_t tw_at;         /* TIME_WAIT ends */
    uint32_t rcv_held;      /* bytes acknowledged but not yet in the event ring (rcvbuf) */
    uint8_t eof_held;       /* FIN acknowledged; its EOF event follows the held bytes */
    uint16_t wnd_sent;      /* receive window last advertised */
    uint8_t sndbuf[TCP_SNDBUF];
    uint8_t rcvbuf[TCP_RCV_WND];  /* in-order bytes the application had no room for */
};

struct arp_entry {
    uint32_t ip;
    uint8_t mac[6];
    uint8_t valid;
    uint8_t pending;        /* a request is out */
    uint64_t asked_at;
};

struct netd_app {
    uint8_t used;
    struct ring_ep req;     /* application -> NetD */
    struct ring_ep evt;     /* NetD -> application */
};

struct netd_config {
    uint32_t ip;            /* our address */
    uint32_t netmask;       /* on-link prefix; nothing is routed beyond it */
    uint8_t mac[6];
    uint16_t udp_echo_port; /* 0 = no UDP echo service */
    uint32_t rto_ms;        /* initial retransmission timeout */
    uint32_t time_wait_ms;  /* 2 MSL, shortened */
    uint32_t icmp_per_sec;  /* echo replies and RSTs allowed per second (flood control) */
    uint32_t isn_key;       /* initial sequence numbers depend on it (RFC 6528) */
};

#define FRAME_FREE 0
#define FRAME_FILL 1        /* with the NIC for receiving */
#define FRAME_TX   2        /* with the NIC for sending */
#define FRAME_BUSY 3        /* NetD is writing it */

struct netd {
    struct netd_config cfg;
    struct netif *nif;
    uint64_t now;           /* ms, from the caller */
    uint64_t stats[ST_COUNT];
    uint8_t frame_state[NETIF_MAX_FRAMES];
    uint16_t free_frames[NETIF_MAX_FRAMES];
    uint32_t nfree;
    struct arp_entry arp[NETD_ARP_SLOTS];
    struct sock socks[NETD_MAX_SOCKS];
    uint32_t sock_hi;       /* every used socket is in socks[0, sock_hi): scans stop there */
    struct netd_app apps[NETD_MAX_APPS];
    uint32_t isn_count;
    uint16_t ip_ident;      /* identification of the next IPv4 packet sent */
    uint16_t next_eport;
    uint64_t rate_window;   /* second the limiter counts in */
    uint32_t rate_used;
};

/* A frame NetD is building. */
struct pkt {
    uint8_t *buf;
    uint32_t frame;
};

/* netd.c */
int  netd_init(struct netd *nd, const struct netd_config *cfg, struct netif *nif);
int  netd_attach_app(struct netd *nd, const struct ring_ep *req, const struct ring_ep *evt);
int  netd_poll(struct netd *nd, uint64_t now_ms);
int  pkt_alloc(struct netd *nd, struct pkt *p);
void pkt_free(struct netd *nd, struct pkt *p);
void pkt_send(struct netd *nd, struct pkt *p, uint32_t len);
int  netd_rate_ok(struct netd *nd);

/* byte order: network data is read and written a byte at a time (no alignment needed) */
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* eth.c */
void eth_input(struct netd *nd, const uint8_t *f, uint32_t len);
void eth_output(struct netd *nd, struct pkt *p, const uint8_t *dst, uint16_t type, uint32_t len);

/* arp.c */
void arp_input(struct netd *nd, const uint8_t *p, uint32_t len);
const uint8_t *arp_resolve(struct netd *nd, uint32_t ip);

/* ip.c */
uint32_t cksum_add(uint32_t sum, const uint8_t *p, uint32_t len);
uint16_t cksum_fold(uint32_t sum);
uint16_t l4_cksum(uint32_t src, uint32_t dst, uint8_t proto, const uint8_t *p, uint32_t len);
void ip_input(struct netd *nd, const uint8_t *p, uint32_t len);
uint8_t *ip_payload(struct pkt *p);
int  ip_output(struct netd *nd, struct pkt *p, uint32_t dst, uint8_t proto, uint32_t l4len);

/* icmp.c, udp.c, tcp.c */
void icmp_input(struct netd *nd, uint32_t src, const uint8_t *p, uint32_t len);
void udp_input(struct netd *nd, uint32_t src, uint32_t dst, const uint8_t *p, uint32_t len);
int  udp_send(struct netd *nd, uint16_t sport, uint32_t dst, uint16_t dport,
              const uint8_t *data, uint32_t len);
void tcp_input(struct netd *nd, uint32_t src, uint32_t dst, const uint8_t *p, uint32_t len);
void tcp_timers(struct netd *nd);
void tcp_arp_resolved(struct netd *nd, uint32_t ip);
int  tcp_connect(struct netd *nd, struct sock *s, uint32_t addr, uint16_t port, uint32_t id);
int  tcp_listen(struct netd *nd, struct sock *s);
int  tcp_send(struct netd *nd, struct sock *s, const uint8_t *data, uint32_t len);
void tcp_close(struct netd *nd, struct sock *s);
uint32_t tcp_sndbuf_free(const struct sock *s);
void tcp_drain(struct netd *nd, struct sock *s);

/* sock.c */
void sock_requests(struct netd *nd);
void sock_flush(struct netd *nd);
struct sock *sock_alloc(struct netd *nd, uint8_t proto, uint8_t app);
void sock_free(struct netd *nd, struct sock *s);
struct sock *sock_by_port(struct netd *nd, uint8_t proto, uint16_t lport);
uint16_t sock_eport(struct netd *nd, uint8_t proto);
int  sock_event(struct netd *nd, struct sock *s, uint8_t op, uint32_t id, uint32_t addr,
                uint16_t port, const uint8_t *data, uint32_t len);
int  sock_respond(struct netd *nd, uint8_t app, const struct ns_msg *req, uint16_t sock, int32_t status);

#endif /* NETD_NETD_H */
