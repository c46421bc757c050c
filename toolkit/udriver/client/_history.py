"""What was installed, when and why; and which drivers are held at their version.

Rules (modelled on apt's history.log and `apt-mark hold`):

- `<state>/history.jsonl` gets one JSON object per change of the store: `install`,
  `upgrade`, `downgrade`, `rollback`, `remove`, `hold`, `unhold`, each with the time
  (UTC), the driver, the versions before and after, the repository, the uid that ran it
  and the reason: the udriver command that made the change (`udriver install`,
  `udriver update`, `udriver autobind` for hotplug...), set once per process by the CLI.
  Lines are appended under an flock with O_APPEND and fsync, so two processes never
  interleave. The history is a record, not a control: a failure to write it is logged
  and never undoes or blocks the change it describes.
- A held driver (`<store>/<driver>/.hold`) is left at its version by `udriver update`.
  `udriver rollback` holds the driver, so the next update does not upgrade it straight
  back to the version just rolled back from; `udriver unhold` releases it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from .._log import getLogger
from ..errors import InstallError
from ..paths import state_dir

__all__ = ["history_path", "is_held", "read_history", "record", "set_hold", "set_reason"]

log = getLogger(__name__)

_REASON = ""


def set_reason(reason: str) -> None:
    """Name what this process's store changes are for (the CLI sets `udriver COMMAND`)."""
    global _REASON
    _REASON = reason


def history_path() -> Path:
    return state_dir() / "history.jsonl"


def record(action: str, driver: str, *, before: str | None = None, after: str | None = None,
           repo: str = "", store_root: Path | None = None) -> None:
    """Append one change to the history (best effort: see the module's rules).

    The history lies beside the store it describes, `<store_root>/../history.jsonl`
    (`<state>/history.jsonl` for the default `<state>/drivers`): a store elsewhere (tests, a
    second root) never writes to the system's history.
    """
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "action": action,
             "driver": driver, "from": before, "to": after, "repo": repo,
             "reason": _REASON, "uid": os.getuid()}
    path = store_root.parent / "history.jsonl" if store_root is not None else history_path()
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        log.warning("cannot record %s of %s in %s: %s", action, driver, path, e.strerror)


def read_history(driver: str | None = None) -> list[dict[str, object]]:
    """Every recorded change, oldest first (only `driver`'s if given).

    A line that is not a JSON object (a torn write after a crash) is skipped with a warning.
    """
    try:
        text = history_path().read_text(errors="replace")
    except FileNotFoundError:
        return []
    except OSError as e:
        raise InstallError(f"Cannot read the history ({e.strerror}): "
                           f"{str(history_path())!r}") from e
    out: list[dict[str, object]] = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            log.warning("%s:%d: not a history entry, skipped", history_path(), n)
            continue
        if isinstance(entry, dict) and (driver is None or entry.get("driver") == driver):
            out.append(entry)
    return out


def is_held(store_root: Path, driver: str) -> bool:
    return (store_root / driver / ".hold").exists()


def set_hold(store_root: Path, driver: str, held: bool) -> bool:
    """Hold or release `driver`; True if that changed anything.

    Raises:
        InstallError: the driver is not installed.
    """
    d = store_root / driver
    if not (d / "current").exists():
        raise InstallError(f"driver {driver!r} is not installed")
    marker = d / ".hold"
    if marker.exists() == held:
        return False
    if held:
        marker.write_text("held\n")
    else:
        marker.unlink()
    record("hold" if held else "unhold", driver, store_root=store_root)
    return True
