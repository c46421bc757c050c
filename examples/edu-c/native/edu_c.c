/*
 * edu_c.c - QEMU edu device work (QEMU docs/specs/edu.rst) in C.
 *
 * Everything reaches the device through the runtime's `struct udriver_api` table
 * (udriver.h), whose address Python passes in (`udriver.runtime.api_address()`), with
 * the device handle (`Device.c_address`).  This file links against libc only.  Every
 * function returns 0 or -errno and never aborts.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stddef.h>
#include <time.h>

#include "edu_c.h"
#include "edu_regs.h"

#define API(a) ((const struct udriver_api *)(a))
#define DEV(d) ((struct udriver_device *)(d))
#define QUIESCE_POLLS 1000 /* x 10 ms: a previous owner's DMA or factorial must finish */

int edu_c_check_api(uintptr_t api)
{
    if (!UDRIVER_API_COMPATIBLE(API(api)))
        return -EPROTO;
    return 0;
}

static int rd32(uintptr_t api, uintptr_t dev, uint64_t off, uint32_t *v)
{
    return API(api)->bar_read32(DEV(dev), EDU_BAR, off, v);
}

static int wr32(uintptr_t api, uintptr_t dev, uint64_t off, uint32_t v)
{
    return API(api)->bar_write32(DEV(dev), EDU_BAR, off, v);
}

/* Identify the device, then bring it to a known state: a previous owner may have died
 * mid-work (edu.rst: DMA_CMD keeps START set until done, STATUS keeps COMPUTING). */
int edu_c_probe(uintptr_t api, uintptr_t dev, uint32_t *id)
{
    const struct timespec tick = {0, 10 * 1000 * 1000};
    uint64_t cmd = 0;
    uint32_t status = 0, pending = 0;
    int rc = edu_c_check_api(api);

    if (rc == 0)
        rc = rd32(api, dev, EDU_ID, id);
    if (rc != 0)
        return rc;
    if ((*id & EDU_ID_LOW_MASK) != EDU_ID_LOW)
        return -ENODEV;
    for (int i = 0;; i++) {
        if ((rc = API(api)->bar_read64(DEV(dev), EDU_BAR, EDU_DMA_CMD, &cmd)) != 0 ||
            (rc = rd32(api, dev, EDU_STATUS, &status)) != 0)
            return rc;
        if (!(cmd & EDU_DMA_CMD_START) && !(status & EDU_STATUS_COMPUTING))
            break;
        if (i == QUIESCE_POLLS)
            return -ETIMEDOUT;
        nanosleep(&tick, NULL);
    }
    if ((rc = wr32(api, dev, EDU_STATUS, 0)) != 0 ||
        (rc = rd32(api, dev, EDU_IRQ_STATUS, &pending)) != 0)
        return rc;
    return pending ? wr32(api, dev, EDU_IRQ_ACK, pending) : 0;
}

/* DMA and MSI are memory writes by the device: they need Bus Master Enable. */
int edu_c_bus_master(uintptr_t api, uintptr_t dev, int on)
{
    uint16_t command = 0;
    int rc = API(api)->config_read(DEV(dev), PCI_COMMAND, &command, sizeof(command));

    if (rc != 0)
        return rc;
    command = on ? (uint16_t)(command | PCI_COMMAND_MASTER)
                 : (uint16_t)(command & ~PCI_COMMAND_MASTER);
    return API(api)->config_write(DEV(dev), PCI_COMMAND, &command, sizeof(command));
}

/* edu.rst 0x04: the liveness register reads back the bitwise inverse of what was written. */
int edu_c_liveness(uintptr_t api, uintptr_t dev, uint32_t *mismatches)
{
    static const uint32_t patterns[] = {0x00000000u, 0xFFFFFFFFu, 0x12345678u, 0xA5A55A5Au};
    uint32_t got = 0;
    int rc;

    *mismatches = 0;
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        if ((rc = wr32(api, dev, EDU_LIVENESS, patterns[i])) != 0 ||
            (rc = rd32(api, dev, EDU_LIVENESS, &got)) != 0)
            return rc;
        if (got != (uint32_t)~patterns[i])
            (*mismatches)++;
    }
    return 0;
}

/* edu.rst 0x20 bit 7 then 0x08: compute n! and raise IRQ_STATUS 0x1 when done. */
int edu_c_factorial_start(uintptr_t api, uintptr_t dev, uint32_t n)
{
    int rc = wr32(api, dev, EDU_STATUS, EDU_STATUS_IRQ_FACT);

    return rc ? rc : wr32(api, dev, EDU_FACTORIAL, n);
}

int edu_c_factorial_result(uintptr_t api, uintptr_t dev, uint32_t *value)
{
    return rd32(api, dev, EDU_FACTORIAL, value);
}

/* Top half: read the interrupt status and acknowledge exactly those bits (edu.rst 0x24,
 * 0x64); INTx is lowered once the status becomes 0. */
int edu_c_irq_ack(uintptr_t api, uintptr_t dev, uint32_t *status)
{
    int rc = rd32(api, dev, EDU_IRQ_STATUS, status);

    return rc ? rc : wr32(api, dev, EDU_IRQ_ACK, *status);
}

int edu_c_irq_raise(uintptr_t api, uintptr_t dev, uint32_t value)
{
    return wr32(api, dev, EDU_IRQ_RAISE, value);
}

/* Host memory the device can reach: allocated and IOMMU-mapped below edu's 28-bit mask. */
int edu_c_dma_alloc(uintptr_t api, uintptr_t dev, uint64_t size, struct udriver_dma *dma)
{
    int rc = API(api)->dma_alloc(DEV(dev), size, dma);

    if (rc != 0)
        return rc;
    rc = API(api)->dma_map(DEV(dev), dma, EDU_DMA_MASK);
    if (rc != 0)
        API(api)->dma_free(DEV(dev), dma);
    return rc;
}

int edu_c_dma_free(uintptr_t api, uintptr_t dev, struct udriver_dma *dma)
{
    return API(api)->dma_free(DEV(dev), dma);
}

/* edu.rst 0x80-0x98: program source, destination and count, then start with IRQ. */
int edu_c_dma_start(uintptr_t api, uintptr_t dev, uint64_t src, uint64_t dst, uint64_t count,
                    int to_ram)
{
    const struct udriver_api *a = API(api);
    uint64_t cmd = EDU_DMA_CMD_START | EDU_DMA_CMD_IRQ | (to_ram ? EDU_DMA_CMD_TO_RAM : 0);
    int rc;

    if ((rc = a->bar_write64(DEV(dev), EDU_BAR, EDU_DMA_SRC, src)) != 0 ||
        (rc = a->bar_write64(DEV(dev), EDU_BAR, EDU_DMA_DST, dst)) != 0 ||
        (rc = a->bar_write64(DEV(dev), EDU_BAR, EDU_DMA_COUNT, count)) != 0)
        return rc;
    return a->bar_write64(DEV(dev), EDU_BAR, EDU_DMA_CMD, cmd);
}
