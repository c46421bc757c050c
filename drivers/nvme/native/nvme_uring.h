/* nvme_uring.h - the minimal io_uring of nvme_uring.c (not part of the cdef). */
#ifndef NVME_URING_H
#define NVME_URING_H

#include <stddef.h>
#include <stdint.h>

/* struct io_uring_sqe (64 bytes), the fields ublk's server uses (linux/io_uring.h). */
struct nvme_uring_sqe {
    uint8_t opcode;
    uint8_t flags;
    uint16_t ioprio;
    int32_t fd;
    uint32_t cmd_op;       /* union with `off`: URING_CMD's command */
    uint32_t pad1;
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags;     /* poll32_events for POLL_ADD */
    uint64_t user_data;
    uint16_t buf_index;
    uint16_t personality;
    uint32_t file_index;
    uint8_t cmd[16];       /* URING_CMD's 16 command bytes (addr3, pad2) */
};

struct nvme_uring_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

#define NVME_IORING_OP_POLL_ADD 6
#define NVME_IORING_OP_URING_CMD 46

struct nvme_uring {
    int fd;
    unsigned pending;      /* SQEs written but not yet taken by the kernel */
    uint32_t local_tail, sq_mask, cq_mask, sq_entries;
    uint32_t *sq_tail, *sq_array, *cq_head, *cq_tail;
    struct nvme_uring_sqe *sqes;
    struct nvme_uring_cqe *cqes;
    void *sq_ring, *cq_ring;
    size_t sq_len, cq_len, sqes_len;
};

int nvme_uring_init(struct nvme_uring *r, unsigned entries);
/* A zeroed SQE to fill, or NULL if `entries` are already waiting to be submitted. */
struct nvme_uring_sqe *nvme_uring_sqe(struct nvme_uring *r);
/* Submit what is pending; with `min_complete`, wait up to `wait_ms` for that many CQEs. */
int nvme_uring_enter(struct nvme_uring *r, unsigned min_complete, uint32_t wait_ms);
/* The next CQE or NULL; `nvme_uring_seen` hands it back to the kernel. */
struct nvme_uring_cqe *nvme_uring_cqe(struct nvme_uring *r);
void nvme_uring_seen(struct nvme_uring *r);
void nvme_uring_exit(struct nvme_uring *r);

#endif /* NVME_URING_H */
