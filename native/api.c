/*
 * api.c - the struct udriver_api table handed to drivers (udriver.h).
 * Append-only: a new entry goes at the end together with a minor version bump.
 */
#include "ud_internal.h"

static const struct udriver_api api = {
    .abi_major = UDRIVER_ABI_MAJOR,
    .abi_minor = UDRIVER_ABI_MINOR,
    .size = sizeof(struct udriver_api),
    .open = ud_api_open,
    .open_fds = ud_api_open_fds,
    .close = ud_api_close,
    .device_info = ud_api_device_info,
    .region_info = ud_api_region_info,
    .irq_info = ud_api_irq_info,
    .bar_map = ud_api_bar_map,
    .bar_read8 = ud_api_bar_read8,
    .bar_read16 = ud_api_bar_read16,
    .bar_read32 = ud_api_bar_read32,
    .bar_read64 = ud_api_bar_read64,
    .bar_write8 = ud_api_bar_write8,
    .bar_write16 = ud_api_bar_write16,
    .bar_write32 = ud_api_bar_write32,
    .bar_write64 = ud_api_bar_write64,
    .config_read = ud_api_config_read,
    .config_write = ud_api_config_write,
    .irq_enable = ud_api_irq_enable,
    .irq_unmask = ud_api_irq_unmask,
    .irq_disable = ud_api_irq_disable,
    .dma_alloc = ud_api_dma_alloc,
    .dma_map = ud_api_dma_map,
    .dma_unmap = ud_api_dma_unmap,
    .dma_free = ud_api_dma_free,
    .reset = ud_api_reset,
    .device_fd = ud_api_device_fd,
};

const struct udriver_api *udriver_get_api(void)
{
    return &api;
}
