/*
 * Helpers shared by the ring workloads (pingpong, stream): seeded payloads that
 * the receiver regenerates and checks byte for byte, and the per-channel counters
 * that end up in the run report.
 */
#ifndef KEUSIM_WORKLOAD_H
#define KEUSIM_WORKLOAD_H
#include <keusim/keusim.h>
#include <keusim/ring.h>

struct ks_chanstats {
    uint64_t msgs, bytes, verified, mismatches, hash;
};

/* Fill n bytes of b from the PRNG state *s. */
static inline void ks_fill(uint8_t *b, uint32_t n, uint64_t *s)
{
    for (uint32_t i = 0; i < n; i += 8) {
        uint64_t r = ks_rand(s);
        for (uint32_t k = 0; k < 8 && i + k < n; k++)
            b[i + k] = (uint8_t)(r >> (8 * k));
    }
}

/* Check n received bytes against the PRNG stream *s; count and hash them. */
static inline void ks_check(struct ks_chanstats *st, const uint8_t *b, uint32_t n, uint64_t *s)
{
    for (uint32_t i = 0; i < n; i += 8) {
        uint64_t r = ks_rand(s);
        for (uint32_t k = 0; k < 8 && i + k < n; k++)
            if (b[i + k] != (uint8_t)(r >> (8 * k)))
                st->mismatches++;
    }
    st->msgs++;
    st->bytes += n;
    st->verified += n;
    st->hash = ks_fnv(st->hash, b, n);
}

static inline void ks_report_recv(uint32_t ch, const struct ks_chanstats *st)
{
    ks_report(ch, STAT_RECV_MSGS, st->msgs);
    ks_report(ch, STAT_RECV_BYTES, st->bytes);
    ks_report(ch, STAT_VERIFIED_BYTES, st->verified - st->mismatches);
    ks_report(ch, STAT_MISMATCHES, st->mismatches);
    ks_report(ch, STAT_STREAM_HASH, st->hash);
}

static inline void ks_report_sent(uint32_t ch, const struct ks_chanstats *st)
{
    ks_report(ch, STAT_SENT_MSGS, st->msgs);
    ks_report(ch, STAT_SENT_BYTES, st->bytes);
    ks_report(ch, STAT_STREAM_HASH, st->hash);
}

#endif /* KEUSIM_WORKLOAD_H */
