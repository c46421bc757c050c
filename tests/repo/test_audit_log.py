"""The repository's one audit log (`udriver_repo._audit`, issue 14): the core's operator
actions and the server's upload rows in one table, an older state.db's two tables
migrated into it once, and `udriver-repo audit` printing it escaped.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from udriver_repo._audit import AuditLog
from udriver_repo.cli import main

from udriver.errors import RepositoryError

# The two tables as the versions before the one log created them (state.db's `audit`
# from `_state`, `server_audit` from `server/_audit`).
_OLD_CORE = """CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL)"""
_OLD_SERVER = """CREATE TABLE server_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, vendor TEXT, client TEXT,
    action TEXT NOT NULL, filename TEXT, size INTEGER, sha256 TEXT,
    status INTEGER NOT NULL, result TEXT NOT NULL, message TEXT)"""


def _old_db(path: Path, *, server: bool = True) -> Path:
    db = path / "state.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE vendors (name TEXT PRIMARY KEY)")
        c.execute(_OLD_CORE)
        c.executemany("INSERT INTO audit(time, actor, action, detail) VALUES (?,?,?,?)", [
            ("2026-01-01T10:00:00Z", "admin", "init", "root threshold 1"),
            ("2026-01-01T10:00:05Z", "admin", "vendor-add", "acme pci=5a5a class=False"),
            ("2026-01-01T12:00:00Z", "acme", "publish", "acme-1.0.whl"),
            ("2026-01-01T12:30:00Z", "admin", "vendor-revoke", "bad\x1bname")])
        c.execute("INSERT INTO vendors VALUES ('acme')")
        if server:
            c.execute(_OLD_SERVER)
            c.executemany(
                "INSERT INTO server_audit (time, vendor, client, action, filename, size,"
                " sha256, status, result, message) VALUES (?,?,?,?,?,?,?,?,?,?)", [
                    ("2026-01-01T11:00:00.250000+00:00", "acme", "127.0.0.1", "upload",
                     "acme-0.9.whl", 10, "ab" * 32, 201, "published", None),
                    ("2026-01-01T12:10:00.000000+00:00", None, "127.0.0.1", "upload",
                     "x.whl", None, None, 401, "unauthorized", "no token")])
    return db


def _rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT id, time, actor, vendor, action, filename, status, result,"
                         " message FROM server_audit ORDER BY id").fetchall()


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_an_old_state_db_is_migrated_into_one_table_in_time_order(tmp_path: Path) -> None:
    db = _old_db(tmp_path)
    AuditLog(db)
    assert "audit" not in _tables(db) and {"vendors", "server_audit"} <= _tables(db)
    assert _rows(db) == [
        (1, "2026-01-01T10:00:00.000000+00:00", "admin", None, "init", None, None, "ok",
         "root threshold 1"),
        (2, "2026-01-01T10:00:05.000000+00:00", "admin", None, "vendor-add", None, None,
         "ok", "acme pci=5a5a class=False"),
        (3, "2026-01-01T11:00:00.250000+00:00", None, "acme", "upload", "acme-0.9.whl", 201,
         "published", None),
        (4, "2026-01-01T12:00:00.000000+00:00", "acme", "acme", "publish", None, None, "ok",
         "acme-1.0.whl"),
        (5, "2026-01-01T12:10:00.000000+00:00", None, None, "upload", "x.whl", 401,
         "unauthorized", "no token"),
        # Written raw by the old core: escaped on the way in, as every row now is.
        (6, "2026-01-01T12:30:00.000000+00:00", "admin", None, "vendor-revoke", None, None,
         "ok", "bad\\x1bname")]
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT name FROM vendors").fetchall() == [("acme",)]  # untouched


def test_the_migration_runs_once(tmp_path: Path) -> None:
    db = _old_db(tmp_path)
    AuditLog(db).event("admin", "refresh", "timestamp 2")
    before = _rows(db)
    log = AuditLog(db)  # a second open: nothing to migrate, nothing renumbered
    assert _rows(db) == before and len(before) == 7
    assert [(e.actor, e.action, e.status) for e in log.entries(2)] == [
        ("admin", "vendor-revoke", None), ("admin", "refresh", None)]


def test_a_core_table_without_a_server_table_is_migrated(tmp_path: Path) -> None:
    db = _old_db(tmp_path, server=False)  # a repository that was never served
    assert [e.action for e in AuditLog(db).entries()] == [
        "init", "vendor-add", "publish", "vendor-revoke"]
    assert "audit" not in _tables(db)


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    db = _old_db(tmp_path)
    with sqlite3.connect(db) as c:  # a core table this version cannot read
        c.execute("ALTER TABLE audit RENAME COLUMN detail TO other")
    with pytest.raises(RepositoryError, match="cannot prepare the audit log"):
        AuditLog(db)
    assert _tables(db) == {"vendors", "audit", "server_audit", "sqlite_sequence"}
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM audit").fetchone() == (4,)
        assert c.execute("SELECT count(*) FROM server_audit").fetchone() == (2,)


def test_core_actions_and_uploads_share_the_log(repo_env, edu_files,  # type: ignore[no-untyped-def]
                                                capsys: pytest.CaptureFixture[str]) -> None:
    repo = repo_env.repo
    repo.publish(edu_files, vendor="qemu")
    repo.audit.record(action="upload", status=401, result="unauthorized",
                      client="127.0.0.1", filename="e\x1b[2J.whl")
    assert main(["audit", "--json", "--limit", "3", "--repo", str(repo_env.path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["actor"], r["vendor"], r["action"], r["status"], r["result"]) for r in rows] == [
        ("admin", None, "vendor-add", None, "ok"), ("qemu", "qemu", "publish", None, "ok"),
        (None, None, "upload", 401, "unauthorized")]
    assert rows[1]["message"] == " ".join(f.name for f in edu_files)
    assert main(["audit", "--limit", "1", "--repo", str(repo_env.path)]) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "\x1b" not in line
    assert line.split("\t")[1:6] == ["-@127.0.0.1", "upload", "401", "unauthorized",
                                    "e\\x1b[2J.whl"]
