/*
 * sipbench: the kernel's tag check (kernel/include/descriptor.h desc_tag_ok over
 * kernel/lib/siphash.c, the same sources the kernel runs) timed on the host, for
 * experiments/tag_check.py.
 *
 *   --bench tag_ok      independent checks (seq varies; the out-of-order core may
 *                       overlap consecutive checks): throughput
 *   --bench tag_ok_dep  each check's descriptor depends on the previous result, so
 *                       checks cannot overlap: the latency the notify path pays
 *
 * One op = one desc_tag_ok. Prints one JSON object (native/bench.c: json_*), with
 * "errors" counting checks that gave the wrong answer.
 */
#define _GNU_SOURCE
#include <string.h>

#include "bench.h"
#include "descriptor.h"

static struct opts O;

__attribute__((noinline)) static int
check(const uint8_t key[16], const struct notify_desc *d)
{
    return desc_tag_ok(key, d);
}

int
main(int argc, char **argv)
{
    struct samples s;
    struct acct a;
    struct notify_desc d = {3, 4096, 68, 0, 1, 0};
    uint8_t key[16];
    uint64_t nsamples, k, j, ok = 0, rs = 0x5eed0004ull;
    int dep;

    parse_opts(&O, argc, argv);
    dep = strcmp(O.bench, "tag_ok_dep") == 0;
    if (!dep && strcmp(O.bench, "tag_ok") != 0)
        die(EXIT_USAGE, "unknown --bench '%s' (tag_ok, tag_ok_dep)", O.bench);
    pick_cpus(&O);
    for (k = 0; k < 16; k++)
        key[k] = (uint8_t)splitmix64(&rs);
    d.tag = desc_tag(key, &d);
    nsamples = O.iters / O.batch;
    samples_init(&s, nsamples, O.batch);
    for (k = 0; k < O.warmup; k++)
        ok += (uint64_t)check(key, &d);
    acct_begin(&a, 0);
    for (k = 0; k < nsamples; k++) {
        sample_begin(&s);
        for (j = 0; j < O.batch; j++) {
            int r = check(key, &d);
            ok += (uint64_t)r;
            /* Both forms change seq, so the tag no longer matches: every later check
             * returns 0. The dependent form makes the next seq wait for this result. */
            d.seq += dep ? (uint64_t)r + 1 : 1;
        }
        sample_end(&s);
    }
    acct_end(&a);
    json_begin(&O, 0);
    json_samples(&s);
    json_acct(&a);
    /* The warm-up checks and the first timed one see the signed descriptor and must
     * match; every later one sees a changed seq and must not. */
    json_check(O.iters + O.warmup, ok == O.warmup + 1 ? 0 : 1);
    json_end();
    return 0;
}
