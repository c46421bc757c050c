"""The server's audit log: one row per upload attempt, in REPO/state.db.

Rules:
- The table `server_audit` belongs to the server; the repository core owns every other
  table in state.db and this module never touches them.
- Every upload request gets exactly one row, accepted or rejected: who (the vendor the
  token belongs to, or NULL), what (file name, size, sha256 of the bytes received), when
  (UTC, ISO 8601), the result (HTTP status and a short code) and the client address.
- Tokens are never logged, not even hashed.
- Each write opens its own short connection with a busy timeout, so the log can share
  state.db with the core's own connections (SQLite serialises writers).
"""

from __future__ import annotations

import datetime as _dt
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from udriver.errors import RepositoryError

__all__ = ["AuditEntry", "AuditLog"]

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS server_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    vendor    TEXT,
    client    TEXT,
    action    TEXT NOT NULL,
    filename  TEXT,
    size      INTEGER,
    sha256    TEXT,
    status    INTEGER NOT NULL,
    result    TEXT NOT NULL,
    message   TEXT
)
"""
_COLUMNS = ("id", "time", "vendor", "client", "action", "filename", "size", "sha256",
            "status", "result", "message")


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    id: int
    """Row id, increasing."""
    time: str
    """UTC time, ISO 8601 with microseconds."""
    vendor: str | None
    """The vendor the token belonged to; None if unauthenticated."""
    client: str | None
    """The client's address as the server saw it."""
    action: str
    """What was attempted, e.g. `upload`."""
    filename: str | None
    """The file name in the request (truncated to 200 characters)."""
    size: int | None
    """Bytes received."""
    sha256: str | None
    """SHA-256 of the bytes received, when the whole body was read."""
    status: int
    """HTTP status returned."""
    result: str
    """Short result code: `published`, `unchanged`, `unauthorized`, `too-large`..."""
    message: str | None
    """The error message returned to the client, if any."""


class AuditLog:
    """Append-only audit table in the repository's state.db."""

    def __init__(self, db_path: Path) -> None:
        """Create the table if needed.

        Args:
            db_path: REPO/state.db.

        Raises:
            RepositoryError: the database cannot be opened or written.
        """
        self._db = db_path
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self._db, timeout=30.0)
        except sqlite3.Error as e:
            raise RepositoryError(f"cannot open audit log {self._db}: {e}") from e

    def record(self, *, action: str, status: int, result: str, vendor: str | None = None,
               client: str | None = None, filename: str | None = None, size: int | None = None,
               sha256: str | None = None, message: str | None = None) -> None:
        """Append one row. Failures are logged, never raised: the answer to the client
        must not depend on the audit log's health, but an operator must see the failure.
        """
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")
        row = (now, vendor, client, action, filename[:200] if filename else filename, size,
               sha256, status, result, message[:2000] if message else message)
        try:
            conn = self._connect()
            try:
                with conn:
                    conn.execute(
                        "INSERT INTO server_audit (time, vendor, client, action, filename, size,"
                        " sha256, status, result, message) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
            finally:
                conn.close()
        except (sqlite3.Error, RepositoryError) as e:
            _log.error("audit log write failed (%s): %r", e, row)

    def entries(self, limit: int = 1000) -> list[AuditEntry]:
        """The most recent `limit` rows, oldest first.

        Raises:
            RepositoryError: the database cannot be read.
        """
        conn = self._connect()
        try:
            rows = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM server_audit ORDER BY id DESC LIMIT ?",
                (limit,)).fetchall()
        except sqlite3.Error as e:
            raise RepositoryError(f"cannot read audit log {self._db}: {e}") from e
        finally:
            conn.close()
        return [AuditEntry(*r) for r in reversed(rows)]
