/* Notifications: placeholder until the SipHash path lands (see docs/notify.md). */
#include "types.h"
#include "syscall.h"
#include "defs.h"

int64_t sys_notify(uint64_t desc_va)
{
    (void)desc_va;
    return ENOSYS;
}

int64_t sys_wait(uint64_t ch)
{
    (void)ch;
    return ENOSYS;
}
