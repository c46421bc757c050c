/* nvme_queue.h - queue helpers shared by the data path's C files (not part of the cdef). */
#ifndef NVME_QUEUE_H
#define NVME_QUEUE_H

#include "nvme_c.h"

uint64_t nvme_now_ns(void);
int nvme_sq_push(struct nvme_queue *q, const struct nvme_sqe *sqe);
int nvme_sq_ring(uintptr_t api, uintptr_t dev, struct nvme_queue *q);
unsigned nvme_cq_take(struct nvme_queue *q, struct nvme_cqe *out, unsigned max);
int nvme_cq_ring(uintptr_t api, uintptr_t dev, struct nvme_queue *q);
int nvme_cq_wait(struct nvme_queue *q, uint32_t ms);
int nvme_stall_reason(uintptr_t api, uintptr_t dev);
/* Fill `sqe` for Read/Write/Flush of `nblocks` at `slba` through slot `slot` (CID = slot). */
int nvme_build_rw(const struct nvme_bufs *b, uint32_t slot, uint32_t opcode, uint32_t nsid,
                  uint64_t slba, uint32_t nblocks, uint32_t lba_bytes, struct nvme_sqe *sqe);

#endif /* NVME_QUEUE_H */
