/*
 * System call numbers (docs/abi.md gives the per-architecture register ABI).
 * Returns are >= 0 on success, negative errors (E*) on failure.
 */
#pragma once
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
#define NSYSCALL      10

#define EINVAL   (-22)
#define EFAULT   (-14)
#define ENOSYS   (-38)
#define EPERM    (-1)
#define EPIPE    (-32)  /* wait: the producer is gone and no notification is pending */
