/*
 * nvme_regs.h - NVMe controller register map, queue entry layouts and opcodes.
 *
 * Sources (section numbers of the NVM Express Base Specification 1.4, "NVMe 1.4"; the
 * same fields are in Base 2.0 3.1.3 and the NVMe over PCIe Transport Specification):
 *   3.1      controller registers (CAP 3.1.1, VS 3.1.2, CC 3.1.5, CSTS 3.1.6, AQA 3.1.8,
 *            ASQ 3.1.9, ACQ 3.1.10, SQyTDBL 3.1.24, CQyHDBL 3.1.25)
 *   4.2      submission queue entry, 4.3 PRP entries and lists, 4.6 completion queue entry
 *   6.8-6.15 NVM commands (Flush 00h, Write 01h, Read 02h)
 * Register logic lives elsewhere; this header only names things.
 */
#ifndef NVME_REGS_H
#define NVME_REGS_H

#include <stdint.h>

#define NVME_BAR 0u                 /* MLBAR/MUBAR: BAR0/1, 64-bit memory BAR */

/* 3.1 controller registers (byte offsets into BAR0) */
#define NVME_REG_CAP 0x00u          /* 64-bit */
#define NVME_REG_VS 0x08u
#define NVME_REG_INTMS 0x0Cu
#define NVME_REG_INTMC 0x10u
#define NVME_REG_CC 0x14u
#define NVME_REG_CSTS 0x1Cu
#define NVME_REG_AQA 0x24u
#define NVME_REG_ASQ 0x28u          /* 64-bit */
#define NVME_REG_ACQ 0x30u          /* 64-bit */
#define NVME_REG_DBS 0x1000u        /* 3.1.24/25: doorbells, stride 4 << CAP.DSTRD */

/* 3.1.6 CSTS */
#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)     /* Controller Fatal Status */

/* 4.2 Submission Queue Entry (64 bytes).  cdw0: OPC 7:0, FUSE 9:8, PSDT 15:14, CID 31:16 */
struct nvme_sqe {
    uint32_t cdw0;
    uint32_t nsid;
    uint32_t cdw2;
    uint32_t cdw3;
    uint64_t mptr;
    uint64_t prp1;                  /* DPTR, PRP entry 1 (4.3) */
    uint64_t prp2;                  /* DPTR, PRP entry 2 or pointer to a PRP list */
    uint32_t cdw10;
    uint32_t cdw11;
    uint32_t cdw12;
    uint32_t cdw13;
    uint32_t cdw14;
    uint32_t cdw15;
};

/* 4.6 Completion Queue Entry (16 bytes).  status: bit 0 Phase Tag, 15:1 Status Field (4.6.1) */
struct nvme_cqe {
    uint32_t dw0;                   /* command specific */
    uint32_t dw1;
    uint16_t sqhd;                  /* SQ Head Pointer */
    uint16_t sqid;
    uint16_t cid;
    uint16_t status;
};

_Static_assert(sizeof(struct nvme_sqe) == 64, "NVMe 1.4 4.2: an SQE is 64 bytes");
_Static_assert(sizeof(struct nvme_cqe) == 16, "NVMe 1.4 4.6: a CQE is 16 bytes");

/* 6.x NVM command set opcodes */
#define NVME_CMD_FLUSH 0x00u
#define NVME_CMD_WRITE 0x01u
#define NVME_CMD_READ 0x02u

#endif /* NVME_REGS_H */
