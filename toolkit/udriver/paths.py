"""Where udriver keeps things on a machine. Every location can be overridden.

    /etc/udriver/                 configuration (UDRIVER_CONFIG_DIR)
    /var/lib/udriver/             state (UDRIVER_STATE_DIR)
      drivers/<driver>/<version>/   one directory per installed version (pypa/installer)
      drivers/<driver>/current      symlink to the running version, swapped atomically
    /usr/lib/udriver/drivers/<driver>/   drivers installed from .debs (UDRIVER_DEB_DRIVER_DIR)
    /usr/share/udriver/drivers/<driver>.json   their ID tables (UDRIVER_DEB_MANIFEST_DIR)
    /run/udriver/                 runtime state: pid files, sockets (UDRIVER_RUN_DIR)

`driver_search_path()` lists the directories the runner adds to sys.path before it
looks up the `udriver.drivers` entry-point group.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "config_dir",
    "deb_driver_dir",
    "deb_manifest_dir",
    "driver_search_path",
    "installed_driver_dirs",
    "run_dir",
    "state_dir",
]


def _env_path(var: str, default: str) -> Path:
    return Path(os.environ.get(var) or default)


def config_dir() -> Path:
    return _env_path("UDRIVER_CONFIG_DIR", "/etc/udriver")


def state_dir() -> Path:
    return _env_path("UDRIVER_STATE_DIR", "/var/lib/udriver")


def deb_driver_dir() -> Path:
    return _env_path("UDRIVER_DEB_DRIVER_DIR", "/usr/lib/udriver/drivers")


def deb_manifest_dir() -> Path:
    """Where a driver .deb puts its `udriver.json`, as `<driver>.json`."""
    return _env_path("UDRIVER_DEB_MANIFEST_DIR", "/usr/share/udriver/drivers")


def run_dir() -> Path:
    return _env_path("UDRIVER_RUN_DIR", "/run/udriver")


def installed_driver_dirs() -> list[Path]:
    """`<state>/drivers/<driver>/current` for every driver installed by `udriver install`."""
    root = state_dir() / "drivers"
    if not root.is_dir():
        return []
    return sorted(p / "current" for p in root.iterdir() if (p / "current").is_dir())


def driver_search_path() -> list[Path]:
    """Directories holding driver distributions (each has `*.dist-info/entry_points.txt`).

    Order: `udriver install`ed drivers first (they can be newer), then .deb-installed ones.
    """
    out = installed_driver_dirs()
    debs = deb_driver_dir()
    if debs.is_dir():
        out.extend(sorted(p for p in debs.iterdir() if p.is_dir()))
    return out
