"""The template units shipped in `udriver/data/`: `udriver@.service` (runs a device's
driver) and `udriver-autobind@.service` (the hotplug worker, started by the udev rules).

`unit_text` fills in `@bindir@` (the directory of the `udriver` program) so that the units
run the udriver this machine has installed; `install_unit` writes them where systemd looks
for administrator units and reloads systemd when it is running.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

__all__ = ["AUTOBIND_TEMPLATE", "UNIT_TEMPLATE", "bindir", "install_unit", "systemd_running",
           "unit_text"]

log = logging.getLogger(__name__)

UNIT_TEMPLATE = "udriver@.service"
AUTOBIND_TEMPLATE = "udriver-autobind@.service"


def systemd_running() -> bool:
    """sd_booted(3): systemd is PID 1 when /run/systemd/system exists."""
    return Path("/run/systemd/system").is_dir()


def bindir() -> Path:
    """Where the `udriver` program is (next to this Python when not on PATH)."""
    exe = shutil.which("udriver")
    return Path(exe).parent if exe else Path(sys.executable).parent


def unit_text(bin_dir: Path | None = None, name: str = UNIT_TEMPLATE) -> str:
    """The template unit `name` with `@bindir@` replaced."""
    text = resources.files("udriver").joinpath("data", name).read_text()
    return text.replace("@bindir@", str(bin_dir or bindir()))


def install_unit(dest: Path = Path("/etc/systemd/system")) -> list[Path]:
    """Write both template units to `dest` and `systemctl daemon-reload` if systemd is PID 1.

    Raises:
        OSError: `dest` is not writable.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in (UNIT_TEMPLATE, AUTOBIND_TEMPLATE):
        path = dest / name
        path.write_text(unit_text(name=name))
        log.info("installed %s", path)
        out.append(path)
    if systemd_running():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    return out
