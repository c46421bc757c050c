"""Records the supervisor keeps about a device.

- `<state>/status/<bdf>.json` is the device's status record, owned by the client
  (`udriver.client.record_status`, read by `udriver status`). The supervisor merges
  `state` ("running" | "restarting" | "stopped" | "exited" | "failed"), `reason`, `pid`,
  `restarts` (crashes inside the current window) and `driver` into it; other fields are
  kept. A `failed` record blocks automatic restarts (autobind, the systemd unit) until
  `udriver supervise` is run by hand or the device is re-added.

- `<run>/supervise/<bdf>.json` says that a supervisor is in charge of the device
  (`{"pid": ..., "driver": ..., "mode": "supervise"|"systemd"}`); udev's `remove` rule tests
  for it and `udriver autobind` on `remove` signals that pid. Written atomically
  (temporary file + `os.replace`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .. import paths

__all__ = [
    "check_bdf",
    "claim_path",
    "clear_crash_history",
    "clear_supervise_status",
    "read_claim",
    "read_crash_history",
    "read_status",
    "remove_claim",
    "status_path",
    "write_claim",
    "write_crash_history",
    "write_supervise_status",
]



def check_bdf(bdf: str) -> str:
    """Validate a PCI address and return it canonical (`DDDD:BB:DD.F`, lower-case).

    Raises:
        DeviceError: not a PCI address (a path component must never come from it).
    """
    from ..pci import normalise_bdf
    return normalise_bdf(bdf)


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
    """Merge the supervisor's view into the device's status record."""
    from ..client import record_status
    fields: dict[str, Any] = {"state": state, "reason": reason, "pid": pid, "restarts": crashes}
    if driver is not None:
        fields["driver"] = driver
    record_status(check_bdf(bdf), **fields)


def clear_supervise_status(bdf: str) -> None:
    """Forget the device (it was removed)."""
    from ..client import clear_status
    clear_status(check_bdf(bdf))


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


def _crash_path(bdf: str) -> Path:
    return paths.run_dir() / "supervise" / f"{check_bdf(bdf)}.crashes.json"


def read_crash_history(bdf: str) -> tuple[list[float], bool]:
    """Crash times (CLOCK_MONOTONIC, valid within one boot) and whether we gave up.

    Used in systemd mode, where every crash is seen by a new `ExecStopPost` process.
    """
    obj = _read(_crash_path(bdf))
    times = obj.get("crashes")
    if not isinstance(times, list) or not all(isinstance(t, (int, float)) for t in times):
        times = []
    return [float(t) for t in times], bool(obj.get("gave_up", False))


def write_crash_history(bdf: str, times: list[float], gave_up: bool) -> None:
    _write(_crash_path(bdf), {"crashes": times, "gave_up": gave_up})


def clear_crash_history(bdf: str) -> None:
    _crash_path(bdf).unlink(missing_ok=True)
