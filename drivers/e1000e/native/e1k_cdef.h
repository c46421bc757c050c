/* What Python sees (cffi cdef).  API mode: cffi checks these against e1k.h. */
struct e1k_ring { void *desc; uint8_t *bufs; uint64_t bufs_iova; uint32_t count;
                  uint32_t buf_size; uint32_t next; uint32_t clean; uint32_t held;
                  int32_t irq_fd; uint32_t ims; uint32_t reserved; uint64_t packets;
                  uint64_t bytes; uint64_t wakeups; uint64_t full; };
struct e1k_pkt { uint8_t *data; uint32_t len; uint32_t reserved; };
struct e1k_perf { uint64_t packets; uint64_t bytes; uint64_t elapsed_ns; uint64_t batches;
                  uint64_t empty_polls; uint64_t other; uint64_t gaps; };
struct e1k_tap_stats { uint64_t to_tap; uint64_t to_tap_drops; uint64_t from_tap;
                       uint64_t from_tap_drops; uint64_t loops; };
#define E1K_PERF_ETHERTYPE ...
#define E1K_PERF_MIN_LEN ...
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
int e1k_gen(uintptr_t api, uintptr_t dev, struct e1k_ring *tx, const uint8_t *frame,
            uint32_t len, uint32_t batch, uint64_t count, uint64_t duration_ns,
            uint64_t gap_ns, struct e1k_perf *out);
int e1k_sink(uintptr_t api, uintptr_t dev, struct e1k_ring *rx, uint32_t batch,
             uint64_t count, uint64_t duration_ns, uint64_t idle_ns, struct e1k_perf *out);
int e1k_tap_pump(uintptr_t api, uintptr_t dev, struct e1k_ring *rx, struct e1k_ring *tx,
                 int tap_fd, int stop_fd, struct e1k_tap_stats *st);
