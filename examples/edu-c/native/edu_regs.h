/* edu_regs.h - QEMU edu device register map (QEMU docs/specs/edu.rst, "MMIO area spec").
 * BAR0, 1 MiB. Below 0x80 only 4-byte accesses; from 0x80 on, 4- or 8-byte accesses. */
#ifndef EDU_REGS_H
#define EDU_REGS_H

#define EDU_BAR 0u
#define EDU_ID 0x00u              /* RO: 0xRRrr00ed */
#define EDU_ID_LOW_MASK 0xFFFFu
#define EDU_ID_LOW 0x00EDu
#define EDU_LIVENESS 0x04u        /* RW: reads back the bitwise inverse */
#define EDU_FACTORIAL 0x08u       /* RW: write n, read n! once STATUS_COMPUTING clears */
#define EDU_STATUS 0x20u
#define EDU_STATUS_COMPUTING 0x01u
#define EDU_STATUS_IRQ_FACT 0x80u
#define EDU_IRQ_STATUS 0x24u
#define EDU_IRQ_RAISE 0x60u
#define EDU_IRQ_ACK 0x64u
#define EDU_DMA_SRC 0x80u
#define EDU_DMA_DST 0x88u
#define EDU_DMA_COUNT 0x90u
#define EDU_DMA_CMD 0x98u
#define EDU_DMA_CMD_START 0x1u
#define EDU_DMA_CMD_TO_RAM 0x2u
#define EDU_DMA_CMD_IRQ 0x4u
#define EDU_DMA_MASK ((1ull << 28) - 1)  /* edu's default 28-bit DMA mask */

/* PCI config space: Command register and its Bus Master Enable bit (PCI 3.0, 6.2.2). */
#define PCI_COMMAND 0x04u
#define PCI_COMMAND_MASTER 0x4u

#endif /* EDU_REGS_H */
