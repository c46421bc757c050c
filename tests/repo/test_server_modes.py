"""Issue 9, case 11 (`state.db` 0644) and "every private file 0600": with umask 022, a
repository made by `Repository.init` (what `udriver-repo init` runs), served and published
to, has state.db and its WAL files 0600, keys/ 0700 with 0600 keys, gnupg/ 0700, config
and lock 0600, staging/ 0700, and an upload in progress staged 0600 in a 0700 directory.
A repository whose state.db an older version left 0644 is made 0600 when served.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _hardening import wait_for
from test_server_helpers import ServerThread
from udriver_repo.server import ServerConfig, create_app

from udriver_vm.repofactory import make_driver


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    from udriver_repo import Repository
    base = Path(tempfile.mkdtemp(prefix="udr-m-"))  # short: GnuPG socket path limit
    old = os.umask(0o022)
    try:
        repo = Repository.init(base / "repo")
        token = repo.add_vendor("qemu", [0x1234], False)
        yield base / "repo", token
    finally:
        os.umask(old)
        try:
            Repository.open(base / "repo").stop_agent()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _private_modes(repo: Path) -> dict[str, int]:
    """Mode of every entry of REPO's private half (all but public/ and apt-state/)."""
    out = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo)
        if rel.parts[0] in ("public", "apt-state") or p.is_socket():
            continue
        out[str(rel)] = _mode(p)
    return out


def test_private_files_are_0600_under_umask_022(fresh, tmp_path):
    path, token = fresh
    assert os.umask(0o022) == 0o022  # the fixture's umask is in force
    # `init` alone (the repository core), before the server touches anything:
    assert (_mode(path / "state.db"), _mode(path / "staging")) == (0o600, 0o700)
    srv = ServerThread(create_app(path, ServerConfig(body_timeout=30))).start()
    try:
        # An upload in progress: its staging directory and file.
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(("PUT /api/v1/packages/udriver_m-0.1.0-py3-none-any.whl HTTP/1.1\r\n"
                   f"Host: x\r\nAuthorization: Bearer {token}\r\n"
                   "Content-Length: 100000\r\n\r\n").encode() + b"PK\x03\x04" + bytes(1000))
        staging = path / "staging"
        assert wait_for(lambda: any(p.is_file() for p in staging.rglob("*")), 10)
        (upload_dir,) = staging.iterdir()
        (staged,) = upload_dir.iterdir()
        assert (_mode(staging), _mode(upload_dir), _mode(staged)) == (0o700, 0o700, 0o600)
        s.close()
        assert wait_for(lambda: not any(staging.iterdir()), 10)
        # A real publish, so that state.db has its WAL files and gnupg its agent. An open
        # reader keeps SQLite from deleting the WAL files when the server's connections
        # close.
        reader = sqlite3.connect(path / "state.db")
        reader.execute("SELECT count(*) FROM server_audit").fetchone()
        _, files = make_driver(tmp_path, "udriver-modes", driver="modes",
                               modaliases=("pci:v00001234d00000042sv*sd*bc*sc*i*",))
        for f in files:
            r = requests.put(f"{srv.url}/api/v1/packages/{f.name}", data=f.read_bytes(),
                             headers={"Authorization": f"Bearer {token}"}, timeout=120)
            assert r.status_code == 201, r.text
        # SQLite's WAL files take state.db's mode.
        wal = [path / "state.db-wal", path / "state.db-shm"]
        assert all(w.exists() for w in wal)
        assert [_mode(w) for w in wal] == [0o600, 0o600]
        reader.close()
    finally:
        srv.stop()
    modes = _private_modes(path)
    print("\n" + "\n".join(f"{m:04o} {k}" for k, m in modes.items()))
    assert modes["state.db"] == 0o600
    for wal in ("state.db-wal", "state.db-shm"):
        if wal in modes:
            assert modes[wal] == 0o600, wal
    assert modes["config.json"] == 0o600 and modes["keys"] == 0o700
    assert modes["staging"] == 0o700 and modes["gnupg"] == 0o700
    keys = {k: m for k, m in modes.items() if k.startswith("keys/")}
    assert keys and set(keys.values()) == {0o600}, keys
    # Nothing private is readable or writable by group or others, except inside gnupg/
    # (0700: not traversable), where GnuPG keeps its public keyring 0644.
    loose = {k: oct(m) for k, m in modes.items()
             if m & 0o077 and not k.startswith("gnupg/")}
    assert loose == {}, loose


def test_serving_an_older_repository_makes_state_db_0600(fresh):
    path, _ = fresh
    (path / "state.db").chmod(0o644)
    (path / "staging").chmod(0o755)
    create_app(path)
    assert _mode(path / "state.db") == 0o600
    assert _mode(path / "staging") == 0o700
