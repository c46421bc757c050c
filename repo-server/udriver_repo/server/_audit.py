"""The server's audit log: one row per upload attempt, in REPO/state.db.

Rules:
- The table `server_audit` belongs to the server; the repository core owns every other
  table in state.db and this module never touches them.
- Every upload request gets exactly one row, accepted or rejected: who (the vendor the
  token belongs to, or NULL), what (file name, size, sha256 of the bytes received), when
  (UTC, ISO 8601), the result (HTTP status and a short code) and the client address.
- Tokens are never logged, not even hashed.
- Text is stored escaped (`escape_text`): no control character (C0, DEL, C1), no bidi
  override or other format character, no line separator and no undecodable byte reaches
  the table, so `sqlite3 REPO/state.db 'SELECT ...'` prints nothing a terminal would
  interpret. `entries()` escapes again on the way out (a no-op for rows written by this
  version; it covers rows written by an older one). A backslash is kept as is, so a
  literal `\\x1b` typed into a field reads the same as an escaped ESC: the log is for
  humans, the bytes are not recoverable from it.
- Each write opens its own short connection with a busy timeout, so the log can share
  state.db with the core's own connections (SQLite serialises writers).
"""

from __future__ import annotations

import datetime as _dt
import logging
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from udriver.errors import RepositoryError

__all__ = ["AuditEntry", "AuditLog", "escape_text"]

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
# Unicode general categories escaped by `escape_text`: Cc (C0, DEL, C1 controls),
# Cf (format: bidi embeddings/overrides/isolates U+202A-U+202E and U+2066-U+2069, marks
# U+200E/U+200F/U+061C, zero-width characters, BOM), Cs (lone surrogates: the bytes that
# were not UTF-8, as decoded with surrogateescape), Zl/Zp (U+2028/U+2029 line breaks).
_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def escape_text(text: str) -> str:
    """`text` with every control, format, separator or undecodable character written as
    a Python-style escape (`\\x1b`, `\\x0d`, `\\u202e`, `\\udcff`); printable text,
    including non-ASCII letters, unchanged. Idempotent: the result has nothing left to
    escape.
    """
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) not in _ESCAPED:
            out.append(ch)
            continue
        n = ord(ch)
        out.append(f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000
                   else f"\\U{n:08x}")
    return "".join(out)


def _escaped_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(escape_text(v) if isinstance(v, str) else v for v in row)


def _esc(value: str | None, limit: int) -> str | None:
    return None if value is None else escape_text(value[:limit])


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
    """The file name in the request (truncated to 200 characters, then escaped)."""
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
        row = (now, _esc(vendor, 200), _esc(client, 300), escape_text(action),
               _esc(filename, 200), size, _esc(sha256, 64), status, escape_text(result),
               _esc(message, 2000))
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
        return [AuditEntry(*_escaped_row(r)) for r in reversed(rows)]
