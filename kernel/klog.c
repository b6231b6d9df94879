/* The event log (include/klog.h): records go to the machine's report device. */
#include "types.h"
#include "param.h"
#include "platform.h"
#include "memlayout.h"
#include "klog.h"
#include "proc.h"
#include "defs.h"

/* One staging record per core: a core writes its record, then hands it over. */
static struct klog_rec stage[MAXCPU];

/*
 * Hand one record to the machine. The device copies the 32 bytes at the
 * physical address written to PLAT_LOG before the store completes, so the
 * staging record can be reused at once.
 */
void klog(uint32_t type, uint32_t pid, uint64_t a, uint64_t b, uint64_t c)
{
    struct klog_rec *r = &stage[mycpu()->id];
    *r = (struct klog_rec){type, pid, a, b, c};
    plat_write(PLAT_LOG, V2P(r));
}
