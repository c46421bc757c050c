/*
 * e1k_tap.c - the kernel bridge's data path: frames between the NIC's rings and a TAP fd.
 *
 * A TAP device opened with IFF_TAP | IFF_NO_PI carries one Ethernet frame (no FCS) per
 * read(2) and write(2) (linux/if_tun.h, Documentation/networking/tuntap.rst).  Received
 * frames (RX ring) are written to the TAP: the kernel sees them arrive on the interface.
 * Frames the kernel sends on the interface are read from the TAP and queued on the TX ring
 * (the NIC adds the FCS, 7.2.10.1.1).  When neither side has work the loop sleeps in
 * poll(2) on the TAP, the RX vector's eventfd (IMS re-armed first, see e1k_wait.c) and a
 * stop fd; in polled mode it spins, with a 1 ms poll after 1000 idle turns so a polled
 * bridge does not starve the kernel on a single CPU.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e1k.h"

#define API(a) ((const struct udriver_api *)(a))
#define DEV(d) ((struct udriver_device *)(d))
#define TAP_BATCH 32

static int rx_to_tap(uintptr_t api, uintptr_t dev, struct e1k_ring *rx, int tap_fd,
                     struct e1k_tap_stats *st)
{
    struct e1k_pkt pkts[TAP_BATCH];
    int n = e1k_rx_burst(api, dev, rx, pkts, TAP_BATCH), rc;

    if (n <= 0)
        return n;
    for (int i = 0; i < n; i++) {
        if (write(tap_fd, pkts[i].data, pkts[i].len) == (ssize_t)pkts[i].len)
            st->to_tap++;
        else
            st->to_tap_drops++; /* the TAP's queue is full (EAGAIN) or it is down (EIO) */
    }
    rc = e1k_rx_release(api, dev, rx);
    return rc < 0 ? rc : n;
}

static int tap_to_tx(uintptr_t api, uintptr_t dev, struct e1k_ring *tx, int tap_fd,
                     uint8_t *bufs, struct e1k_tap_stats *st)
{
    struct e1k_pkt pkts[TAP_BATCH];
    uint32_t n = 0, sent = 0;
    int rc, spins;

    while (n < TAP_BATCH) {
        ssize_t len = read(tap_fd, bufs + (size_t)n * tx->buf_size, tx->buf_size);

        if (len < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            return -errno;
        }
        if (len < 14)
            continue; /* not an Ethernet frame */
        pkts[n].data = bufs + (size_t)n * tx->buf_size;
        pkts[n].len = (uint32_t)len;
        n++;
    }
    /* Queue the batch; when the ring is full, reap completions for a while, then drop. */
    for (spins = 0; sent < n && spins < 100000; spins++) {
        rc = e1k_tx_burst(api, dev, tx, pkts + sent, n - sent);
        if (rc < 0)
            return rc;
        sent += (uint32_t)rc;
    }
    st->from_tap += sent;
    st->from_tap_drops += n - sent;
    return (int)n;
}

int e1k_tap_pump(uintptr_t api, uintptr_t dev, struct e1k_ring *rx, struct e1k_ring *tx,
                 int tap_fd, int stop_fd, struct e1k_tap_stats *st)
{
    struct pollfd p[3];
    uint8_t *bufs;
    uint64_t idle = 0, count;
    int rc = 0, a, b;

    if (!rx || !tx || !st || tap_fd < 0 || stop_fd < 0)
        return -EINVAL;
    bufs = malloc((size_t)TAP_BATCH * tx->buf_size);
    if (!bufs)
        return -ENOMEM;
    for (;;) {
        a = rx_to_tap(api, dev, rx, tap_fd, st);
        b = a < 0 ? 0 : tap_to_tx(api, dev, tx, tap_fd, bufs, st);
        if (a < 0 || b < 0) {
            rc = a < 0 ? a : b;
            break;
        }
        st->loops++;
        if (a || b) {
            idle = 0;
            /* Busy (a flood, or a device that went away and reads all-ones): still see a
             * stop request every 64 turns, or remove() would wait for the flood to end. */
            if ((st->loops & 63) == 0) {
                struct pollfd s = {.fd = stop_fd, .events = POLLIN};
                if (poll(&s, 1, 0) > 0) {
                    rc = 0;
                    break; /* asked to stop */
                }
            }
            continue;
        }
        if (rx->irq_fd >= 0 &&
            (rc = API(api)->bar_write32(DEV(dev), 0, E1K_IMS, rx->ims)) < 0)
            break;
        p[0].fd = stop_fd;
        p[1].fd = tap_fd;
        p[2].fd = rx->irq_fd; /* -1 in polled mode: poll(2) ignores it */
        for (int i = 0; i < 3; i++) {
            p[i].events = POLLIN;
            p[i].revents = 0;
        }
        rc = poll(p, 3, rx->irq_fd >= 0 ? 1000 : (++idle > 1000 ? 1 : 0));
        if (rc < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        rc = 0;
        if (p[0].revents)
            break; /* asked to stop */
        if (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            rc = -EPIPE;
            break;
        }
        if (p[2].revents & POLLIN && read(rx->irq_fd, &count, sizeof count) == sizeof count)
            rx->wakeups++;
    }
    free(bufs);
    return rc;
}
