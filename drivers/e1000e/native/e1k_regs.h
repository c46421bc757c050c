/*
 * e1k_regs.h - the Intel 82574 registers and descriptor bits the packet path uses.
 *
 * Offsets are BAR0 (memory, 128 KiB) byte offsets from the 82574 GbE Controller
 * datasheet, chapter 10 ("Driver Programming Interface", register summary table 10-2);
 * descriptor layouts from chapter 7 ("Inline Functions").  The Python control path keeps
 * its own copy of the full map in udriver_e1000e/_regs.py.
 */
#ifndef E1K_REGS_H
#define E1K_REGS_H

/* 10.2.4 interrupt registers */
#define E1K_ICR 0x000C0u      /* Interrupt Cause Read (clear on read) */
#define E1K_IMS 0x000D0u      /* Interrupt Mask Set/Read */
#define E1K_IMC 0x000D8u      /* Interrupt Mask Clear */

/* 10.2.5 receive registers (queue 0) */
#define E1K_RDH 0x02810u      /* Receive Descriptor Head */
#define E1K_RDT 0x02818u      /* Receive Descriptor Tail */

/* 10.2.6 transmit registers (queue 0) */
#define E1K_TDH 0x03810u      /* Transmit Descriptor Head */
#define E1K_TDT 0x03818u      /* Transmit Descriptor Tail */

/* 10.2.4.1 ICR / IMS cause bits */
#define E1K_ICR_TXDW (1u << 0)   /* transmit descriptor written back */
#define E1K_ICR_LSC (1u << 2)    /* link status change */
#define E1K_ICR_RXT0 (1u << 7)   /* receiver timer interrupt */
#define E1K_ICR_RXQ0 (1u << 20)  /* receive queue 0 (MSI-X) */
#define E1K_ICR_TXQ0 (1u << 22)  /* transmit queue 0 (MSI-X) */
#define E1K_ICR_OTHER (1u << 24) /* other causes (MSI-X): LSC among them */

/* 7.1.4.1 legacy receive descriptor: status byte */
#define E1K_RXD_STAT_DD (1u << 0)  /* descriptor done */
#define E1K_RXD_STAT_EOP (1u << 1) /* end of packet */

/* 7.2.10.1 legacy transmit descriptor: command and status bytes */
#define E1K_TXD_CMD_EOP (1u << 0)  /* end of packet */
#define E1K_TXD_CMD_IFCS (1u << 1) /* insert FCS (the CRC) */
#define E1K_TXD_CMD_RS (1u << 3)   /* report status: write DD back */
#define E1K_TXD_STAT_DD (1u << 0)  /* descriptor done */

#endif
