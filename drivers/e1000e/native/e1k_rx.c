/*
 * e1k_rx.c - the receive ring (82574 datasheet 7.1: receive functionality).
 *
 * Software owns the descriptors from RDT + 1 up to RDH - 1; hardware writes a received
 * frame into the buffer of the descriptor at RDH, sets STATUS.DD (and EOP on the last
 * descriptor of the frame) and advances RDH (7.1.5 "Receive Descriptor Queue
 * Structure").  Software hands descriptors back by advancing RDT (10.2.5 RDT).
 * A burst hands out pointers into the ring buffers; they stay valid until
 * e1k_rx_release(), which re-arms those descriptors and writes RDT once for the batch.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "e1k.h"

#define API(a) ((const struct udriver_api *)(a))
#define DEV(d) ((struct udriver_device *)(d))

int e1k_check_api(uintptr_t api)
{
    return UDRIVER_API_COMPATIBLE(API(api)) ? 0 : -EPROTO;
}

static int ring_ok(const struct e1k_ring *r)
{
    /* 10.2.5 RDLEN / 10.2.6 TDLEN: the ring length is a multiple of 128 bytes. */
    return r && r->desc && r->bufs && r->count >= 8 && r->count % 8 == 0 &&
           r->count <= 65536 && r->buf_size >= 256;
}

int e1k_rx_init(uintptr_t api, uintptr_t dev, struct e1k_ring *r)
{
    struct e1k_rx_desc *d;
    uint32_t i;

    if (!ring_ok(r))
        return -EINVAL;
    d = r->desc;
    for (i = 0; i < r->count; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].addr = r->bufs_iova + (uint64_t)i * r->buf_size;
    }
    r->next = r->clean = r->held = 0;
    atomic_thread_fence(memory_order_release);
    /* 4.6.6 receive initialization: RDH = 0, RDT = count - 1 gives the hardware every
     * descriptor but one (head == tail means "ring empty" to the hardware). */
    return API(api)->bar_write32(DEV(dev), 0, E1K_RDT, r->count - 1);
}

int e1k_rx_burst(uintptr_t api, uintptr_t dev, struct e1k_ring *r, struct e1k_pkt *pkts,
                 uint32_t max)
{
    struct e1k_rx_desc *d;
    uint32_t n = 0, idx;

    (void)api;
    (void)dev;
    if (!ring_ok(r) || (!pkts && max))
        return -EINVAL;
    if (r->held)
        return -EBUSY; /* the previous burst was not released */
    d = r->desc;
    if (max > r->count - 1)
        max = r->count - 1;
    while (n < max) {
        idx = (r->next + n) % r->count;
        if (!(*(volatile uint8_t *)&d[idx].status & E1K_RXD_STAT_DD))
            break;
        /* Read the rest of the descriptor and the buffer only after seeing DD. */
        atomic_thread_fence(memory_order_acquire);
        pkts[n].data = r->bufs + (uint64_t)idx * r->buf_size;
        pkts[n].len = d[idx].length;
        pkts[n].reserved = d[idx].errors;
        r->bytes += d[idx].length;
        n++;
    }
    r->held = n;
    r->packets += n;
    return (int)n;
}

int e1k_rx_release(uintptr_t api, uintptr_t dev, struct e1k_ring *r)
{
    struct e1k_rx_desc *d;
    uint32_t i, idx;

    if (!ring_ok(r))
        return -EINVAL;
    if (!r->held)
        return 0;
    d = r->desc;
    for (i = 0; i < r->held; i++) {
        idx = (r->next + i) % r->count;
        d[idx].status = 0;
        d[idx].length = 0;
        d[idx].addr = r->bufs_iova + (uint64_t)idx * r->buf_size;
    }
    r->next = (r->next + r->held) % r->count;
    r->held = 0;
    atomic_thread_fence(memory_order_release); /* descriptors before the tail write */
    return API(api)->bar_write32(DEV(dev), 0, E1K_RDT, (r->next + r->count - 1) % r->count);
}
