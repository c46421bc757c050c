"""The "net" bridge through TAP: a network interface whose "wire" is the driver's NIC.

Order of operations (`TapBackend.open`, as root in the privileged parent; the ioctls of
linux/if_tun.h and netdevice(7), all needing CAP_NET_ADMIN):

1. Open /dev/net/tun (loading `tun` first if it is missing) and TUNSETIFF with
   IFF_TAP | IFF_NO_PI (Ethernet frames, no packet-information header) and the name
   `interface_name(bdf)` (udp<bus>s<slot>f<function>, like systemd's enp0s4f0); the
   interface is not persistent, so it disappears when the last descriptor closes.
2. SIOCSIFHWADDR: the MAC the driver read from its device (ARPHRD_ETHER).
3. SIOCSIFMTU, then SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP.
4. TUNSETCARRIER 0: no carrier until the driver reports link up. The driver switches it
   with TUNSETCARRIER on its own descriptor; drivers/net/tun.c checks no capability for it.
5. The driver gets a duplicate of the tap descriptor; the parent keeps its own until the
   driver exits (`close`), when the interface goes away.

The netdevice ioctls go through an AF_UNIX datagram socket: sock_ioctl() hands any
socket's unknown SIOC* request to dev_ioctl() (net/socket.c), so the unit needs no
AF_INET or AF_NETLINK.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import struct
import subprocess
from pathlib import Path

from .. import _bridgewire as wire
from ..errors import BridgeError, DeviceError
from ..pci import parse_bdf

__all__ = ["TapBackend", "TapInterface", "interface_name"]

log = logging.getLogger(__name__)

# linux/if_tun.h
TUNSETIFF = 0x400454CA  # _IOW('T', 202, int)
TUNSETCARRIER = 0x400454E2  # _IOW('T', 226, int)
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
# linux/sockios.h
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFMTU = 0x8922
SIOCSIFHWADDR = 0x8924
IFF_UP = 0x1
ARPHRD_ETHER = 1
_IFNAMSIZ = 16


def interface_name(bdf: str) -> str:
    """`0000:00:04.0` -> `udp0s4f0`; a non-zero domain is prefixed (`udP1p0s4f0`).

    Raises:
        BridgeError: `bdf` is not a PCI address, or the name would not fit IFNAMSIZ.
    """
    try:
        d, b, s, f = parse_bdf(bdf)
    except DeviceError:
        raise BridgeError(f"not a PCI address: {bdf!r}") from None
    name = (f"udP{d}" if d else "ud") + f"p{b}s{s}f{f}"
    if len(name) >= _IFNAMSIZ:
        raise BridgeError(f"interface name {name!r} for {bdf} is longer than {_IFNAMSIZ - 1}")
    return name


def _ifreq(name: str, payload: bytes = b"") -> bytes:
    """struct ifreq: ifr_name[16] then a 24-byte union."""
    return struct.pack("16s24s", name.encode(), payload)


class TapInterface:
    """One TAP interface (`Opened` for `BridgeHost`)."""

    def __init__(self, name: str, fd: int, mac: bytes) -> None:
        self.name, self._fd = name, fd
        self.reply: dict[str, object] = {"kind": "tap", "ifname": name,
                                         "mac": ":".join(f"{b:02x}" for b in mac)}
        self.fds = [os.dup(fd)]

    def close(self) -> None:
        """Close the parent's descriptor (idempotent); the interface goes with the last one."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class TapBackend:
    """Creates the TAP interface for a driver (module steps 1-5)."""

    def __init__(self, root: Path = Path("/"), load_module: bool = True) -> None:
        self.root, self.load_module = root, load_module

    def open(self, bdf: str, request: wire.BlockRequest | wire.NetRequest) -> TapInterface:
        """Raises: BridgeError: no TUN/TAP, no permission, or an ioctl failed (says which)."""
        if not isinstance(request, wire.NetRequest):
            raise BridgeError("the TAP back-end serves net requests only")
        name = interface_name(bdf)
        tun = self.root / "dev/net/tun"
        if not tun.exists() and self.load_module:
            subprocess.run(["modprobe", "tun"], check=False, capture_output=True)
        try:
            fd = os.open(tun, os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise BridgeError(f"{bdf}: cannot open {tun}: {e.strerror}") from e
        step = "TUNSETIFF"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as ctl:
                fcntl.ioctl(fd, TUNSETIFF, _ifreq(name, struct.pack("H", IFF_TAP | IFF_NO_PI)))
                step = "SIOCSIFHWADDR"
                fcntl.ioctl(ctl, SIOCSIFHWADDR,
                            _ifreq(name, struct.pack("H14s", ARPHRD_ETHER, request.mac)))
                step = "SIOCSIFMTU"
                fcntl.ioctl(ctl, SIOCSIFMTU, _ifreq(name, struct.pack("i", request.mtu)))
                step = "SIOCGIFFLAGS"
                got = fcntl.ioctl(ctl, SIOCGIFFLAGS, _ifreq(name))
                flags = struct.unpack_from("H", got, _IFNAMSIZ)[0]
                step = "SIOCSIFFLAGS"
                fcntl.ioctl(ctl, SIOCSIFFLAGS, _ifreq(name, struct.pack("H", flags | IFF_UP)))
                step = "TUNSETCARRIER"
                fcntl.ioctl(fd, TUNSETCARRIER, struct.pack("i", 0))
        except OSError as e:
            os.close(fd)
            raise BridgeError(f"{bdf}: {name}: {step} failed: {e.strerror} (errno {e.errno})"
                              ) from e
        log.info("%s: TAP interface %s up, MAC %s", bdf, name,
                 ":".join(f"{b:02x}" for b in request.mac))
        return TapInterface(name, fd, request.mac)
