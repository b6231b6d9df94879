/*
 * A hostile application of NetD (tests/test_nic.py): it holds its own request and event
 * channels and uses them to attack NetD and the other application.
 *
 *   - requests on sockets that are not its own (the echo application's sockets 0 and 1:
 *     SEND into its connection, CLOSE its listener, BIND it elsewhere);
 *   - records too short for a header, and a payload length that disagrees with the
 *     record;
 *   - an unknown operation;
 *   - finally a notification with a forged tag (the kernel must kill it; NetD and the
 *     echo application must not notice).
 *
 * It prints what NetD answered; every answer must be a refusal.
 */
#include <keusim/keusim.h>
#include "../ns_client.h"
#include "nm.h"

static struct ring_ep req, evt;
static struct ns_client cl = { &req, &evt, 1 };
static struct nm_out out;

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
    // Let the echo application open and bind its sockets first (model time: 3 ms).
    while (ks_rdcycles() < 9000000)
        ks_yield();
    for (uint16_t s = 0; s < 2; s++) {
        ns_send(&cl, s, "forged!", 7);
        ns_close(&cl, s);
        ns_bind(&cl, s, 4444);
    }
    ns_request(&cl, 99, NS_TCP, 0, 0, 0, 0, 0, 0);             /* unknown operation */
    static const uint8_t tiny[4] = { 1, 2, 3, 4 };
    ring_send(&req, tiny, sizeof(tiny));                        /* shorter than a header */
    struct ns_msg lie = { NS_SEND, 0, 0, 77, 0, 0, 0, 0, 5000 };
    ring_send(&req, &lie, sizeof(lie));                         /* claims 5000 payload bytes */
    nm_flush(&out);
    int answers = 0, refused = 0, events = 0;
    uint64_t until = ks_rdcycles() + 30000000;                   /* 10 ms */
    while (ks_rdcycles() < until) {
        struct ns_msg m;
        const uint8_t *p;
        if (ns_recv(&cl, &m, &p) == 0) {
            if (m.op & NS_RESP) {
                answers++;
                refused += m.status != 0;
            } else {
                events++;
            }
            ns_done(&cl);
        } else {
            ks_yield();
        }
    }
    (void)evch;
    ks_printf("forger: %d answers, %d refused, %d events\n", answers, refused, events);
    // A notification with a wrong tag: the kernel kills the sender (FK_BAD_TAG).
    struct notify_desc d;
    ks_desc_make(&d, out.n.channel, *req.head, 0, 0, out.n.seq + 1, 0);
    d.tag ^= 0x5a5a;
    ks_notify(&d);
    ks_printf("forger: still alive after a forged tag\n");
    return 0;
}
