"""The nginx configuration of docs/serving.md works, in front of the real repo-server.

nginx (Debian's nginx-light) runs on 127.0.0.1 with exactly the documented `server`
block (as `bench/repo_http.py` uses it); repo-server runs behind it. Uploads go through
the proxy, the static tree is served by nginx with the same bytes and cache headers as
repo-server, and nothing private is reachable.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_server_helpers import ServerThread, copy_repo
from udriver_repo.server import create_app

from udriver_vm.repofactory import make_driver

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(repo_template) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    if not Path(NGINX).exists():
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (nginx-light is in .ci/setup's apt list)")
        pytest.skip("nginx is not installed (Debian package nginx-light)")
    sys.path.insert(0, str(ROOT / "bench"))
    from repo_http import nginx_conf  # the documented server block, ports substituted

    base = Path(tempfile.mkdtemp(prefix="udr-ngx-"))
    repo = copy_repo(repo_template.path, base / "repo")
    srv = ServerThread(create_app(repo)).start()
    port = _free_port()
    conf = nginx_conf(base, (repo / "public").resolve(), port, srv.port)
    ngx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(base), "-e",
                            str(base / "error.log")], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{url}/keys/apt.asc", timeout=1)
            break
        except requests.ConnectionError:
            assert ngx.poll() is None and time.monotonic() < deadline, \
                (base / "error.log").read_text() if (base / "error.log").exists() else ""
            time.sleep(0.1)
    yield {"nginx": url, "server": srv.url, "repo": repo, "tokens": repo_template.tokens}
    ngx.send_signal(signal.SIGQUIT)  # nginx: graceful shutdown
    ngx.wait(30)
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_upload_through_the_proxy_is_published_and_audited(stack, tmp_path):
    _, files = make_driver(tmp_path, "udriver-viangx", driver="viangx",
                           modaliases=("pci:v00001234d00000042sv*sd*bc*sc*i*",))
    for f in files:
        r = requests.put(f"{stack['nginx']}/api/v1/packages/{f.name}", data=f.read_bytes(),
                         headers={"Authorization": f"Bearer {stack['tokens']['qemu']}"},
                         timeout=120)
        assert r.status_code == 201, r.text
    import sqlite3
    with sqlite3.connect(Path(str(stack["repo"])) / "state.db") as c:
        client = c.execute("SELECT client FROM server_audit ORDER BY id DESC LIMIT 1").fetchone()
    assert client == ("127.0.0.1 (X-Forwarded-For: 127.0.0.1)",)
    r = requests.get(f"{stack['nginx']}/ui/", timeout=30)
    assert r.status_code == 200 and "viangx" in r.text


def test_nginx_serves_the_same_bytes_and_cache_headers(stack):
    public = Path(str(stack["repo"])) / "public"
    names = ["metadata/timestamp.json", "metadata/1.root.json", "keys/apt.asc",
             "dists/stable/InRelease"]
    names += [f"targets/{p.relative_to(public / 'targets')}"
              for p in sorted((public / "targets/index").rglob("*.json"))][:1]
    for name in names:
        a = requests.get(f"{stack['nginx']}/{name}", timeout=30)
        b = requests.get(f"{stack['server']}/{name}", timeout=30)
        assert a.status_code == b.status_code == 200, name
        assert a.content == b.content == (public / name).read_bytes(), name
        assert a.headers["Cache-Control"] == b.headers["Cache-Control"], name
        assert a.headers["Content-Type"].split(";")[0] == b.headers["Content-Type"].split(";")[0]
    immutable = requests.get(f"{stack['nginx']}/metadata/1.root.json", timeout=30)
    assert "immutable" in immutable.headers["Cache-Control"]
    ts = requests.get(f"{stack['nginx']}/metadata/timestamp.json", timeout=30)
    assert ts.headers["Cache-Control"] == "no-cache"
    again = requests.get(f"{stack['nginx']}/metadata/timestamp.json",
                         headers={"If-None-Match": ts.headers["ETag"]}, timeout=30)
    assert again.status_code == 304


def test_nginx_hides_the_private_half(stack):
    for path in ["/../state.db", "/../keys/", "/.%2e/state.db", "/metadata/", "/.tmp"]:
        r = requests.get(f"{stack['nginx']}{path}", timeout=30)
        assert r.status_code in (400, 403, 404), path
        assert b"SQLite" not in r.content
