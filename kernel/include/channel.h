/* Channels: the kernel's capability table entry for one SPSC ring. */
#pragma once
#include "types.h"
#include "param.h"

/* Channel set-up errors, logged as KLOG_CHAN_ERR (b = one of these). */
#define CHERR_CAPACITY_NOT_POW2 1
#define CHERR_CAPACITY_TOO_SMALL 2
#define CHERR_CAPACITY_TOO_LARGE 3
#define CHERR_SAME_PROCESS 4
#define CHERR_UNKNOWN_PROCESS 5
#define CHERR_BAD_MODE 6

#define NSTAT 32 /* counter keys are 1..NSTAT-1: STAT_* (guests/include/keusim/keusim.h) and workload-private ones */

#define CHAN_MIN_CAPACITY 4096u
#define CHAN_MAX_CAPACITY (1u << 20)

struct channel {
    int ok;                 /* set up and usable */
    int producer, consumer; /* proc indices */
    uint32_t capacity, mode, verified;
    uint64_t head_pa, tail_pa, data_pa[CHAN_MAX_CAPACITY / 4096];
    uint8_t key[16];        /* SipHash-2-4 key: lives only here and in the producer's info page */
    uint64_t accepted;      /* notifications accepted */
    uint64_t rejected[16];  /* by fault kind */
    uint64_t pending;       /* notifications not yet consumed by wait() */
    /* Run-report counters, per side (0 producer, 1 consumer), set only by that side. */
    uint64_t stat[2][NSTAT];
    uint32_t statset[2];    /* bit k: stat[side][k] was reported */
    int faulted[2];         /* that side already recorded a channel fault (logged once) */
};

extern struct channel *chantab;
extern int nchan;
