/*
 * nvme_tag.c - CRC32C and the per-block verify tag written and checked by verify jobs.
 *
 * CRC32C is the Castagnoli CRC (polynomial 0x1EDC6F41, reflected 0x82F63B78; RFC 3720
 * B.4), the checksum fio's verify=crc32c uses.  A tagged block of `lba_bytes` (>= 64):
 *   bytes  0..7   magic "udrvNVMe"
 *   bytes  8..15  the block's LBA (little endian)
 *   bytes 16..23  the generation (the job's seed)
 *   bytes 24..27  CRC32C of the whole block with these four bytes zero
 *   bytes 28..    a xorshift64 stream seeded from LBA and generation
 * A check fails when the magic, the LBA or the CRC does not match: a lost, torn,
 * misdirected or corrupted write.
 */
#include <string.h>

#include "nvme_c.h"

static const uint8_t magic[8] = {'u', 'd', 'r', 'v', 'N', 'V', 'M', 'e'};

uint32_t nvme_crc32c(uint32_t crc, const void *buf, size_t len)
{
    static uint32_t table[256];
    static int ready;
    const uint8_t *p = buf;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void nvme_tag_fill(uint8_t *block, uint32_t lba_bytes, uint64_t lba, uint64_t gen)
{
    uint64_t x = (lba + 1u) * 0x9E3779B97F4A7C15ull ^ gen;

    memcpy(block, magic, 8);
    put64(block + 8, lba);
    put64(block + 16, gen);
    memset(block + 24, 0, 4);
    for (uint32_t off = 28; off < lba_bytes; off++) {
        if (((off - 28u) & 7u) == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        block[off] = (uint8_t)(x >> (8 * ((off - 28u) & 7u)));
    }
    uint32_t crc = nvme_crc32c(0, block, lba_bytes);
    for (int i = 0; i < 4; i++)
        block[24 + i] = (uint8_t)(crc >> (8 * i));
}

/* 0: the block carries a valid tag for `lba`; 1: it does not. */
int nvme_tag_check(const uint8_t *block, uint32_t lba_bytes, uint64_t lba)
{
    static const uint8_t zero[4];
    uint32_t want = 0, crc;

    if (memcmp(block, magic, 8) != 0 || get64(block + 8) != lba)
        return 1;
    for (int i = 3; i >= 0; i--)
        want = (want << 8) | block[24 + i];
    crc = nvme_crc32c(0, block, 24);
    crc = nvme_crc32c(crc, zero, 4);
    crc = nvme_crc32c(crc, block + 28, lba_bytes - 28u);
    return crc != want;
}
