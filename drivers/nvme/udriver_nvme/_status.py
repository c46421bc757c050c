"""The Status Field of a completion queue entry and the driver's errors.

NVMe 1.4 4.6.1 (Figure 125): the 15-bit Status Field is DW3 bits 31:17 of a CQE; with the
Phase Tag it forms the 16-bit `status` word, so here `status` is that word shifted right
by one: bits 7:0 Status Code (SC), 10:8 Status Code Type (SCT), 12:11 Command Retry
Delay, 13 More, 14 Do Not Retry (DNR).
"""

from __future__ import annotations

from dataclasses import dataclass

from udriver.errors import DeviceError

__all__ = ["NvmeError", "NvmeStatus", "NvmeStatusError", "NvmeTimeoutError", "decode_status"]

SCT_NAMES = {0: "Generic Command Status", 1: "Command Specific Status",
             2: "Media and Data Integrity Errors", 3: "Path Related Status",
             7: "Vendor Specific"}

# 4.6.1.2.1 Generic Command Status (SCT 0), and the NVM command set's 80h-84h.
_GENERIC = {
    0x00: "Successful Completion", 0x01: "Invalid Command Opcode",
    0x02: "Invalid Field in Command", 0x03: "Command ID Conflict",
    0x04: "Data Transfer Error", 0x05: "Commands Aborted due to Power Loss Notification",
    0x06: "Internal Error", 0x07: "Command Abort Requested",
    0x08: "Command Aborted due to SQ Deletion", 0x09: "Command Aborted due to Failed Fused Command",
    0x0A: "Command Aborted due to Missing Fused Command", 0x0B: "Invalid Namespace or Format",
    0x0C: "Command Sequence Error", 0x0D: "Invalid SGL Segment Descriptor",
    0x0E: "Invalid Number of SGL Descriptors", 0x0F: "Data SGL Length Invalid",
    0x10: "Metadata SGL Length Invalid", 0x11: "SGL Descriptor Type Invalid",
    0x12: "Invalid Use of Controller Memory Buffer", 0x13: "PRP Offset Invalid",
    0x14: "Atomic Write Unit Exceeded", 0x15: "Operation Denied", 0x16: "SGL Offset Invalid",
    0x18: "Host Identifier Inconsistent Format", 0x19: "Keep Alive Timer Expired",
    0x1A: "Keep Alive Timeout Invalid", 0x1B: "Command Aborted due to Preempt and Abort",
    0x1C: "Sanitize Failed", 0x1D: "Sanitize In Progress",
    0x1E: "SGL Data Block Granularity Invalid", 0x1F: "Command Not Supported for Queue in CMB",
    0x20: "Namespace is Write Protected", 0x21: "Command Interrupted",
    0x22: "Transient Transport Error",
    0x80: "LBA Out of Range", 0x81: "Capacity Exceeded", 0x82: "Namespace Not Ready",
    0x83: "Reservation Conflict", 0x84: "Format In Progress",
}
# 4.6.1.2.2 Command Specific Status (SCT 1), the codes of the commands this driver sends.
_SPECIFIC = {
    0x00: "Completion Queue Invalid", 0x01: "Invalid Queue Identifier",
    0x02: "Invalid Queue Size", 0x03: "Abort Command Limit Exceeded",
    0x05: "Asynchronous Event Request Limit Exceeded", 0x08: "Invalid Interrupt Vector",
    0x0D: "Feature Identifier Not Saveable", 0x0E: "Feature Not Changeable",
    0x0F: "Feature Not Namespace Specific",
    0x80: "Conflicting Attributes", 0x81: "Invalid Protection Information",
    0x82: "Attempted Write to Read Only Range",
}
# 4.6.1.2.3 Media and Data Integrity Errors (SCT 2).
_MEDIA = {
    0x80: "Write Fault", 0x81: "Unrecovered Read Error", 0x82: "End-to-end Guard Check Error",
    0x83: "End-to-end Application Tag Check Error",
    0x84: "End-to-end Reference Tag Check Error", 0x85: "Compare Failure",
    0x86: "Access Denied", 0x87: "Deallocated or Unwritten Logical Block",
}
_NAMES = {0: _GENERIC, 1: _SPECIFIC, 2: _MEDIA}


@dataclass(frozen=True)
class NvmeStatus:
    """A decoded Status Field (NVMe 1.4 4.6.1)."""

    sct: int
    """Status Code Type, bits 10:8."""
    sc: int
    """Status Code, bits 7:0."""
    more: bool
    """More: the Error Information log page has more."""
    dnr: bool
    """Do Not Retry: the same command would fail again."""

    @property
    def ok(self) -> bool:
        """True for Successful Completion."""
        return self.sct == 0 and self.sc == 0

    @property
    def name(self) -> str:
        """The spec's name for SCT/SC, or "reserved/unknown"."""
        return _NAMES.get(self.sct, {}).get(self.sc, "reserved or unknown status code")

    def __str__(self) -> str:
        text = f"SCT {self.sct:#x} ({SCT_NAMES.get(self.sct, 'reserved')}), SC {self.sc:#04x} " \
               f"({self.name})"
        return text + (", DNR" if self.dnr else "")


def decode_status(field: int) -> NvmeStatus:
    """Decode a 15-bit Status Field (the CQE's 16-bit status word >> 1).

    Raises:
        ValueError: `field` is not a 15-bit value.
    """
    if not 0 <= field < 1 << 15:
        raise ValueError(f"an NVMe Status Field has 15 bits, got {field:#x}")
    return NvmeStatus(sct=field >> 8 & 7, sc=field & 0xFF, more=bool(field >> 13 & 1),
                      dnr=bool(field >> 14 & 1))


class NvmeError(DeviceError):
    """An NVMe controller refused, failed or timed out (base of this driver's errors)."""


class NvmeStatusError(NvmeError):
    """A command completed with a non-zero Status Field."""

    def __init__(self, command: str, status: NvmeStatus, detail: str = "") -> None:
        self.command = command
        self.status = status
        super().__init__(f"NVMe {command} failed: {status}" + (f" ({detail})" if detail else ""))


class NvmeTimeoutError(NvmeError):
    """No completion within the command timeout (the controller may need a reset)."""

    def __init__(self, message: str, fatal: bool = False, gone: bool = False) -> None:
        self.fatal = fatal
        """True when CSTS.CFS (Controller Fatal Status) was set."""
        self.gone = gone
        """True when the registers read all-ones: the device was removed."""
        super().__init__(message)
