"""The Intel 82574 register map the control path uses (BAR0 byte offsets and bits).

From the 82574 GbE Controller datasheet, chapter 10 ("Driver Programming Interface",
register summary table 10-2; the section of each group is given below). The C packet
path keeps the few it needs in native/e1k_regs.h.
"""

from __future__ import annotations

PCI_VENDOR, PCI_DEVICE = 0x8086, 0x10D3  # 82574L Gigabit Network Connection
MMIO_BAR = 0

# 10.2.2 general registers
CTRL, STATUS, EECD, EERD, CTRL_EXT, MDIC = 0x0000, 0x0008, 0x0010, 0x0014, 0x0018, 0x0020
CTRL_FD, CTRL_GIO_MASTER_DISABLE, CTRL_ASDE, CTRL_SLU = 1 << 0, 1 << 2, 1 << 5, 1 << 6
CTRL_FRCSPD, CTRL_FRCDPX, CTRL_RST, CTRL_VME, CTRL_PHY_RST = 1 << 11, 1 << 12, 1 << 26, 1 << 30, 1 << 31
STATUS_FD, STATUS_LU, STATUS_SPEED_SHIFT, STATUS_GIO_MASTER_EN = 1 << 0, 1 << 1, 6, 1 << 19
SPEEDS = {0: 10, 1: 100, 2: 1000, 3: 1000}  # STATUS.SPEED (bits 7:6) in Mb/s
# 10.2.2.x EERD: the EEPROM/NVM read register of the 82574 (START bit 0, DONE bit 1,
# word address at bits 15:2, data at bits 31:16).
EERD_START, EERD_DONE, EERD_ADDR_SHIFT, EERD_DATA_SHIFT = 1 << 0, 1 << 1, 2, 16
CTRL_EXT_EIAME, CTRL_EXT_IAME, CTRL_EXT_PBA_CLR = 1 << 24, 1 << 27, 1 << 31

# 10.2.4 interrupt registers
ICR, ITR, ICS, IMS, IMC, EIAC, IAM, IVAR = 0xC0, 0xC4, 0xC8, 0xD0, 0xD8, 0xDC, 0xE0, 0xE4
EITR0 = 0xE8  # EITR[n] at 0xE8 + 4n, n = 0..4 (one per MSI-X vector)
ICR_TXDW, ICR_LSC, ICR_RXDMT0, ICR_RXO, ICR_RXT0 = 1 << 0, 1 << 2, 1 << 4, 1 << 6, 1 << 7
ICR_RXQ0, ICR_TXQ0, ICR_OTHER = 1 << 20, 1 << 22, 1 << 24
# 10.2.4.9 IVAR: 4-bit fields (3-bit vector + valid bit 3): RxQ0 3:0, RxQ1 7:4, TxQ0 11:8,
# TxQ1 15:12, Other 19:16.
IVAR_VALID = 0x8
IVAR_RXQ0_SHIFT, IVAR_TXQ0_SHIFT, IVAR_OTHER_SHIFT = 0, 8, 16
ITR_UNIT_NS = 256  # 10.2.4.2 ITR / EITR interval: 256 ns increments

# 10.2.5 receive registers
RCTL, RDTR, RDBAL, RDBAH, RDLEN, RDH, RDT = 0x0100, 0x2820, 0x2800, 0x2804, 0x2808, 0x2810, 0x2818
RXDCTL, RADV, RXCSUM, RFCTL = 0x2828, 0x282C, 0x5000, 0x5008
MTA, MTA_WORDS, RAL0, RAH0 = 0x5200, 128, 0x5400, 0x5404
RAH_AV = 1 << 31  # address valid
RCTL_EN, RCTL_SBP, RCTL_UPE, RCTL_MPE, RCTL_LPE = 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5
RCTL_BAM, RCTL_SECRC = 1 << 15, 1 << 26  # BSIZE 00b, BSEX 0: 2048-byte buffers
RCTL_MO_SHIFT = 12

# 10.2.6 transmit registers
TCTL, TIPG = 0x0400, 0x0410
TDBAL, TDBAH, TDLEN, TDH, TDT, TIDV, TXDCTL, TADV = (0x3800, 0x3804, 0x3808, 0x3810, 0x3818,
                                                    0x3820, 0x3828, 0x382C)
TCTL_EN, TCTL_PSP, TCTL_CT_SHIFT, TCTL_COLD_SHIFT, TCTL_RTLC = 1 << 1, 1 << 3, 4, 12, 1 << 24
# 10.2.6.x TIPG for copper (IPGT 8, IPGR1 8, IPGR2 6), the value the datasheet recommends.
TIPG_COPPER = 8 | 8 << 10 | 6 << 20

# 10.2.7 statistics (clear on read)
STATS = {"crc_errors": 0x4000, "missed": 0x4010, "rx_no_buffer": 0x40A0,
         "rx_good": 0x4074, "rx_broadcast": 0x4078, "rx_multicast": 0x407C,
         "tx_good": 0x4080, "rx_good_octets": 0x4088, "tx_good_octets": 0x4090,
         "rx_total": 0x40D0, "tx_total": 0x40D4}
STATS_HIGH = {"rx_good_octets": 0x408C, "tx_good_octets": 0x4094}  # upper 32 bits

# NVM (EEPROM) words 0-2: the Ethernet address, low byte first (datasheet 6.1.1.1).
NVM_MAC_WORDS = (0, 1, 2)
