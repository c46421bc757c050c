"""A device's state on this machine: its status record, its claim, its crash history.

The one module that reads and writes these files; every name in them is a PCI address
in canonical spelling (`udriver.pci.normalise_bdf`, the one grammar), checked before it
becomes a path component.

- `<state>/status/<bdf>.json`, the status record: what happened to the device, read by
  `udriver status` and tested by udev's `remove` rule. Fields are free-form beyond these:

      bdf        "0000:00:04.0"
      driver     driver name, or null
      version    driver version, or null
      state      "installing" | "binding" | "running" | "restarting" | "stopped" |
                 "exited" | "failed"
      pid        driver process id while running
      restarts   crashes inside the current restart window
      reason     why it is in that state (shown by `udriver status`)
      updated    UTC time of the last change, ISO 8601

  Writers merge their fields into the record. A `failed` record blocks automatic
  restarts (autobind, the systemd unit) until `udriver supervise` is run by hand or the
  device is re-added.
- `<run>/supervise/<bdf>.json`, the claim: a supervisor is in charge of the device
  (`{"pid": ..., "driver": ..., "mode": "supervise"|"systemd"}`); `udriver autobind` on
  `remove` signals that pid.
- `<run>/supervise/<bdf>.crashes.json`, the crash history: crash times (CLOCK_MONOTONIC,
  valid within one boot) and whether the restart policy gave up, for systemd mode, where
  every crash is seen by a new `ExecStopPost` process.

Every file is replaced atomically (`udriver.fsio.write_atomic`, without fsync), so a
reader sees the old record or the new one, never half. A record that cannot be read counts as absent (a
corrupt status record is logged): the state of one device must never stop another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import paths
from ._log import getLogger
from .fsio import write_atomic

__all__ = [
    "claim_path",
    "clear_crash_history",
    "clear_status",
    "read_claim",
    "read_crash_history",
    "read_record",
    "read_status",
    "record_state",
    "record_status",
    "remove_claim",
    "status_dir",
    "status_path",
    "write_claim",
    "write_crash_history",
]

log = getLogger(__name__)


def _canonical(bdf: str) -> str:
    # udriver.pci on first use: `udriver status` reads records without the rest of pci.
    from .pci import normalise_bdf
    return normalise_bdf(bdf)


def status_dir() -> Path:
    return paths.state_dir() / "status"


def status_path(bdf: str) -> Path:
    """`<state>/status/<bdf>.json`.

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    return status_dir() / f"{_canonical(bdf)}.json"


def claim_path(bdf: str) -> Path:
    """`<run>/supervise/<bdf>.json`.

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    return paths.run_dir() / "supervise" / f"{_canonical(bdf)}.json"


def _crash_path(bdf: str) -> Path:
    return paths.run_dir() / "supervise" / f"{_canonical(bdf)}.crashes.json"


def _read(path: Path, *, warn: bool = False) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        if warn:
            log.warning("ignoring unreadable status record %s: %s", path, e)
        return {}
    return obj if isinstance(obj, dict) else {}


def _write(path: Path, obj: dict[str, Any], mode: int) -> None:
    # Not fsync'ed (`durable=False`): a record lost in a power cut reads as absent, the
    # state a fresh boot has anyway; the supervisor must not wait for the disk.
    write_atomic(path, (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode(), mode,
                 durable=False)


# -- the status record -------------------------------------------------------------------

def read_record(bdf: str) -> dict[str, Any]:
    """The device's status record ({} when there is none or it is unreadable).

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    return _read(status_path(bdf), warn=True)


def read_status() -> dict[str, dict[str, Any]]:
    """Every device's status record, keyed by PCI address (files of other names are
    not records and are left out)."""
    d = status_dir()
    if not d.is_dir():
        return {}
    from .pci import is_bdf
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(d.glob("*.json")):
        if is_bdf(p.stem):
            rec = _read(p, warn=True)
            if rec:
                out[p.stem] = rec
    return out


def record_status(bdf: str, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the device's status record and write it atomically.

    Returns the record written.

    Raises:
        DeviceError: `bdf` is not a PCI address.
        OSError: the state directory is not writable.
    """
    from datetime import UTC, datetime  # here: `udriver status` only reads

    bdf = _canonical(bdf)
    rec = read_record(bdf)
    rec.update(fields)
    rec["bdf"] = bdf
    rec["updated"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _write(status_path(bdf), rec, 0o600)
    return rec


def record_state(bdf: str, state: str, reason: str, *, driver: str | None = None,
                 pid: int | None = None, crashes: int = 0) -> dict[str, Any]:
    """Merge the supervisor's view (`state`, `reason`, `pid`, `restarts`, and `driver`
    when given) into the device's status record; other fields are kept.

    Raises:
        DeviceError: `bdf` is not a PCI address.
        OSError: the state directory is not writable.
    """
    fields: dict[str, Any] = {"state": state, "reason": reason, "pid": pid, "restarts": crashes}
    if driver is not None:
        fields["driver"] = driver
    return record_status(bdf, **fields)


def clear_status(bdf: str) -> None:
    """Forget the device's status record (it was removed).

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    status_path(bdf).unlink(missing_ok=True)


# -- the claim ---------------------------------------------------------------------------

def write_claim(bdf: str, pid: int, driver: str | None, mode: str) -> None:
    """Say that supervisor `pid` (`mode` "supervise" or "systemd") runs the device.

    Raises:
        DeviceError: `bdf` is not a PCI address.
        OSError: the run directory is not writable.
    """
    _write(claim_path(bdf), {"pid": pid, "driver": driver, "mode": mode}, 0o644)


def read_claim(bdf: str) -> dict[str, Any]:
    """The device's claim ({} when none).

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    return _read(claim_path(bdf))


def remove_claim(bdf: str, pid: int | None = None) -> None:
    """Remove the claim (only if it is still `pid`'s, when given).

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    if pid is not None and read_claim(bdf).get("pid") not in (pid, None):
        return
    claim_path(bdf).unlink(missing_ok=True)


# -- the crash history -------------------------------------------------------------------

def read_crash_history(bdf: str) -> tuple[list[float], bool]:
    """Crash times (CLOCK_MONOTONIC, valid within one boot) and whether we gave up.

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    obj = _read(_crash_path(bdf))
    times = obj.get("crashes")
    if not isinstance(times, list) or not all(isinstance(t, (int, float)) for t in times):
        times = []
    return [float(t) for t in times], bool(obj.get("gave_up", False))


def write_crash_history(bdf: str, times: list[float], gave_up: bool) -> None:
    """Replace the device's crash history.

    Raises:
        DeviceError: `bdf` is not a PCI address.
        OSError: the run directory is not writable.
    """
    _write(_crash_path(bdf), {"crashes": times, "gave_up": gave_up}, 0o644)


def clear_crash_history(bdf: str) -> None:
    """Forget the device's crashes.

    Raises:
        DeviceError: `bdf` is not a PCI address.
    """
    _crash_path(bdf).unlink(missing_ok=True)
