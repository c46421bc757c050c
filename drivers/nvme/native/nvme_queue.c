/*
 * nvme_queue.c - submission and completion queues (NVMe 1.4 4.1, 4.2, 4.6, 7.2).
 *
 * Submitting: copy the SQE into slot SQ Tail, advance the tail (wrapping at the queue
 * size), then write the new tail to SQyTDBL (3.1.24).  Completing: an entry at CQ Head is
 * new when its Phase Tag equals the phase the host expects; the host flips the expected
 * phase each time the head wraps (4.6 "Phase Tag"), and writes the new head to CQyHDBL
 * (3.1.25) to release the entries.  SQHD in each CQE tells how far the controller has
 * consumed the SQ, which is what frees SQ slots (4.6, 7.2.x queue full rules).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvme_c.h"
#include "nvme_queue.h"

#define API(a) ((const struct udriver_api *)(a))
#define DEV(d) ((struct udriver_device *)(d))

int nvme_c_check_api(uintptr_t api)
{
    return UDRIVER_API_COMPATIBLE(API(api)) ? 0 : -EPROTO;
}

uint64_t nvme_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 7.2: a queue is full when advancing the tail would make it equal the head. */
int nvme_sq_push(struct nvme_queue *q, const struct nvme_sqe *sqe)
{
    uint16_t next = (uint16_t)((q->sq_tail + 1u) % q->depth);
    struct nvme_sqe *sq = q->sq;

    if (next == q->sq_head)
        return -EBUSY;
    memcpy(&sq[q->sq_tail], sqe, sizeof(*sqe));
    q->sq_tail = next;
    return 0;
}

/* 3.1.24: the SQE stores must be visible before the controller sees the new tail. */
int nvme_sq_ring(uintptr_t api, uintptr_t dev, struct nvme_queue *q)
{
    atomic_thread_fence(memory_order_release);
    return API(api)->bar_write32(DEV(dev), NVME_BAR, q->sq_db, q->sq_tail);
}

int nvme_submit(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_sqe *sqe)
{
    int rc = nvme_sq_push(q, sqe);

    return rc ? rc : nvme_sq_ring(api, dev, q);
}

/* Take up to `max` new CQEs (4.6: Phase Tag == expected phase); does not ring. */
unsigned nvme_cq_take(struct nvme_queue *q, struct nvme_cqe *out, unsigned max)
{
    volatile struct nvme_cqe *cq = q->cq;
    unsigned n = 0;

    while (n < max) {
        volatile struct nvme_cqe *e = &cq[q->cq_head];
        if ((e->status & 1u) != q->phase)
            break;
        atomic_thread_fence(memory_order_acquire); /* status first, then the rest */
        out[n].dw0 = e->dw0;
        out[n].dw1 = e->dw1;
        out[n].sqhd = e->sqhd;
        out[n].sqid = e->sqid;
        out[n].cid = e->cid;
        out[n].status = e->status;
        q->sq_head = e->sqhd;
        n++;
        if (++q->cq_head == q->depth) {
            q->cq_head = 0;
            q->phase ^= 1u;
        }
    }
    return n;
}

int nvme_cq_ring(uintptr_t api, uintptr_t dev, struct nvme_queue *q)
{
    return API(api)->bar_write32(DEV(dev), NVME_BAR, q->cq_db, q->cq_head);
}

static int cq_pending(const struct nvme_queue *q)
{
    const volatile struct nvme_cqe *cq = q->cq;

    return (cq[q->cq_head].status & 1u) == q->phase;
}

/* Wait up to `ms` for a new CQE: on the vector's eventfd, or by spinning (polled mode).
 * Returns 0 (maybe something to reap) or -errno of poll/read. */
int nvme_cq_wait(struct nvme_queue *q, uint32_t ms)
{
    if (cq_pending(q))
        return 0;
    if (q->irq_fd >= 0) {
        struct pollfd p = {.fd = q->irq_fd, .events = POLLIN, .revents = 0};
        uint64_t count;
        int rc = poll(&p, 1, (int)ms);

        if (rc < 0)
            return errno == EINTR ? 0 : -errno;
        if (rc > 0 && read(q->irq_fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
            q->wakeups++;
        return 0;
    }
    uint64_t deadline = nvme_now_ns() + (uint64_t)ms * 1000000u;
    for (unsigned i = 0;; i++) {
        if (cq_pending(q))
            return 0;
        if ((i & 255u) == 0 && nvme_now_ns() >= deadline)
            return 0;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* Why nothing completed: the device is gone (all-ones reads), fatal (CSTS.CFS, 3.1.6),
 * or just slow. */
int nvme_stall_reason(uintptr_t api, uintptr_t dev)
{
    uint32_t csts = 0;
    int rc = API(api)->bar_read32(DEV(dev), NVME_BAR, NVME_REG_CSTS, &csts);

    if (rc != 0)
        return rc;
    if (csts == 0xFFFFFFFFu)
        return -ENODEV;
    if (csts & NVME_CSTS_CFS)
        return -EIO;
    return -ETIMEDOUT;
}

/* Submit one command and wait for the CQE with its CID (one command in flight). */
int nvme_cmd_sync(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_sqe *sqe,
                  uint32_t timeout_ms, struct nvme_cqe *out)
{
    uint16_t cid = (uint16_t)(sqe->cdw0 >> 16);
    uint64_t start = nvme_now_ns(), deadline = start + (uint64_t)timeout_ms * 1000000u;
    struct nvme_cqe cqe;
    int rc = nvme_submit(api, dev, q, sqe);

    if (rc != 0)
        return rc;
    for (;;) {
        while (nvme_cq_take(q, &cqe, 1) == 1) {
            if ((rc = nvme_cq_ring(api, dev, q)) != 0)
                return rc;
            if (cqe.cid == cid) {
                *out = cqe;
                return 0;
            }
            /* A CQE for another CID: a command of an earlier, timed-out call. Dropped. */
        }
        uint64_t now = nvme_now_ns();
        if (now >= deadline)
            return nvme_stall_reason(api, dev);
        /* Between waits, look for a controller that can no longer complete anything. */
        if (now - start >= 100000000u && (rc = nvme_stall_reason(api, dev)) != -ETIMEDOUT)
            return rc;
        uint64_t left = (deadline - now) / 1000000u + 1u;
        if ((rc = nvme_cq_wait(q, left > 100 ? 100u : (uint32_t)left)) != 0)
            return rc;
    }
}
