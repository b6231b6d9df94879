/* Notify-mode channels, guest side (guests/include/keusim/notify.h). */
#include <keusim/notify.h>

// ks_is_notify: 1 if our endpoint on channel ch with role is in notify mode.
int ks_is_notify(uint32_t ch, uint32_t role)
{
    const struct info_chan *e = ks_endpoint(ks_find_endpoint(ch, role));
    return e && e->mode == CHAN_NOTIFY;
}

// ks_notifier_open: n for channel ch; 0, or -1 unless we produce notify-mode ch.
int ks_notifier_open(struct ks_notifier *n, uint32_t ch)
{
    const struct info_chan *e = ks_endpoint(ks_find_endpoint(ch, EP_PRODUCER));
    if (!e || e->mode != CHAN_NOTIFY)
        return -1;
    n->channel = ch;
    n->verified = e->verified;
    n->seq = 0;
    n->key = e->verified ? e->key : 0;
    return 0;
}

// ks_desc_make: d = {ch, offset, length, flags, seq}, tagged under key (0: untagged).
void ks_desc_make(struct notify_desc *d, uint32_t ch, uint32_t offset, uint32_t length,
                  uint32_t flags, uint64_t seq, const uint8_t *key)
{
    d->channel = ch;
    d->offset = offset;
    d->length = length;
    d->flags = flags;
    d->seq = seq;
    d->tag = key ? desc_tag(key, d) : 0;
}

// ks_notify_send: notify [offset, offset+length) with the next sequence number.
int64_t ks_notify_send(struct ks_notifier *n, uint32_t offset, uint32_t length, uint32_t flags)
{
    struct notify_desc d;
    ks_desc_make(&d, n->channel, offset, length, flags, ++n->seq, n->key);
    return ks_notify(&d);
}

// ks_notify_record: notify the record (header + payload) that ep just committed.
int64_t ks_notify_record(struct ks_notifier *n, const struct ring_ep *ep, uint32_t len)
{
    return ks_notify_send(n, ks_record_pos(ep, len), RING_HDR_SIZE + len, 0);
}

// ks_send_notified: send buf (yield while full), then notify it.
int ks_send_notified(struct ring_ep *ep, struct ks_notifier *n, const void *buf, uint32_t len)
{
    int r;
    while ((r = ring_send(ep, buf, len)) == RING_EAGAIN)
        ks_yield();
    if (r != 0)
        return r;
    return (int)ks_notify_record(n, ep, len);
}

// ks_recv_notified: receive one message, waiting for notifications while empty.
int ks_recv_notified(struct ring_ep *ep, uint32_t ch, void *buf, uint32_t maxlen,
                     uint32_t *len, uint64_t *waits)
{
    for (;;) {
        int r = ring_recv(ep, buf, maxlen, len);
        if (r != RING_EAGAIN)
            return r;
        int64_t w = ks_wait(ch);
        if (w == KS_EPIPE) {
            r = ring_recv(ep, buf, maxlen, len); /* what it published before it went */
            return r == RING_EAGAIN ? KS_ENOTIFY_PEER : r;
        }
        if (w != 0)
            return KS_ENOTIFY_PERM;
        if (waits)
            (*waits)++;
    }
}
