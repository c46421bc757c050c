/*
 * e1k_wait.c - sleeping until a ring's MSI-X vector fires (82574 datasheet 7.4.2, MSI-X).
 *
 * The control path maps ICR.RXQ0 and ICR.TXQ0 to their own vectors through IVAR
 * (10.2.4.9) and lets EIAC auto-clear those causes when the vector is sent (10.2.4.8).
 * Before sleeping, the ring's cause is set again in IMS (10.2.4.4): a cause that arrived
 * while it was masked stays in ICR and is signalled as soon as IMS unmasks it, so a frame
 * that arrives between the last empty burst and the sleep is never missed.  EITR
 * (10.2.4.11) bounds how often a vector fires: that is the interrupt moderation.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

#include "e1k.h"

#define API(a) ((const struct udriver_api *)(a))
#define DEV(d) ((struct udriver_device *)(d))

/* Returns 1 when the vector fired, 0 on timeout or in polled mode, -errno on error. */
int e1k_wait(uintptr_t api, uintptr_t dev, struct e1k_ring *r, int timeout_ms)
{
    struct pollfd p;
    uint64_t count;
    int rc;

    if (!r)
        return -EINVAL;
    if (r->irq_fd < 0)
        return 0; /* polled mode: the caller spins */
    rc = API(api)->bar_write32(DEV(dev), 0, E1K_IMS, r->ims);
    if (rc < 0)
        return rc;
    p.fd = r->irq_fd;
    p.events = POLLIN;
    p.revents = 0;
    rc = poll(&p, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    if (rc == 0)
        return 0;
    if (read(r->irq_fd, &count, sizeof count) != (ssize_t)sizeof count)
        return errno == EAGAIN ? 0 : -errno;
    r->wakeups++;
    return 1;
}
