/*
 * Notifications: the one system call left on a notify-mode channel's data path
 * (docs/notify.md, "The notify path"). Poll-mode channels never come here.
 *
 * notify(desc): the producer says "I published [offset, offset+length)". The
 * kernel copies the 32-byte descriptor in once and checks, on that copy only:
 *   1. capability  the caller is the producer of set-up channel desc.channel
 *   2. tag         verified channels: SipHash-2-4 under the channel key
 *   3. sequence    desc.seq > the last seq accepted on this channel
 *   4. window      flags == 0, and the range lies in the last `capacity` bytes
 *                  published (free-running coordinates, see in_window)
 * Any failure logs KLOG_NOTIFY, counts it in chantab[ch].rejected[kind] and
 * kills the caller. Success counts one pending notification and wakes the
 * consumer (an IPI if it sleeps on another core).
 *
 * wait(ch): the consumer takes one pending notification, sleeping until there
 * is one; it returns EPIPE once the producer is dead and nothing is pending.
 *
 * Everything runs under the big kernel lock (syscall() holds it), so pending,
 * accepted and the sequence numbers need no further locking.
 */
#include "types.h"
#include "memlayout.h"
#include "bootinfo.h"
#include "syscall.h"
#include "klog.h"
#include "arch.h"
#include "arch_types.h"
#include "proc.h"
#include "channel.h"
#include "descriptor.h"
#include "defs.h"

#define NOCHAN ((uint64_t)-1) /* KLOG_NOTIFY channel when the descriptor was unreadable */

// chan_of: channel ch if it exists and was set up, else 0.
static struct channel *chan_of(uint64_t ch)
{
    if (ch >= (uint64_t)nchan || !chantab[ch].ok)
        return 0;
    return &chantab[ch];
}

// notify_exit: p is exiting or killed; wake every consumer waiting on a channel
// that p produces, so their wait() sees that the producer is gone (EPIPE).
void notify_exit(struct proc *p)
{
    for (int i = 0; i < nchan; i++)
        if (chantab[i].ok && chantab[i].producer == p->pid - 1)
            wakeup(&chantab[i]);
}

// reject: log and count a refused notification on ch, then kill the caller.
// addr goes into the fault record (the channel, or the descriptor address).
static _Noreturn void reject(uint32_t kind, uint64_t ch, uint64_t addr)
{
    struct proc *p = myproc();
    klog(KLOG_NOTIFY, (uint32_t)p->pid, ch, kind, 0);
    if (ch < (uint64_t)nchan)
        chantab[ch].rejected[kind]++;
    proc_kill(kind, addr, arch_tf_pc(p->tf));
}

// notify_tag_ok: 1 if d carries c's tag. Not inlined, so that the run report's
// per-function attribution shows the tag check apart from the routing.
static __attribute__((noinline)) int notify_tag_ok(const struct channel *c,
                                                   const struct notify_desc *d)
{
    return desc_tag_ok(c->key, d);
}

// in_window: 1 if d names published ring bytes. In free-running byte
// coordinates (the ring's head/tail indices, mod 2^32), [offset, offset+length)
// must lie in [head - capacity, head], i.e. among the last `capacity` bytes the
// producer published, and must not straddle the end of the data area. Head is
// read once from the ring's head page through the direct map; tail is not read
// (the consumer writes it: it could race with or be forged against the sender).
static int in_window(const struct channel *c, const struct notify_desc *d)
{
    volatile uint32_t *hp = (volatile uint32_t *)P2V(c->head_pa);
    uint32_t head = *hp;
    uint32_t back = head - d->offset; /* bytes from offset up to head */
    uint32_t pos = d->offset & (c->capacity - 1);
    return d->flags == 0 && d->length <= c->capacity && back <= c->capacity &&
           d->length <= back && pos + d->length <= c->capacity;
}

// sys_notify: check the descriptor at user address desc_va and route it to the
// consumer. Returns 0, or EPERM for a poll-mode channel; kills on any bad descriptor.
int64_t sys_notify(uint64_t desc_va)
{
    struct proc *p = myproc();
    struct notify_desc d; /* the kernel's copy: checked and used, never re-read */
    if (copyin(p->root, &d, desc_va, sizeof(d)) != 0)
        reject(FK_BAD_POINTER, NOCHAN, desc_va);
    struct channel *c = chan_of(d.channel);
    if (!c || c->producer != p->pid - 1)
        reject(FK_NO_CAPABILITY, d.channel, d.channel);
    if (c->mode != CHAN_NOTIFY)
        return EPERM;
    if (c->verified && !notify_tag_ok(c, &d))
        reject(FK_BAD_TAG, d.channel, d.channel);
    if (d.seq <= p->notify_seq[d.channel])
        reject(FK_REPLAY, d.channel, d.channel);
    if (!in_window(c, &d))
        reject(FK_BAD_DESCRIPTOR, d.channel, d.channel);
    p->notify_seq[d.channel] = d.seq;
    c->accepted++;
    c->pending++;
    wakeup(c);
    if (nic_owners)
        wakeup(&nic_chan[c->consumer]);  /* a NIC owner sleeps in SYS_NIC_WAIT, not on c */
    return 0;
}

// sys_wait: consume one pending notification on ch, sleeping until there is one.
// Returns 0; EPERM unless the caller consumes notify-mode channel ch; EPIPE if
// the producer is dead and nothing is pending.
int64_t sys_wait(uint64_t ch)
{
    struct proc *p = myproc();
    struct channel *c = chan_of(ch);
    if (!c || c->mode != CHAN_NOTIFY || c->consumer != p->pid - 1)
        return EPERM;
    while (c->pending == 0) {
        if (procs[c->producer].state == ZOMBIE)
            return EPIPE;
        sleep_on(c);
    }
    c->pending--;
    return 0;
}
