/*
 * irq.c - interrupts onto eventfds with VFIO_DEVICE_SET_IRQS (linux/vfio.h).
 *
 * INTx is level-triggered: vfio-pci masks it when it fires (VFIO_IRQ_INFO_AUTOMASKED)
 * and the driver unmasks it with ACTION_UNMASK after servicing the device.  MSI and
 * MSI-X are edge-triggered and need no unmask.  Only one of INTx/MSI/MSI-X can be
 * enabled at a time; the kernel answers -EINVAL otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "ud_internal.h"

#define UD_MAX_VECTORS 2048 /* MSI-X table size limit, PCI Local Bus spec 6.8.2 */

int ud_api_irq_info(struct udriver_device *dev, uint32_t index, struct udriver_irq_info *out)
{
    if (!dev || !out || index >= dev->info.num_irqs)
        return -EINVAL;
    /* VFIO_DEVICE_GET_IRQ_INFO: count is 0 when the device lacks this IRQ type. */
    struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = index};
    if (ioctl(dev->device_fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) < 0)
        return -errno;
    out->index = index;
    out->flags = ii.flags & (UDRIVER_IRQ_EVENTFD | UDRIVER_IRQ_MASKABLE |
                             UDRIVER_IRQ_AUTOMASKED | UDRIVER_IRQ_NORESIZE);
    out->count = ii.count;
    out->reserved = 0;
    return 0;
}

static int set_irqs(struct udriver_device *dev, uint32_t index, uint32_t flags, uint32_t start,
                    uint32_t count, const int32_t *fds)
{
    size_t data = (flags & VFIO_IRQ_SET_DATA_EVENTFD) ? count * sizeof(int32_t) : 0;
    struct vfio_irq_set *set = calloc(1, sizeof(*set) + data);
    if (!set)
        return -ENOMEM;
    set->argsz = (uint32_t)(sizeof(*set) + data);
    set->flags = flags;
    set->index = index;
    set->start = start;
    set->count = count;
    if (data)
        memcpy(set->data, fds, data);
    int ret = ioctl(dev->device_fd, VFIO_DEVICE_SET_IRQS, set) < 0 ? -errno : 0;
    free(set);
    return ret;
}

int ud_api_irq_enable(struct udriver_device *dev, uint32_t index, uint32_t start, uint32_t count,
                      const int32_t *fds)
{
    struct udriver_irq_info info;
    if (!dev || !fds || count == 0 || count > UD_MAX_VECTORS)
        return -EINVAL;
    int ret = ud_api_irq_info(dev, index, &info);
    if (ret < 0)
        return ret;
    if (!(info.flags & UDRIVER_IRQ_EVENTFD) || start >= info.count || count > info.count - start)
        return -ERANGE;
    /* DATA_EVENTFD | ACTION_TRIGGER: signal fds[i] when vector start+i fires; -1 unsets. */
    ret = set_irqs(dev, index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, start,
                   count, fds);
    if (ret == 0 && index < 32)
        dev->irq_enabled |= 1u << index;
    return ret;
}

int ud_api_irq_unmask(struct udriver_device *dev, uint32_t index, uint32_t sub)
{
    if (!dev || index >= dev->info.num_irqs)
        return -EINVAL;
    /* DATA_NONE | ACTION_UNMASK on one sub-index. */
    return set_irqs(dev, index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, sub, 1, NULL);
}

int ud_api_irq_disable(struct udriver_device *dev, uint32_t index)
{
    if (!dev || index >= dev->info.num_irqs)
        return -EINVAL;
    /* DATA_NONE | ACTION_TRIGGER with count 0 tears down every trigger of `index`. */
    int ret = set_irqs(dev, index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0,
                       NULL);
    if (ret == 0 && index < 32)
        dev->irq_enabled &= ~(1u << index);
    return ret;
}

void ud_irq_disable_all(struct udriver_device *dev)
{
    for (uint32_t i = 0; i < 32 && dev->irq_enabled; i++)
        if (dev->irq_enabled & (1u << i))
            (void)ud_api_irq_disable(dev, i);
    dev->irq_enabled = 0;
}
