"""The kernel-bridge control channel: messages between a driver and its privileged parent.

A driver that declares a kernel bridge (`[tool.udriver] bridge`, `udriver.manifest`) is
started with one end of an `AF_UNIX`/`SOCK_SEQPACKET` socketpair (`udriver run
--bridge-fd N`); the privileged parent (`udriver supervise`, `udriver@.service`, `udriver
run` as root) holds the other. Only the driver knows the geometry of a disk or the MAC
address of a NIC, and only after `probe`, so it asks; the parent sets up the kernel side
and answers with file descriptors (SCM_RIGHTS, unix(7)).

Rules of the channel (ABI 1.1, docs/abi.md "Kernel bridges"):

1. One message per datagram: a UTF-8 JSON object of at most `MAX_MESSAGE` bytes, with at
   most `MAX_FDS` descriptors attached. A truncated message or control block
   (MSG_TRUNC/MSG_CTRUNC) is an error; its descriptors are closed.
2. The driver sends a request, the parent answers with exactly one reply. Requests:
       {"op": "block", "blocks": N, "block_size": B}   -> {"ok": true, "kind": "nbd",
                                                            "device": "/dev/nbd0"} + [socket]
       (+ "kinds": ["ublk", "nbd"], "queue_depth": D, "io_bytes": S)
                                                        -> {"ok": true, "kind": "ublk",
                                                            "device": "/dev/ublkb0",
                                                            "dev_id": 0, ...} + [/dev/ublkc0]
       {"op": "start"} (ublk, every tag fetched)        -> {"ok": true} (START_DEV done)
       {"op": "net", "mac": "52:54:00:12:34:56", "mtu": 1500}
                                                        -> {"ok": true, "kind": "tap",
                                                            "ifname": "udp0s4f0"} + [tap fd]
   An error is {"ok": false, "error": "..."} without descriptors.
3. A request must be of the kind the driver's manifest declares, at most one per driver
   process (a ublk device's `start` follows it); anything else is refused.
4. The parent tears the kernel side down when the channel closes (the driver exited or
   was killed) or when the parent stops.

`parse_request` is pure (validation only); `send`/`recv` do the socket I/O.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass

from .errors import BridgeError

__all__ = ["BLOCK_KINDS", "MAX_FDS", "MAX_MESSAGE", "BlockRequest", "NetRequest", "parse_mac",
           "parse_request", "recv", "send"]

BLOCK_KINDS = ("ublk", "nbd")
"""The kernel sides of a block bridge (linux/ublk_cmd.h, linux/nbd.h)."""
MAX_MESSAGE = 4096
"""Largest message, in bytes."""
MAX_FDS = 4
"""Most descriptors attached to one message."""

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_MAX_BYTES = 1 << 62
"""Largest block device: NBD's size is a 64-bit byte count (linux/nbd.h, NBD_SET_SIZE)."""


@dataclass(frozen=True)
class BlockRequest:
    """The driver asks for a block device."""

    blocks: int
    """Capacity in logical blocks."""
    block_size: int
    """Logical block size in bytes: a power of two, 512 to 4096."""
    kinds: tuple[str, ...] = ("nbd",)
    """The kernel sides the driver can serve, preferred first ("ublk", "nbd"); a driver
    that does not say serves NBD only."""
    queue_depth: int = 64
    """ublk: requests the kernel may hand the driver at once (tags), 1 to 4096."""
    io_bytes: int = 128 * 1024
    """ublk: the driver's buffer per tag, the largest request (a multiple of 4096)."""


@dataclass(frozen=True)
class NetRequest:
    """The driver asks for a network interface."""

    mac: bytes
    """The interface's MAC address (6 bytes, unicast, not all-zero)."""
    mtu: int
    """MTU in bytes, 68 to 65535."""


def parse_mac(text: object) -> bytes:
    """`"52:54:00:12:34:56"` -> 6 bytes, refusing multicast and all-zero addresses.

    Raises:
        BridgeError: not six colon-separated hex octets, multicast (IEEE 802 I/G bit), or
            all-zero.
    """
    if not isinstance(text, str) or not _MAC_RE.match(text):
        raise BridgeError(f"`mac` must be six hex octets like \"52:54:00:12:34:56\", got {text!r}")
    mac = bytes(int(x, 16) for x in text.split(":"))
    if mac[0] & 1:
        raise BridgeError(f"`mac` {text} is a multicast address (I/G bit set); an interface "
                          f"needs a unicast one")
    if not any(mac):
        raise BridgeError("`mac` 00:00:00:00:00:00 is not a valid interface address")
    return mac


def _int(obj: dict[str, object], key: str, lo: int, hi: int) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise BridgeError(f"`{key}` must be an integer from {lo} to {hi}, got {v!r}")
    return v


def parse_request(obj: object, declared: str | None) -> BlockRequest | NetRequest:
    """Validate a driver's request against the bridge its manifest declares (rules 2, 3).

    Raises:
        BridgeError: not an object, unknown `op`, a kind the manifest does not declare,
            or a field out of range.
    """
    if not isinstance(obj, dict):
        raise BridgeError(f"a bridge request must be a JSON object, got {type(obj).__name__}")
    op = obj.get("op")
    if op not in ("block", "net"):
        raise BridgeError(f"unknown bridge request `op` {op!r}; expected \"block\" or \"net\"")
    if op != declared:
        raise BridgeError(f"the driver asked for a {op!r} bridge, but its manifest declares "
                          f"{'bridge ' + repr(declared) if declared else 'no bridge'}")
    if op == "block":
        bs = _int(obj, "block_size", 512, 4096)
        if bs & (bs - 1):
            raise BridgeError(f"`block_size` must be a power of two, got {bs}")
        kinds = obj.get("kinds", ["nbd"])
        if (not isinstance(kinds, list) or not kinds
                or any(k not in BLOCK_KINDS for k in kinds)):
            raise BridgeError(f"`kinds` must be a list of {', '.join(BLOCK_KINDS)}, got {kinds!r}")
        io_bytes = _int(obj, "io_bytes", 4096, 1 << 20) if "io_bytes" in obj else 128 * 1024
        if io_bytes % 4096:
            raise BridgeError(f"`io_bytes` must be a multiple of 4096, got {io_bytes}")
        return BlockRequest(_int(obj, "blocks", 1, _MAX_BYTES // bs), bs, tuple(kinds),
                            _int(obj, "queue_depth", 1, 4096) if "queue_depth" in obj else 64,
                            io_bytes)
    return NetRequest(parse_mac(obj.get("mac")), _int(obj, "mtu", 68, 65535)
                      if "mtu" in obj else 1500)


def send(sock: socket.socket, obj: dict[str, object], fds: list[int] | tuple[int, ...] = ()) -> None:
    """Send one message with `fds` attached (rule 1).

    Raises:
        BridgeError: the message is too large, or the peer is gone.
    """
    data = json.dumps(obj, sort_keys=True).encode()
    if len(data) > MAX_MESSAGE or len(fds) > MAX_FDS:
        raise BridgeError(f"bridge message too large ({len(data)} bytes, {len(fds)} fds)")
    try:
        socket.send_fds(sock, [data], list(fds))
    except OSError as e:
        raise BridgeError(f"bridge channel: send failed: {e.strerror or e}") from e


def recv(sock: socket.socket) -> tuple[dict[str, object], list[int]] | None:
    """Receive one message and its descriptors; None when the peer closed the channel.

    The caller owns the returned descriptors.

    Raises:
        BridgeError: truncated, not a JSON object, or the socket failed.
    """
    try:
        data, fds, flags, _ = socket.recv_fds(sock, MAX_MESSAGE + 1, MAX_FDS)
    except OSError as e:
        raise BridgeError(f"bridge channel: receive failed: {e.strerror or e}") from e
    if not data and not fds:
        return None
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(data) > MAX_MESSAGE:
            raise BridgeError(f"bridge message truncated (more than {MAX_MESSAGE} bytes or "
                              f"{MAX_FDS} fds)")
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BridgeError(f"bridge message is not JSON: {e}") from e
        if not isinstance(obj, dict):
            raise BridgeError(f"bridge message must be a JSON object, got {type(obj).__name__}")
    except BridgeError:
        for fd in fds:
            os.close(fd)
        raise
    return obj, fds
