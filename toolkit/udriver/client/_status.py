"""Per-device status records: `<state>/status/<bdf>.json`.

The supervisor (and `udriver autobind`) record what happened to each device; `udriver
status` reads them back. One JSON object per device, written to a temporary file and
renamed, so a reader never sees half a record. Fields are free-form beyond these:

    bdf        "0000:00:04.0"
    driver     driver name, or null
    version    driver version, or null
    state      "installed" | "bound" | "running" | "restarting" | "failed" | "unbound"
    pid        driver process id while running
    restarts   restarts within the current window
    reason     why it failed / was given up (shown by `udriver status`)
    updated    UTC time of the last change, ISO 8601
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import DeviceError
from ..paths import state_dir

__all__ = ["clear_status", "read_status", "record_status", "status_dir"]

log = logging.getLogger(__name__)
_BDF_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def status_dir() -> Path:
    return state_dir() / "status"


def _path(bdf: str) -> Path:
    if not _BDF_RE.match(bdf):
        raise DeviceError(f"Invalid PCI address (expected dddd:bb:dd.f, lower-case hex): {bdf!r}")
    return status_dir() / f"{bdf}.json"


def record_status(bdf: str, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the device's record and write it atomically.

    Raises:
        DeviceError: `bdf` is not a PCI address.
        OSError: the state directory is not writable.
    """
    path = _path(bdf)
    rec = read_one(bdf) or {}
    rec.update(fields)
    rec["bdf"] = bdf
    rec["updated"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # on use (it imports shutil, which loads bz2 and lzma): not for `status`

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(rec, f, sort_keys=True, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rec


def read_one(bdf: str) -> dict[str, Any] | None:
    """The record for `bdf`, or None. A corrupt record is logged and ignored."""
    path = _path(bdf)
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable status record %s: %s", path, e)
        return None
    return obj if isinstance(obj, dict) else None


def read_status() -> dict[str, dict[str, Any]]:
    """Every device record, keyed by BDF."""
    d = status_dir()
    if not d.is_dir():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(d.glob("*.json")):
        if _BDF_RE.match(p.stem):
            rec = read_one(p.stem)
            if rec is not None:
                out[p.stem] = rec
    return out


def clear_status(bdf: str) -> None:
    """Forget a device (it was removed)."""
    _path(bdf).unlink(missing_ok=True)
