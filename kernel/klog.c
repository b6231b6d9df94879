/* The event log the host reads after the run (include/klog.h). */
#include "types.h"
#include "platform.h"
#include "memlayout.h"
#include "klog.h"
#include "defs.h"

static struct klog log;

/* Tell the machine where the log lives. */
void klog_init(void)
{
    log.n = 0;
    plat_write(PLAT_KLOG, V2P(&log));
}

/* Append one record; records past NKLOG are counted but dropped. */
void klog(uint32_t type, uint32_t pid, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t i = __atomic_fetch_add(&log.n, 1, __ATOMIC_RELAXED);
    if (i < NKLOG)
        log.rec[i] = (struct klog_rec){type, pid, a, b, c};
}
