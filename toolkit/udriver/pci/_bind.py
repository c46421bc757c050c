"""Binding a PCI device to vfio-pci (or another driver) and giving it back, as driverctl does.

`bind(bdf)`, the steps of driverctl's `set-override` (sysfs-bus-pci ABI):

1. load the driver: `modprobe vfio_iommu_type1` then `modprobe vfio-pci`. The type1
   backend goes first because busybox modprobe ignores the softdep vfio-pci declares;
   without it the container offers no IOMMU type (VFIO_CHECK_EXTENSION fails);
2. unbind the current driver: write the BDF to `devices/<BDF>/driver/unbind`;
3. write the driver name to `devices/<BDF>/driver_override`, so only it may take the device;
4. write the BDF to `/sys/bus/pci/drivers_probe`, which runs the probe;
5. verify: poll until `devices/<BDF>/driver` names the driver, then, for vfio-pci, until
   `/dev/vfio/<group>` exists (the group's character device, linux/vfio.h).

`unbind(bdf)`, driverctl's `unset-override`: clear `driver_override` (write a newline),
unbind, and write `drivers_probe` so a kernel driver that matches can take the device
back.

Rules:
- Both are idempotent: a device already in the wanted state is not touched.
- Every OSError from a step becomes a `DeviceError` naming the step; a device that
  disappears between steps (hot-unplug) is reported as such, never as a raw OSError.
- All writes go through `Sysfs`, so tests can substitute a fake that models the kernel.
"""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path

from ..errors import DeviceError
from ._iommu import NO_IOMMU_GROUP_HINT, is_vfio_driver
from ._sysfs import PciDevice, Sysfs, SysfsLike, _as_sysfs, get_device

__all__ = ["VFIO_PCI", "bind", "check_bound", "unbind"]

_log = logging.getLogger(__name__)

VFIO_PCI = "vfio-pci"
_POLL_INTERVAL = 0.02


def _modules_for(driver: str) -> list[str]:
    if driver == VFIO_PCI:
        return ["vfio_iommu_type1", "vfio-pci"]
    return [driver]


def _write(fs: Sysfs, bdf: str, path: Path, text: str, step: str) -> None:
    """One sysfs write of a bind/unbind sequence, with errors made explicit.

    Raises:
        DeviceError: the device vanished, or the kernel refused the write.
    """
    try:
        fs.write(path, text)
    except OSError as e:
        if not fs.device_dir(bdf).is_dir():
            raise DeviceError(f"PCI device {bdf} vanished while {step} "
                              f"(hot-unplugged?)") from e
        err = DeviceError(f"Cannot complete {step} for PCI device {bdf}: writing {text.strip()!r} "
                          f"to {path} failed: {e.strerror} (errno {e.errno})")
        if e.errno in (errno.EACCES, errno.EPERM):
            err.hint = "binding needs root"
        raise err from e


def _reread(fs: Sysfs, bdf: str, step: str) -> PciDevice:
    """Re-read the device; a vanished device becomes a clear DeviceError."""
    if not fs.device_dir(bdf).is_dir():
        raise DeviceError(f"PCI device {bdf} vanished while {step} (hot-unplugged?)")
    return get_device(bdf, fs)


def _wait_bound(fs: Sysfs, bdf: str, driver: str, timeout: float) -> PciDevice:
    deadline = time.monotonic() + timeout
    while True:
        dev = _reread(fs, bdf, f"waiting for `{driver}` to bind")
        if dev.driver == driver:
            return dev
        if time.monotonic() >= deadline:
            now = f"`{dev.driver}`" if dev.driver else "no driver"
            raise DeviceError(
                f"PCI device {bdf} is not bound to `{driver}` after {timeout:g} s "
                f"(it has {now}); the kernel log (dmesg) says why the probe failed"
            )
        time.sleep(_POLL_INTERVAL)


def _wait_vfio_node(fs: Sysfs, dev: PciDevice, timeout: float) -> None:
    if dev.iommu_group is None:
        raise DeviceError(f"PCI device {dev.bdf} has no IOMMU group: {NO_IOMMU_GROUP_HINT}")
    node = fs.vfio_group_node(dev.iommu_group)
    deadline = time.monotonic() + timeout
    while not node.exists():
        if time.monotonic() >= deadline:
            raise DeviceError(f"PCI device {dev.bdf} is bound to `{dev.driver}` but {node} did "
                              f"not appear within {timeout:g} s (is devtmpfs mounted on /dev?)")
        time.sleep(_POLL_INTERVAL)


def bind(bdf: str, driver: str = VFIO_PCI, *, sysfs_root: SysfsLike = Path("/"),
         timeout: float = 5.0) -> PciDevice:
    """Bind a device to `driver` (default vfio-pci) and make it stick with driver_override.

    Group viability is deliberately not checked here: devices of one group are bound
    one at a time, so the group becomes viable only after the last one. Callers that
    open the group call `check_viable` first.

    Args:
        bdf: the device's PCI address.
        driver: kernel driver name.
        sysfs_root: filesystem root holding sys/ and dev/, or a `Sysfs`.
        timeout: seconds to wait for the probe and for /dev/vfio/<group>.

    Returns:
        The device as it is after binding.

    Raises:
        DeviceError: malformed or missing BDF; no IOMMU group (vfio-pci only); the
            module cannot be loaded; a step fails; the device vanishes; or the driver
            does not bind in time.
    """
    fs = _as_sysfs(sysfs_root)
    dev = get_device(bdf, fs)
    bdf = dev.bdf
    vfio = is_vfio_driver(driver)
    if vfio and dev.iommu_group is None:
        # vfio-pci's probe would fail with -EINVAL; say why before touching anything.
        raise DeviceError(f"Cannot bind PCI device {bdf} to `{driver}`: it has no IOMMU group: "
                          f"{NO_IOMMU_GROUP_HINT}")
    if dev.driver == driver and dev.driver_override == driver:
        _log.info("%s is already bound to %s", bdf, driver)
    else:
        # Step 1: load the driver (and, for vfio-pci, the type1 IOMMU backend first).
        for module in _modules_for(driver):
            fs.modprobe(module)
        # Step 2: unbind the current driver (sysfs-bus-pci: drivers/.../unbind).
        if dev.driver is not None and dev.driver != driver:
            _log.info("%s: unbinding from %s", bdf, dev.driver)
            _write(fs, bdf, fs.device_dir(bdf) / "driver" / "unbind", bdf,
                   f"unbinding from `{dev.driver}`")
        # Step 3: driver_override makes only `driver` match on the next probe.
        _write(fs, bdf, fs.device_dir(bdf) / "driver_override", driver,
               "writing driver_override")
        # Step 4: drivers_probe runs the bus's probe for this device now.
        if dev.driver != driver:
            _write(fs, bdf, fs.drivers_probe, bdf, "writing drivers_probe")
    # Step 5: verify.
    dev = _wait_bound(fs, bdf, driver, timeout)
    if vfio:
        _wait_vfio_node(fs, dev, timeout)
    _log.info("%s bound to %s (IOMMU group %s)", bdf, driver, dev.iommu_group)
    return dev


def unbind(bdf: str, *, sysfs_root: SysfsLike = Path("/")) -> PciDevice:
    """Undo `bind`: clear driver_override, unbind, and let the kernel re-probe.

    A device with no override that is not bound to vfio-pci or pci-stub is left alone:
    it is the kernel's, and unbinding it would only disturb it.

    Returns:
        The device afterwards; `driver` is the kernel driver that took it back, or None.

    Raises:
        DeviceError: malformed or missing BDF; a step fails; the device vanishes.
    """
    fs = _as_sysfs(sysfs_root)
    dev = get_device(bdf, fs)
    bdf = dev.bdf
    ours = dev.driver_override is not None or is_vfio_driver(dev.driver) \
        or dev.driver == "pci-stub"
    if not ours:
        _log.info("%s: no override and bound to %s; nothing to undo", bdf, dev.driver or "nothing")
        return dev
    if dev.driver_override is not None:
        # sysfs-bus-pci: writing an empty string (a bare newline, as `echo >` does) clears it.
        _write(fs, bdf, fs.device_dir(bdf) / "driver_override", "\n", "clearing driver_override")
    if dev.driver is not None:
        _write(fs, bdf, fs.device_dir(bdf) / "driver" / "unbind", bdf,
               f"unbinding from `{dev.driver}`")
    _write(fs, bdf, fs.drivers_probe, bdf, "writing drivers_probe")
    dev = _reread(fs, bdf, "re-reading after unbind")
    _log.info("%s unbound; now %s", bdf, dev.driver or "without a driver")
    return dev


def check_bound(bdf: str, driver: str = VFIO_PCI, *,
                sysfs_root: SysfsLike = Path("/")) -> PciDevice:
    """The device, provided it is bound to `driver`.

    Raises:
        DeviceError: malformed or missing BDF, or bound to another driver or none.
    """
    dev = get_device(bdf, sysfs_root)
    if dev.driver != driver:
        now = f"bound to `{dev.driver}`" if dev.driver else "not bound to any driver"
        err = DeviceError(f"PCI device {dev.bdf} is {now}; it must be bound to `{driver}`")
        err.hint = f"run `udriver bind {dev.bdf}` first"
        raise err
    return dev
