"""The real sysfs snapshots must be found, or the discovery tests would silently skip."""

from __future__ import annotations

import os
from pathlib import Path

FIXTURES = Path(os.environ.get("UDRIVER_FIXTURES")
                or Path(__file__).resolve().parents[1] / "fixtures") / "sysfs"


def test_sysfs_snapshots_are_present() -> None:
    machines = sorted(p.name for p in FIXTURES.iterdir()) if FIXTURES.is_dir() else []
    assert {"gpu-server", "small-vm"} <= set(machines), (
        f"sysfs snapshots not found at {FIXTURES}: tests/fixtures/ is part of the "
        "checkout (or set UDRIVER_FIXTURES)")
