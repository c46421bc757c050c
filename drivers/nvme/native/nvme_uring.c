/*
 * nvme_uring.c - a minimal io_uring over raw syscalls (no liburing: the wheel links libc
 * only), enough for ublk's I/O commands: 64-byte SQEs, IORING_OP_URING_CMD and
 * IORING_OP_POLL_ADD, a wait with a timeout.
 *
 * linux/io_uring.h: io_uring_setup(2) fills `struct io_uring_params` with the offsets of
 * the SQ ring, the CQ ring and the SQE array, which are mmap'd at IORING_OFF_SQ_RING,
 * IORING_OFF_CQ_RING and IORING_OFF_SQES; the application writes SQEs, publishes their
 * indices in the SQ array and advances the SQ tail (release); the kernel advances the CQ
 * tail, the application the CQ head. io_uring_enter(2) submits and, with
 * IORING_ENTER_GETEVENTS, waits for `min_complete` CQEs; IORING_ENTER_EXT_ARG (5.11) passes
 * a timeout, which ends the wait with -ETIME.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nvme_uring.h"

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425  /* the same number on every architecture since 5.1 */
#define __NR_io_uring_enter 426
#endif
#define IORING_OFF_SQ_RING 0ULL
#define IORING_OFF_CQ_RING 0x8000000ULL
#define IORING_OFF_SQES 0x10000000ULL
#define IORING_ENTER_GETEVENTS (1u << 0)
#define IORING_ENTER_EXT_ARG (1u << 3)

struct uring_params {  /* struct io_uring_params (120 bytes) */
    uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd;
    uint32_t resv[3];
    uint32_t sq_head, sq_tail, sq_mask, sq_ring_entries, sq_flags, sq_dropped, sq_array, sq_resv1;
    uint64_t sq_resv2;
    uint32_t cq_head, cq_tail, cq_mask, cq_ring_entries, cq_overflow, cq_cqes, cq_flags, cq_resv1;
    uint64_t cq_resv2;
};

struct getevents_arg { uint64_t sigmask; uint32_t sigmask_sz, pad; uint64_t ts; };
struct kts { int64_t tv_sec; long long tv_nsec; };

int nvme_uring_init(struct nvme_uring *r, unsigned entries)
{
    struct uring_params p;
    uint8_t *sq, *cq;

    memset(r, 0, sizeof(*r));
    memset(&p, 0, sizeof(p));
    r->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (r->fd < 0)
        return -errno;
    r->sq_len = p.sq_array + p.sq_entries * sizeof(uint32_t);
    r->cq_len = p.cq_cqes + p.cq_entries * sizeof(struct nvme_uring_cqe);
    r->sqes_len = p.sq_entries * sizeof(struct nvme_uring_sqe);
    sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
              IORING_OFF_SQ_RING);
    cq = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
              IORING_OFF_CQ_RING);
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   r->fd, IORING_OFF_SQES);
    r->sq_ring = sq == MAP_FAILED ? NULL : sq;
    r->cq_ring = cq == MAP_FAILED ? NULL : cq;
    if (r->sqes == MAP_FAILED)
        r->sqes = NULL;
    if (!r->sq_ring || !r->cq_ring || !r->sqes) {
        int e = errno;
        nvme_uring_exit(r);
        return -e;
    }
    r->sq_tail = (uint32_t *)(sq + p.sq_tail);
    r->sq_mask = *(uint32_t *)(sq + p.sq_mask);
    r->sq_array = (uint32_t *)(sq + p.sq_array);
    r->sq_entries = p.sq_entries;
    r->cq_head = (uint32_t *)(cq + p.cq_head);
    r->cq_tail = (uint32_t *)(cq + p.cq_tail);
    r->cq_mask = *(uint32_t *)(cq + p.cq_mask);
    r->cqes = (struct nvme_uring_cqe *)(cq + p.cq_cqes);
    r->local_tail = *r->sq_tail;
    return 0;
}

struct nvme_uring_sqe *nvme_uring_sqe(struct nvme_uring *r)
{
    struct nvme_uring_sqe *sqe;
    uint32_t idx;

    if (r->pending >= r->sq_entries)
        return NULL;
    idx = r->local_tail & r->sq_mask;
    sqe = &r->sqes[idx];
    memset(sqe, 0, sizeof(*sqe));
    r->sq_array[idx] = idx;
    r->local_tail++;
    r->pending++;
    return sqe;
}

int nvme_uring_enter(struct nvme_uring *r, unsigned min_complete, uint32_t wait_ms)
{
    struct kts ts = {wait_ms / 1000u, (long long)(wait_ms % 1000u) * 1000000LL};
    struct getevents_arg arg = {0, 0, 0, (uint64_t)(uintptr_t)&ts};
    unsigned flags = min_complete ? IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG : 0;
    long rc;

    __atomic_store_n(r->sq_tail, r->local_tail, __ATOMIC_RELEASE);  /* publish the SQEs */
    rc = syscall(__NR_io_uring_enter, r->fd, r->pending, min_complete, flags,
                 min_complete ? (void *)&arg : NULL, min_complete ? sizeof(arg) : 0);
    if (rc >= 0) {
        r->pending -= (unsigned)rc < r->pending ? (unsigned)rc : r->pending;
        return 0;
    }
    if (errno == ETIME || errno == EINTR || errno == EAGAIN || errno == EBUSY)
        return 0;  /* nothing in time, a signal, or a full CQ: the caller reaps, retries */
    return -errno;
}

struct nvme_uring_cqe *nvme_uring_cqe(struct nvme_uring *r)
{
    uint32_t head = *r->cq_head;

    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
        return NULL;
    return &r->cqes[head & r->cq_mask];
}

void nvme_uring_seen(struct nvme_uring *r)
{
    __atomic_store_n(r->cq_head, *r->cq_head + 1u, __ATOMIC_RELEASE);
}

void nvme_uring_exit(struct nvme_uring *r)
{
    if (r->sqes)
        munmap(r->sqes, r->sqes_len);
    if (r->cq_ring)
        munmap(r->cq_ring, r->cq_len);
    if (r->sq_ring)
        munmap(r->sq_ring, r->sq_len);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}
