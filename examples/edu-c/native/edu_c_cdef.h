/* What Python sees (cffi cdef). cffi checks the struct against udriver.h. */
struct udriver_dma { void *vaddr; uint64_t size; uint64_t iova; uint32_t mapped; uint32_t reserved; };
int edu_c_check_api(uintptr_t api);
int edu_c_probe(uintptr_t api, uintptr_t dev, uint32_t *id);
int edu_c_bus_master(uintptr_t api, uintptr_t dev, int on);
int edu_c_liveness(uintptr_t api, uintptr_t dev, uint32_t *mismatches);
int edu_c_factorial_start(uintptr_t api, uintptr_t dev, uint32_t n);
int edu_c_factorial_result(uintptr_t api, uintptr_t dev, uint32_t *value);
int edu_c_irq_ack(uintptr_t api, uintptr_t dev, uint32_t *status);
int edu_c_irq_raise(uintptr_t api, uintptr_t dev, uint32_t value);
int edu_c_dma_alloc(uintptr_t api, uintptr_t dev, uint64_t size, struct udriver_dma *dma);
int edu_c_dma_free(uintptr_t api, uintptr_t dev, struct udriver_dma *dma);
int edu_c_dma_start(uintptr_t api, uintptr_t dev, uint64_t src, uint64_t dst, uint64_t count,
                    int to_ram);
