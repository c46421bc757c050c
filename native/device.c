/*
 * device.c - open and close a device, device info, reset.
 *
 * Order of operations in open (Documentation/driver-api/vfio.rst, "VFIO Usage
 * Example"): container fd -> group fd -> group viable? -> group to container ->
 * IOMMU type -> device fd -> VFIO_DEVICE_GET_INFO -> regions -> IOVA ranges.
 * Every failure unwinds what was done, so no fd outlives a failed open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ud_internal.h"

int ud_close_fd(int *fd)
{
    int ret = 0;
    if (*fd >= 0 && close(*fd) < 0)
        ret = -errno;
    *fd = -1;
    return ret;
}

/* "DDDD:BB:DD.F", lower-case hex, as the PCI core names devices in sysfs. */
static int valid_bdf(const char *bdf)
{
    static const char shape[] = "hhhh:hh:hh.f";
    if (!bdf || strlen(bdf) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        char c = bdf[i];
        switch (shape[i]) {
        case 'h':
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return 0;
            break;
        case 'f':
            if (c < '0' || c > '7')
                return 0;
            break;
        default:
            if (c != shape[i])
                return 0;
        }
    }
    return 1;
}

/* The device's IOMMU group number, from the sysfs link iommu_group -> .../groups/N. */
static int read_group(const char *bdf, uint32_t *group)
{
    char path[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
    if (access(path, F_OK) < 0)
        return -ENODEV;
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return -ENOENT; /* no IOMMU translates for this device: VFIO cannot take it */
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    char *end;
    unsigned long g = strtoul(base, &end, 10);
    if (*base == '\0' || *end != '\0' || g > UINT32_MAX)
        return -EPROTO;
    *group = (uint32_t)g;
    return 0;
}

static struct udriver_device *dev_new(void)
{
    struct udriver_device *dev = calloc(1, sizeof(*dev));
    if (dev) {
        dev->container_fd = dev->group_fd = dev->device_fd = -1;
        dev->backend = &ud_vfio_group_backend;
    }
    return dev;
}

static void dev_free(struct udriver_device *dev)
{
    ud_irq_disable_all(dev);
    ud_regions_unmap(dev);
    ud_dma_unmap_all(dev);
    ud_close_fd(&dev->device_fd);
    dev->backend->detach(dev);
    free(dev);
}

/* Everything after the container and group fds are known. */
static int dev_finish_open(struct udriver_device *dev, const char *bdf)
{
    int ret;
    if ((ret = dev->backend->attach(dev, bdf)) < 0)
        return ret;
    /* VFIO_DEVICE_GET_INFO: flags (VFIO_DEVICE_FLAGS_PCI, _RESET), region/IRQ counts. */
    dev->info.argsz = sizeof(dev->info);
    if (ioctl(dev->device_fd, VFIO_DEVICE_GET_INFO, &dev->info) < 0)
        return -errno;
    if (!(dev->info.flags & VFIO_DEVICE_FLAGS_PCI))
        return -ENOTSUP;
    if ((ret = ud_regions_load(dev)) < 0)
        return ret;
    return dev->backend->iova_info(dev);
}

int ud_api_open_fds(int container_fd, int group_fd, const char *bdf, struct udriver_device **out)
{
    struct udriver_device *dev = NULL;
    int ret;
    if (!out || !valid_bdf(bdf) || container_fd < 0 || group_fd < 0) {
        ret = -EINVAL;
        goto fail_fds;
    }
    *out = NULL;
    if (!(dev = dev_new())) {
        ret = -ENOMEM;
        goto fail_fds;
    }
    dev->container_fd = container_fd;
    dev->group_fd = group_fd;
    if (read_group(bdf, &dev->iommu_group) < 0)
        dev->iommu_group = UINT32_MAX; /* unknown without sysfs; not needed to operate */
    if ((ret = dev_finish_open(dev, bdf)) < 0) {
        dev_free(dev);
        return ret;
    }
    *out = dev;
    return 0;
fail_fds:
    /* The call owns the fds, also on failure: the caller must not close them again. */
    ud_close_fd(&container_fd);
    ud_close_fd(&group_fd);
    return ret;
}

int ud_api_open(const char *bdf, struct udriver_device **out)
{
    char path[64];
    uint32_t group;
    int ret;
    if (!out || !valid_bdf(bdf))
        return -EINVAL;
    *out = NULL;
    if ((ret = read_group(bdf, &group)) < 0)
        return ret;
    int container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (container < 0)
        return -errno;
    snprintf(path, sizeof(path), "/dev/vfio/%u", group);
    int grp = open(path, O_RDWR | O_CLOEXEC);
    if (grp < 0) {
        ret = -errno;
        close(container);
        return ret;
    }
    return ud_api_open_fds(container, grp, bdf, out);
}

int ud_api_close(struct udriver_device *dev)
{
    if (!dev)
        return -EBADF;
    dev_free(dev);
    return 0;
}

int ud_api_device_info(struct udriver_device *dev, struct udriver_device_info *out)
{
    if (!dev || !out)
        return -EINVAL;
    out->flags = dev->info.flags;
    out->num_regions = dev->info.num_regions;
    out->num_irqs = dev->info.num_irqs;
    out->iommu_group = dev->iommu_group;
    return 0;
}

/* VFIO_DEVICE_RESET: only when the device advertises VFIO_DEVICE_FLAGS_RESET. */
int ud_api_reset(struct udriver_device *dev)
{
    if (!dev)
        return -EINVAL;
    if (!(dev->info.flags & VFIO_DEVICE_FLAGS_RESET))
        return -ENOTSUP;
    return ioctl(dev->device_fd, VFIO_DEVICE_RESET) < 0 ? -errno : 0;
}

int ud_api_device_fd(struct udriver_device *dev)
{
    return dev && dev->device_fd >= 0 ? dev->device_fd : -EBADF;
}
