"""Credentials in a repository URL: stored apart, 0600, and found in no message, log or state.

Issue 13: a fetch error printed `http://user:s3cret@...`, `-vv` logged it, and
`repos.d/*.json` stored it 0644. The repository here is a real signed repository served
over HTTP on 127.0.0.1 by a server that demands HTTP Basic authentication, and the
commands run as a user would run them (a separate process, `-vv`).
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import Published
from udriver.client._auth import (
    Credentials,
    MaskingFilter,
    load_credentials,
    mask_secrets,
    split_credentials,
)
from udriver.errors import ConfigError

PASSWORD = "s3cret-pw"
USER = "alice"


class _BasicAuthHandler(SimpleHTTPRequestHandler):
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="udriver"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def auth_server(published: Published) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                partial(_BasicAuthHandler, directory=str(published.repo.public)))
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _udriver(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()", *argv],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ),
                          check=False)


def test_the_password_is_nowhere_but_its_0600_file(published: Published, auth_server: str,
                                                    env: Path) -> None:
    root = str(published.repo.path / "root.json")
    seen: list[str] = []

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        r = _udriver(*argv)
        seen.extend([r.stdout, r.stderr])
        assert "Traceback" not in r.stderr, r.stderr
        return r

    r = run("-vv", "repo", "add", "main", f"http://{USER}:{PASSWORD}@{auth_server}",
            "--root", root)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"added repository main at http://{auth_server}\n"
    r = run("-vv", "search", "1234:11e8")
    assert r.returncode == 0 and "edu 0.1.0" in r.stdout, r.stderr
    r = run("-vv", "install", "edu")
    assert r.returncode == 0, r.stderr  # the stored credentials were sent: the server needs them
    assert "installed edu 0.1.0 from main" in r.stdout
    assert run("-vv", "repo", "list", "--json").returncode == 0
    # Every other command that reads the configuration or the state, at debug level.
    for argv in (("repo", "list"), ("show", "edu"), ("update", "--dry-run"), ("update",),
                 ("devices",), ("devices", "--refresh"), ("status",), ("history",),
                 ("hold", "edu"), ("unhold", "edu"), ("search", "--offline", "1234:11e8")):
        r = run("-vv", *argv)
        assert r.returncode in (0, 1), (argv, r.stderr)
    # A repository whose server is down, and one with a wrong password: both fail, masked.
    down = f"http://{USER}:{PASSWORD}@127.0.0.1:{_free_port()}"
    assert run("repo", "add", "down", down, "--root", root).returncode == 0
    r = run("-vv", "search", "1234:11e8")
    assert r.returncode != 0
    assert "connection refused" in r.stderr
    assert "Retrying" not in run("search", "1234:11e8").stderr
    run("repo", "remove", "down")
    assert run("repo", "add", "wrong", f"http://{USER}:nope-{PASSWORD}x@{auth_server}",
               "--root", root).returncode == 0
    r = run("-vv", "search", "1234:11e8")
    assert r.returncode != 0 and "HTTP 401" in r.stderr and "credentials" in r.stderr
    bad = run("repo", "add", "x", f"ftp://{USER}:{PASSWORD}@{auth_server}", "--root", root)
    assert bad.returncode != 0 and "ftp://alice:********@" in bad.stderr

    for text in seen:
        assert PASSWORD not in text, text
    auth_files = {env / "etc" / "auth.d" / "main.json", env / "etc" / "auth.d" / "wrong.json"}
    for path in (env / "etc").rglob("*"):
        if path.is_file() and path not in auth_files:
            assert PASSWORD.encode() not in path.read_bytes(), path
    for path in (env / "var").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert PASSWORD.encode() not in path.read_bytes(), path
    main_auth = env / "etc" / "auth.d" / "main.json"
    assert stat.S_IMODE(main_auth.stat().st_mode) == 0o600
    assert stat.S_IMODE(main_auth.parent.stat().st_mode) == 0o700
    assert not (env / "etc" / "auth.d" / "down.json").exists()  # removed with its repository


def test_split_and_mask() -> None:
    assert split_credentials("https://u%40x:p%3Aw@host:8443/r") == (
        "https://host:8443/r", Credentials("u@x", "p:w"))
    assert split_credentials("http://[::1]:80/r")[1] is None
    assert split_credentials("http://a:b@[::1]:80/r")[0] == "http://[::1]:80/r"
    assert mask_secrets("see http://u:pw@h/x, https://v:@h2 and http://h3/") == (
        "see http://u:********@h/x, https://v:********@h2 and http://h3/")
    assert "pw" not in repr(Credentials("u", "pw"))


def test_a_credentials_file_readable_by_others_is_refused(env: Path) -> None:
    d = env / "etc" / "auth.d"
    d.mkdir(parents=True)
    (d / "main.json").write_text('{"username": "u", "password": "p"}')
    (d / "main.json").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users") as e:
        load_credentials("main")
    assert e.value.hint == f"chmod 600 {d / 'main.json'}"
    (d / "main.json").chmod(0o600)
    assert load_credentials("main") == Credentials("u", "p")
    (d / "main.json").write_text("{")
    with pytest.raises(ConfigError, match="Invalid credentials file"):
        load_credentials("main")


def test_the_log_filter_masks_every_record() -> None:
    import logging
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", ("http://u:pw@h/",), None)
    assert MaskingFilter().filter(rec)
    assert rec.getMessage() == "GET http://u:********@h/"
