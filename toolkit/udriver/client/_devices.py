"""Local PCI devices as (BDF -> modalias), read from sysfs.

The sysfs root is injectable (`UDRIVER_SYSFS_ROOT`, default "/"), so tests and the
benchmark run against snapshots such as /work/shared/fixtures/sysfs/<machine>.
Only `/sys/bus/pci/devices/<bdf>/modalias` is read (pci_uevent format, see
udriver.modalias).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import ManifestError
from ..modalias import Modalias, parse_modalias

__all__ = ["local_devices", "sysfs_root"]

log = logging.getLogger(__name__)


def sysfs_root() -> Path:
    return Path(os.environ.get("UDRIVER_SYSFS_ROOT") or "/")


def local_devices(root: Path | None = None) -> dict[str, Modalias]:
    """Every PCI device under `<root>/sys/bus/pci/devices`, sorted by BDF.

    A device whose modalias cannot be read or parsed is logged and left out.
    """
    base = (root if root is not None else sysfs_root()) / "sys" / "bus" / "pci" / "devices"
    out: dict[str, Modalias] = {}
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        try:
            out[d.name] = parse_modalias((d / "modalias").read_text())
        except (OSError, ManifestError) as e:
            log.warning("skipping %s: %s", d.name, e)
    return out
