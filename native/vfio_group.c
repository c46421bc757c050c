/*
 * vfio_group.c - the container/group VFIO backend (linux/vfio.h, "VFIO User API",
 * Documentation/driver-api/vfio.rst "Groups, Devices, and IOMMUs").  Works on every
 * kernel since 3.6.  Only this file and device.c/region.c/irq.c issue VFIO ioctls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "ud_internal.h"

static int ud_ioctl(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

/* VFIO_SET_IOMMU (linux/vfio.h): type1v2 if offered, else type1.  A container handed
 * over by a privileged parent may already have its IOMMU set; then the kernel says
 * -EINVAL and VFIO_IOMMU_GET_INFO works, which we accept. */
static int set_iommu(int container)
{
    struct vfio_iommu_type1_info probe = {.argsz = sizeof(probe)};
    long type = VFIO_TYPE1v2_IOMMU;

    if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
        if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) <= 0)
            return -ENOTSUP;
        type = VFIO_TYPE1_IOMMU;
    }
    if (ioctl(container, VFIO_SET_IOMMU, type) == 0)
        return 0;
    int err = -errno;
    if (err == -EINVAL && ud_ioctl(container, VFIO_IOMMU_GET_INFO, &probe) == 0)
        return 0;
    return err;
}

static int group_attach(struct udriver_device *dev, const char *bdf)
{
    struct vfio_group_status status = {.argsz = sizeof(status)};
    int ret;

    /* VFIO_GET_API_VERSION: must be VFIO_API_VERSION (0). */
    if (ioctl(dev->container_fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
        return -EPROTO;
    /* VFIO_GROUP_GET_STATUS: the group is viable only when every device in it is
     * bound to a VFIO driver (or to none); otherwise the kernel refuses the device. */
    if ((ret = ud_ioctl(dev->group_fd, VFIO_GROUP_GET_STATUS, &status)) < 0)
        return ret;
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
        return -EBUSY;
    /* VFIO_GROUP_SET_CONTAINER, unless a parent already did. */
    if (!(status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET)) {
        if ((ret = ud_ioctl(dev->group_fd, VFIO_GROUP_SET_CONTAINER, &dev->container_fd)) < 0)
            return ret;
    }
    if ((ret = set_iommu(dev->container_fd)) < 0)
        return ret;
    /* VFIO_GROUP_GET_DEVICE_FD takes the device name, returns a new fd. */
    int fd = ioctl(dev->group_fd, VFIO_GROUP_GET_DEVICE_FD, bdf);
    if (fd < 0)
        return -errno;
    dev->device_fd = fd;
    return 0;
}

/* VFIO_IOMMU_GET_INFO with its capability chain (VFIO_IOMMU_INFO_CAPS): the
 * VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE capability lists the IOVA ranges the IOMMU
 * accepts (reserved regions such as the MSI window are holes between them). */
static int group_iova_info(struct udriver_device *dev)
{
    struct vfio_iommu_type1_info head = {.argsz = sizeof(head)};
    int ret = ud_ioctl(dev->container_fd, VFIO_IOMMU_GET_INFO, &head);
    if (ret < 0)
        return ret;
    dev->pgsize = 4096;
    if ((head.flags & VFIO_IOMMU_INFO_PGSIZES) && head.iova_pgsizes)
        dev->pgsize = head.iova_pgsizes & (~head.iova_pgsizes + 1); /* lowest bit */
    dev->nranges = 1;
    dev->ranges[0].start = 0;
    dev->ranges[0].end = UINT64_MAX;
    if (!(head.flags & VFIO_IOMMU_INFO_CAPS) || head.argsz <= sizeof(head))
        return 0;

    uint32_t argsz = head.argsz;
    struct vfio_iommu_type1_info *info = calloc(1, argsz);
    if (!info)
        return -ENOMEM;
    info->argsz = argsz;
    if ((ret = ud_ioctl(dev->container_fd, VFIO_IOMMU_GET_INFO, info)) < 0)
        goto out;
    for (uint32_t off = info->cap_offset; off && off + sizeof(struct vfio_info_cap_header) <= argsz;) {
        struct vfio_info_cap_header *hdr = (void *)((char *)info + off);
        if (hdr->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE &&
            off + sizeof(struct vfio_iommu_type1_info_cap_iova_range) <= argsz) {
            struct vfio_iommu_type1_info_cap_iova_range *cap = (void *)hdr;
            uint32_t n = cap->nr_iovas;
            size_t end = off + sizeof(*cap) + (size_t)n * sizeof(struct vfio_iova_range);
            if (end > argsz) {
                ret = -EPROTO;
                goto out;
            }
            if (n > UD_MAX_IOVA_RANGES)
                n = UD_MAX_IOVA_RANGES;
            for (uint32_t i = 0; i < n; i++) {
                dev->ranges[i].start = cap->iova_ranges[i].start;
                dev->ranges[i].end = cap->iova_ranges[i].end;
            }
            dev->nranges = n;
            break;
        }
        if (hdr->next <= off) /* the chain only moves forward; stop on a loop */
            break;
        off = hdr->next;
    }
out:
    free(info);
    return ret;
}

/* VFIO_IOMMU_MAP_DMA: map [vaddr, vaddr+size) at iova, device may read and write. */
static int group_map_dma(struct udriver_device *dev, void *vaddr, uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        .vaddr = (uint64_t)(uintptr_t)vaddr,
        .iova = iova,
        .size = size,
    };
    return ud_ioctl(dev->container_fd, VFIO_IOMMU_MAP_DMA, &map);
}

/* VFIO_IOMMU_UNMAP_DMA: after it returns the IOMMU no longer translates iova. */
static int group_unmap_dma(struct udriver_device *dev, uint64_t iova, uint64_t size)
{
    struct vfio_iommu_type1_dma_unmap unmap = {
        .argsz = sizeof(unmap), .flags = 0, .iova = iova, .size = size,
    };
    int ret = ud_ioctl(dev->container_fd, VFIO_IOMMU_UNMAP_DMA, &unmap);
    if (ret == 0 && unmap.size != size)
        return -EIO;
    return ret;
}

static void group_detach(struct udriver_device *dev)
{
    /* Closing the group fd detaches it from the container (VFIO_GROUP_UNSET_CONTAINER
     * is implied); closing the container drops every remaining IOMMU mapping. */
    ud_close_fd(&dev->group_fd);
    ud_close_fd(&dev->container_fd);
}

const struct ud_backend ud_vfio_group_backend = {
    .name = "vfio-group",
    .attach = group_attach,
    .iova_info = group_iova_info,
    .map_dma = group_map_dma,
    .unmap_dma = group_unmap_dma,
    .detach = group_detach,
};
