"""NVMe controller registers, fields and opcodes the control path uses.

Section numbers are of the NVM Express Base Specification 1.4 ("NVMe 1.4"); Base 2.0 has
the same registers in 3.1.3 and the initialization sequence in 3.5.1.
"""

from __future__ import annotations

# 3.1 controller registers, BAR0 offsets
CAP = 0x00  # 3.1.1 Controller Capabilities (64-bit)
VS = 0x08  # 3.1.2 Version
INTMS = 0x0C  # 3.1.3 Interrupt Mask Set
INTMC = 0x10  # 3.1.4 Interrupt Mask Clear
CC = 0x14  # 3.1.5 Controller Configuration
CSTS = 0x1C  # 3.1.6 Controller Status
AQA = 0x24  # 3.1.8 Admin Queue Attributes
ASQ = 0x28  # 3.1.9 Admin Submission Queue Base Address (64-bit)
ACQ = 0x30  # 3.1.10 Admin Completion Queue Base Address (64-bit)
DOORBELLS = 0x1000  # 3.1.24/3.1.25: SQyTDBL at (2y) * stride, CQyHDBL at (2y + 1) * stride


def cap_mqes(cap: int) -> int:
    """CAP.MQES bits 15:0: largest queue size, 0's based."""
    return (cap & 0xFFFF) + 1


def cap_timeout_s(cap: int) -> float:
    """CAP.TO bits 31:24: worst-case time for CSTS.RDY to change, in 500 ms units."""
    return ((cap >> 24) & 0xFF) * 0.5


def cap_dstrd(cap: int) -> int:
    """CAP.DSTRD bits 35:32: doorbell stride in bytes, 2 ^ (2 + DSTRD)."""
    return 4 << ((cap >> 32) & 0xF)


def cap_css_nvm(cap: int) -> bool:
    """CAP.CSS bit 37: the NVM command set is supported."""
    return bool(cap >> 37 & 1)


def cap_mpsmin(cap: int) -> int:
    """CAP.MPSMIN bits 51:48: smallest memory page size, 2 ^ (12 + MPSMIN) bytes."""
    return 1 << (12 + ((cap >> 48) & 0xF))


def cap_mpsmax(cap: int) -> int:
    """CAP.MPSMAX bits 55:52: largest memory page size, 2 ^ (12 + MPSMAX) bytes."""
    return 1 << (12 + ((cap >> 52) & 0xF))


# 3.1.5 CC fields
CC_EN = 1 << 0
CC_CSS_NVM = 0 << 4  # bits 6:4, 000b: NVM command set
CC_MPS_SHIFT = 7  # bits 10:7, page size 2 ^ (12 + MPS)
CC_AMS_RR = 0 << 11  # bits 13:11, round robin
CC_SHN_MASK = 3 << 14  # bits 15:14
CC_SHN_NORMAL = 1 << 14  # 01b: normal shutdown notification
CC_IOSQES = 6 << 16  # bits 19:16: I/O SQ entry size 2 ^ 6 = 64
CC_IOCQES = 4 << 20  # bits 23:20: I/O CQ entry size 2 ^ 4 = 16

# 3.1.6 CSTS fields
CSTS_RDY = 1 << 0
CSTS_CFS = 1 << 1  # Controller Fatal Status
CSTS_SHST_MASK = 3 << 2  # bits 3:2 shutdown status
CSTS_SHST_NORMAL = 0 << 2  # 00b: normal operation
CSTS_SHST_OCCURRING = 1 << 2  # 01b: shutdown processing occurring
CSTS_SHST_COMPLETE = 2 << 2  # 10b: shutdown processing complete

SHST_NAMES = {0: "normal operation", 1: "shutdown occurring", 2: "shutdown complete",
              3: "reserved"}

# 5 admin command opcodes
ADM_DELETE_SQ = 0x00  # 5.6 Delete I/O Submission Queue
ADM_CREATE_SQ = 0x01  # 5.4 Create I/O Submission Queue
ADM_DELETE_CQ = 0x04  # 5.5 Delete I/O Completion Queue
ADM_CREATE_CQ = 0x05  # 5.3 Create I/O Completion Queue
ADM_IDENTIFY = 0x06  # 5.15 Identify
ADM_SET_FEATURES = 0x09  # 5.21 Set Features

FEAT_NUM_QUEUES = 0x07  # 5.21.1.7 Number of Queues

CNS_NAMESPACE = 0x00  # 5.15.2: Identify Namespace data structure for NSID
CNS_CONTROLLER = 0x01  # Identify Controller data structure
CNS_ACTIVE_NS_LIST = 0x02  # active NSIDs greater than NSID, up to 1024

# 6 NVM command set opcodes
NVM_FLUSH = 0x00  # 6.8
NVM_WRITE = 0x01  # 6.15
NVM_READ = 0x02  # 6.9

OPCODE_NAMES = {
    ("admin", ADM_DELETE_SQ): "Delete I/O Submission Queue",
    ("admin", ADM_CREATE_SQ): "Create I/O Submission Queue",
    ("admin", ADM_DELETE_CQ): "Delete I/O Completion Queue",
    ("admin", ADM_CREATE_CQ): "Create I/O Completion Queue",
    ("admin", ADM_IDENTIFY): "Identify",
    ("admin", ADM_SET_FEATURES): "Set Features",
    ("io", NVM_FLUSH): "Flush",
    ("io", NVM_WRITE): "Write",
    ("io", NVM_READ): "Read",
}
