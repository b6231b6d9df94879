/*
 * The `siphash-vectors` scenario: SipHash-2-4 and descriptor tags computed by
 * the C code inside the emulator, printed for tests/test_siphash_guest.py to
 * compare with keusim.crypto.
 *
 * ROLE R_VECTORS prints the 64 reference vectors (key 00..0f, messages
 *   00 01 .. of length 0..63) as "sip LEN HEX" lines. Each is also computed
 *   with key and message at misalignment LEN % 8; disagreements are counted
 *   ("misaligned-mismatches N") and make the exit code 1.
 * ROLE R_SIGNER publishes NTAGS records on verified notify channel 0, prints
 *   each descriptor and its guest-computed tag as "tag CH OFFSET LENGTH SEQ HEX",
 *   and notifies it. The kernel accepts a notification only if its own
 *   SipHash agrees, so the kernel's SipHash is checked too.
 * ROLE R_SINK consumes those records.
 */
#include <keusim/workload.h>
#include <keusim/notify.h>

#define R_VECTORS 0
#define R_SIGNER 1
#define R_SINK 2

#ifndef NTAGS
#define NTAGS 8
#endif

static uint8_t kbuf[16 + 8], mbuf[64 + 8];

// vectors: print the 64 reference vectors; 0 if every misaligned copy agreed.
static int vectors(void)
{
    uint64_t bad = 0;
    for (uint32_t len = 0; len < 64; len++) {
        uint8_t key[16], msg[64];
        uint32_t a = len % 8;
        for (int i = 0; i < 16; i++)
            key[i] = kbuf[a + i] = (uint8_t)i;
        for (uint32_t i = 0; i < len; i++)
            msg[i] = mbuf[a + i] = (uint8_t)i;
        uint64_t h = siphash24(key, msg, len);
        if (siphash24(kbuf + a, mbuf + a, len) != h)
            bad++;
        ks_printf("sip %lu %lx\n", (uint64_t)len, h);
    }
    ks_printf("misaligned-mismatches %lu\n", bad);
    return bad ? 1 : 0;
}

// signer: publish and notify NTAGS records on channel 0, printing each tag.
static int signer(void)
{
    struct ring_ep ep;
    struct ks_notifier n;
    uint8_t msg[NTAGS + 8];
    if (ks_ring_open(ks_find_endpoint(0, EP_PRODUCER), &ep) != 0 || ks_notifier_open(&n, 0) != 0)
        return 2;
    for (uint32_t k = 1; k <= NTAGS; k++) {
        for (uint32_t i = 0; i < k; i++)
            msg[i] = (uint8_t)(k + i);
        if (ring_send(&ep, msg, k) != 0)
            return 3;
        struct notify_desc d;
        ks_desc_make(&d, 0, ks_record_pos(&ep, k), RING_HDR_SIZE + k, 0, n.seq + 1, n.key);
        ks_printf("tag %lu %lu %lu %lu %lx\n", (uint64_t)d.channel, (uint64_t)d.offset,
                  (uint64_t)d.length, d.seq, d.tag);
        if (ks_notify_send(&n, d.offset, d.length, 0) != 0)
            return 4;
    }
    return 0;
}

// sink: receive the NTAGS records; 0 if they are all there and right.
static int sink(void)
{
    struct ring_ep ep;
    uint8_t msg[NTAGS + 8];
    uint32_t len;
    uint64_t waits = 0;
    if (ks_ring_open(ks_find_endpoint(0, EP_CONSUMER), &ep) != 0)
        return 2;
    for (uint32_t k = 1; k <= NTAGS; k++) {
        if (ks_recv_notified(&ep, 0, msg, sizeof(msg), &len, &waits) != 0 || len != k)
            return 3;
        for (uint32_t i = 0; i < k; i++)
            if (msg[i] != (uint8_t)(k + i))
                return 1;
    }
    return 0;
}

int main(void)
{
    return ROLE == R_VECTORS ? vectors() : ROLE == R_SIGNER ? signer() : sink();
}
