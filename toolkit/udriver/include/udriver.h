/*
 * udriver.h - the udriver C ABI, version 1.0.
 *
 * A driver's C code reaches the udriver runtime only through `struct udriver_api`, a
 * versioned, append-only table of function pointers.  The driver receives the table's
 * address at init time (Python: `udriver.runtime.api_address()` or the PyCapsule
 * `udriver.runtime.api_capsule()`, name "udriver._native.api") and a device handle
 * (`Device.c_handle`), so it never links against anything outside its own wheel.
 *
 * Rules:
 *  - Every function returns 0 on success or -errno on failure.  Nothing exits,
 *    aborts, or leaks a file descriptor on an error path.
 *  - A driver built against ABI 1.N runs on any runtime 1.M with M >= N; check with
 *    UDRIVER_API_COMPATIBLE(api) before using the table.
 *  - The table is append-only: new functions go at the end, `size` grows, the minor
 *    version is bumped.  Existing members never move or change type.
 */
#ifndef UDRIVER_H
#define UDRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UDRIVER_ABI_MAJOR 1
/* 1.1 appends no table member: its addition is the kernel-bridge API of the Python
 * runtime (udriver.runtime.Bridge); a bridge hands the driver plain file descriptors,
 * which its C code uses with ordinary system calls. */
#define UDRIVER_ABI_MINOR 1

/* The PyCapsule name under which the runtime exports `const struct udriver_api *`. */
#define UDRIVER_API_CAPSULE "udriver._native.api"

/* True when `api` (a `const struct udriver_api *`) serves a driver built against this header. */
#define UDRIVER_API_COMPATIBLE(api)                                                 \
    ((api) != NULL && (api)->abi_major == UDRIVER_ABI_MAJOR &&                     \
     (api)->abi_minor >= UDRIVER_ABI_MINOR &&                                      \
     (api)->size >= sizeof(struct udriver_api))

/* Region indexes, as VFIO_PCI_*_REGION_INDEX in linux/vfio.h. */
#define UDRIVER_REGION_BAR0 0u
#define UDRIVER_REGION_BAR5 5u
#define UDRIVER_REGION_ROM 6u
#define UDRIVER_REGION_CONFIG 7u

/* IRQ indexes, as VFIO_PCI_*_IRQ_INDEX in linux/vfio.h. */
#define UDRIVER_IRQ_INTX 0u
#define UDRIVER_IRQ_MSI 1u
#define UDRIVER_IRQ_MSIX 2u

/* Region flags, as VFIO_REGION_INFO_FLAG_* in linux/vfio.h. */
#define UDRIVER_REGION_READ (1u << 0)
#define UDRIVER_REGION_WRITE (1u << 1)
#define UDRIVER_REGION_MMAP (1u << 2)

/* IRQ flags, as VFIO_IRQ_INFO_* in linux/vfio.h. */
#define UDRIVER_IRQ_EVENTFD (1u << 0)
#define UDRIVER_IRQ_MASKABLE (1u << 1)
#define UDRIVER_IRQ_AUTOMASKED (1u << 2)
#define UDRIVER_IRQ_NORESIZE (1u << 3)

/* An open device.  Opaque: only the runtime looks inside. */
struct udriver_device;

struct udriver_device_info {
    uint32_t flags;       /* VFIO_DEVICE_FLAGS_* */
    uint32_t num_regions;
    uint32_t num_irqs;
    uint32_t iommu_group; /* the IOMMU group number */
};

struct udriver_region_info {
    uint32_t index;
    uint32_t flags;       /* UDRIVER_REGION_* */
    uint64_t size;        /* 0: the region does not exist on this device */
};

struct udriver_irq_info {
    uint32_t index;
    uint32_t flags;       /* UDRIVER_IRQ_* */
    uint32_t count;       /* 0: this IRQ type is not supported */
    uint32_t reserved;
};

/* A DMA buffer: page-aligned host memory, and the IOVA the device uses for it. */
struct udriver_dma {
    void *vaddr;          /* host virtual address; NULL once freed */
    uint64_t size;        /* bytes, a multiple of the page size */
    uint64_t iova;        /* valid while `mapped` */
    uint32_t mapped;      /* 1 while the IOMMU maps iova -> vaddr */
    uint32_t reserved;
};

struct udriver_api {
    uint16_t abi_major;   /* UDRIVER_ABI_MAJOR of the runtime */
    uint16_t abi_minor;   /* UDRIVER_ABI_MINOR of the runtime */
    uint32_t size;        /* sizeof(struct udriver_api) of the runtime */

    /* --- 1.0 --- */
    /* Open the device at PCI address `bdf` ("0000:00:03.0"): container, group, device. */
    int (*open)(const char *bdf, struct udriver_device **out);
    /* The same from an already-open container and group fd (privilege separation).
     * The device takes ownership of both fds, also on failure. */
    int (*open_fds)(int container_fd, int group_fd, const char *bdf,
                    struct udriver_device **out);
    /* Unmaps BARs and DMA, disables IRQs, closes every fd, frees `dev`. */
    int (*close)(struct udriver_device *dev);

    int (*device_info)(struct udriver_device *dev, struct udriver_device_info *out);
    int (*region_info)(struct udriver_device *dev, uint32_t index,
                       struct udriver_region_info *out);
    int (*irq_info)(struct udriver_device *dev, uint32_t index, struct udriver_irq_info *out);

    /* mmap a BAR (once; later calls return the same mapping). */
    int (*bar_map)(struct udriver_device *dev, uint32_t bar, void **addr, uint64_t *size);
    /* Bounds- and alignment-checked BAR accessors: -EINVAL misaligned, -ERANGE past end. */
    int (*bar_read8)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint8_t *val);
    int (*bar_read16)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint16_t *val);
    int (*bar_read32)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint32_t *val);
    int (*bar_read64)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint64_t *val);
    int (*bar_write8)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint8_t val);
    int (*bar_write16)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint16_t val);
    int (*bar_write32)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint32_t val);
    int (*bar_write64)(struct udriver_device *dev, uint32_t bar, uint64_t off, uint64_t val);

    int (*config_read)(struct udriver_device *dev, uint64_t off, void *buf, size_t len);
    int (*config_write)(struct udriver_device *dev, uint64_t off, const void *buf, size_t len);

    /* Route vectors [start, start+count) of IRQ `index` to eventfds `fds` (-1: none). */
    int (*irq_enable)(struct udriver_device *dev, uint32_t index, uint32_t start,
                      uint32_t count, const int32_t *fds);
    int (*irq_unmask)(struct udriver_device *dev, uint32_t index, uint32_t sub);
    int (*irq_disable)(struct udriver_device *dev, uint32_t index);

    /* Allocate `size` bytes (rounded up to pages) of zeroed, locked host memory. */
    int (*dma_alloc)(struct udriver_device *dev, uint64_t size, struct udriver_dma *dma);
    /* Map it at an IOVA below `dma_mask` inside the IOMMU's valid IOVA ranges. */
    int (*dma_map)(struct udriver_device *dev, struct udriver_dma *dma, uint64_t dma_mask);
    int (*dma_unmap)(struct udriver_device *dev, struct udriver_dma *dma);
    /* Unmaps if still mapped, then releases the memory. */
    int (*dma_free)(struct udriver_device *dev, struct udriver_dma *dma);

    int (*reset)(struct udriver_device *dev);
    /* The device fd, for poll()ing or passing on; -EBADF once closed. */
    int (*device_fd)(struct udriver_device *dev);
};

/* Layout is ABI: assert it (x86_64 / aarch64 LP64). */
#if defined(__LP64__) && !defined(__cplusplus)
_Static_assert(sizeof(struct udriver_device_info) == 16, "udriver_device_info layout");
_Static_assert(sizeof(struct udriver_region_info) == 16, "udriver_region_info layout");
_Static_assert(sizeof(struct udriver_irq_info) == 16, "udriver_irq_info layout");
_Static_assert(sizeof(struct udriver_dma) == 32, "udriver_dma layout");
_Static_assert(offsetof(struct udriver_api, size) == 4, "udriver_api header layout");
_Static_assert(offsetof(struct udriver_api, open) == 8, "udriver_api first entry");
_Static_assert(sizeof(struct udriver_api) == 8 + 26 * sizeof(void *), "udriver_api 1.0 size");
#endif

#ifdef __cplusplus
}
#endif
#endif /* UDRIVER_H */
