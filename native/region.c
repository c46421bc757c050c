/*
 * region.c - region info, BAR mmap, bounds-checked BAR and config-space access.
 *
 * VFIO_DEVICE_GET_REGION_INFO (linux/vfio.h) gives each region's size, flags and its
 * offset in the device fd.  A BAR with VFIO_REGION_INFO_FLAG_MMAP is mmap()ed once
 * and accessed with volatile loads/stores of exactly the requested width; other
 * regions (config space, I/O BARs) go through pread/pwrite at that offset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ud_internal.h"

int ud_regions_load(struct udriver_device *dev)
{
    uint32_t n = dev->info.num_regions < UD_NUM_REGIONS ? dev->info.num_regions : UD_NUM_REGIONS;
    for (uint32_t i = 0; i < n; i++) {
        struct vfio_region_info ri = {.argsz = sizeof(ri), .index = i};
        if (ioctl(dev->device_fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0) {
            if (errno == EINVAL) /* e.g. VGA region on a non-VGA device */
                continue;
            return -errno;
        }
        dev->regions[i].info.index = i;
        dev->regions[i].info.flags = ri.flags & (UDRIVER_REGION_READ | UDRIVER_REGION_WRITE |
                                                 UDRIVER_REGION_MMAP);
        dev->regions[i].info.size = ri.size;
        dev->regions[i].offset = ri.offset;
    }
    return 0;
}

void ud_regions_unmap(struct udriver_device *dev)
{
    for (uint32_t i = 0; i < UD_NUM_REGIONS; i++) {
        struct ud_region *r = &dev->regions[i];
        if (r->map) {
            munmap(r->map, r->info.size);
            r->map = NULL;
        }
    }
}

int ud_api_region_info(struct udriver_device *dev, uint32_t index, struct udriver_region_info *out)
{
    if (!dev || !out || index >= UD_NUM_REGIONS || index >= dev->info.num_regions)
        return -EINVAL;
    *out = dev->regions[index].info;
    return 0;
}

static struct ud_region *bar(struct udriver_device *dev, uint32_t index)
{
    if (!dev || index > UDRIVER_REGION_BAR5 || index >= dev->info.num_regions)
        return NULL;
    return &dev->regions[index];
}

int ud_api_bar_map(struct udriver_device *dev, uint32_t index, void **addr, uint64_t *size)
{
    struct ud_region *r = bar(dev, index);
    if (!r || !addr || !size)
        return -EINVAL;
    if (r->info.size == 0)
        return -ENODEV; /* BAR not implemented by this device */
    if (!(r->info.flags & UDRIVER_REGION_MMAP))
        return -ENOTSUP;
    if (!r->map) {
        void *p = mmap(NULL, r->info.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev->device_fd,
                       (off_t)r->offset);
        if (p == MAP_FAILED)
            return -errno;
        r->map = p;
    }
    *addr = r->map;
    *size = r->info.size;
    return 0;
}

/* Validate (bar, off, width) and make sure the BAR is mapped if it can be. */
static int check(struct udriver_device *dev, uint32_t index, uint64_t off, uint64_t width,
                 struct ud_region **out)
{
    struct ud_region *r = bar(dev, index);
    if (!r)
        return -EINVAL;
    if (r->info.size == 0)
        return -ENODEV;
    if (off % width)
        return -EINVAL;      /* PCIe forbids accesses that cross their natural alignment */
    if (off > r->info.size || width > r->info.size - off)
        return -ERANGE;
    if (!r->map && (r->info.flags & UDRIVER_REGION_MMAP)) {
        void *a;
        uint64_t s;
        int ret = ud_api_bar_map(dev, index, &a, &s);
        if (ret < 0)
            return ret;
    }
    *out = r;
    return 0;
}

static int rw_fd(struct udriver_device *dev, struct ud_region *r, uint64_t off, void *buf,
                 size_t len, int write)
{
    ssize_t n = write ? pwrite(dev->device_fd, buf, len, (off_t)(r->offset + off))
                      : pread(dev->device_fd, buf, len, (off_t)(r->offset + off));
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EIO;
}

#define UD_BAR_RW(bits)                                                                        \
    int ud_api_bar_read##bits(struct udriver_device *dev, uint32_t i, uint64_t off,           \
                              uint##bits##_t *val)                                             \
    {                                                                                          \
        struct ud_region *r;                                                                   \
        int ret = val ? check(dev, i, off, bits / 8, &r) : -EINVAL;                           \
        if (ret < 0)                                                                           \
            return ret;                                                                        \
        if (r->map) {                                                                          \
            *val = *(volatile uint##bits##_t *)((char *)r->map + off);                        \
            return 0;                                                                          \
        }                                                                                      \
        return rw_fd(dev, r, off, val, bits / 8, 0);                                          \
    }                                                                                          \
    int ud_api_bar_write##bits(struct udriver_device *dev, uint32_t i, uint64_t off,          \
                               uint##bits##_t val)                                             \
    {                                                                                          \
        struct ud_region *r;                                                                   \
        int ret = check(dev, i, off, bits / 8, &r);                                           \
        if (ret < 0)                                                                           \
            return ret;                                                                        \
        if (r->map) {                                                                          \
            *(volatile uint##bits##_t *)((char *)r->map + off) = val;                         \
            return 0;                                                                          \
        }                                                                                      \
        return rw_fd(dev, r, off, &val, bits / 8, 1);                                         \
    }

UD_BAR_RW(8)
UD_BAR_RW(16)
UD_BAR_RW(32)
UD_BAR_RW(64)

/* Config space is region VFIO_PCI_CONFIG_REGION_INDEX, accessed through the fd only;
 * vfio-pci virtualises parts of it (BARs, MSI capability) for safety. */
static int config_rw(struct udriver_device *dev, uint64_t off, void *buf, size_t len, int write)
{
    if (!dev || (!buf && len))
        return -EINVAL;
    struct ud_region *r = &dev->regions[VFIO_PCI_CONFIG_REGION_INDEX];
    if (off > r->info.size || len > r->info.size - off)
        return -ERANGE;
    return len ? rw_fd(dev, r, off, buf, len, write) : 0;
}

int ud_api_config_read(struct udriver_device *dev, uint64_t off, void *buf, size_t len)
{
    return config_rw(dev, off, buf, len, 0);
}

int ud_api_config_write(struct udriver_device *dev, uint64_t off, const void *buf, size_t len)
{
    return config_rw(dev, off, (void *)(uintptr_t)buf, len, 1);
}
