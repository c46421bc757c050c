/*
 * nvme_c.h - the NVMe driver's data path, in C, through the udriver ABI table.
 *
 * Python (udriver_nvme) does the control path: controller reset and enable, Identify,
 * queue creation, shutdown.  It allocates every DMA buffer with the runtime and hands C
 * their addresses in the structs below.  C builds PRPs, fills submission queues, rings
 * doorbells and reaps completion queues.  MMIO goes only through `struct udriver_api`
 * (udriver.h, ABI 1.0); C touches DMA memory and the eventfds of MSI-X vectors, nothing
 * else.  Every function returns 0 or -errno and never aborts.
 */
#ifndef NVME_C_H
#define NVME_C_H

#include <stddef.h>
#include <stdint.h>

#include "udriver.h"
#include "nvme_regs.h"

/* One submission/completion queue pair (NVMe 1.4 4.1). */
struct nvme_queue {
    void *sq;             /* `depth` 64-byte SQEs, page-aligned DMA memory */
    void *cq;             /* `depth` 16-byte CQEs, page-aligned DMA memory */
    uint32_t sq_db;       /* BAR0 offset of SQyTDBL */
    uint32_t cq_db;       /* BAR0 offset of CQyHDBL */
    uint16_t qid;
    uint16_t depth;       /* entries (a queue holds at most depth - 1 commands) */
    uint16_t sq_tail;
    uint16_t sq_head;     /* the last SQ Head Pointer the controller reported */
    uint16_t cq_head;
    uint16_t phase;       /* Phase Tag a new CQE carries (starts at 1, 4.6) */
    int32_t irq_fd;       /* eventfd of the CQ's MSI-X vector; -1: polled */
    uint64_t wakeups;     /* eventfd reads that returned a count */
};

/* Per-command data buffers and PRP list pages ("slots"), carved out of two DMA buffers. */
struct nvme_bufs {
    uint8_t *data;        /* slots * slot_bytes */
    uint64_t *prp;        /* slots * prp_pages * page_size */
    uint64_t data_iova;
    uint64_t prp_iova;
    uint32_t slot_bytes;  /* largest transfer of one command, a multiple of page_size */
    uint32_t prp_pages;   /* PRP list pages per slot */
    uint32_t slots;
    uint32_t page_size;   /* CC.MPS memory page size */
};

/* A workload run straight on the queues (the direct path). */
#define NVME_JOB_SEQREAD 0u
#define NVME_JOB_RANDREAD 1u
#define NVME_JOB_SEQWRITE 2u
#define NVME_JOB_RANDWRITE 3u

struct nvme_job {
    uint64_t lba_start;   /* the region the job touches */
    uint64_t lba_count;
    uint64_t max_ios;     /* stop after this many commands (0: no limit) */
    uint64_t duration_ns; /* stop issuing after this long (0: no limit) */
    uint64_t seed;        /* random LBAs and the generation stamped by verify writes */
    uint64_t *lat_ns;     /* optional latency samples, one per completion */
    uint64_t lat_cap;
    uint32_t nsid;
    uint32_t lba_bytes;
    uint32_t rw;          /* NVME_JOB_* */
    uint32_t bs;          /* bytes per command, a multiple of lba_bytes */
    uint32_t qd;          /* commands in flight */
    uint32_t verify;      /* writes stamp a tag per block; reads check it */
    uint32_t timeout_ms;  /* no completion for this long: stop with -ETIMEDOUT */
    uint32_t reserved;
};

struct nvme_job_result {
    uint64_t ios;
    uint64_t bytes;
    uint64_t elapsed_ns;
    uint64_t lat_count;
    uint64_t verify_errors;       /* blocks whose tag or CRC did not match */
    uint64_t first_verify_lba;
    uint64_t failed;              /* commands completed with a non-zero status */
    uint64_t first_failed_lba;
    uint32_t first_failed_status; /* CQE status field (bits 15:1 of DW3 31:16) */
    uint32_t reserved;
};

/* The NBD server loop (nvme_nbd.c). `why`: 0 EOF, 1 NBD_CMD_DISC, 2 stop_fd readable.
 * The ublk server (nvme_ublk.c) fills the same struct (`why` 0 aborted, 2 stopped) and the
 * cost counters after `why`, which say where a request's time goes (docs/storage.md). */
struct nvme_nbd_stats {
    uint64_t requests;        /* replies sent */
    uint64_t errors;          /* replies with a non-zero error */
    uint64_t sync_requests;   /* large, FUA or refused requests done one step at a time */
    uint32_t why;
    uint32_t reserved;
    uint64_t enters;          /* ublk: io_uring_enter(2) calls */
    uint64_t sleeps;          /* ublk: of those, the ones that waited for a completion */
    uint64_t irqs;            /* ublk: MSI-X wake-ups of the I/O queue's eventfd */
    uint64_t sq_rings;        /* ublk: SQ Tail doorbell writes (MMIO) */
    uint64_t cq_rings;        /* ublk: CQ Head doorbell writes (MMIO) */
};

int nvme_c_check_api(uintptr_t api);
int nvme_prp_build(uint64_t iova, uint64_t len, uint32_t page_size, uint64_t *list,
                   uint64_t list_iova, uint32_t list_pages, uint64_t *prp1, uint64_t *prp2);
int nvme_submit(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_sqe *sqe);
int nvme_cmd_sync(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_sqe *sqe,
                  uint32_t timeout_ms, struct nvme_cqe *out);
int nvme_io_sync(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                 uint32_t opcode, uint32_t nsid, uint64_t slba, uint32_t nblocks,
                 uint32_t lba_bytes, uint32_t timeout_ms, struct nvme_cqe *out);
int nvme_job_run(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                 const struct nvme_job *job, struct nvme_job_result *res);
int nvme_nbd_serve(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                   int sock, int stop_fd, uint32_t nsid, uint32_t lba_bytes, uint64_t nblocks,
                   uint32_t qd, uint32_t timeout_ms, struct nvme_nbd_stats *st);
/* ublk server (nvme_ublk.c): `depth` tags on the char device `cfd`, tag i = slot i; writes
 * one byte to `ready_fd` once every tag is fetched; `st->why` 0 aborted, 2 stopped. */
int nvme_ublk_serve(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                    int cfd, int ready_fd, int stop_fd, uint32_t nsid, uint32_t lba_bytes,
                    uint64_t nblocks, uint32_t depth, uint32_t timeout_ms,
                    struct nvme_nbd_stats *st);
uint32_t nvme_crc32c(uint32_t crc, const void *buf, size_t len);
void nvme_tag_fill(uint8_t *block, uint32_t lba_bytes, uint64_t lba, uint64_t gen);
int nvme_tag_check(const uint8_t *block, uint32_t lba_bytes, uint64_t lba);

#endif /* NVME_C_H */
