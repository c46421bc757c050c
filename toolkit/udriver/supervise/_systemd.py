"""The `udriver@.service` template unit shipped in `udriver/data/`.

`unit_text` fills in `@bindir@` (the directory of the `udriver` program) so that the unit
runs the udriver this machine has installed; `install_unit` writes it where systemd looks
for administrator units and reloads systemd when it is running.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

__all__ = ["UNIT_TEMPLATE", "bindir", "install_unit", "unit_text"]

log = logging.getLogger(__name__)

UNIT_TEMPLATE = "udriver@.service"


def bindir() -> Path:
    """Where the `udriver` program is (next to this Python when not on PATH)."""
    exe = shutil.which("udriver")
    return Path(exe).parent if exe else Path(sys.executable).parent


def unit_text(bin_dir: Path | None = None) -> str:
    """The template unit with `@bindir@` replaced."""
    text = resources.files("udriver").joinpath("data", UNIT_TEMPLATE).read_text()
    return text.replace("@bindir@", str(bin_dir or bindir()))


def install_unit(dest: Path = Path("/etc/systemd/system")) -> Path:
    """Write the unit to `dest` and `systemctl daemon-reload` if systemd is PID 1.

    Raises:
        OSError: `dest` is not writable.
    """
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / UNIT_TEMPLATE
    path.write_text(unit_text())
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    log.info("installed %s", path)
    return path
