/*
 * The read-only info page the kernel maps at INFO_VA in every process.
 * Guests read their endpoints from it (guests/lib/rt.c). Layout is ABI.
 */
#pragma once
#include "types.h"
#include "param.h"

#define INFO_MAGIC 0x4f464e49u /* "INFO" */

#define EP_PRODUCER 1
#define EP_CONSUMER 2

struct info_chan {
    uint32_t id;            /* global channel index (the notify/wait argument) */
    uint32_t role;          /* EP_PRODUCER or EP_CONSUMER */
    uint32_t capacity;
    uint32_t mode;          /* CHAN_POLL or CHAN_NOTIFY */
    uint32_t verified;
    uint32_t peer;          /* pid at the other end */
    uint64_t head_va;       /* head index page (RW to producer, RO to consumer) */
    uint64_t tail_va;       /* tail index page (RW to consumer, RO to producer) */
    uint64_t data_va;       /* capacity bytes, RW-NX in both */
    uint8_t key[16];        /* SipHash key: producer of a verified channel only, else 0 */
};

struct info_page {
    uint32_t magic;
    uint32_t pid;
    uint32_t nproc;
    uint32_t nchan;         /* endpoints below */
    uint64_t core;
    uint64_t ctl_va;        /* kernel address of the channel table: knowing it grants
                               nothing (the MMU gate), but attack scenarios aim at it */
    char name[MAXNAME];
    struct info_chan chan[MAXCHAN];
};
