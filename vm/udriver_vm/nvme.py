"""Build drivers/nvme for the NVMe tests (host unit tests and VM tests).

`install_nvme(target)` runs `pip install --no-deps --no-build-isolation --target` of the
driver project, which compiles its cffi extension (`udriver_nvme._native`, abi3) against
this checkout's `udriver.h`. The guest sees the host's Python, so the same build runs
there when `target` is on PYTHONPATH.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._paths import checkout_root

ROOT = checkout_root()
NVME_PROJECT = ROOT / "drivers" / "nvme"

__all__ = ["NVME_PROJECT", "install_nvme"]


def install_nvme(target: Path) -> Path:
    """Install the NVMe driver package into `target` (a directory for PYTHONPATH)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--target", str(target),
                    str(NVME_PROJECT)], check=True, capture_output=True)
    return target
