"""`FakeSysfs`: a directory tree that behaves like the kernel's PCI sysfs, for tests.

It builds the files `udriver.pci` reads (with real symlinks for `driver` and
`iommu_group`, as on a live machine) and models the kernel's side effects of the writes
`bind`/`unbind` make, following drivers/pci/pci-driver.c and drivers/base/bus.c:

- `devices/<BDF>/driver/unbind` <- BDF: the device loses its driver;
- `devices/<BDF>/driver_override` <- name: stored; an empty value or newline clears it
  and the attribute reads "(null)";
- `drivers_probe` <- BDF: if unbound, the device binds to its override if that driver is
  loaded, otherwise (no override) to its native driver if loaded; a device bound to
  vfio-pci gets `/dev/vfio/<group>` (devtmpfs does this on a real machine);
- `modprobe(m)` creates `sys/module/<m>` and, for a PCI driver, `sys/bus/pci/drivers/<m>`.

Every operation is appended to `ops`, so a test can assert their exact order, and
`before_write` lets a test act between steps (e.g. remove a device to model hot-unplug).
This is a fake of an interface udriver owns (`Sysfs`); it is not used outside tests.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from ._sysfs import Sysfs

__all__ = ["FakeSysfs"]

_PCI_DRIVERS = {"vfio-pci", "pci-stub", "virtio-pci", "nvidia", "e1000e", "pcieport", "nvme"}


class FakeSysfs(Sysfs):
    """A fake machine under `root` (a tmp_path)."""

    def __init__(self, root: Path | str) -> None:
        super().__init__(root)
        self.ops: list[tuple[str, ...]] = []
        """("modprobe", module) | ("write", relative path, text), in order."""
        self.native: dict[str, str | None] = {}
        """BDF -> the driver the kernel would pick without an override."""
        self.before_write: Callable[[Path, str], None] | None = None
        """Called before each write with (path, text)."""
        self.probe_binds = True
        """False models a driver whose probe fails: drivers_probe leaves the device unbound."""
        self.devices_dir.mkdir(parents=True, exist_ok=True)
        self.drivers_dir.mkdir(parents=True, exist_ok=True)
        self.drivers_probe.touch()

    # -- building ------------------------------------------------------------------------
    def add_driver(self, name: str) -> None:
        """A loaded PCI driver (and its module)."""
        d = self.drivers_dir / name
        d.mkdir(parents=True, exist_ok=True)
        for attr in ("bind", "unbind", "new_id"):
            (d / attr).touch()
        (self.root / "sys/module" / name.replace("-", "_")).mkdir(parents=True, exist_ok=True)

    def add_device(self, bdf: str, vendor: int, device: int, *, class_code: int = 0xFF0000,
                   subsystem_vendor: int = 0, subsystem_device: int = 0, revision: int = 0,
                   driver: str | None = None, native: str | None = None,
                   iommu_group: int | None = None, header_type: int = 0,
                   modalias: bool = True) -> Path:
        """Create `sys/bus/pci/devices/<bdf>`; `driver` is bound now, `native` on re-probe."""
        d = self.device_dir(bdf)
        d.mkdir(parents=True)
        attrs = {"vendor": f"0x{vendor:04x}", "device": f"0x{device:04x}",
                 "subsystem_vendor": f"0x{subsystem_vendor:04x}",
                 "subsystem_device": f"0x{subsystem_device:04x}",
                 "class": f"0x{class_code:06x}", "revision": f"0x{revision:02x}",
                 "driver_override": "(null)"}
        if modalias:
            attrs["modalias"] = (
                f"pci:v{vendor:08X}d{device:08X}sv{subsystem_vendor:08X}sd{subsystem_device:08X}"
                f"bc{class_code >> 16:02X}sc{(class_code >> 8) & 0xFF:02X}i{class_code & 0xFF:02X}"
            )
        for name, value in attrs.items():
            (d / name).write_text(value + "\n")
        config = bytearray(64)
        config[0:4] = bytes([vendor & 0xFF, vendor >> 8, device & 0xFF, device >> 8])
        config[0x0E] = header_type
        (d / "config").write_bytes(bytes(config))
        self.native[bdf] = native if native is not None else driver
        if driver is not None:
            self._link_driver(bdf, driver)
        if iommu_group is not None:
            g = self.iommu_group_dir(iommu_group) / "devices"
            g.mkdir(parents=True, exist_ok=True)
            os.symlink(f"../../../../bus/pci/devices/{bdf}", g / bdf)
            os.symlink(f"../../../../kernel/iommu_groups/{iommu_group}", d / "iommu_group")
        return d

    def remove_device(self, bdf: str) -> None:
        """Hot-unplug: the device's directory disappears."""
        d = self.device_dir(bdf)
        for p in sorted(d.iterdir(), reverse=True):
            p.unlink()
        d.rmdir()

    def _link_driver(self, bdf: str, driver: str) -> None:
        self.add_driver(driver)
        os.symlink(f"../../drivers/{driver}", self.device_dir(bdf) / "driver")

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    # -- the Sysfs interface -------------------------------------------------------------
    def modprobe(self, module: str) -> None:
        self.ops.append(("modprobe", module))
        if module in _PCI_DRIVERS:
            self.add_driver(module)
        else:
            (self.root / "sys/module" / module.replace("-", "_")).mkdir(parents=True,
                                                                          exist_ok=True)

    def write(self, path: Path, text: str) -> None:
        self.ops.append(("write", self._rel(path), text))
        if self.before_write is not None:
            self.before_write(path, text)
        super().write(path, text)  # fails like the kernel's open() when the file is gone
        if path.name == "unbind" and path.parent.name == "driver":
            bdf = path.parent.parent.name
            (self.device_dir(bdf) / "driver").unlink()
        elif path.name == "driver_override":
            value = text.strip()
            path.write_text((value or "(null)") + "\n")
        elif path == self.drivers_probe:
            self._probe(text.strip())

    def _probe(self, bdf: str) -> None:
        d = self.device_dir(bdf)
        if not d.is_dir():
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV), str(self.drivers_probe))
        if (d / "driver").is_symlink() or not self.probe_binds:
            return
        override = (d / "driver_override").read_text().strip()
        # pci-driver.c pci_match_device(): with an override only that driver may match.
        want = self.native.get(bdf) if override == "(null)" else override
        if want is None or not (self.drivers_dir / want).is_dir():
            return
        self._link_driver(bdf, want)
        group = self.link_name(d / "iommu_group")
        if want == "vfio-pci" and group is not None:
            node = self.vfio_group_node(int(group))
            node.parent.mkdir(parents=True, exist_ok=True)
            node.touch()
