/*
 * System-call numbers and error codes (docs/abi.md). The kernel uses
 * these definitions too (kernel/include/syscall.h includes this file).
 * Results are >= 0 on success and a negative E* code on failure.
 */
#ifndef KEUSIM_ABI_H
#define KEUSIM_ABI_H

#define SYS_EXIT      0   /* (code) -> does not return */
#define SYS_WRITE     1   /* (buf, len) -> bytes written to the console */
#define SYS_YIELD     2   /* () -> 0 */
#define SYS_GETPID    3   /* () -> pid */
#define SYS_CYCLES    4   /* () -> this core's model cycle count */
#define SYS_NOTIFY    5   /* (struct notify_desc *) -> 0; bad descriptors kill the caller */
#define SYS_WAIT      6   /* (channel) -> 0 when woken by a notify */
#define SYS_CHANFAULT 7   /* (channel, code) -> 0: record that the caller found the channel corrupt */
#define SYS_NOP       8   /* () -> 0: an empty round trip, for measuring trap cost */
#define SYS_REPORT    9   /* (channel, key, value) -> 0: a guest-side counter for the run report */
#define SYS_NIC_ATTACH 10  /* (region, len, rings_off, ring_size) -> NIC_VA: register a frame region with the IOMMU, map the queue page (docs/abi.md) */
#define SYS_NIC_WAIT  11   /* () -> bits: 1 the NIC queue interrupted, 2 a notification is pending; sleeps until one */
#define SYS_NET_SEND  12   /* (buf, len) -> len: the kernel copies one frame to its NIC queue (traditional path) */
#define SYS_NET_RECV  13   /* (buf, max) -> len: the kernel copies one received frame out; EAGAIN when none */
#define NSYSCALL      14

#define EPERM    (-1)   /* not allowed (e.g. notify on a poll-mode channel) */
#define EAGAIN   (-11)  /* nothing to receive, or no transmit buffer free: try again */
#define EFAULT   (-14)  /* a bad user pointer */
#define EBUSY    (-16)  /* already done (a NIC queue attached twice) */
#define EINVAL   (-22)  /* a bad argument */
#define EPIPE    (-32)  /* wait: the producer is gone and no notification is pending */
#define ENOSYS   (-38)  /* no such system call */

#endif /* KEUSIM_ABI_H */
