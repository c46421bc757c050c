/*
 * e1k_perf.c - the direct path's packet generator and sink (the ixy/DPDK model: batches
 * of frames straight on the rings, no kernel, no copies into Python).
 *
 * Generator frames carry the local experimental ethertype 88B5h (IEEE Std 802, "local
 * experimental ethertype"), a 64-bit sequence number and the magic "UDRV", so the sink
 * can tell them from whatever else is on the wire and count gaps.  `gap_ns` paces the
 * generator (a receiver that cannot keep up makes the emulated hub drop frames).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e1k.h"

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int e1k_gen(uintptr_t api, uintptr_t dev, struct e1k_ring *tx, const uint8_t *frame,
            uint32_t len, uint32_t batch, uint64_t count, uint64_t duration_ns,
            uint64_t gap_ns, struct e1k_perf *out)
{
    struct e1k_pkt pkts[64];
    uint8_t *copies;
    uint64_t seq = 0, t0, deadline, now;
    uint32_t i, want;
    int rc = 0;

    if (!tx || !frame || !out || len < E1K_PERF_MIN_LEN || len > tx->buf_size || !batch ||
        batch > 64 || (!count && !duration_ns))
        return -EINVAL;
    copies = malloc((size_t)batch * len);
    if (!copies)
        return -ENOMEM;
    memset(out, 0, sizeof *out);
    for (i = 0; i < batch; i++) {
        memcpy(copies + (size_t)i * len, frame, len);
        copies[(size_t)i * len + 12] = E1K_PERF_ETHERTYPE >> 8;
        copies[(size_t)i * len + 13] = E1K_PERF_ETHERTYPE & 0xff;
        memcpy(copies + (size_t)i * len + 22, "UDRV", 4);
        pkts[i].data = copies + (size_t)i * len;
        pkts[i].len = len;
    }
    t0 = now_ns();
    deadline = duration_ns ? t0 + duration_ns : UINT64_MAX;
    for (;;) {
        want = batch;
        if (count && count - seq < want)
            want = (uint32_t)(count - seq);
        if (!want)
            break;
        for (i = 0; i < want; i++)
            put_le64(pkts[i].data + 14, seq + i);
        rc = e1k_tx_burst(api, dev, tx, pkts, want);
        if (rc < 0)
            break;
        now = now_ns();
        if (rc == 0) {
            out->empty_polls++;
            /* Ring full: sleep on the TX vector (MSI-X) or spin on the DD bits. */
            if (tx->irq_fd >= 0 && (rc = e1k_wait(api, dev, tx, 10)) < 0)
                break;
        } else {
            out->batches++;
            seq += (uint32_t)rc;
            out->bytes += (uint64_t)rc * len;
            /* Rate limit: at least gap_ns between bursts (a spin; the vCPU stays ours). */
            while (gap_ns && now_ns() - now < gap_ns)
                ;
        }
        rc = 0;
        if (now >= deadline)
            break;
    }
    out->packets = seq;
    out->elapsed_ns = now_ns() - t0;
    /* Let the hardware finish what is queued (bounded: 1 s). */
    for (now = now_ns(); tx->clean != tx->next && now_ns() - now < 1000000000u;)
        e1k_tx_reap(tx);
    free(copies);
    return rc;
}

int e1k_sink(uintptr_t api, uintptr_t dev, struct e1k_ring *rx, uint32_t batch,
             uint64_t count, uint64_t duration_ns, uint64_t idle_ns, struct e1k_perf *out)
{
    struct e1k_pkt pkts[64];
    uint64_t t0, first = 0, last = 0, now, expect = 0;
    int rc = 0, n, started = 0;

    if (!rx || !out || !batch || batch > 64 || (!count && !duration_ns && !idle_ns))
        return -EINVAL;
    memset(out, 0, sizeof *out);
    t0 = now_ns();
    for (;;) {
        n = e1k_rx_burst(api, dev, rx, pkts, batch);
        if (n < 0)
            return n;
        now = now_ns();
        if (n == 0) {
            out->empty_polls++;
            if ((duration_ns && now - t0 >= duration_ns) ||
                (started && idle_ns && now - last >= idle_ns))
                break;
            if (rx->irq_fd >= 0 && (rc = e1k_wait(api, dev, rx, 10)) < 0)
                return rc;
            continue;
        }
        if (!started) {
            started = 1;
            first = now;
        }
        last = now;
        out->batches++;
        for (int i = 0; i < n; i++) {
            const uint8_t *p = pkts[i].data;

            if (pkts[i].len < E1K_PERF_MIN_LEN || p[12] != (E1K_PERF_ETHERTYPE >> 8) ||
                p[13] != (E1K_PERF_ETHERTYPE & 0xff) || memcmp(p + 22, "UDRV", 4)) {
                out->other++;
                continue;
            }
            if (get_le64(p + 14) != expect)
                out->gaps++;
            expect = get_le64(p + 14) + 1;
            out->packets++;
            out->bytes += pkts[i].len;
        }
        rc = e1k_rx_release(api, dev, rx);
        if (rc < 0)
            return rc;
        if ((count && out->packets >= count) || (duration_ns && now - t0 >= duration_ns))
            break;
    }
    /* Rate over the span frames actually arrived in (the first to the last burst). */
    out->elapsed_ns = started ? last - first : now_ns() - t0;
    return 0;
}
