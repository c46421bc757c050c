/*
 * nvme_ublk.c - the ublk server's data path: block requests of /dev/ublkbN, fetched over
 * io_uring from /dev/ublkcN, become NVMe commands on the I/O queue; each answer re-fetches.
 *
 * linux/ublk_cmd.h (drivers/block/ublk_drv.c): the server issues UBLK_U_IO_FETCH_REQ
 * (IORING_OP_URING_CMD, `struct ublksrv_io_cmd` {q_id, tag, result, addr} in the SQE's
 * command bytes) once per tag, `addr` being that tag's buffer. A block request completes
 * the tag's command (CQE res UBLK_IO_RES_OK, user_data = the tag); its description is in
 * the read-only array of `struct ublksrv_io_desc` mmap'd from the char device at
 * UBLKSRV_CMD_BUF_OFFSET (queue 0), and for a WRITE the kernel has already copied the data
 * into `addr`. The server answers with UBLK_U_IO_COMMIT_AND_FETCH_REQ carrying the result
 * (bytes done, or -errno); for a READ the kernel copies `addr` into the request then.
 * UBLK_IO_RES_ABORT (-ENODEV) means the device is going away: no re-fetch for that tag.
 *
 * Tag i's buffer is DMA slot i (the parent set max_io_buf_bytes = the slot size, so no
 * request is larger) and its NVMe command carries CID i, so the data goes between the
 * kernel and the controller without another copy. Rules, as in nvme_nbd.c: whole logical
 * blocks inside the namespace, else -EINVAL; READ -> NVMe Read (NVMe 1.4 6.9), WRITE ->
 * NVMe Write (6.15), FLUSH -> every command in flight completes, then an NVMe Flush (6.8)
 * (the parent set UBLK_ATTR_VOLATILE_CACHE and no FUA, so the block layer sends flushes
 * and turns FUA writes into write + flush); a non-zero NVMe status is -EIO; any other op
 * (DISCARD, WRITE_ZEROES: not advertised) -EOPNOTSUPP. `stop_fd` readable, or every tag
 * aborted, ends the loop after the commands in flight completed and were answered.
 *
 * Cost: every MMIO write is an exit into QEMU that waits for its big lock (tens of us
 * under TCG on a busy host), so the loop writes one SQ Tail doorbell per batch of fetched
 * requests and the CQ Head doorbell only once `cq_lazy` consumed entries wait for release
 * (half the spare entries: 48 of a 128-entry CQ for 32 tags). The host releases entries by
 * writing CQyHDBL (NVMe 1.4 3.1.25) after as many as it likes; the CQ never fills while
 * unreleased entries plus commands in flight stay below its size (4.1.2 "Full Queue"), and
 * a reap releases once `cq_lazy` are pending, so at most cq_lazy - 1 + depth are in use.
 * `st` counts enters, sleeps, wake-ups and doorbells.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nvme_c.h"
#include "nvme_queue.h"
#include "nvme_uring.h"

/* _IOWR('u', 0x20 / 0x21, struct ublksrv_io_cmd): 3 << 30 | 16 << 16 | 'u' << 8 | nr */
#define UBLK_U_IO_FETCH_REQ 0xC0107520u
#define UBLK_U_IO_COMMIT_AND_FETCH_REQ 0xC0107521u
#define UBLK_IO_OP_READ 0u
#define UBLK_IO_OP_WRITE 1u
#define UBLK_IO_OP_FLUSH 2u
#define UBLK_MAX_QUEUE_DEPTH 4096u
#define POLLIN_EV 0x0001u
#define STOP_DATA (1ull << 32)
#define IRQ_DATA (2ull << 32)

struct ublk_io_desc { uint32_t op_flags, nr_sectors; uint64_t start_sector, addr; };
struct ublk_io_cmd { uint16_t q_id, tag; int32_t result; uint64_t addr; };

struct usrv {
    uintptr_t api, dev;
    struct nvme_queue *q;
    const struct nvme_bufs *b;
    struct nvme_uring r;
    const struct ublk_io_desc *iod;
    int cfd;
    uint32_t nsid, lba_bytes, timeout_ms, depth, inflight, aborted;
    uint16_t cq_rung;  /* the CQ Head the controller was last given (CQyHDBL) */
    uint16_t cq_lazy;  /* ring CQyHDBL once this many consumed entries are unreleased */
    uint64_t nblocks;
    struct nvme_nbd_stats *st;
    uint32_t len[UBLK_MAX_QUEUE_DEPTH];
};

static int queue_cmd(struct usrv *s, uint32_t op, uint16_t tag, int32_t result)
{
    struct nvme_uring_sqe *sqe = nvme_uring_sqe(&s->r);
    struct ublk_io_cmd c = {0, tag, result, (uint64_t)(uintptr_t)(s->b->data +
                                                         (uint64_t)tag * s->b->slot_bytes)};
    if (!sqe)
        return -ENOSPC;  /* cannot happen: the ring holds depth + 2 entries */
    sqe->opcode = NVME_IORING_OP_URING_CMD;
    sqe->fd = s->cfd;
    sqe->cmd_op = op;
    sqe->user_data = tag;
    memcpy(sqe->cmd, &c, sizeof(c));
    if (op == UBLK_U_IO_COMMIT_AND_FETCH_REQ) {
        s->st->requests++;
        s->st->errors += result < 0;
    }
    return 0;
}

static int poll_fd(struct usrv *s, int fd, uint64_t data)
{
    struct nvme_uring_sqe *sqe = nvme_uring_sqe(&s->r);
    if (!sqe)
        return -ENOSPC;
    sqe->opcode = NVME_IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->op_flags = POLLIN_EV;
    sqe->user_data = data;
    return 0;
}

/* Give the controller the CQ Head if `force` or enough entries wait for release (4.6). */
static int cq_release(struct usrv *s, int force)
{
    uint32_t unreleased = ((uint32_t)s->q->cq_head + s->q->depth - s->cq_rung) % s->q->depth;
    int rc;

    if (unreleased == 0 || (!force && unreleased < s->cq_lazy))
        return 0;
    if ((rc = nvme_cq_ring(s->api, s->dev, s->q)) != 0)
        return rc;
    s->cq_rung = s->q->cq_head;
    s->st->cq_rings++;
    return 0;
}

/* Answer what the controller completed; wait up to `wait_ms` (polled) for the first. */
static int reap(struct usrv *s, uint32_t wait_ms, uint64_t *last)
{
    struct nvme_cqe c[64];
    unsigned n = nvme_cq_take(s->q, c, 64);
    int rc;

    if (n == 0) {
        uint64_t now = nvme_now_ns();
        if (s->inflight && now - *last >= (uint64_t)s->timeout_ms * 1000000u)
            return nvme_stall_reason(s->api, s->dev);
        return wait_ms ? nvme_cq_wait(s->q, wait_ms) : 0;
    }
    if ((rc = cq_release(s, 0)) != 0)
        return rc;
    *last = nvme_now_ns();
    for (unsigned i = 0; i < n; i++) {
        uint16_t tag = c[i].cid;
        if (tag >= s->depth || s->inflight == 0)
            return -EPROTO;
        s->inflight--;
        if ((rc = queue_cmd(s, UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag,
                            (c[i].status >> 1) ? -EIO : (int32_t)s->len[tag])) != 0)
            return rc;
    }
    return 0;
}

/* Every command in flight completes and is answered; the CQ Head is released. */
static int drain(struct usrv *s)
{
    uint64_t last = nvme_now_ns();
    int rc = nvme_sq_ring(s->api, s->dev, s->q);
    s->st->sq_rings++;
    while (rc == 0 && s->inflight > 0)
        rc = reap(s, 10, &last);
    return rc ? rc : cq_release(s, 1);
}

/* One fetched request (tag `tag`): queue its NVMe command, or answer it at once. */
static int request(struct usrv *s, uint16_t tag, int *pushed)
{
    const struct ublk_io_desc *d = &s->iod[tag];
    uint32_t op = d->op_flags & 0xFFu;
    uint64_t bytes = (uint64_t)d->nr_sectors << 9, off = d->start_sector << 9;
    int inside = bytes > 0 && off % s->lba_bytes == 0 && bytes % s->lba_bytes == 0 &&
                 bytes <= s->b->slot_bytes && off / s->lba_bytes + bytes / s->lba_bytes <= s->nblocks;
    struct nvme_sqe sqe;
    struct nvme_cqe cqe;
    int rc;

    if (op == UBLK_IO_OP_FLUSH) {
        s->st->sync_requests++;
        if ((rc = drain(s)) != 0 ||
            (rc = nvme_build_rw(s->b, tag, NVME_CMD_FLUSH, s->nsid, 0, 0, s->lba_bytes, &sqe)) != 0 ||
            (rc = nvme_cmd_sync(s->api, s->dev, s->q, &sqe, s->timeout_ms, &cqe)) != 0)
            return rc;
        s->cq_rung = s->q->cq_head;  /* nvme_cmd_sync released what it took */
        return queue_cmd(s, UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, (cqe.status >> 1) ? -EIO : 0);
    }
    if (op != UBLK_IO_OP_READ && op != UBLK_IO_OP_WRITE)
        return queue_cmd(s, UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, -EOPNOTSUPP);
    if (!inside)
        return queue_cmd(s, UBLK_U_IO_COMMIT_AND_FETCH_REQ, tag, -EINVAL);
    s->len[tag] = (uint32_t)bytes;
    if ((rc = nvme_build_rw(s->b, tag, op == UBLK_IO_OP_READ ? NVME_CMD_READ : NVME_CMD_WRITE,
                            s->nsid, off / s->lba_bytes, (uint32_t)(bytes / s->lba_bytes),
                            s->lba_bytes, &sqe)) != 0 ||
        (rc = nvme_sq_push(s->q, &sqe)) != 0)
        return rc;
    s->inflight++;
    *pushed = 1;
    return 0;
}

static int setup(struct usrv *s, int stop_fd)
{
    size_t map = ((size_t)s->depth * sizeof(struct ublk_io_desc) + 4095u) & ~(size_t)4095u;
    void *p = mmap(NULL, map, PROT_READ, MAP_SHARED | MAP_POPULATE, s->cfd, 0);
    int rc;

    if (p == MAP_FAILED)
        return -errno;
    s->iod = p;
    if ((rc = nvme_uring_init(&s->r, s->depth + 2u < 8u ? 8u : s->depth + 2u)) != 0)
        return rc;
    for (uint32_t t = 0; t < s->depth; t++)
        if ((rc = queue_cmd(s, UBLK_U_IO_FETCH_REQ, (uint16_t)t, 0)) != 0)
            return rc;
    if ((rc = poll_fd(s, stop_fd, STOP_DATA)) != 0 ||
        (s->q->irq_fd >= 0 && (rc = poll_fd(s, s->q->irq_fd, IRQ_DATA)) != 0))
        return rc;
    return nvme_uring_enter(&s->r, 0, 0);
}

int nvme_ublk_serve(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                    int cfd, int ready_fd, int stop_fd, uint32_t nsid, uint32_t lba_bytes,
                    uint64_t nblocks, uint32_t depth, uint32_t timeout_ms,
                    struct nvme_nbd_stats *st)
{
    static struct usrv s;  /* one server per process */
    uint64_t last = nvme_now_ns();
    int rc, stopping = 0;

    if (depth == 0 || depth > b->slots || depth > UBLK_MAX_QUEUE_DEPTH || depth >= q->depth ||
        lba_bytes < 512u || b->slot_bytes % lba_bytes)
        return -EINVAL;
    memset(&s, 0, sizeof(s));
    memset(st, 0, sizeof(*st));
    s.r.fd = -1;
    s.api = api; s.dev = dev; s.q = q; s.b = b; s.cfd = cfd; s.st = st; s.depth = depth;
    s.nsid = nsid; s.lba_bytes = lba_bytes; s.nblocks = nblocks; s.timeout_ms = timeout_ms;
    /* Unreleased entries + commands in flight must stay below q->depth (see the top). */
    s.cq_rung = q->cq_head;
    s.cq_lazy = (uint16_t)((q->depth - depth) / 2u ? (q->depth - depth) / 2u : 1u);
    if ((rc = setup(&s, stop_fd)) != 0)
        goto out;
    if (write(ready_fd, "r", 1) != 1) {  /* every tag fetched: Python asks for START_DEV */
        rc = -errno;
        goto out;
    }
    while (!stopping && s.aborted < depth) {
        struct nvme_uring_cqe *c;
        int pushed = 0;
        /* Idle: sleep in the kernel until a request, a stop or (MSI-X) a completion. */
        uint32_t wait = s.inflight == 0 ? 200u : (q->irq_fd >= 0 ? 10u : 0u);
        st->enters++;
        st->sleeps += wait != 0;
        if ((rc = nvme_uring_enter(&s.r, wait ? 1u : 0u, wait)) != 0)
            goto out;
        while ((c = nvme_uring_cqe(&s.r)) != NULL) {
            uint64_t data = c->user_data;
            int32_t res = c->res;
            nvme_uring_seen(&s.r);
            if (data == STOP_DATA) {
                st->why = 2;
                stopping = 1;
            } else if (data == IRQ_DATA) {
                uint64_t count;  /* the CQ's vector fired: consume it, re-arm, reap below */
                if (read(q->irq_fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
                    q->wakeups++;
                st->irqs++;
                if ((rc = poll_fd(&s, q->irq_fd, IRQ_DATA)) != 0)
                    goto out;
            } else if (res == -ENODEV) {  /* UBLK_IO_RES_ABORT: the device is going away */
                s.aborted++;
            } else if (res < 0) {
                rc = res;  /* the kernel refused a command: a protocol error of ours */
                goto out;
            } else if ((rc = request(&s, (uint16_t)data, &pushed)) != 0) {
                goto out;
            }
        }
        if (pushed) {
            st->sq_rings++;
            if ((rc = nvme_sq_ring(api, dev, q)) != 0)
                goto out;
        }
        if (s.inflight == 0)
            last = nvme_now_ns();
        else if ((rc = reap(&s, q->irq_fd >= 0 ? 0u : 1u, &last)) != 0)
            goto out;
    }
    rc = drain(&s);  /* answer what is in flight; its re-fetches stay until the ring goes */
    if (rc == 0)
        rc = nvme_uring_enter(&s.r, 0, 0);
out:
    nvme_uring_exit(&s.r);
    if (s.iod)
        munmap((void *)s.iod, ((size_t)depth * sizeof(struct ublk_io_desc) + 4095u) & ~(size_t)4095u);
    return rc;
}
