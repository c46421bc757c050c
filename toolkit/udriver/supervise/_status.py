"""Records the supervisor keeps about a device.

Two files, both written atomically (temporary file + `os.replace`):

- `<state>/status/<bdf>.json` is the device's status record, shared with the client
  (`udriver status` reads it). The supervisor owns only its `"supervise"` member and keeps
  every other key as it found it:

      {"supervise": {"state": "running" | "restarting" | "stopped" | "exited" | "failed",
                     "reason": "gave up after 5 crashes in 60 s (last: exit status 3)",
                     "driver": "edu", "pid": 1234, "crashes": 5, "updated": 1700000000.0}}

- `<run>/supervise/<bdf>.json` says that a supervisor is in charge of the device
  (`{"pid": ..., "driver": ..., "mode": "supervise"|"systemd"}`); udev's `remove` rule tests
  for it and `udriver autobind` on `remove` signals that pid.

A `failed` record blocks automatic restarts (autobind, the systemd unit) until a user
runs `udriver supervise`/`install` again, which clears it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import DeviceError

__all__ = ["status_path", "read_status", "write_supervise_status", "clear_supervise_status",
           "claim_path", "write_claim", "read_claim", "remove_claim", "check_bdf"]

_BDF_CHARS = set("0123456789abcdef:.")


def check_bdf(bdf: str) -> str:
    """Validate a PCI address `DDDD:BB:DD.F` (lower-case hex) and return it.

    Raises:
        DeviceError: not a full PCI address (a path component must never come from it).
    """
    parts = bdf.split(":")
    ok = (len(bdf) == 12 and set(bdf) <= _BDF_CHARS and len(parts) == 3
          and len(parts[0]) == 4 and len(parts[1]) == 2 and parts[2][2:3] == ".")
    if not ok:
        raise DeviceError(f"invalid PCI address {bdf!r}: expected DDDD:BB:DD.F "
                          f"(lower-case hex), e.g. 0000:01:00.0")
    return bdf


def status_path(bdf: str) -> Path:
    return paths.state_dir() / "status" / f"{check_bdf(bdf)}.json"


def claim_path(bdf: str) -> Path:
    return paths.run_dir() / "supervise" / f"{check_bdf(bdf)}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _write(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, sort_keys=True, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_status(bdf: str) -> dict[str, Any]:
    """The device's whole status record ({} when there is none or it is unreadable)."""
    return _read(status_path(bdf))


def write_supervise_status(bdf: str, state: str, reason: str, *, driver: str | None = None,
                           pid: int | None = None, crashes: int = 0) -> None:
    """Replace the `"supervise"` member of the device's status record."""
    path = status_path(bdf)
    obj = _read(path)
    obj["supervise"] = {"state": state, "reason": reason, "driver": driver, "pid": pid,
                        "crashes": crashes, "updated": time.time()}
    _write(path, obj)


def clear_supervise_status(bdf: str, *, remove_file: bool = False) -> None:
    """Drop the `"supervise"` member (or the whole record, for a removed device)."""
    path = status_path(bdf)
    if remove_file:
        path.unlink(missing_ok=True)
        return
    obj = _read(path)
    if obj.pop("supervise", None) is not None:
        _write(path, obj)


def write_claim(bdf: str, pid: int, driver: str | None, mode: str) -> None:
    _write(claim_path(bdf), {"pid": pid, "driver": driver, "mode": mode})


def read_claim(bdf: str) -> dict[str, Any]:
    return _read(claim_path(bdf))


def remove_claim(bdf: str, pid: int | None = None) -> None:
    """Remove the claim (only if it is still `pid`'s, when given)."""
    path = claim_path(bdf)
    if pid is not None and read_claim(bdf).get("pid") not in (pid, None):
        return
    path.unlink(missing_ok=True)
