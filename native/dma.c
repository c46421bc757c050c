/*
 * dma.c - DMA buffers and the IOVA allocator.
 *
 * A buffer is anonymous, page-aligned, zeroed memory.  Mapping it pins the pages and
 * installs an IOMMU translation (VFIO_IOMMU_MAP_DMA via the backend) at an IOVA that
 * lies (1) inside one of the IOMMU's valid ranges (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
 * and (2) at or below the device's DMA mask.  IOVA 0 is never handed out, so a
 * zero "address" in a descriptor is always a bug the IOMMU catches.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ud_internal.h"

static uint64_t align_up(uint64_t v, uint64_t a, int *overflow)
{
    uint64_t r = (v + a - 1) & ~(a - 1);
    if (r < v)
        *overflow = 1;
    return r;
}

int ud_iova_reserve(struct udriver_device *dev, uint64_t size, uint64_t mask, uint64_t *iova)
{
    for (uint32_t i = 0; i < dev->nranges; i++) {
        int ovf = 0;
        uint64_t lo = dev->ranges[i].start > dev->pgsize ? dev->ranges[i].start : dev->pgsize;
        uint64_t hi = dev->ranges[i].end < mask ? dev->ranges[i].end : mask;
        uint64_t cand = align_up(lo, dev->pgsize, &ovf);
        struct ud_mapping **link = &dev->mappings;
        for (; *link && !ovf; link = &(*link)->next) {
            struct ud_mapping *m = *link;
            if (m->iova + m->size <= cand)
                continue;            /* wholly below the candidate */
            if (m->iova >= cand && m->iova - cand >= size)
                break;               /* the gap before m fits */
            cand = align_up(m->iova + m->size, dev->pgsize, &ovf);
        }
        if (ovf || cand > hi || hi - cand < size - 1)
            continue;
        struct ud_mapping *node = malloc(sizeof(*node));
        if (!node)
            return -ENOMEM;
        node->iova = cand;
        node->size = size;
        node->next = *link;
        *link = node;
        *iova = cand;
        return 0;
    }
    return -ENOSPC;
}

void ud_iova_release(struct udriver_device *dev, uint64_t iova)
{
    for (struct ud_mapping **link = &dev->mappings; *link; link = &(*link)->next) {
        if ((*link)->iova == iova) {
            struct ud_mapping *m = *link;
            *link = m->next;
            free(m);
            return;
        }
    }
}

void ud_dma_unmap_all(struct udriver_device *dev)
{
    while (dev->mappings) {
        struct ud_mapping *m = dev->mappings;
        if (dev->container_fd >= 0)
            (void)dev->backend->unmap_dma(dev, m->iova, m->size);
        dev->mappings = m->next;
        free(m);
    }
}

int ud_api_dma_alloc(struct udriver_device *dev, uint64_t size, struct udriver_dma *dma)
{
    int ovf = 0;
    if (!dev || !dma || size == 0)
        return -EINVAL;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t gran = dev->pgsize > page ? dev->pgsize : page;
    uint64_t len = align_up(size, gran, &ovf);
    if (ovf || len > (uint64_t)SIZE_MAX / 2)
        return -E2BIG;
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    dma->vaddr = p;
    dma->size = len;
    dma->iova = 0;
    dma->mapped = 0;
    dma->reserved = 0;
    return 0;
}

int ud_api_dma_map(struct udriver_device *dev, struct udriver_dma *dma, uint64_t dma_mask)
{
    if (!dev || !dma || !dma->vaddr || dma->size == 0)
        return -EINVAL;
    if (dma->mapped)
        return -EALREADY;
    if (dma_mask < dev->pgsize || dma->size - 1 > dma_mask)
        return -E2BIG; /* can never fit below the mask */
    uint64_t iova;
    int ret = ud_iova_reserve(dev, dma->size, dma_mask, &iova);
    if (ret < 0)
        return ret;
    if ((ret = dev->backend->map_dma(dev, dma->vaddr, iova, dma->size)) < 0) {
        ud_iova_release(dev, iova);
        return ret;
    }
    dma->iova = iova;
    dma->mapped = 1;
    return 0;
}

int ud_api_dma_unmap(struct udriver_device *dev, struct udriver_dma *dma)
{
    if (!dev || !dma || !dma->mapped)
        return -EINVAL;
    int ret = dev->backend->unmap_dma(dev, dma->iova, dma->size);
    if (ret < 0)
        return ret;
    ud_iova_release(dev, dma->iova);
    dma->mapped = 0;
    dma->iova = 0;
    return 0;
}

/* With dev == NULL (device already closed, which unmapped every IOVA) only the memory
 * is released. */
int ud_api_dma_free(struct udriver_device *dev, struct udriver_dma *dma)
{
    if (!dma || !dma->vaddr)
        return -EINVAL;
    if (dev && dma->mapped) {
        int ret = ud_api_dma_unmap(dev, dma);
        if (ret < 0)
            return ret; /* never free memory the device may still reach */
    }
    munmap(dma->vaddr, (size_t)dma->size);
    dma->vaddr = NULL;
    dma->mapped = 0;
    dma->size = 0;
    return 0;
}
