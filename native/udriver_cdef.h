/* cffi cdef for udriver._native (native/build_ffi.py).  `...` lets cffi read the real
 * values and layouts from udriver.h at build time. */
#define UDRIVER_ABI_MAJOR ...
#define UDRIVER_ABI_MINOR ...
#define UDRIVER_REGION_READ ...
#define UDRIVER_REGION_WRITE ...
#define UDRIVER_REGION_MMAP ...
#define UDRIVER_IRQ_EVENTFD ...
#define UDRIVER_IRQ_MASKABLE ...
#define UDRIVER_IRQ_AUTOMASKED ...
#define UDRIVER_IRQ_NORESIZE ...

struct udriver_device;

struct udriver_device_info { uint32_t flags; uint32_t num_regions; uint32_t num_irqs;
                             uint32_t iommu_group; };
struct udriver_region_info { uint32_t index; uint32_t flags; uint64_t size; };
struct udriver_irq_info { uint32_t index; uint32_t flags; uint32_t count; ...; };
struct udriver_dma { void *vaddr; uint64_t size; uint64_t iova; uint32_t mapped; ...; };
struct udriver_api { uint16_t abi_major; uint16_t abi_minor; uint32_t size; ...; };

const struct udriver_api *udriver_get_api(void);

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
