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

__all__ = ["NVME_PROJECT", "check_backing_file", "install_nvme"]


def install_nvme(target: Path) -> Path:
    """Install the NVMe driver package into `target` (a directory for PYTHONPATH)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--target", str(target),
                    str(NVME_PROJECT)], check=True, capture_output=True)
    return target


def check_backing_file(image: Path, sums: dict[str, str], size: int) -> None:
    """The host's own reading of a controller's backing file after the guest let go of it:
    `e2fsck -fn` finds the ext4 file system clean, and `debugfs` dumps every file in
    `sums` (name in the root directory -> sha256) with `size` bytes and that sha256.

    Raises:
        AssertionError: e2fsck complained, or a file is missing, short or different.
    """
    import hashlib

    fsck = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True,
                          check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    out = image.parent / f"{image.name}.files"
    out.mkdir(exist_ok=True)
    for name, want in sums.items():
        subprocess.run(["debugfs", "-R", f"dump /{name} {out / name}", str(image)],
                       capture_output=True, check=True)
        data = (out / name).read_bytes()
        assert len(data) == size, (name, len(data))
        assert hashlib.sha256(data).hexdigest() == want, name
