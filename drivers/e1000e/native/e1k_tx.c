/*
 * e1k_tx.c - the transmit ring (82574 datasheet 7.2: transmit functionality).
 *
 * Software writes legacy descriptors (7.2.10.1) at TDT and advances TDT; hardware fetches
 * from TDH, sends, and with CMD.RS set writes STATUS.DD back (7.2.10.1.2).  The ring is
 * full when advancing TDT would make it equal TDH (10.2.6 TDT).  Each descriptor owns a
 * fixed buffer slot; a burst copies the caller's frames into the slots (the caller keeps
 * its memory), then writes TDT once for the batch.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "e1k.h"

#define API(a) ((const struct udriver_api *)(a))
#define DEV(d) ((struct udriver_device *)(d))

int e1k_tx_init(struct e1k_ring *r)
{
    struct e1k_tx_desc *d;
    uint32_t i;

    if (!r || !r->desc || !r->bufs || r->count < 8 || r->count % 8 || r->buf_size < 64)
        return -EINVAL;
    d = r->desc;
    for (i = 0; i < r->count; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].addr = r->bufs_iova + (uint64_t)i * r->buf_size;
    }
    r->next = r->clean = r->held = 0;
    return 0;
}

/* Advance `clean` over descriptors the hardware reports done; returns how many. */
int e1k_tx_reap(struct e1k_ring *r)
{
    struct e1k_tx_desc *d = r->desc;
    int n = 0;

    while (r->clean != r->next &&
           (*(volatile uint8_t *)&d[r->clean].status & E1K_TXD_STAT_DD)) {
        d[r->clean].status = 0;
        r->clean = (r->clean + 1) % r->count;
        n++;
    }
    return n;
}

int e1k_tx_burst(uintptr_t api, uintptr_t dev, struct e1k_ring *r, const struct e1k_pkt *pkts,
                 uint32_t n)
{
    struct e1k_tx_desc *d;
    uint32_t i, used, room;

    if (!r || !r->desc || (!pkts && n))
        return -EINVAL;
    for (i = 0; i < n; i++) /* check the whole batch before queuing any of it */
        if (!pkts[i].data || pkts[i].len < 14 || pkts[i].len > r->buf_size)
            return -EMSGSIZE;
    e1k_tx_reap(r);
    used = (r->next + r->count - r->clean) % r->count;
    room = r->count - 1 - used;
    if (n > room) {
        r->full += n - room;
        n = room;
    }
    if (!n)
        return 0;
    d = r->desc;
    for (i = 0; i < n; i++) {
        struct e1k_tx_desc *t = &d[r->next];

        memcpy(r->bufs + (uint64_t)r->next * r->buf_size, pkts[i].data, pkts[i].len);
        t->addr = r->bufs_iova + (uint64_t)r->next * r->buf_size;
        t->length = (uint16_t)pkts[i].len;
        t->cso = t->css = 0;
        t->special = 0;
        t->status = 0;
        /* 7.2.10.1.1: end of packet, insert the FCS, report status (DD write-back). */
        t->cmd = E1K_TXD_CMD_EOP | E1K_TXD_CMD_IFCS | E1K_TXD_CMD_RS;
        r->bytes += pkts[i].len;
        r->next = (r->next + 1) % r->count;
    }
    r->packets += n;
    atomic_thread_fence(memory_order_release); /* descriptors and buffers before TDT */
    {
        int rc = API(api)->bar_write32(DEV(dev), 0, E1K_TDT, r->next);

        if (rc < 0)
            return rc;
    }
    return (int)n;
}
