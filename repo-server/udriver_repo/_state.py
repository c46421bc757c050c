"""`REPO/state.db`: publishers, their PCI vendor IDs and hashed tokens.

The audit log shares the file: its table belongs to `_audit` (the one log of the core's
operator actions and the server's uploads).

What is *published* is not stored here: the committed TUF metadata and index targets
are the single source of truth for that, so a crash between a database commit and the
metadata switch can never make the two disagree about what clients see.

Tokens look like `udr_<id>_<secret>`; only sha256(secret) is stored. `authenticate`
looks the row up by id and compares digests with `hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from udriver.errors import RepositoryError

from ._types import Vendor

__all__ = ["NAME_RE", "State"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vendors (
    name TEXT PRIMARY KEY, class_grant INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pci_vendors (
    pci INTEGER PRIMARY KEY, vendor TEXT NOT NULL REFERENCES vendors(name));
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, vendor TEXT NOT NULL REFERENCES vendors(name),
    digest TEXT NOT NULL, created TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
"""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    """Thin wrapper over the SQLite file; one short-lived connection per operation."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as e:
            raise RepositoryError(f"cannot open {self.path}: {e}") from e
        try:
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA busy_timeout=60000")
            yield con
        except sqlite3.Error as e:
            raise RepositoryError(f"{self.path}: {e}") from e
        finally:
            con.close()

    def create(self) -> None:
        """Create the file 0600 whatever the umask (it holds token digests and the audit
        log; SQLite gives its -wal and -shm files the database file's mode), then the schema.

        Raises:
            RepositoryError: the file cannot be created or written.
        """
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            os.chmod(self.path, 0o600)
        except OSError as e:
            raise RepositoryError(f"cannot create {self.path}: {e.strerror}") from e
        with self._db() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)

    def add_vendor(self, name: str, pci: list[int], class_grant: bool) -> str:
        """Insert a vendor, its IDs and a fresh token; return the token.

        Raises:
            RepositoryError: name taken or an ID already owned (the message names the owner).
        """
        tok_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                if con.execute("SELECT 1 FROM vendors WHERE name=?", (name,)).fetchone():
                    raise RepositoryError(f"vendor {name!r} already exists")
                problems = []
                for v in pci:
                    row = con.execute("SELECT vendor FROM pci_vendors WHERE pci=?", (v,)).fetchone()
                    if row:
                        problems.append(f"PCI vendor {v:04x} already belongs to {row[0]!r}")
                if problems:
                    raise RepositoryError("; ".join(problems))
                con.execute("INSERT INTO vendors(name, class_grant, created) VALUES (?,?,?)",
                            (name, int(class_grant), _now()))
                con.executemany("INSERT INTO pci_vendors(pci, vendor) VALUES (?,?)",
                                [(v, name) for v in pci])
                con.execute("INSERT INTO tokens(id, vendor, digest, created) VALUES (?,?,?,?)",
                            (tok_id, name, hashlib.sha256(secret.encode()).hexdigest(), _now()))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return f"udr_{tok_id}_{secret}"

    def bulk_add_vendors(self, rows: list[tuple[str, list[int], bool]]) -> None:
        """Insert many vendors without tokens in one transaction (imports, benchmarks).

        Raises:
            RepositoryError: a name or PCI vendor ID is already taken.
        """
        now = _now()
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("INSERT INTO vendors(name, class_grant, created) VALUES (?,?,?)",
                                [(n, int(g), now) for n, _, g in rows])
                con.executemany("INSERT INTO pci_vendors(pci, vendor) VALUES (?,?)",
                                [(v, n) for n, ids, _ in rows for v in ids])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def delete_vendor(self, name: str) -> None:
        """Undo `add_vendor` (its role could not be created)."""
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            for table in ("tokens", "pci_vendors"):
                con.execute(f"DELETE FROM {table} WHERE vendor=?", (name,))
            con.execute("DELETE FROM vendors WHERE name=?", (name,))
            con.execute("COMMIT")

    def owner_of(self, pci: list[int]) -> dict[int, str]:
        with self._db() as con:
            out: dict[int, str] = {}
            for v in pci:
                row = con.execute("SELECT vendor FROM pci_vendors WHERE pci=?", (v,)).fetchone()
                if row:
                    out[v] = row[0]
            return out

    def vendors(self) -> list[Vendor]:
        with self._db() as con:
            rows = con.execute(
                "SELECT name, class_grant, revoked, created FROM vendors ORDER BY name").fetchall()
            ids: dict[str, list[int]] = {}
            for pci, vendor in con.execute("SELECT pci, vendor FROM pci_vendors ORDER BY pci"):
                ids.setdefault(vendor, []).append(pci)
        return [Vendor(n, tuple(ids.get(n, ())), bool(g), bool(r), c) for n, g, r, c in rows]

    def vendor(self, name: str) -> Vendor | None:
        with self._db() as con:
            row = con.execute("SELECT name, class_grant, revoked, created FROM vendors "
                              "WHERE name=?", (name,)).fetchone()
            if row is None:
                return None
            ids = [r[0] for r in con.execute(
                "SELECT pci FROM pci_vendors WHERE vendor=? ORDER BY pci", (name,))]
        return Vendor(row[0], tuple(ids), bool(row[1]), bool(row[2]), row[3])

    def revoke(self, name: str) -> None:
        with self._db() as con:
            cur = con.execute("UPDATE vendors SET revoked=1 WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise RepositoryError(f"no such vendor: {name!r}")
            con.execute("UPDATE tokens SET revoked=1 WHERE vendor=?", (name,))

    def authenticate(self, token: str) -> str | None:
        """The vendor name for an active token, else None."""
        parts = token.split("_", 2) if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != "udr":
            return None
        digest = hashlib.sha256(parts[2].encode()).hexdigest()
        with self._db() as con:
            row = con.execute(
                "SELECT t.digest, t.vendor FROM tokens t JOIN vendors v ON v.name=t.vendor "
                "WHERE t.id=? AND t.revoked=0 AND v.revoked=0", (parts[1],)).fetchone()
        if row is None:
            hmac.compare_digest(digest, digest)  # same work as a hit
            return None
        return str(row[1]) if hmac.compare_digest(row[0], digest) else None
