/*
 * ud_internal.h - what the runtime's C files share.  Not part of the ABI.
 *
 * The VFIO backend sits behind `struct ud_backend`: the container/group backend
 * (vfio_group.c, linux/vfio.h "VFIO_GROUP_*", "VFIO_IOMMU_*") is the only one shipped.
 * An iommufd + /dev/vfio/devices/vfioN backend would implement the same five
 * operations; it is deliberately absent because Debian's kernels cannot test it.
 */
#ifndef UD_INTERNAL_H
#define UD_INTERNAL_H

#include <stdint.h>
#include <linux/vfio.h>

#include "udriver.h"

#define UD_MAX_IOVA_RANGES 16
#define UD_NUM_REGIONS VFIO_PCI_NUM_REGIONS

struct ud_iova_range {
    uint64_t start, end; /* inclusive, as struct vfio_iova_range */
};

/* One IOVA allocation; a singly linked list sorted by iova. */
struct ud_mapping {
    uint64_t iova, size;
    struct ud_mapping *next;
};

struct ud_region {
    struct udriver_region_info info;
    uint64_t offset;     /* offset of the region in the device fd */
    void *map;           /* mmap of a BAR, or NULL */
};

struct ud_backend {
    const char *name;
    /* Attach group to container (if needed) and get the device fd. */
    int (*attach)(struct udriver_device *dev, const char *bdf);
    /* Fill dev->ranges / dev->nranges / dev->pgsize. */
    int (*iova_info)(struct udriver_device *dev);
    int (*map_dma)(struct udriver_device *dev, void *vaddr, uint64_t iova, uint64_t size);
    int (*unmap_dma)(struct udriver_device *dev, uint64_t iova, uint64_t size);
    /* Close backend fds (device fd is closed by the caller). */
    void (*detach)(struct udriver_device *dev);
};

struct udriver_device {
    const struct ud_backend *backend;
    int container_fd, group_fd, device_fd;
    uint32_t iommu_group;
    struct vfio_device_info info;
    struct ud_region regions[UD_NUM_REGIONS];
    struct ud_iova_range ranges[UD_MAX_IOVA_RANGES];
    uint32_t nranges;
    uint64_t pgsize;     /* smallest IOMMU page size */
    struct ud_mapping *mappings;
    uint32_t irq_enabled; /* bit i: IRQ index i has triggers set */
};

extern const struct ud_backend ud_vfio_group_backend;

/* device.c */
int ud_close_fd(int *fd);
/* region.c */
int ud_regions_load(struct udriver_device *dev);
void ud_regions_unmap(struct udriver_device *dev);
/* dma.c */
int ud_iova_reserve(struct udriver_device *dev, uint64_t size, uint64_t mask, uint64_t *iova);
void ud_iova_release(struct udriver_device *dev, uint64_t iova);
void ud_dma_unmap_all(struct udriver_device *dev);
/* irq.c */
void ud_irq_disable_all(struct udriver_device *dev);

/* The udriver_api entries (api.c builds the table from these). */
int ud_api_open(const char *bdf, struct udriver_device **out);
int ud_api_open_fds(int container_fd, int group_fd, const char *bdf, struct udriver_device **out);
int ud_api_close(struct udriver_device *dev);
int ud_api_device_info(struct udriver_device *dev, struct udriver_device_info *out);
int ud_api_region_info(struct udriver_device *dev, uint32_t index, struct udriver_region_info *out);
int ud_api_irq_info(struct udriver_device *dev, uint32_t index, struct udriver_irq_info *out);
int ud_api_bar_map(struct udriver_device *dev, uint32_t index, void **addr, uint64_t *size);
int ud_api_bar_read8(struct udriver_device *dev, uint32_t i, uint64_t off, uint8_t *val);
int ud_api_bar_read16(struct udriver_device *dev, uint32_t i, uint64_t off, uint16_t *val);
int ud_api_bar_read32(struct udriver_device *dev, uint32_t i, uint64_t off, uint32_t *val);
int ud_api_bar_read64(struct udriver_device *dev, uint32_t i, uint64_t off, uint64_t *val);
int ud_api_bar_write8(struct udriver_device *dev, uint32_t i, uint64_t off, uint8_t val);
int ud_api_bar_write16(struct udriver_device *dev, uint32_t i, uint64_t off, uint16_t val);
int ud_api_bar_write32(struct udriver_device *dev, uint32_t i, uint64_t off, uint32_t val);
int ud_api_bar_write64(struct udriver_device *dev, uint32_t i, uint64_t off, uint64_t val);
int ud_api_config_read(struct udriver_device *dev, uint64_t off, void *buf, size_t len);
int ud_api_config_write(struct udriver_device *dev, uint64_t off, const void *buf, size_t len);
int ud_api_irq_enable(struct udriver_device *dev, uint32_t index, uint32_t start, uint32_t count,
                      const int32_t *fds);
int ud_api_irq_unmask(struct udriver_device *dev, uint32_t index, uint32_t sub);
int ud_api_irq_disable(struct udriver_device *dev, uint32_t index);
int ud_api_dma_alloc(struct udriver_device *dev, uint64_t size, struct udriver_dma *dma);
int ud_api_dma_map(struct udriver_device *dev, struct udriver_dma *dma, uint64_t dma_mask);
int ud_api_dma_unmap(struct udriver_device *dev, struct udriver_dma *dma);
int ud_api_dma_free(struct udriver_device *dev, struct udriver_dma *dma);
int ud_api_reset(struct udriver_device *dev);
int ud_api_device_fd(struct udriver_device *dev);
const struct udriver_api *udriver_get_api(void);

#endif /* UD_INTERNAL_H */
