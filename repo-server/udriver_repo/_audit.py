"""The repository's one audit log: the table `server_audit` in REPO/state.db.

Rules:
- This module owns the table `server_audit` and its escaping; nothing else writes or
  reads it. The repository core (`Repository`, vendors, names, rotation) records its
  operator actions with `AuditLog.event`; the HTTP server records every upload request
  with `AuditLog.record`. The other tables of state.db belong to `_state`.
- A row is when (UTC, ISO 8601 with microseconds), who, what and the result:
  - an HTTP row (the server): `vendor` (the token's vendor, or NULL), `client` (the
    address), `action` (`upload`, `request`, `connect`, `http`), `filename`, `size`,
    `sha256` of the bytes received, `status` (the HTTP status), `result` (a short code:
    `published`, `unauthorized`...) and `message` (the error returned); `actor` is NULL.
    Every upload request gets exactly one row, accepted or rejected; a publish made by an
    upload is that row (the core does not add a second one).
  - a core row: `actor` (`admin` for the vendor, names, key and init commands,
    `operator` for `publish --system`, the vendor's name for `publish`), `action`
    (`init`, `vendor-add`, `vendor-revoke`, `name-assign`, `names-migrate`, `refresh`,
    `rotate-key`, `publish`, `publish-unchanged`, `publish-system`...), `vendor` (the
    publisher a publish was for), `message` (the detail: file names, the role...),
    `result` `ok`; `status` is NULL (no HTTP request).
- Tokens are never logged, not even hashed.
- Text is stored escaped (`escape_text`): no control character (C0, DEL, C1), no bidi
  override or other format character, no line separator and no undecodable byte reaches
  the table, so `sqlite3 REPO/state.db 'SELECT ...'` prints nothing a terminal would
  interpret. `entries()` escapes again on the way out (a no-op for rows written by this
  version; it covers rows written by an older one). A backslash is kept as is, so a
  literal `\\x1b` typed into a field reads the same as an escaped ESC: the log is for
  humans, the bytes are not recoverable from it.
- A write that fails is logged at ERROR, never raised: an answer to a client or an
  operator's finished command must not depend on the log's health.
- Each operation opens its own short connection with a busy timeout, so the log shares
  state.db with the core's own connections (SQLite serialises writers).
- Migration (`AuditLog.__init__`, once, in one `BEGIN IMMEDIATE` transaction): a
  state.db from before the one log has the core's table `audit` (id, time, actor,
  action, detail) and/or a `server_audit` without the column `actor` (and with `status
  NOT NULL`). Both are rebuilt into the current `server_audit`: the server's rows in
  their order, the core's rows merged in by time (`actor`, `action`, `detail` ->
  `message`, `result` `ok`, `status` NULL, the time written the same way as the
  server's), ids renumbered in that order; then `audit` is dropped. A second open
  finds the current schema and no `audit` table and does nothing; a failure rolls the
  whole migration back.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import logging
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from udriver.errors import RepositoryError

__all__ = ["AuditEntry", "AuditLog", "escape_text"]

_log = logging.getLogger(__name__)

_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    vendor    TEXT,
    client    TEXT,
    action    TEXT NOT NULL,
    filename  TEXT,
    size      INTEGER,
    sha256    TEXT,
    status    INTEGER,
    result    TEXT NOT NULL,
    message   TEXT,
    actor     TEXT
)
"""
_COLUMNS = ("id", "time", "vendor", "client", "action", "filename", "size", "sha256",
            "status", "result", "message", "actor")
"""In table order: `actor` last, so the columns of an older `server_audit` keep their
places (`SELECT *` reads them where it did)."""
_OLD_SERVER = ("time", "vendor", "client", "action", "filename", "size", "sha256",
               "status", "result", "message")
"""The columns of a `server_audit` written before the one log (no `actor`)."""

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


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _same_time_format(text: str) -> str:
    """The core's old `2026-01-02T03:04:05Z` as `_now()` writes it (unparsable: as is)."""
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.astimezone(_dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    id: int
    """Row id, increasing."""
    time: str
    """UTC time, ISO 8601 with microseconds."""
    vendor: str | None
    """The vendor the token belonged to (HTTP), or the publisher of a publish; else None."""
    client: str | None
    """The client's address as the server saw it."""
    action: str
    """What was attempted, e.g. `upload`, `vendor-add`."""
    filename: str | None
    """The file name in the request (truncated to 200 characters, then escaped)."""
    size: int | None
    """Bytes received."""
    sha256: str | None
    """SHA-256 of the bytes received, when the whole body was read."""
    status: int | None
    """HTTP status returned; None for a core action."""
    result: str
    """Short result code: `published`, `unchanged`, `unauthorized`, `too-large`, `ok`..."""
    message: str | None
    """The error message returned to the client, or a core action's detail."""
    actor: str | None
    """Who ran a core action (`admin`, `operator`, a vendor); None for an HTTP row."""

    def as_dict(self) -> dict[str, Any]:
        """The row as a JSON-ready mapping, columns in table order."""
        return {c: getattr(self, c) for c in _COLUMNS}


class AuditLog:
    """The append-only audit table in the repository's state.db."""

    def __init__(self, db_path: Path) -> None:
        """Create the table, or migrate an older state.db's two tables into it.

        Args:
            db_path: REPO/state.db.

        Raises:
            RepositoryError: the database cannot be opened, written or migrated.
        """
        self._db = db_path
        conn = self._connect()
        try:
            if _is_current(conn):  # the common case: no write lock taken
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                _migrate(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise RepositoryError(f"cannot prepare the audit log in {self._db}: {e}") from e
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self._db, timeout=30.0, isolation_level=None)
        except sqlite3.Error as e:
            raise RepositoryError(f"cannot open audit log {self._db}: {e}") from e

    def record(self, *, action: str, status: int | None, result: str,
               vendor: str | None = None, client: str | None = None,
               filename: str | None = None, size: int | None = None,
               sha256: str | None = None, message: str | None = None,
               actor: str | None = None) -> None:
        """Append one row. Failures are logged, never raised: the answer to the client
        must not depend on the audit log's health, but an operator must see the failure.
        """
        row = (_now(), _esc(vendor, 200), _esc(client, 300), escape_text(action),
               _esc(filename, 200), size, _esc(sha256, 64), status, escape_text(result),
               _esc(message, 2000), _esc(actor, 200))
        try:
            conn = self._connect()
            try:
                conn.execute(f"INSERT INTO server_audit ({', '.join(_COLUMNS[1:])}) "
                             "VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
            finally:
                conn.close()
        except (sqlite3.Error, RepositoryError) as e:
            _log.error("audit log write failed (%s): %r", e, row)

    def event(self, actor: str, action: str, detail: str, vendor: str | None = None) -> None:
        """Append a core action's row (no HTTP request: status NULL, result `ok`).

        Args:
            actor: `admin`, `operator`, or the vendor that published.
            action: e.g. `vendor-add`, `publish`.
            detail: what it acted on (file names, a role, a name).
            vendor: the publisher concerned, if any.
        """
        self.record(actor=actor, action=action, status=None, result="ok", vendor=vendor,
                    message=detail)

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


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _has_actor(conn: sqlite3.Connection) -> bool:
    return "actor" in {r[1] for r in conn.execute("PRAGMA table_info(server_audit)")}


def _is_current(conn: sqlite3.Connection) -> bool:
    tables = _tables(conn)
    return "server_audit" in tables and "audit" not in tables and _has_actor(conn)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring state.db to the one log (see the module's rules); inside a transaction."""
    if _is_current(conn):  # another process migrated between the check and the lock
        return
    tables = _tables(conn)
    current = "server_audit" in tables and _has_actor(conn)
    if "server_audit" not in tables:
        conn.execute(_TABLE.format(name="server_audit"))
        if "audit" not in tables:
            return
        current = True
    cols = _COLUMNS[1:] if current else _OLD_SERVER
    server = [dict(zip(cols, r, strict=True)) for r in conn.execute(
        f"SELECT {', '.join(cols)} FROM server_audit ORDER BY id")]
    core = []
    if "audit" in tables:
        core = [{"time": _same_time_format(t), "actor": escape_text(a), "action": escape_text(x),
                 "vendor": escape_text(a) if x.startswith("publish") and a != "operator"
                 else None, "status": None, "result": "ok", "message": escape_text(d)}
                for t, a, x, d in conn.execute(
                    "SELECT time, actor, action, detail FROM audit ORDER BY id")]
    conn.execute("DROP TABLE IF EXISTS server_audit_new")
    conn.execute(_TABLE.format(name="server_audit_new"))
    conn.executemany(
        f"INSERT INTO server_audit_new ({', '.join(_COLUMNS[1:])}) "
        f"VALUES ({', '.join(':' + c for c in _COLUMNS[1:])})",
        ({c: r.get(c) for c in _COLUMNS[1:]}
         for r in heapq.merge(server, core, key=lambda r: str(r["time"]))))
    conn.execute("DROP TABLE server_audit")
    conn.execute("DROP TABLE IF EXISTS audit")
    conn.execute("ALTER TABLE server_audit_new RENAME TO server_audit")
