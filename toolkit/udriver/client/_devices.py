"""Local PCI devices as (BDF -> modalias), through `udriver.pci`.

The sysfs root is injectable (`UDRIVER_SYSFS_ROOT`, default "/", the same variable as
`udriver devices --sysfs-root`), so tests and the benchmark run against snapshots such
as tests/fixtures/sysfs/<machine>.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..modalias import Modalias
from ..pci import list_devices

__all__ = ["local_devices", "sysfs_root"]


def sysfs_root() -> Path:
    return Path(os.environ.get("UDRIVER_SYSFS_ROOT") or "/")


def local_devices(root: Path | None = None) -> dict[str, Modalias]:
    """Every PCI device under `<root>/sys/bus/pci/devices`, keyed by BDF, sorted.

    Raises:
        DeviceError: a device's sysfs attributes are malformed.
    """
    devs = list_devices(root if root is not None else sysfs_root())
    return {d.bdf: d.modalias for d in devs}
