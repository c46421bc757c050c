"""Per-device status records (`udriver._devstate`, re-exported by `udriver.client`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from udriver.client import clear_status, read_status, record_status
from udriver.errors import DeviceError


def test_record_merge_read_clear(env: Path) -> None:
    rec = record_status("0000:00:04.0", driver="edu", version="0.1.0", state="running", pid=42)
    assert rec["bdf"] == "0000:00:04.0" and rec["updated"].endswith("Z")
    record_status("0000:00:04.0", state="failed", reason="gave up", pid=None)
    got = read_status()["0000:00:04.0"]
    assert (got["driver"], got["state"], got["reason"], got["pid"]) == ("edu", "failed", "gave up", None)
    clear_status("0000:00:04.0")
    assert read_status() == {}


def test_bad_bdf(env: Path) -> None:
    with pytest.raises(DeviceError, match="Invalid PCI address"):
        record_status("../../etc/passwd", state="x")


def test_corrupt_record_ignored(env: Path) -> None:
    record_status("0000:00:05.0", state="running")
    (env / "var" / "status" / "0000:00:05.0.json").write_text("{")
    assert read_status() == {}
