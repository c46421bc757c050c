/*
 * nvme_prp.c - Physical Region Page entries and lists (NVMe 1.4 4.3, Figure 108-110).
 *
 * Rules implemented:
 *  - PRP1 is the buffer's address and may have a page offset (dword aligned: bits 1:0 = 0).
 *  - If the transfer ends inside PRP1's page, PRP2 is unused (0).
 *  - If it ends inside the next page, PRP2 is that page's address (offset 0).
 *  - Otherwise PRP2 points to a PRP list: page addresses (offset 0) of every page after the
 *    first.  A list fills at most one memory page; when more entries are needed, the last
 *    entry of a list page points to the next list page instead of to data.
 * The memory page size is CC.MPS's (2 ^ (12 + MPS)); the data buffer is IOVA-contiguous.
 */
#include <errno.h>

#include "nvme_c.h"

int nvme_prp_build(uint64_t iova, uint64_t len, uint32_t page_size, uint64_t *list,
                   uint64_t list_iova, uint32_t list_pages, uint64_t *prp1, uint64_t *prp2)
{
    if (len == 0 || page_size < 4096u || (page_size & (page_size - 1u)) || (iova & 3u))
        return -EINVAL;
    uint64_t mask = page_size - 1u;
    uint64_t first = page_size - (iova & mask);   /* bytes PRP1's page holds */
    uint64_t next = (iova & ~mask) + page_size;   /* the page after PRP1's */

    *prp1 = iova;
    *prp2 = 0;
    if (len <= first)
        return 0;
    uint64_t pages = (len - first + mask) / page_size;  /* pages after the first */
    if (pages == 1) {
        *prp2 = next;
        return 0;
    }
    uint64_t per = page_size / 8u;                     /* entries per list page */
    uint64_t need = (pages - 1u + (per - 2u)) / (per - 1u);  /* ceil((pages-1)/(per-1)) */
    if (need == 0)
        need = 1;
    if (list == NULL || (list_iova & mask) || need > list_pages)
        return -E2BIG;
    uint64_t page = 0, slot = 0;
    for (uint64_t i = 0; i < pages; i++) {
        if (slot == per - 1u && i != pages - 1u) {    /* chain to the next list page */
            list[page * per + slot] = list_iova + (page + 1u) * page_size;
            page++;
            slot = 0;
        }
        list[page * per + slot++] = next + i * page_size;
    }
    *prp2 = list_iova;
    return 0;
}
