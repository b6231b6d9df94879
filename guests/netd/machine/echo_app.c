/*
 * An application of NetD on the machine (docs/netd.md): a TCP echo service on port 7
 * and a UDP echo socket on port 9, over the socket protocol (ns_client.h) on two
 * verified notify-mode channels: requests (this process -> NetD) and events (NetD ->
 * this process). Received payload is read in place in the event ring (zero copy) and
 * copied once into the request ring as the answer. It sleeps in ks_wait on the event
 * channel and exits 0 when NetD is gone (the wait answers EPIPE), printing what it
 * echoed. ECHO_TCP / ECHO_UDP set the ports (0: none).
 */
#include <keusim/keusim.h>
#include "../ns_client.h"
#include "nm.h"

#ifndef ECHO_TCP
#define ECHO_TCP 7
#endif
#ifndef ECHO_UDP
#define ECHO_UDP 9
#endif

static struct ring_ep req, evt;
static struct ns_client cl = { &req, &evt, 1 };
static struct nm_out out;
static int tcp_sock = -1, udp_sock = -1;
static uint64_t tcp_bytes, udp_msgs, conns, failures, waits, hash = KS_FNV_INIT;

int main(void)
{
    int rq = -1, ev = -1;
    for (uint32_t i = 0; i < ks_info->nchan; i++) {
        if (ks_info->chan[i].role == EP_PRODUCER)
            rq = (int)i;
        else
            ev = (int)i;
    }
    if (rq < 0 || ev < 0 || ks_ring_open(rq, &req) || ks_ring_open(ev, &evt))
        return 2;
    uint32_t evch = ks_info->chan[ev].id;
    nm_open(&out, ks_info->chan[rq].id, &req);
    if (ECHO_TCP)
        ns_open(&cl, NS_TCP);
    if (ECHO_UDP)
        ns_open(&cl, NS_UDP);
    nm_flush(&out);
    for (;;) {
        struct ns_msg m;
        const uint8_t *p;
        int got = 0, stuck = 0;
        while (ns_recv(&cl, &m, &p) == 0) {
            int r = 0;
            if (m.op == (NS_OPEN | NS_RESP) && m.status == 0) {
                if (m.proto == NS_TCP)
                    tcp_sock = m.sock, r = ns_bind(&cl, m.sock, ECHO_TCP);
                else
                    udp_sock = m.sock, r = ns_bind(&cl, m.sock, ECHO_UDP);
            } else if (m.op == NS_EV_ACCEPT) {
                conns++;
            } else if (m.op == NS_EV_DATA && m.proto == NS_TCP) {
                if ((r = ns_send(&cl, m.sock, p, m.len)) >= 0) {
                    tcp_bytes += m.len;
                    hash = ks_fnv(hash, p, m.len);
                }
            } else if (m.op == NS_EV_DATA) {
                if ((r = ns_sendto(&cl, m.sock, m.addr, m.port, p, m.len)) >= 0)
                    udp_msgs++;
            } else if (m.op == NS_EV_EOF || m.op == NS_EV_RESET) {
                r = ns_close(&cl, m.sock);
            } else if ((m.op & NS_RESP) && m.status != 0) {
                failures++;
            }
            if (r < 0) {        // the request ring is full: keep the event, let NetD drain
                stuck = 1;
                break;
            }
            ns_done(&cl);
            got++;
        }
        nm_flush(&out);
        if (stuck) {
            ks_yield();
            continue;
        }
        if (!got) {
            const void *rec;
            uint32_t len;
            if (ks_wait(evch) == EPIPE && ring_peek(&evt, &rec, &len) != 0)
                break;
            waits++;
        }
    }
    ks_printf("echo: tcp %lu bytes (fnv %016lx) in %lu connections, udp %lu datagrams, "
              "%lu failures, %lu waits, %lu notifications\n",
              tcp_bytes, hash, conns, udp_msgs, failures, waits, out.sent);
    return 0;
}
