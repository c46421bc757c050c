/*
 * e1k.h - the 82574 driver's packet path, in C, through the udriver ABI table.
 *
 * Python (udriver_e1000e) does the control path: reset, MAC address, link, ring
 * registers, interrupts, filters.  It allocates every DMA buffer with the runtime and
 * hands C their addresses in `struct e1k_ring`.  C fills and reaps the legacy
 * descriptors (82574 datasheet 7.1.4, 7.2.10) and writes the tail registers; MMIO goes
 * only through `struct udriver_api` (udriver.h, ABI 1.0).  Every function returns a count
 * >= 0 or -errno and never aborts.
 */
#ifndef E1K_H
#define E1K_H

#include <stddef.h>
#include <stdint.h>

#include "udriver.h"
#include "e1k_regs.h"

/* 7.1.4.1 legacy receive descriptor (16 bytes) */
struct e1k_rx_desc {
    uint64_t addr;       /* buffer address (IOVA) */
    uint16_t length;     /* bytes DMA'd into the buffer */
    uint16_t csum;       /* packet checksum */
    uint8_t status;      /* DD, EOP, ... */
    uint8_t errors;
    uint16_t special;    /* VLAN tag */
};

/* 7.2.10.1 legacy transmit descriptor (16 bytes) */
struct e1k_tx_desc {
    uint64_t addr;       /* buffer address (IOVA) */
    uint16_t length;
    uint8_t cso;         /* checksum offset */
    uint8_t cmd;         /* EOP, IFCS, RS, ... */
    uint8_t status;      /* DD */
    uint8_t css;         /* checksum start */
    uint16_t special;
};

_Static_assert(sizeof(struct e1k_rx_desc) == 16, "legacy RX descriptor is 16 bytes");
_Static_assert(sizeof(struct e1k_tx_desc) == 16, "legacy TX descriptor is 16 bytes");

/*
 * One descriptor ring and its packet buffers: `count` descriptors (a multiple of 8,
 * 10.2.5.x RDLEN/TDLEN: 128-byte units) and `count` buffers of `buf_size` bytes.
 */
struct e1k_ring {
    void *desc;            /* count * 16 bytes of DMA memory */
    uint8_t *bufs;         /* count * buf_size bytes of DMA memory */
    uint64_t bufs_iova;
    uint32_t count;
    uint32_t buf_size;     /* 2048: RCTL.BSIZE = 00b, BSEX = 0 */
    uint32_t next;         /* RX: next descriptor to look at; TX: next free (= tail) */
    uint32_t clean;        /* TX: oldest descriptor not yet seen done */
    uint32_t held;         /* RX: descriptors handed out by e1k_rx_burst, not yet returned */
    int32_t irq_fd;        /* eventfd of the ring's MSI-X vector; -1: polled */
    uint32_t ims;          /* IMS bits to re-arm after a wake-up (RXQ0 or TXQ0) */
    uint32_t reserved;
    uint64_t packets;      /* frames received / queued for sending */
    uint64_t bytes;
    uint64_t wakeups;      /* eventfd reads that returned a count */
    uint64_t full;         /* TX: frames refused because the ring was full */
};

/* One frame handed across the API: a pointer into a ring buffer (RX) or the caller's (TX). */
struct e1k_pkt {
    uint8_t *data;
    uint32_t len;
    uint32_t reserved;
};

/* Packet generator / sink results (the direct path's measurement). */
struct e1k_perf {
    uint64_t packets;
    uint64_t bytes;
    uint64_t elapsed_ns;
    uint64_t batches;      /* bursts that moved at least one frame */
    uint64_t empty_polls;  /* bursts that moved nothing */
    uint64_t other;        /* RX: frames without the generator's ethertype and magic */
    uint64_t gaps;         /* RX: stamped frames whose sequence number was not last + 1 */
};

/* The TAP bridge's counters. */
struct e1k_tap_stats {
    uint64_t to_tap;          /* frames received by the NIC and written to the TAP */
    uint64_t to_tap_drops;    /* ... that the TAP refused */
    uint64_t from_tap;        /* frames read from the TAP and queued for sending */
    uint64_t from_tap_drops;  /* ... that did not fit in the TX ring */
    uint64_t loops;
};

int e1k_check_api(uintptr_t api);
int e1k_rx_init(uintptr_t api, uintptr_t dev, struct e1k_ring *r);
int e1k_rx_burst(uintptr_t api, uintptr_t dev, struct e1k_ring *r, struct e1k_pkt *pkts,
                 uint32_t max);
int e1k_rx_release(uintptr_t api, uintptr_t dev, struct e1k_ring *r);
int e1k_tx_init(struct e1k_ring *r);
int e1k_tx_reap(struct e1k_ring *r);
int e1k_tx_burst(uintptr_t api, uintptr_t dev, struct e1k_ring *r, const struct e1k_pkt *pkts,
                 uint32_t n);
int e1k_wait(uintptr_t api, uintptr_t dev, struct e1k_ring *r, int timeout_ms);
/* Frames of the packet generator: local experimental ethertype (IEEE 802 88B5), then the
 * sequence number (8 bytes, little endian) and the magic "UDRV". */
#define E1K_PERF_ETHERTYPE 0x88B5u
#define E1K_PERF_MIN_LEN 26u

int e1k_gen(uintptr_t api, uintptr_t dev, struct e1k_ring *tx, const uint8_t *frame,
            uint32_t len, uint32_t batch, uint64_t count, uint64_t duration_ns,
            uint64_t gap_ns, struct e1k_perf *out);
int e1k_sink(uintptr_t api, uintptr_t dev, struct e1k_ring *rx, uint32_t batch,
             uint64_t count, uint64_t duration_ns, uint64_t idle_ns, struct e1k_perf *out);

int e1k_tap_pump(uintptr_t api, uintptr_t dev, struct e1k_ring *rx, struct e1k_ring *tx,
                 int tap_fd, int stop_fd, struct e1k_tap_stats *st);

#endif
