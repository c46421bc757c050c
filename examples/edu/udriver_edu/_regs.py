"""QEMU edu device register map (QEMU docs/specs/edu.rst, "MMIO area spec").

All registers are in BAR0 (1 MiB). Below 0x80 only 4-byte accesses are allowed (other
widths read as all-ones); from 0x80 on, 4- or 8-byte accesses.
"""

VENDOR_ID = 0x1234
DEVICE_ID = 0x11E8

ID = 0x00            # RO: 0xRRrr00ed (RR major, rr minor version)
ID_LOW_MASK = 0xFFFF
ID_LOW = 0x00ED      # the low half is always "edu"
ID_EXPECTED = 0x010000ED  # version 1.0, as QEMU 7.x-9.x report
LIVENESS = 0x04      # RW: reads back the bitwise inverse of what was written
FACTORIAL = 0x08     # RW: write n, read n! once STATUS_COMPUTING clears
STATUS = 0x20        # RW: status register
STATUS_COMPUTING = 0x01   # RO: factorial computation in progress
STATUS_IRQ_FACT = 0x80    # raise an interrupt when the factorial is done
IRQ_STATUS = 0x24    # RO: OR of the values that raised the pending interrupt
IRQ_RAISE = 0x60     # WO: OR the value into IRQ_STATUS and raise the interrupt
IRQ_ACK = 0x64       # WO: clear these bits of IRQ_STATUS; lowers INTx when it becomes 0

IRQ_FACTORIAL = 0x00000001  # IRQ_STATUS value of a finished factorial
IRQ_DMA = 0x00000100        # IRQ_STATUS value of a finished DMA

DMA_SRC = 0x80       # RW, 8 bytes: source address
DMA_DST = 0x88       # RW, 8 bytes: destination address
DMA_COUNT = 0x90     # RW, 8 bytes: transfer size in bytes
DMA_CMD = 0x98       # RW, 8 bytes: command
DMA_CMD_START = 0x1       # start; reads back 0 when done
DMA_CMD_TO_RAM = 0x2      # direction: 0 = RAM -> edu, 1 = edu -> RAM
DMA_CMD_IRQ = 0x4         # raise IRQ_DMA when done

DMA_BUFFER = 0x40000      # the device's internal 4 KiB buffer, in its DMA address space
DMA_BUFFER_SIZE = 4096
# QEMU 7.2's range check is off by one: a 4096-byte transfer aborts QEMU. Stay below.
DMA_MAX_TRANSFER = DMA_BUFFER_SIZE - 1
DMA_MASK = (1 << 28) - 1  # the device's default DMA mask: 28 bits (256 MiB)
