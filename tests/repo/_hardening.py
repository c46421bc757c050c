"""Helpers for the server-hardening tests (issue 9, cases 8-10): a real server on a copy of
the conftest repository, raw HTTP over a socket (for bytes `requests` would refuse to send),
the audit table as rows, and the checks every rejection must pass."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from test_server_helpers import ServerThread, copy_repo

__all__ = ["Srv", "audit_rows", "error", "nothing_published", "private_files", "raw",
           "running", "tree", "verifies", "wait_for"]


@dataclass
class Srv:
    """A running server on a repository copy."""

    url: str
    port: int
    path: Path
    tokens: dict[str, str]

    @property
    def staging(self) -> Path:
        return self.path / "staging"


@contextmanager
def running(template: Any, config: Any, prefix: str = "udr-h-") -> Iterator[Srv]:
    """The real server (`create_app` + `GuardedRunner`) on a fresh copy of `template`."""
    from udriver_repo.server import create_app
    base = Path(tempfile.mkdtemp(prefix=prefix))  # short: GnuPG socket path limit
    path = copy_repo(template.path, base / "repo")
    srv = ServerThread(create_app(path, config)).start()
    try:
        yield Srv(srv.url, srv.port, path, dict(template.tokens))
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


def raw(port: int, data: bytes, wait: float = 10.0) -> bytes:
    """Send `data` on a new connection and read until the server closes it (or `wait`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def audit_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of `server_audit`, oldest first, as stored (no escaping on the way out)."""
    with sqlite3.connect(path / "state.db") as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute("SELECT * FROM server_audit ORDER BY id")]


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def error(r: requests.Response, status: int, code: str) -> str:
    """Assert a JSON error body with this status and code; return its message."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and body["status"] == status, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def private_files(repo: Path) -> dict[str, str]:
    """Every file of REPO outside public/ that a rejection must leave alone: all but
    state.db (the audit row), staging/ (checked empty apart) and gnupg/ (agent sockets)."""
    out = {}
    for top, dirs, files in os.walk(repo):
        rel = Path(top).relative_to(repo)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in ("staging", "gnupg", "public")]
        for f in files:
            if rel == Path(".") and f.startswith("state.db"):
                continue
            out[str(rel / f)] = hashlib.sha256((Path(top) / f).read_bytes()).hexdigest()
    return out


@contextmanager
def nothing_published(srv: Srv) -> Iterator[None]:
    """Around a rejected request: afterwards staging is empty, the public tree and every
    private file but state.db are byte for byte unchanged, and the server still answers."""
    before, private = tree(srv.path / "public"), private_files(srv.path)
    yield
    assert wait_for(lambda: not list(srv.staging.iterdir()), 10), list(srv.staging.iterdir())
    r = requests.get(f"{srv.url}/api/v1/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert tree(srv.path / "public") == before, "a rejected request changed the public tree"
    assert private_files(srv.path) == private, "a rejected request wrote outside staging"


def verifies(path: Path) -> None:
    """`udriver-repo verify` (a fresh python-tuf client and gpgv over the tree) passes."""
    from udriver_repo import Repository
    report = Repository.open(path).verify()
    assert report.ok, report.problems
