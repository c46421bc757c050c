/*
 * nvme_nbd.c - the NBD server's data path: NBD requests from the bridge socket become NVMe
 * commands on the I/O queue, up to `qd` in flight, and replies go back as commands complete.
 *
 * NBD transmission phase (linux/nbd.h; the NBD protocol, "Transmission"): a 28-byte request
 * (magic 0x25609513, type = flags << 16 | command, 8-byte handle, offset, length; big-endian),
 * a WRITE's payload after it; a 16-byte reply (magic 0x67446698, error, handle), a READ's
 * data after it. Replies may come in any order: the handle ties them to requests.
 *
 * Rules, as in udriver_nvme/_nbd.py (the Python server, which this replaces for speed):
 * whole logical blocks inside the namespace, else EINVAL; READ -> NVMe Read (6.9), WRITE ->
 * NVMe Write (6.15), a FUA write or FLUSH -> every command in flight completes, then an NVMe
 * Flush (6.8); TRIM is acknowledged; a non-zero NVMe status is EIO; DISC, EOF or `stop_fd`
 * readable end the loop after the commands in flight completed. A transfer larger than a
 * slot is done in slot-sized steps with nothing else in flight. Slot i carries CID i.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nvme_c.h"
#include "nvme_queue.h"

#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_REPLY_MAGIC 0x67446698u
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_TRIM 4u
#define NBD_CMD_FLAG_FUA (1u << 16)
#define MAX_SLOTS 1024u

struct srv {
    uintptr_t api, dev;
    struct nvme_queue *q;
    const struct nvme_bufs *b;
    int sock;
    uint32_t nsid, lba_bytes, timeout_ms, inflight, nfree, polled;
    uint64_t nblocks;
    struct nvme_nbd_stats *st;
    uint8_t handle[MAX_SLOTS][8];
    uint32_t cmd[MAX_SLOTS], len[MAX_SLOTS], free_slots[MAX_SLOTS];
};

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static int recv_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (uint8_t *)buf + got, n - got, MSG_WAITALL);
        if (r == 0)
            return got ? -EPIPE : 1;  /* 1: clean EOF before a request */
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return 0;
}

/* Write every byte of `iov` (sendmsg(2) may stop short on a stream socket). */
static int sendv(int sock, struct iovec *iov, int cnt)
{
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    while (m.msg_iovlen > 0) {
        ssize_t w = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (m.msg_iovlen > 0 && (size_t)w >= m.msg_iov[0].iov_len) {
            w -= (ssize_t)m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen > 0) {
            m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + w;
            m.msg_iov[0].iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void reply_header(struct srv *s, uint8_t *h, const uint8_t *handle, uint32_t err)
{
    put32(h, NBD_REPLY_MAGIC);
    put32(h + 4, err);
    memcpy(h + 8, handle, 8);
    s->st->requests++;
    s->st->errors += err != 0;
}

static int send_reply(struct srv *s, const uint8_t *handle, uint32_t err, const void *data,
                      size_t n)
{
    uint8_t h[16];
    struct iovec iov[2] = {{h, sizeof(h)}, {(void *)data, n}};

    reply_header(s, h, handle, err);
    return sendv(s->sock, iov, (err || !n) ? 1 : 2);
}

#define REAP_MAX 64u

/* Reap what completed (waiting up to `wait_ms` for the first); answer them all with one
 * sendmsg(2), so that the kernel's receive worker wakes once per batch. */
static int reap(struct srv *s, uint32_t wait_ms, uint64_t *last)
{
    static uint8_t hdr[REAP_MAX][16];
    struct iovec iov[2 * REAP_MAX];
    struct nvme_cqe c[REAP_MAX];
    unsigned n = nvme_cq_take(s->q, c, REAP_MAX);
    int rc, k = 0;

    if (n == 0) {
        uint64_t now = nvme_now_ns();
        if (now - *last >= (uint64_t)s->timeout_ms * 1000000u)
            return nvme_stall_reason(s->api, s->dev);
        if (now - *last >= 100000000u && (rc = nvme_stall_reason(s->api, s->dev)) != -ETIMEDOUT)
            return rc;
        return wait_ms ? nvme_cq_wait(s->q, wait_ms) : 0;
    }
    if ((rc = nvme_cq_ring(s->api, s->dev, s->q)) != 0)
        return rc;
    *last = nvme_now_ns();
    for (unsigned i = 0; i < n; i++) {
        uint32_t slot = c[i].cid;
        if (slot >= s->b->slots || s->inflight == 0)
            return -EPROTO;
        uint32_t err = (c[i].status >> 1) ? EIO : 0;
        reply_header(s, hdr[i], s->handle[slot], err);
        iov[k++] = (struct iovec){hdr[i], 16};
        if (s->cmd[slot] == NBD_CMD_READ && err == 0)
            iov[k++] = (struct iovec){s->b->data + (uint64_t)slot * s->b->slot_bytes, s->len[slot]};
        s->free_slots[s->nfree++] = slot;
        s->inflight--;
    }
    return sendv(s->sock, iov, k);
}

static int drain(struct srv *s)
{
    uint64_t last = nvme_now_ns();
    int rc = 0;
    while (s->inflight > 0 && rc == 0)
        rc = reap(s, 10, &last);
    return rc;
}

static int submit(struct srv *s, uint32_t slot, uint32_t opcode, uint64_t lba, uint32_t n)
{
    struct nvme_sqe sqe;
    int rc = nvme_build_rw(s->b, slot, opcode, s->nsid, lba, n, s->lba_bytes, &sqe);
    return rc ? rc : nvme_sq_push(s->q, &sqe);
}

/* One command with nothing else in flight (FLUSH, and transfers larger than a slot). */
static int sync_cmd(struct srv *s, uint32_t opcode, uint64_t lba, uint32_t n, uint32_t *err)
{
    struct nvme_sqe sqe;
    struct nvme_cqe cqe;
    int rc = nvme_build_rw(s->b, 0, opcode, s->nsid, lba, n, s->lba_bytes, &sqe);
    if (rc == 0)
        rc = nvme_cmd_sync(s->api, s->dev, s->q, &sqe, s->timeout_ms, &cqe);
    if (rc == 0 && (cqe.status >> 1))
        *err = EIO;
    return rc;
}

static int big_transfer(struct srv *s, const uint8_t *h, uint32_t cmd, uint64_t lba, uint32_t len,
                        int fua)
{
    uint32_t per = s->b->slot_bytes / s->lba_bytes, err = 0;
    uint8_t *buf = s->b->data;
    int rc;

    s->st->sync_requests++;
    if (cmd == NBD_CMD_READ) {  /* the reply header goes first: an error later closes */
        if ((rc = send_reply(s, h, 0, NULL, 0)) != 0)
            return rc;
    }
    for (uint64_t done = 0; done < len; ) {
        uint32_t n = (uint32_t)((len - done) / s->lba_bytes < per ? (len - done) / s->lba_bytes : per);
        size_t bytes = (size_t)n * s->lba_bytes;
        if (cmd == NBD_CMD_WRITE && (rc = recv_all(s->sock, buf, bytes)) != 0)
            return rc > 0 ? -EPIPE : rc;
        if (err == 0 && (rc = sync_cmd(s, cmd == NBD_CMD_READ ? NVME_CMD_READ : NVME_CMD_WRITE,
                                       lba + done / s->lba_bytes, n, &err)) != 0)
            return rc;
        if (cmd == NBD_CMD_READ) {
            if (err)
                return -EIO;  /* data promised in the header cannot come: end the connection */
            ssize_t w;
            for (size_t off = 0; off < bytes; off += (size_t)w)
                if ((w = send(s->sock, buf + off, bytes - off, MSG_NOSIGNAL)) < 0)
                    return -errno;
        }
        done += bytes;
    }
    if (cmd == NBD_CMD_WRITE && fua && err == 0 &&
        (rc = sync_cmd(s, NVME_CMD_FLUSH, 0, 0, &err)) != 0)  /* durable before the reply */
        return rc;
    return cmd == NBD_CMD_WRITE ? send_reply(s, h, err, NULL, 0) : 0;
}

/* Handle one request; returns 0, 1 (DISC) or -errno. `*pushed` when a command was queued. */
static int request(struct srv *s, const uint8_t *h, int *pushed)
{
    uint32_t type = be32(h + 4), cmd = type & 0xFFFFu, len = be32(h + 24), err = 0;
    uint64_t off = be64(h + 16);
    const uint8_t *handle = h + 8;
    int rc, inside = off % s->lba_bytes == 0 && len % s->lba_bytes == 0 && len > 0 &&
                     off / s->lba_bytes + len / s->lba_bytes <= s->nblocks;

    if (be32(h) != NBD_REQUEST_MAGIC)
        return -EPROTO;
    switch (cmd) {
    case NBD_CMD_DISC:
        return 1;
    case NBD_CMD_FLUSH:
        if ((rc = nvme_sq_ring(s->api, s->dev, s->q)) != 0 || (rc = drain(s)) != 0 ||
            (rc = sync_cmd(s, NVME_CMD_FLUSH, 0, 0, &err)) != 0)
            return rc;
        return send_reply(s, handle, err, NULL, 0);
    case NBD_CMD_TRIM:
        return send_reply(s, handle, inside || len == 0 ? 0 : EINVAL, NULL, 0);
    case NBD_CMD_READ:
    case NBD_CMD_WRITE:
        break;
    default:
        return send_reply(s, handle, EINVAL, NULL, 0);
    }
    if (!inside || len > s->b->slot_bytes || (type & NBD_CMD_FLAG_FUA)) {
        /* Refused, large or FUA: with nothing else in flight, one step at a time. */
        if ((rc = nvme_sq_ring(s->api, s->dev, s->q)) != 0 || (rc = drain(s)) != 0)
            return rc;
        *pushed = 0;
        if (!inside) {
            for (uint32_t left = cmd == NBD_CMD_WRITE ? len : 0; left > 0; ) {  /* skip payload */
                uint32_t n = left < s->b->slot_bytes ? left : s->b->slot_bytes;
                if ((rc = recv_all(s->sock, s->b->data, n)) != 0)
                    return rc > 0 ? -EPIPE : rc;
                left -= n;
            }
            return send_reply(s, handle, EINVAL, NULL, 0);
        }
        return big_transfer(s, handle, cmd, off / s->lba_bytes, len,
                            (type & NBD_CMD_FLAG_FUA) != 0);
    }
    uint32_t slot = s->free_slots[--s->nfree];
    memcpy(s->handle[slot], handle, 8);
    s->cmd[slot] = cmd;
    s->len[slot] = len;
    if (cmd == NBD_CMD_WRITE &&
        (rc = recv_all(s->sock, s->b->data + (uint64_t)slot * s->b->slot_bytes, len)) != 0)
        return rc > 0 ? -EPIPE : rc;
    if ((rc = submit(s, slot, cmd == NBD_CMD_READ ? NVME_CMD_READ : NVME_CMD_WRITE,
                     off / s->lba_bytes, len / s->lba_bytes)) != 0)
        return rc;
    s->inflight++;
    *pushed = 1;
    return 0;
}

int nvme_nbd_serve(uintptr_t api, uintptr_t dev, struct nvme_queue *q, const struct nvme_bufs *b,
                   int sock, int stop_fd, uint32_t nsid, uint32_t lba_bytes, uint64_t nblocks,
                   uint32_t qd, uint32_t timeout_ms, struct nvme_nbd_stats *st)
{
    static struct srv s;  /* large; one server per process */
    uint8_t h[28];
    uint64_t last = nvme_now_ns();
    int rc = 0;

    if (qd == 0 || qd > b->slots || qd > MAX_SLOTS || qd >= q->depth || lba_bytes < 512u ||
        b->slot_bytes % lba_bytes)
        return -EINVAL;
    memset(&s, 0, sizeof(s));
    memset(st, 0, sizeof(*st));
    s.api = api; s.dev = dev; s.q = q; s.b = b; s.sock = sock; s.st = st;
    s.nsid = nsid; s.lba_bytes = lba_bytes; s.nblocks = nblocks; s.timeout_ms = timeout_ms;
    for (uint32_t i = qd; i > 0; i--)
        s.free_slots[s.nfree++] = i - 1u;
    for (;;) {
        int pushed = 0;
        while (s.nfree > 0) {
            int busy = s.inflight > 0 || pushed;
            /* Busy: try the next request without a poll(2) first (one syscall per request
             * while requests flow). */
            ssize_t got = busy ? recv(sock, h, sizeof(h), MSG_DONTWAIT) : -1;
            if (got < 0 && busy && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                rc = -errno;
                goto out;
            }
            if (got < 0) {
                if (pushed)
                    break;  /* ring the doorbell, then look again */
                struct pollfd p[3] = {{sock, POLLIN, 0}, {stop_fd, POLLIN, 0},
                                      {q->irq_fd, POLLIN, 0}};
                /* Idle: sleep until a request or stop. Busy: until a request or (MSI-X) a
                 * completion, at most 10 ms. */
                int n = poll(p, busy && q->irq_fd >= 0 ? 3 : 2, !busy ? 200 : (q->irq_fd >= 0 ? 10 : 0));
                if (n < 0 && errno != EINTR) {
                    rc = -errno;
                    goto out;
                }
                if (n > 0 && busy && q->irq_fd >= 0 && (p[2].revents & POLLIN)) {
                    uint64_t count;  /* the CQ's vector fired: consume it, reap below */
                    if (read(q->irq_fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
                        q->wakeups++;
                }
                if (n > 0 && (p[1].revents & POLLIN)) {
                    st->why = 2;
                    goto finish;
                }
                if (n <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                    break;
                got = -2;  /* readable, nothing read yet */
            } else if (got == 0) {  /* EOF seen by the non-blocking recv */
                st->why = 0;
                goto finish;
            }
            if (got == -2)
                got = 0;
            else if ((++s.polled & 63u) == 0) {  /* requests keep coming: still see a stop */
                struct pollfd ps = {stop_fd, POLLIN, 0};
                if (poll(&ps, 1, 0) > 0) {
                    st->why = 2;
                    goto finish;  /* this request stays unanswered: the kernel fails it */
                }
            }
            if ((size_t)got < sizeof(h) && (rc = recv_all(sock, h + got, sizeof(h) - (size_t)got)) != 0) {
                if (rc > 0 && got == 0) {
                    st->why = 0;
                    rc = 0;
                    goto finish;
                }
                rc = rc > 0 ? -EPIPE : rc;
                goto out;
            }
            if ((rc = request(&s, h, &pushed)) != 0) {
                if (rc == 1) {
                    st->why = 1;
                    rc = 0;
                    goto finish;
                }
                goto out;
            }
        }
        if (pushed && (rc = nvme_sq_ring(api, dev, q)) != 0)
            goto out;
        if (s.inflight == 0) {
            last = nvme_now_ns();
            continue;
        }
        if ((rc = reap(&s, s.nfree == 0 ? 10 : 0, &last)) != 0)
            goto out;
    }
finish:
    rc = drain(&s);
out:
    return rc;
}
