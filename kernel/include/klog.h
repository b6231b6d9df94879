/*
 * The kernel event log: fixed-size records handed one at a time to the
 * machine's report device (PLAT_LOG), which copies each out when it is written,
 * so no record can be overwritten or dropped later (keusim/report.py parses
 * this layout). Faults, exits and channel events land here. Every record type
 * is bounded per process or per channel (docs/security.md), so a process cannot
 * flood the log: statistics live in the channel table and are logged once, when
 * their reporter finishes.
 */
#pragma once
#include "types.h"
#include "param.h"

enum klog_type {
    KLOG_EXIT = 1,      /* a = exit code */
    KLOG_FAULT = 2,     /* a = fault kind, b = address, c = pc */
    KLOG_CHAN_ERR = 3,  /* a = channel, b = error code (setup or channel fault), c = detail */
    KLOG_NOTIFY = 4,    /* a = channel, b = verdict (0 accepted, else reject reason) */
    KLOG_STAT = 5,      /* a = channel, b = key (guests/include/keusim/keusim.h STAT_*), c = value: logged when the reporter finishes */
    KLOG_CHAN_STATS = 6, /* a = channel, b = accepted notifications, c = rejected */
    KLOG_PROC = 7,      /* a = user root physical address, b = core: process created */
    KLOG_CHAN_IDX = 8,  /* a = channel, b = head page pa, c = tail page pa */
    KLOG_CHAN_DATA = 9, /* a = channel, b = first data page pa (contiguous), c = capacity */
    KLOG_CTL = 10,      /* a = channel table pa, b = bytes: the supervisor-only control pages */
};

/* Fault kinds (also the kill reasons for rejected notifications). */
enum fault_kind {
    FK_UNMAPPED = 1,        /* access to an unmapped address */
    FK_KERNEL_ACCESS = 2,   /* user access to a supervisor-only page */
    FK_WRITE_PROTECT = 3,   /* write to a read-only page */
    FK_EXEC_NX = 4,         /* instruction fetch from a no-execute page */
    FK_PRIV_INSN = 5,       /* privileged instruction at user level */
    FK_UNDEF_INSN = 6,      /* undefined instruction */
    FK_ALIGNMENT = 7,       /* misaligned access that the architecture rejects */
    FK_BAD_SYSCALL = 8,     /* unknown system call number */
    FK_BAD_TAG = 9,         /* notification tag mismatch */
    FK_REPLAY = 10,         /* notification sequence number not increasing */
    FK_BAD_DESCRIPTOR = 11, /* notification offset/length outside what was published */
    FK_NO_CAPABILITY = 12,  /* notify on a channel the process does not own */
    FK_BAD_POINTER = 13,    /* a system call argument points outside user memory */
    FK_CHANNEL = 14,        /* the process reported a corrupt channel and stopped */
    FK_OTHER = 15,
    FK_GENERAL_PROTECTION = 16, /* x86 #GP(0) from an unprivileged instruction: non-canonical address, bad selector, misaligned SSE operand */
    FK_BREAKPOINT = 17,     /* a debug trap: x86 int3/int1 (#BP/#DB), arm64 brk */
    FK_SOFT_INTERRUPT = 18, /* x86 int N through a gate user code may not use (#GP/#NP with the IDT error code) */
    FK_NON_CANONICAL = 19,  /* arm64: an address in neither the user nor the kernel half */
    FK_DIVIDE = 20,         /* x86 #DE: division by zero or quotient overflow */
    FK_FP_EXCEPTION = 21,   /* x86 #MF/#XM: an unmasked x87 or SSE floating-point exception */
};

struct klog_rec {
    uint32_t type;
    uint32_t pid;
    uint64_t a, b, c;
};

