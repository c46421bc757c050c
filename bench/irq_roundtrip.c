/*
 * irq_roundtrip.c - the C baseline for bench/irq_roundtrip.py.
 *
 * The same loop as the Python one, written the way a driver's C extension would: it gets
 * the runtime's function table by address (udriver.runtime.api_address()) and the device
 * handle (Device.c_address), checks the ABI, and calls through the table.
 *
 * One cycle (QEMU docs/specs/edu.rst): write IRQ_RAISE (0x60) -> poll() the MSI eventfd
 * until readable -> read it -> read IRQ_STATUS (0x24) -> write IRQ_ACK (0x64).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <udriver.h>

#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int irq_roundtrip(uintptr_t api_addr, uintptr_t dev_addr, int efd, uint32_t n, uint64_t *samples)
{
    const struct udriver_api *api = (const struct udriver_api *)api_addr;
    struct udriver_device *dev = (struct udriver_device *)dev_addr;
    if (!UDRIVER_API_COMPATIBLE(api))
        return -EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        struct pollfd p = {.fd = efd, .events = POLLIN};
        uint64_t count, t0 = now_ns();
        uint32_t status;
        int ret = api->bar_write32(dev, 0, EDU_IRQ_RAISE, 1);
        if (ret < 0)
            return ret;
        ret = poll(&p, 1, 5000);
        if (ret <= 0)
            return ret == 0 ? -ETIMEDOUT : -errno;
        if (read(efd, &count, sizeof(count)) != (ssize_t)sizeof(count))
            return -EIO;
        if ((ret = api->bar_read32(dev, 0, EDU_IRQ_STATUS, &status)) < 0)
            return ret;
        if ((ret = api->bar_write32(dev, 0, EDU_IRQ_ACK, status)) < 0)
            return ret;
        samples[i] = now_ns() - t0;
    }
    return 0;
}
