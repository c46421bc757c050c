"""The driver's side of a kernel bridge (ABI 1.1): ask the privileged parent for the kernel
half of a block device or a network interface, and get back file descriptors.

A driver whose manifest declares `bridge = "block"` or `bridge = "net"` finds a `Bridge`
in `Driver.bridge` when `probe` is called (None when it runs without a privileged
parent, e.g. `udriver run` started by an ordinary user). After probing the device it
asks once:

    disk = self.bridge.block(blocks=ns.blocks, block_size=ns.block_size)
    # disk.kind == "nbd": serve the NBD transmission protocol on disk.fd
    nic = self.bridge.net(mac="52:54:00:12:34:56")
    # nic.fd is the TAP queue: read() a frame to transmit, write() a received one
    nic.set_carrier(True)

The channel's messages are in `udriver._bridgewire`. The driver stays unprivileged: it
never opens /dev/nbd*, /dev/ublk* or /dev/net/tun itself, it only receives descriptors.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from dataclasses import dataclass

from .. import _bridgewire as wire
from ..errors import BridgeError

__all__ = ["BlockBridge", "Bridge", "NetBridge"]

# linux/if_tun.h: TUNSETCARRIER _IOW('T', 226, int). drivers/net/tun.c (__tun_chr_ioctl)
# checks no capability for it on an attached queue, unlike TUNSETIFF or TUNGETDEVNETNS, so
# the unprivileged driver sets its carrier itself, on its own fd.
_TUNSETCARRIER = 0x400454E2


@dataclass
class BlockBridge:
    """A block device whose requests the driver serves."""

    kind: str
    """"nbd": `fd` is a stream socket carrying the NBD transmission protocol (linux/nbd.h);
    "ublk": `fd` is the ublk char device (linux/ublk_cmd.h)."""
    fd: int
    """Owned by the driver; closing it disconnects the block device."""
    device: str
    """The block device's node, e.g. /dev/nbd0 (for messages)."""
    blocks: int
    """Capacity in logical blocks, as asked."""
    block_size: int
    """Logical block size in bytes, as asked."""
    dev_id: int = -1
    """ublk: the device number N of /dev/ublkcN and /dev/ublkbN."""
    queue_depth: int = 0
    """ublk: tags 0 .. queue_depth - 1 on the one queue."""
    io_bytes: int = 0
    """ublk: the buffer per tag the kernel expects (the largest request)."""
    bridge: Bridge | None = None
    """The channel `start` uses."""

    def start(self) -> None:
        """ublk: every tag is fetched; ask the parent to add the disk (UBLK_U_CMD_START_DEV).

        The parent's START_DEV reads the partition table through the driver, so the
        driver must already serve its io_uring (from another thread) when calling this.

        Raises:
            BridgeError: not a ublk device, or the parent could not start it.
        """
        if self.kind != "ublk" or self.bridge is None:
            raise BridgeError(f"{self.device}: only a ublk device is started")
        reply = self.bridge.request({"op": "start"}, f"start of {self.device}")
        if reply.get("ok") is not True:
            raise BridgeError(f"the privileged parent could not start {self.device}: "
                              f"{reply.get('error', reply)}")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class NetBridge:
    """A TAP network interface whose frames the driver carries."""

    fd: int
    """The TAP queue (IFF_TAP | IFF_NO_PI): each read() is one frame the kernel sends, each
    write() one frame the kernel receives."""
    ifname: str
    """The interface name, e.g. udp0s4f0."""
    mac: str
    """Its MAC address, as asked."""

    def set_carrier(self, up: bool) -> None:
        """Mirror the device's link state as the interface's carrier (TUNSETCARRIER).

        Raises:
            BridgeError: the ioctl failed (e.g. the fd is closed).
        """
        try:
            fcntl.ioctl(self.fd, _TUNSETCARRIER, struct.pack("i", 1 if up else 0))
        except OSError as e:
            raise BridgeError(f"{self.ifname}: TUNSETCARRIER failed: {e.strerror}") from e

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Bridge:
    """The control channel to the privileged parent (one request per driver process)."""

    def __init__(self, fd: int, declared: str | None, timeout: float = 60.0) -> None:
        """Take over `fd`, the driver's end of the channel.

        Args:
            fd: from `udriver run --bridge-fd`.
            declared: the bridge kind the driver's manifest declares.
            timeout: seconds to wait for the parent's reply.
        """
        self._sock = socket.socket(fileno=fd)
        self._sock.settimeout(timeout)
        self.declared = declared
        """The bridge kind the manifest declares ("block", "net") or None."""
        self._used = False

    def _ask(self, req: dict[str, object], what: str) -> tuple[dict[str, object], int]:
        if self._sock.fileno() < 0:
            raise BridgeError(f"cannot set up the {what}: the bridge channel is closed")
        if self._used:
            raise BridgeError(f"cannot set up the {what}: this driver process already set up "
                              f"its bridge (one per process)")
        self._used = True
        try:
            wire.send(self._sock, req)
            got = wire.recv(self._sock)
        except TimeoutError as e:
            raise BridgeError(f"cannot set up the {what}: no reply from the privileged parent "
                              f"within {self._sock.gettimeout()} s") from e
        if got is None:
            raise BridgeError(f"cannot set up the {what}: the privileged parent closed the "
                              f"bridge channel")
        reply, fds = got
        if reply.get("ok") is not True or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise BridgeError(f"the privileged parent refused the {what}: "
                              f"{reply.get('error', reply)}")
        return reply, fds[0]

    def request(self, req: dict[str, object], what: str) -> dict[str, object]:
        """A follow-up message on the channel (e.g. ublk's {"op": "start"}); its reply.

        Raises:
            BridgeError: the channel is closed or the parent did not answer.
        """
        try:
            wire.send(self._sock, req)
            got = wire.recv(self._sock)
        except (TimeoutError, OSError) as e:
            raise BridgeError(f"{what}: no reply from the privileged parent: {e}") from e
        if got is None:
            raise BridgeError(f"{what}: the privileged parent closed the bridge channel")
        for fd in got[1]:
            os.close(fd)
        return got[0]

    def block(self, blocks: int, block_size: int, kinds: tuple[str, ...] = ("nbd",),
              queue_depth: int = 64, io_bytes: int = 128 * 1024) -> BlockBridge:
        """Ask for a block device of `blocks` logical blocks of `block_size` bytes.

        `kinds` are the kernel sides the driver serves, preferred first: the parent sets
        up ublk (6.0+, with `queue_depth` tags of `io_bytes` each) when "ublk" comes first
        and the kernel has it, else NBD. The returned `kind` says which.

        Raises:
            BridgeError: the manifest declares no block bridge, the geometry is invalid,
                or the parent could not set the device up (its reason is in the message).
        """
        req: dict[str, object] = {"op": "block", "blocks": blocks, "block_size": block_size}
        if kinds != ("nbd",):  # an older parent knows only these two fields
            req.update(kinds=list(kinds), queue_depth=queue_depth, io_bytes=io_bytes)
        wire.parse_request(req, self.declared)  # refuse here, with the same words
        reply, fd = self._ask(req, f"block device ({blocks} blocks of {block_size} bytes)")
        kind = str(reply.get("kind"))

        def num(key: str) -> int:
            v = reply.get(key, 0)
            return v if isinstance(v, int) else 0
        return BlockBridge(kind, fd, str(reply.get("device")), blocks, block_size,
                           num("dev_id") if kind == "ublk" else -1, num("queue_depth"),
                           num("io_bytes"), self)

    def net(self, mac: str, mtu: int = 1500) -> NetBridge:
        """Ask for a network interface with MAC address `mac` (carrier off until
        `NetBridge.set_carrier(True)`).

        Raises:
            BridgeError: the manifest declares no net bridge, `mac` or `mtu` is invalid, or
                the parent could not create the interface.
        """
        req: dict[str, object] = {"op": "net", "mac": mac, "mtu": mtu}
        wire.parse_request(req, self.declared)
        reply, fd = self._ask(req, f"network interface ({mac})")
        return NetBridge(fd, str(reply.get("ifname")), mac)

    def close(self) -> None:
        """Close the channel (the parent then tears the kernel side down)."""
        self._sock.close()
