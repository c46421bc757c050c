/* What Python sees (cffi cdef).  API mode: cffi checks these against nvme_c.h. */
struct udriver_dma { void *vaddr; uint64_t size; uint64_t iova; uint32_t mapped; uint32_t reserved; };
struct nvme_sqe { uint32_t cdw0; uint32_t nsid; uint32_t cdw2; uint32_t cdw3; uint64_t mptr;
                  uint64_t prp1; uint64_t prp2; uint32_t cdw10; uint32_t cdw11; uint32_t cdw12;
                  uint32_t cdw13; uint32_t cdw14; uint32_t cdw15; };
struct nvme_cqe { uint32_t dw0; uint32_t dw1; uint16_t sqhd; uint16_t sqid; uint16_t cid;
                  uint16_t status; };
struct nvme_queue { void *sq; void *cq; uint32_t sq_db; uint32_t cq_db; uint16_t qid;
                    uint16_t depth; uint16_t sq_tail; uint16_t sq_head; uint16_t cq_head;
                    uint16_t phase; int32_t irq_fd; uint64_t wakeups; };
struct nvme_bufs { uint8_t *data; uint64_t *prp; uint64_t data_iova; uint64_t prp_iova;
                   uint32_t slot_bytes; uint32_t prp_pages; uint32_t slots; uint32_t page_size; };
struct nvme_job { uint64_t lba_start; uint64_t lba_count; uint64_t max_ios; uint64_t duration_ns;
                  uint64_t seed; uint64_t *lat_ns; uint64_t lat_cap; uint32_t nsid;
                  uint32_t lba_bytes; uint32_t rw; uint32_t bs; uint32_t qd; uint32_t verify;
                  uint32_t timeout_ms; uint32_t reserved; };
struct nvme_job_result { uint64_t ios; uint64_t bytes; uint64_t elapsed_ns; uint64_t lat_count;
                         uint64_t verify_errors; uint64_t first_verify_lba; uint64_t failed;
                         uint64_t first_failed_lba; uint32_t first_failed_status;
                         uint32_t reserved; };
struct nvme_nbd_stats { uint64_t requests; uint64_t errors; uint64_t sync_requests;
                        uint32_t why; uint32_t reserved; uint64_t enters; uint64_t sleeps;
                        uint64_t irqs; uint64_t sq_rings; uint64_t cq_rings; };
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
int nvme_ublk_serve(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                    int cfd, int ready_fd, int stop_fd, uint32_t nsid, uint32_t lba_bytes,
                    uint64_t nblocks, uint32_t depth, uint32_t timeout_ms,
                    struct nvme_nbd_stats *st);
uint32_t nvme_crc32c(uint32_t crc, const void *buf, size_t len);
void nvme_tag_fill(uint8_t *block, uint32_t lba_bytes, uint64_t lba, uint64_t gen);
int nvme_tag_check(const uint8_t *block, uint32_t lba_bytes, uint64_t lba);
