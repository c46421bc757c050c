/*
 * nvme_io.c - NVM I/O commands on an I/O queue pair: one synchronous command for the
 * Python API, and a queue-depth workload loop for the direct path (perf and verify).
 *
 * Read (02h), Write (01h) and Flush (00h) per NVMe 1.4 6.9, 6.15, 6.8: CDW10/11 Starting
 * LBA, CDW12 bits 15:0 Number of Logical Blocks (0's based), DPTR = PRP1/PRP2 (4.3).
 * Command slot i uses data buffer i and PRP list pages i (struct nvme_bufs) and CID i.
 */
#include <errno.h>
#include <string.h>

#include "nvme_c.h"
#include "nvme_queue.h"

#define MAX_QD 1024u
#define REAP_BATCH 64u

int nvme_build_rw(const struct nvme_bufs *b, uint32_t slot, uint32_t opcode, uint32_t nsid,
                    uint64_t slba, uint32_t nblocks, uint32_t lba_bytes, struct nvme_sqe *sqe)
{
    uint64_t len = (uint64_t)nblocks * lba_bytes;
    int rc;

    memset(sqe, 0, sizeof(*sqe));
    sqe->cdw0 = (opcode & 0xFFu) | ((uint32_t)slot << 16);
    sqe->nsid = nsid;
    if (opcode == NVME_CMD_FLUSH)
        return 0;
    if (nblocks == 0 || nblocks > 65536u || len > b->slot_bytes || slot >= b->slots)
        return -EINVAL;
    uint64_t list_bytes = (uint64_t)b->prp_pages * b->page_size;
    rc = nvme_prp_build(b->data_iova + (uint64_t)slot * b->slot_bytes, len, b->page_size,
                        (uint64_t *)((uint8_t *)b->prp + slot * list_bytes),
                        b->prp_iova + slot * list_bytes, b->prp_pages, &sqe->prp1, &sqe->prp2);
    if (rc != 0)
        return rc;
    sqe->cdw10 = (uint32_t)slba;
    sqe->cdw11 = (uint32_t)(slba >> 32);
    sqe->cdw12 = nblocks - 1u;  /* 0's based */
    return 0;
}

int nvme_io_sync(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                 uint32_t opcode, uint32_t nsid, uint64_t slba, uint32_t nblocks,
                 uint32_t lba_bytes, uint32_t timeout_ms, struct nvme_cqe *out)
{
    struct nvme_sqe sqe;
    int rc;

    if (opcode != NVME_CMD_READ && opcode != NVME_CMD_WRITE && opcode != NVME_CMD_FLUSH)
        return -EINVAL;
    if ((rc = nvme_build_rw(b, 0, opcode, nsid, slba, nblocks, lba_bytes, &sqe)) != 0)
        return rc;
    return nvme_cmd_sync(api, dev, q, &sqe, timeout_ms, out);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

struct run {
    const struct nvme_job *job;
    const struct nvme_bufs *b;
    uint64_t rng, issued, seq, start;
    uint32_t nblocks;
    uint64_t units;            /* bs-sized units in the region */
    uint64_t lba[MAX_QD];
    uint64_t t0[MAX_QD];
};

static int want_more(const struct run *r, uint64_t now)
{
    const struct nvme_job *j = r->job;

    if (j->max_ios && r->issued >= j->max_ios)
        return 0;
    return !(j->duration_ns && now - r->start >= j->duration_ns);
}

static int issue(struct run *r, struct nvme_queue *q, uint32_t slot, uint64_t now)
{
    const struct nvme_job *j = r->job;
    int write = j->rw == NVME_JOB_SEQWRITE || j->rw == NVME_JOB_RANDWRITE;
    int rnd = j->rw == NVME_JOB_RANDREAD || j->rw == NVME_JOB_RANDWRITE;
    uint64_t unit = rnd ? xorshift(&r->rng) % r->units : r->seq++ % r->units;
    uint64_t slba = j->lba_start + unit * r->nblocks;
    struct nvme_sqe sqe;
    int rc;

    if (write && j->verify) {
        uint8_t *buf = r->b->data + (uint64_t)slot * r->b->slot_bytes;
        for (uint32_t i = 0; i < r->nblocks; i++)
            nvme_tag_fill(buf + (uint64_t)i * j->lba_bytes, j->lba_bytes, slba + i, j->seed);
    }
    rc = nvme_build_rw(r->b, slot, write ? NVME_CMD_WRITE : NVME_CMD_READ, j->nsid, slba,
                  r->nblocks, j->lba_bytes, &sqe);
    if (rc == 0)
        rc = nvme_sq_push(q, &sqe);
    if (rc == 0) {
        r->lba[slot] = slba;
        r->t0[slot] = now;
        r->issued++;
    }
    return rc;
}

static void complete(struct run *r, const struct nvme_cqe *c, uint64_t now,
                     struct nvme_job_result *res)
{
    const struct nvme_job *j = r->job;
    uint32_t slot = c->cid;
    uint16_t status = (uint16_t)(c->status >> 1);  /* 4.6.1: bits 15:1 */

    if (j->lat_ns && res->lat_count < j->lat_cap)
        j->lat_ns[res->lat_count++] = now - r->t0[slot];
    if (status != 0) {
        if (res->failed++ == 0) {
            res->first_failed_status = status;
            res->first_failed_lba = r->lba[slot];
        }
        return;
    }
    res->ios++;
    res->bytes += (uint64_t)r->nblocks * j->lba_bytes;
    if (j->verify && (j->rw == NVME_JOB_SEQREAD || j->rw == NVME_JOB_RANDREAD)) {
        const uint8_t *buf = r->b->data + (uint64_t)slot * r->b->slot_bytes;
        for (uint32_t i = 0; i < r->nblocks; i++) {
            if (nvme_tag_check(buf + (uint64_t)i * j->lba_bytes, j->lba_bytes, r->lba[slot] + i)
                && res->verify_errors++ == 0)
                res->first_verify_lba = r->lba[slot] + i;
        }
    }
}

/* Keep `qd` commands in flight until max_ios or duration is reached, then drain.  A
 * failed command stops new submissions; the run returns 0 with `failed` counted.  No
 * completion for timeout_ms: -ETIMEDOUT, -EIO (CSTS.CFS) or -ENODEV (device gone). */
int nvme_job_run(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                 const struct nvme_job *job, struct nvme_job_result *res)
{
    static struct run r;  /* large; one job at a time per process */
    struct nvme_cqe cqes[REAP_BATCH];
    uint32_t inflight = 0, free_slots[MAX_QD], nfree = 0;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (job->qd == 0 || job->qd > MAX_QD || job->qd >= q->depth || job->qd > b->slots ||
        job->lba_bytes < 64u || job->bs == 0 || job->bs % job->lba_bytes ||
        job->bs > b->slot_bytes || job->rw > NVME_JOB_RANDWRITE ||
        job->lba_count < job->bs / job->lba_bytes || (!job->max_ios && !job->duration_ns))
        return -EINVAL;
    memset(&r, 0, sizeof(r));
    r.job = job;
    r.b = b;
    r.rng = job->seed ? job->seed : 0x2545F4914F6CDD1Dull;
    r.nblocks = job->bs / job->lba_bytes;
    r.units = job->lba_count / r.nblocks;
    r.start = nvme_now_ns();
    for (uint32_t s = job->qd; s > 0; s--)
        free_slots[nfree++] = s - 1u;

    uint64_t last = r.start, checked = r.start;
    for (;;) {
        uint64_t now = nvme_now_ns();
        int pushed = 0;
        while (nfree > 0 && res->failed == 0 && want_more(&r, now)) {
            if ((rc = issue(&r, q, free_slots[nfree - 1], now)) != 0)
                goto out;
            nfree--;
            inflight++;
            pushed = 1;
        }
        if (pushed && (rc = nvme_sq_ring(api, dev, q)) != 0)
            goto out;
        if (inflight == 0)
            break;
        unsigned n = nvme_cq_take(q, cqes, REAP_BATCH);
        if (n == 0) {
            if (now - last >= (uint64_t)job->timeout_ms * 1000000u) {
                rc = nvme_stall_reason(api, dev);
                goto out;
            }
            /* Quiet for 100 ms: a fatal controller (CSTS.CFS) or a vanished device will
             * never complete; do not wait for the whole timeout. */
            if (now - last >= 100000000u && now - checked >= 100000000u) {
                checked = now;
                if ((rc = nvme_stall_reason(api, dev)) != -ETIMEDOUT)
                    goto out;
                rc = 0;
            }
            if ((rc = nvme_cq_wait(q, 10)) != 0)
                goto out;
            continue;
        }
        if ((rc = nvme_cq_ring(api, dev, q)) != 0)
            goto out;
        last = now = nvme_now_ns();
        for (unsigned i = 0; i < n; i++) {
            if (cqes[i].cid >= job->qd) {
                rc = -EPROTO;   /* not a CID this run issued */
                goto out;
            }
            complete(&r, &cqes[i], now, res);
            free_slots[nfree++] = cqes[i].cid;
            inflight--;
        }
    }
out:
    res->elapsed_ns = nvme_now_ns() - r.start;
    return rc;
}
