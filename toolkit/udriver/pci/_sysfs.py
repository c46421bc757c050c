"""PCI discovery from sysfs, and `Sysfs`: the one object that reads and writes the kernel's files.

Layout read (Documentation/ABI/testing/sysfs-bus-pci):

    <root>/sys/bus/pci/devices/<BDF>/{vendor,device,subsystem_vendor,subsystem_device,
                                      class,revision,modalias,driver_override,config}
    <root>/sys/bus/pci/devices/<BDF>/driver         -> .../bus/pci/drivers/<name>
    <root>/sys/bus/pci/devices/<BDF>/iommu_group    -> .../kernel/iommu_groups/<N>

Rules:
- The root is injectable (`Sysfs(root)`); tests point it at a directory tree. `driver`
  and `iommu_group` are symlinks on a real machine; a snapshot may store the link target
  as the text of a regular file. Both are read the same way: the last path component.
- Every write to sysfs and every `modprobe` goes through `Sysfs`, so a test fake can
  record the order of operations and model the kernel's side effects.
- Missing attributes read as None; a device that vanishes mid-read is a `DeviceError`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from .._log import getLogger
from .._record import record
from ..errors import DeviceError, ManifestError
from ..modalias import Modalias, parse_modalias
from ._address import is_bdf, normalise_bdf
from ._pciids import PciIds, PciNames, default_pci_ids

__all__ = ["PciDevice", "Sysfs", "SysfsLike", "get_device", "list_devices", "normalise_bdf"]

_log = getLogger(__name__)

class Sysfs:
    """The kernel's files under `root` (normally "/"): reads, writes and module loading."""

    def __init__(self, root: Path | str = Path("/")) -> None:
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------
    @property
    def devices_dir(self) -> Path:
        return self.root / "sys/bus/pci/devices"

    @property
    def drivers_dir(self) -> Path:
        return self.root / "sys/bus/pci/drivers"

    @property
    def drivers_probe(self) -> Path:
        return self.root / "sys/bus/pci/drivers_probe"

    def device_dir(self, bdf: str) -> Path:
        return self.devices_dir / bdf

    def iommu_group_dir(self, group: int) -> Path:
        return self.root / "sys/kernel/iommu_groups" / str(group)

    def vfio_group_node(self, group: int) -> Path:
        return self.root / "dev/vfio" / str(group)

    # -- reads ---------------------------------------------------------------------------
    def read_text(self, path: Path) -> str | None:
        """Stripped text of an attribute, or None when it does not exist.

        Raises:
            DeviceError: the attribute exists but cannot be read (e.g. permissions).
        """
        try:
            return path.read_text(encoding="utf-8", errors="replace").strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as e:
            if e.errno == errno.ENODEV:  # the device was removed under us
                return None
            raise DeviceError(f"Cannot read {path}: {e.strerror} (errno {e.errno})") from e

    def read_bytes(self, path: Path, size: int) -> bytes | None:
        try:
            # Unbuffered: a buffered read of `config` asks the kernel for a whole page,
            # 4096 bytes of config-space reads (trapped by the hypervisor in a guest),
            # to return 64 of them.
            with path.open("rb", buffering=0) as f:
                return f.read(size)
        except OSError:
            return None

    def link_name(self, path: Path) -> str | None:
        """Last component of a symlink's target (or of a snapshot's text file); None if absent."""
        if path.is_symlink():
            target = os.readlink(path)
        else:
            text = self.read_text(path)
            if not text:
                return None
            target = text
        name = target.rstrip("/").rsplit("/", 1)[-1]
        return name or None

    def bdfs(self) -> list[str]:
        """Addresses listed in `sys/bus/pci/devices` ([] when there is no such directory).

        Raises:
            DeviceError: the directory exists but cannot be listed.
        """
        try:
            return sorted(p.name for p in self.devices_dir.iterdir() if is_bdf(p.name))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise DeviceError(f"Cannot list {self.devices_dir}: {e.strerror} "
                              f"(errno {e.errno})") from e

    # -- writes --------------------------------------------------------------------------
    def write(self, path: Path, text: str) -> None:
        """Write `text` to a sysfs attribute in one write(2), as `echo` does.

        Raises:
            OSError: as the kernel returns it; callers wrap it into a DeviceError.
        """
        _log.debug("sysfs write %s <- %r", path, text)
        # Unbuffered, one write: the kernel's store() sees the whole value at once.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def modprobe(self, module: str) -> None:
        """Load a kernel module (no-op when it is already loaded or built in).

        Raises:
            DeviceError: modprobe is missing or failed and the module is not present.
        """
        if (self.root / "sys/module" / module.replace("-", "_")).exists():
            return
        if self.root != Path("/"):
            raise DeviceError(
                f"Kernel module `{module}` is not loaded under {self.root} and modprobe only "
                f"works on the real root filesystem"
            )
        import subprocess  # only to load a module: not for `udriver devices`

        try:
            proc = subprocess.run(["modprobe", module], capture_output=True, text=True,
                                  timeout=60, check=False)
        except FileNotFoundError as e:
            raise DeviceError(f"Cannot load kernel module `{module}`: modprobe not found "
                              f"(install kmod)") from e
        except subprocess.TimeoutExpired as e:
            raise DeviceError(f"Cannot load kernel module `{module}`: modprobe timed out") from e
        if proc.returncode != 0:
            raise DeviceError(f"Cannot load kernel module `{module}` (modprobe exited "
                              f"{proc.returncode}): {proc.stderr.strip() or 'no message'}")


SysfsLike = Sysfs | Path | str


def _as_sysfs(sysfs: SysfsLike) -> Sysfs:
    return sysfs if isinstance(sysfs, Sysfs) else Sysfs(sysfs)


@record(frozen=True)
class PciDevice:
    """One PCI function as sysfs describes it."""

    bdf: str
    """Canonical address, e.g. "0000:00:06.0"."""
    vendor: int
    """16-bit vendor ID."""
    device: int
    """16-bit device ID."""
    subsystem_vendor: int
    """16-bit subsystem vendor ID."""
    subsystem_device: int
    """16-bit subsystem device ID."""
    class_code: int
    """24-bit class code (base class, subclass, prog-if), e.g. 0x030200."""
    revision: int
    """8-bit revision ID."""
    modalias: Modalias
    """The parsed modalias."""
    modalias_text: str
    """The modalias exactly as sysfs gives it."""
    driver: str | None
    """Name of the bound kernel driver, or None."""
    driver_override: str | None
    """The `driver_override` attribute, None when unset ("(null)")."""
    iommu_group: int | None
    """IOMMU group number, None when the device has none (IOMMU off)."""
    header_type: int | None
    """Config-space header type without the multi-function bit (0 endpoint, 1 bridge,
    2 CardBus), None when config space is unreadable."""
    names: PciNames | None
    """Names from pci.ids, None when there is no database."""

    @property
    def ids(self) -> str:
        return f"{self.vendor:04x}:{self.device:04x}"

    @property
    def is_bridge(self) -> bool:
        """A PCI-to-PCI or CardBus bridge (header type 1/2; class 06/04, 06/07 or 06/09)."""
        if self.header_type is not None:
            return self.header_type in (1, 2)
        return (self.class_code >> 8) in (0x0604, 0x0607, 0x0609)

    def to_json(self) -> dict[str, Any]:
        """Every field, IDs as lower-case hex strings the way lspci -n prints them."""
        return {
            "bdf": self.bdf,
            "vendor": f"{self.vendor:04x}",
            "device": f"{self.device:04x}",
            "subsystem_vendor": f"{self.subsystem_vendor:04x}",
            "subsystem_device": f"{self.subsystem_device:04x}",
            "class": f"{self.class_code:06x}",
            "revision": f"{self.revision:02x}",
            "modalias": self.modalias_text,
            "driver": self.driver,
            "driver_override": self.driver_override,
            "iommu_group": self.iommu_group,
            "header_type": self.header_type,
            "names": self.names.to_json() if self.names else None,
        }


def _hex_attr(fs: Sysfs, d: Path, name: str, bdf: str, *, required: bool = True) -> int:
    text = fs.read_text(d / name)
    if text is None:
        if not required:
            return 0
        if not d.is_dir():
            raise DeviceError(f"PCI device {bdf} vanished while reading `{name}`")
        raise DeviceError(f"Cannot read `{name}` of PCI device {bdf}: {d / name} is missing")
    try:
        return int(text, 16)
    except ValueError as e:
        raise DeviceError(f"Invalid `{name}` of PCI device {bdf} (expected hex): {text!r}") from e


def _read_device(fs: Sysfs, bdf: str, pci_ids: PciIds | None) -> PciDevice:
    d = fs.device_dir(bdf)
    vendor = _hex_attr(fs, d, "vendor", bdf)
    device = _hex_attr(fs, d, "device", bdf)
    sv = _hex_attr(fs, d, "subsystem_vendor", bdf, required=False)
    sd = _hex_attr(fs, d, "subsystem_device", bdf, required=False)
    class_code = _hex_attr(fs, d, "class", bdf) & 0xFFFFFF
    revision = _hex_attr(fs, d, "revision", bdf, required=False)
    computed = Modalias.from_ids(vendor, device, sv, sd, class_code)
    text = fs.read_text(d / "modalias")
    modalias = computed
    if text is None:
        text = str(computed)
    else:
        try:
            modalias = parse_modalias(text)
        except ManifestError as e:
            _log.warning("PCI device %s: %s; using the IDs instead", bdf, e)
    override = fs.read_text(d / "driver_override")
    group = fs.link_name(d / "iommu_group")
    config = fs.read_bytes(d / "config", 64)
    # PCI Local Bus spec 3.0 section 6.1: header type at 0x0E, bit 7 = multi-function.
    header = config[0x0E] & 0x7F if config is not None and len(config) > 0x0E else None
    db = pci_ids if pci_ids is not None else default_pci_ids()
    return PciDevice(
        bdf=bdf, vendor=vendor, device=device, subsystem_vendor=sv, subsystem_device=sd,
        class_code=class_code, revision=revision, modalias=modalias, modalias_text=text,
        driver=fs.link_name(d / "driver"),
        driver_override=None if override in (None, "", "(null)") else override,
        iommu_group=int(group) if group is not None and group.isdigit() else None,
        header_type=header,
        names=db.names(vendor, device, sv, sd, class_code),
    )


def list_devices(sysfs_root: SysfsLike = Path("/"), *,
                 pci_ids: PciIds | None = None) -> list[PciDevice]:
    """Every PCI device under `sysfs_root`, sorted by address.

    Args:
        sysfs_root: the root holding `sys/bus/pci/devices`, or a `Sysfs`.
        pci_ids: the name database; default `default_pci_ids()`.

    Raises:
        DeviceError: an attribute is malformed. A device that disappears while it is
            being listed (hot-unplug) is skipped.
    """
    fs = _as_sysfs(sysfs_root)
    out: list[PciDevice] = []
    for bdf in fs.bdfs():
        try:
            out.append(_read_device(fs, bdf, pci_ids))
        except DeviceError:
            if fs.device_dir(bdf).is_dir():
                raise
            _log.info("PCI device %s disappeared while it was listed", bdf)
    return out


def get_device(bdf: str, sysfs_root: SysfsLike = Path("/"), *,
               pci_ids: PciIds | None = None) -> PciDevice:
    """The device at `bdf` (any accepted spelling, see `normalise_bdf`).

    Raises:
        DeviceError: `bdf` is malformed, no such device exists (the message lists those
            that do), or an attribute is malformed.
    """
    fs = _as_sysfs(sysfs_root)
    canon = normalise_bdf(bdf)
    if not fs.device_dir(canon).is_dir():
        present = fs.bdfs()
        raise DeviceError(
            f"No PCI device {canon} in {fs.devices_dir} "
            f"(present: {', '.join(present) if present else 'none'})"
        )
    return _read_device(fs, canon, pci_ids)
