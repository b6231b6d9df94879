/*
 * The read-only info page the kernel maps at INFO_VA in every process; crt0 passes its
 * address to the runtime, which keeps it in ks_info. Layout is ABI (the kernel's copy is
 * kernel/include/info.h; tests/test_guest_sdk.py compares sizes and offsets).
 */
#ifndef KEUSIM_INFO_H
#define KEUSIM_INFO_H

#include <stdint.h>
#include <keusim/layout.h>

#define INFO_MAGIC 0x4f464e49u /* "INFO" */

/* info_chan.role */
#define EP_PRODUCER 1
#define EP_CONSUMER 2

/* info_chan.mode */
#define CHAN_POLL   0
#define CHAN_NOTIFY 1

struct info_chan {
    uint32_t id;            /* global channel index (the notify/wait/report argument) */
    uint32_t role;          /* EP_PRODUCER or EP_CONSUMER */
    uint32_t capacity;      /* data bytes, a power of two */
    uint32_t mode;          /* CHAN_POLL or CHAN_NOTIFY */
    uint32_t verified;      /* 1: notifications carry SipHash-2-4 tags */
    uint32_t peer;          /* pid at the other end */
    uint64_t head_va;       /* head index page (RW to producer, RO to consumer) */
    uint64_t tail_va;       /* tail index page (RW to consumer, RO to producer) */
    uint64_t data_va;       /* capacity bytes, RW-NX in both */
    uint8_t key[16];        /* SipHash key: producer of a verified channel only, else 0 */
};

struct info_page {
    uint32_t magic;         /* INFO_MAGIC */
    uint32_t pid;           /* 1-based, manifest order */
    uint32_t nproc;
    uint32_t nchan;         /* endpoints in chan[] */
    uint64_t core;
    uint64_t ctl_va;        /* kernel address of the channel table: knowing it grants
                               nothing (the MMU gate), but attack scenarios aim at it */
    char name[MAXNAME];     /* the manifest's process name, NUL-terminated */
    struct info_chan chan[MAXCHAN];
};

#endif /* KEUSIM_INFO_H */
