"""What the running kernel offers a user-mode driver, read at run time, and the choices made on it.

A driver ships as one binary for every kernel (Debian 11's 5.10 to 7.2), so nothing here looks at
the version number to decide: each feature is read from the kernel's own interfaces.

Order of operations:

1. :func:`read_features` reads, without changing anything: ``/dev`` nodes (``/dev/vfio/vfio``,
   ``/dev/iommu``, ``/dev/ublk-control``, ``/dev/nbd0``, ``/dev/net/tun``, ``/dev/cuse``), the
   running release's ``modules.dep`` / ``modules.builtin`` (a bridge that is a loadable module
   counts as offered), ``VFIO_CHECK_EXTENSION`` on a fresh container (linux/vfio.h: a container
   with no group attached; the ioctl only answers), and ``io_uring_setup(2)`` with invalid
   arguments (``EINVAL`` means the syscall exists; ``ENOSYS`` or ``EPERM`` that it is absent or
   disabled by ``kernel.io_uring_disabled``).
2. :func:`choose_iommu_type` and :func:`choose_block_bridge` are pure functions over that record:
   type1v2 if offered, else type1 (the native layer does the same in ``set_iommu``), else a
   :class:`KernelFeatureError`; ublk if offered, else NBD, else a :class:`KernelFeatureError`.
3. :func:`iommu_info` reads one container's ``VFIO_IOMMU_GET_INFO`` capability chain (the
   IOVA-range capability, ``VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE``; without it every IOVA is
   allowed, the native layer's fallback in ``group_iova_info``).

Not probed: IOMMUFD's ``/dev/iommu`` is only reported. The container/group API is the backend on
every Debian kernel up to 7.2 (``CONFIG_IOMMUFD`` is not set), so there is nothing to fall back to.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import fcntl
import os
import struct
from collections.abc import Callable
from pathlib import Path

from ..errors import UdriverError

__all__ = [
    "BRIDGES",
    "IommuInfo",
    "KernelFeatureError",
    "KernelFeatures",
    "choose_block_bridge",
    "choose_iommu_type",
    "iommu_info",
    "read_features",
]

# linux/vfio.h: VFIO_TYPE ';', VFIO_BASE 100; _IO(type, nr) = type << 8 | nr.
_VFIO_CHECK_EXTENSION = 0x3B65
_VFIO_SET_IOMMU = 0x3B66
_VFIO_GROUP_SET_CONTAINER = 0x3B68
_VFIO_IOMMU_GET_INFO = 0x3B70
_IOMMU_TYPES = {1: "type1", 3: "type1v2", 6: "type1-nesting", 8: "noiommu"}
"""VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_NESTING_IOMMU, VFIO_NOIOMMU_IOMMU."""
_EXTENSIONS = {4: "dma-cc", 9: "unmap-all", 10: "update-vaddr"}
"""VFIO_DMA_CC_IOMMU; VFIO_UNMAP_ALL and VFIO_UPDATE_VADDR (both Linux 5.12)."""
_INFO_PGSIZES, _INFO_CAPS = 1 << 0, 1 << 1
_CAP_IOVA_RANGE = 1  # VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
_SYS_IO_URING_SETUP = 425  # x86_64

BRIDGES = {
    "ublk": ("dev/ublk-control", "ublk_drv"),
    "nbd": ("dev/nbd0", "nbd"),
    "tun": ("dev/net/tun", "tun"),
    "cuse": ("dev/cuse", "cuse"),
}
"""Kernel bridge -> (device node under the root, module name)."""


class KernelFeatureError(UdriverError):
    """The running kernel lacks every variant of a feature the driver needs."""


@dataclasses.dataclass(frozen=True)
class KernelFeatures:
    """What one kernel offers, as read by :func:`read_features`."""

    release: str
    """``uname -r``."""
    vfio_container: bool
    """``/dev/vfio/vfio`` exists (the container/group API)."""
    iommu_types: tuple[str, ...]
    """IOMMU types ``VFIO_CHECK_EXTENSION`` reports, e.g. ``("type1", "type1v2")``."""
    vfio_extensions: tuple[str, ...]
    """Other container extensions reported (``unmap-all``, ``update-vaddr``, ``dma-cc``)."""
    iommufd: bool
    """``/dev/iommu`` exists (``CONFIG_IOMMUFD``)."""
    bridges: dict[str, str]
    """Bridge name -> ``ready`` (node exists), ``module`` (loadable) or ``absent``."""
    io_uring: str
    """``enabled``, ``disabled`` (``kernel.io_uring_disabled``) or ``absent``."""


@dataclasses.dataclass(frozen=True)
class IommuInfo:
    """One container's ``VFIO_IOMMU_GET_INFO`` answer."""

    iommu_type: str
    """The type set on the container (:func:`choose_iommu_type`)."""
    pgsizes: int
    """Bitmap of supported IOMMU page sizes."""
    iova_ranges: tuple[tuple[int, int], ...] | None
    """Inclusive ``(start, end)`` ranges from the IOVA-range capability; None without it."""
    extensions: tuple[str, ...] = ()
    """``VFIO_CHECK_EXTENSION`` answers once the IOMMU is set: type1 answers some (for example
    ``VFIO_UPDATE_VADDR``) only for a container that has one."""


def _modules(root: Path, release: str) -> set[str]:
    names: set[str] = set()
    for base in ("lib/modules", "usr/lib/modules"):
        for index in ("modules.dep", "modules.builtin"):
            try:
                text = (root / base / release / index).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                path = line.partition(":")[0].strip()
                if path:
                    names.add(os.path.basename(path).split(".ko")[0].replace("-", "_"))
    return names


def _check_extensions(root: Path) -> tuple[bool, set[int]]:
    """Open a fresh container and ask VFIO_CHECK_EXTENSION for every id we know."""
    try:
        fd = os.open(root / "dev/vfio/vfio", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False, set()
    try:
        return True, {i for i in (*_IOMMU_TYPES, *_EXTENSIONS)
                      if fcntl.ioctl(fd, _VFIO_CHECK_EXTENSION, i) > 0}
    finally:
        os.close(fd)


def _io_uring(root: Path) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    # io_uring_setup(2) with entries=0 and params=NULL: EINVAL if the call exists.
    ret = libc.syscall(_SYS_IO_URING_SETUP, 0, None)
    err = ctypes.get_errno()
    if ret >= 0:
        os.close(ret)
        return "enabled"
    if err == errno.ENOSYS:
        return "absent"
    try:
        disabled = int((root / "proc/sys/kernel/io_uring_disabled").read_text())
    except (OSError, ValueError):
        disabled = 0
    return "disabled" if err == errno.EPERM or disabled == 2 else "enabled"


def read_features(root: Path = Path("/"), *,
                  check_extensions: Callable[[Path], tuple[bool, set[int]]] | None = None,
                  ) -> KernelFeatures:
    """Read what the running kernel offers (step 1 of the module docstring).

    Args:
        root: filesystem root to read ``dev``, ``proc`` and the module lists under.
        check_extensions: replaces the ``VFIO_CHECK_EXTENSION`` probe (tests).
    """
    try:
        release = (root / "proc/sys/kernel/osrelease").read_text().strip()
    except OSError:
        release = os.uname().release
    have_container, ids = (check_extensions or _check_extensions)(root)
    mods = _modules(root, release)
    bridges = {}
    for name, (node, module) in BRIDGES.items():
        if (root / node).exists():
            bridges[name] = "ready"
        else:
            bridges[name] = "module" if module in mods else "absent"
    return KernelFeatures(
        release=release,
        vfio_container=have_container,
        iommu_types=tuple(n for i, n in sorted(_IOMMU_TYPES.items()) if i in ids),
        vfio_extensions=tuple(n for i, n in sorted(_EXTENSIONS.items()) if i in ids),
        iommufd=(root / "dev/iommu").exists(),
        bridges=bridges,
        io_uring=_io_uring(root) if root == Path("/") else "unknown",
    )


def choose_iommu_type(f: KernelFeatures) -> str:
    """type1v2 if offered, else type1 (linux/vfio.h ``VFIO_SET_IOMMU``).

    Raises:
        KernelFeatureError: no container API, or neither type (the message says what is there).
    """
    if not f.vfio_container:
        where = "only IOMMUFD (/dev/iommu)" if f.iommufd else "neither /dev/vfio/vfio nor /dev/iommu"
        raise KernelFeatureError(
            f"kernel {f.release} has no VFIO container (/dev/vfio/vfio): it offers {where}; "
            "udriver needs CONFIG_VFIO_CONTAINER (modprobe vfio-pci loads it)"
        )
    for want in ("type1v2", "type1"):
        if want in f.iommu_types:
            return want
    raise KernelFeatureError(
        f"kernel {f.release}'s VFIO container offers no type1 IOMMU (VFIO_CHECK_EXTENSION "
        f"reports {', '.join(f.iommu_types) or 'none'}); load vfio_iommu_type1"
    )


def choose_block_bridge(f: KernelFeatures, prefer: tuple[str, ...] = ("ublk", "nbd")) -> str:
    """The first block bridge in ``prefer`` the kernel offers (ublk, else NBD).

    Raises:
        KernelFeatureError: none of them is offered (the message names each one's state).
    """
    for name in prefer:
        if f.bridges.get(name, "absent") != "absent":
            return name
    states = ", ".join(f"{n}: {f.bridges.get(n, 'absent')}" for n in prefer)
    raise KernelFeatureError(
        f"kernel {f.release} offers no block bridge ({states}); a block driver needs "
        "CONFIG_BLK_DEV_UBLK (/dev/ublk-control) or CONFIG_BLK_DEV_NBD (/dev/nbd0)"
    )


def _parse_caps(buf: bytes, cap_offset: int) -> tuple[tuple[int, int], ...] | None:
    """Walk the ``vfio_info_cap_header`` chain (``id``, ``version``, ``next``) in ``buf``."""
    off, seen = cap_offset, set()
    while off and off + 8 <= len(buf) and off not in seen:
        seen.add(off)
        cap_id, _version, nxt = struct.unpack_from("=HHI", buf, off)
        if cap_id == _CAP_IOVA_RANGE and off + 16 <= len(buf):
            (n,) = struct.unpack_from("=I", buf, off + 8)
            if off + 16 + 16 * n > len(buf):
                return None  # truncated: treat as absent rather than guess
            return tuple(struct.unpack_from("=QQ", buf, off + 16 + 16 * i) for i in range(n))
        off = nxt
    return None


def iommu_info(group_path: str | Path) -> IommuInfo:
    """Attach a group to a fresh container, set the IOMMU, read ``VFIO_IOMMU_GET_INFO``.

    The group must be viable and not in use (its device bound to vfio-pci, nobody holding it).
    Both fds are closed before returning, which drops the container again.

    Raises:
        KernelFeatureError: no usable IOMMU type (see :func:`choose_iommu_type`).
        OSError: the group cannot be opened or attached (busy, not viable).
    """
    features = read_features()
    iommu_type = choose_iommu_type(features)
    type_id = {v: k for k, v in _IOMMU_TYPES.items()}[iommu_type]
    cfd = os.open("/dev/vfio/vfio", os.O_RDWR | os.O_CLOEXEC)
    try:
        gfd = os.open(group_path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.ioctl(gfd, _VFIO_GROUP_SET_CONTAINER, struct.pack("=i", cfd))
            fcntl.ioctl(cfd, _VFIO_SET_IOMMU, type_id)
            # struct vfio_iommu_type1_info: argsz, flags, iova_pgsizes, cap_offset, pad.
            head = bytearray(struct.pack("=IIQII", 24, 0, 0, 0, 0))
            fcntl.ioctl(cfd, _VFIO_IOMMU_GET_INFO, head)
            argsz, flags, pgsizes, _, _ = struct.unpack("=IIQII", head)
            ranges = None
            if flags & _INFO_CAPS and argsz > 24:
                buf = bytearray(argsz)
                struct.pack_into("=I", buf, 0, argsz)
                fcntl.ioctl(cfd, _VFIO_IOMMU_GET_INFO, buf)
                ranges = _parse_caps(bytes(buf), struct.unpack_from("=I", buf, 16)[0])
            ext = tuple(n for i, n in sorted(_EXTENSIONS.items())
                        if fcntl.ioctl(cfd, _VFIO_CHECK_EXTENSION, i) > 0)
        finally:
            os.close(gfd)
    finally:
        os.close(cfd)
    return IommuInfo(iommu_type, pgsizes if flags & _INFO_PGSIZES else 0, ranges, ext)
