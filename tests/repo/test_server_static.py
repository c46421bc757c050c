"""The static tree served by repo-server: ETag/304, Range/206/416, and no way out of public/.

The repository here is `FakeRepository` (the HTTP layer does not depend on what the core
signs); the files are placed in REPO/public by the test itself.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
import requests
from aiohttp import web
from test_server_helpers import FakeRepository, ServerThread
from udriver_repo.server import create_app

BODY = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("static")
    repo = FakeRepository.create(base / "repo")
    pub = base / "repo" / "public"
    (pub / "metadata" / "timestamp.json").write_bytes(b'{"signed": {}}\n')
    (pub / "metadata" / "3.snapshot.json").write_bytes(b'{"signed": {"v": 3}}\n')
    (pub / "targets" / "index").mkdir(parents=True)
    (pub / "targets" / "index" / ("ab" * 32 + ".1234.json")).write_bytes(BODY)
    (pub / "dists" / "stable" / "main" / "binary-amd64").mkdir(parents=True)
    (pub / "dists" / "stable" / "main" / "binary-amd64" / "Packages").write_bytes(b"Package: x\n")
    (pub / "dists" / "stable" / "main" / "binary-amd64" / "Packages.gz").write_bytes(b"\x1f\x8b")
    (pub / ".hidden").write_bytes(b"secret\n")
    (base / "repo" / "keys").mkdir()
    (base / "repo" / "keys" / "timestamp").write_bytes(b"PRIVATE KEY\n")
    (pub / "escape").symlink_to(base / "repo" / "keys" / "timestamp")
    (pub / "escape-dir").symlink_to(base / "repo" / "keys", target_is_directory=True)
    (pub / "inside").symlink_to(pub / "metadata" / "timestamp.json")
    s = ServerThread(create_app(base / "repo", repo_factory=repo.factory)).start()
    yield {"url": s.url, "port": s.port}
    s.stop()


def _raw_get(srv: dict[str, object], path: str) -> int:
    """GET with the path sent byte for byte (requests/urllib would normalise `..`)."""
    conn = http.client.HTTPConnection("127.0.0.1", int(str(srv["port"])), timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        assert b"PRIVATE KEY" not in body
        return resp.status
    finally:
        conn.close()


def test_file_is_served_with_etag_and_then_304(srv):
    url = f"{srv['url']}/targets/index/{'ab' * 32}.1234.json"
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == BODY
    etag = r.headers["ETag"]
    assert etag.startswith('"') and r.headers["Content-Type"].startswith("application/json")
    assert "immutable" in r.headers["Cache-Control"]
    r2 = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["ETag"] == etag
    r3 = requests.get(url, headers={"If-None-Match": '"something-else"'}, timeout=10)
    assert r3.status_code == 200 and r3.content == BODY


def test_etag_changes_when_the_file_is_replaced(srv, tmp_path):
    url = f"{srv['url']}/metadata/timestamp.json"
    r = requests.get(url, timeout=10)
    assert r.headers["Cache-Control"] == "no-cache"
    assert requests.get(url, headers={"If-None-Match": r.headers["ETag"]},
                        timeout=10).status_code == 304


def test_range_gives_206(srv):
    url = f"{srv['url']}/targets/index/{'ab' * 32}.1234.json"
    r = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert r.status_code == 206 and r.content == BODY[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(BODY)}"
    r = requests.get(url, headers={"Range": "bytes=-10"}, timeout=10)
    assert r.status_code == 206 and r.content == BODY[-10:]


def test_unsatisfiable_range_gives_416(srv):
    url = f"{srv['url']}/targets/index/{'ab' * 32}.1234.json"
    r = requests.get(url, headers={"Range": f"bytes={len(BODY) + 10}-"}, timeout=10)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(BODY)}"


def test_head_has_length_and_no_body(srv):
    r = requests.head(f"{srv['url']}/metadata/3.snapshot.json", timeout=10)
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == len(b'{"signed": {"v": 3}}\n')


@pytest.mark.skipif(not hasattr(web, "AppKey"), reason="aiohttp < 3.9 (Debian 12's 3.8) has no "
                    "hook to stop FileResponse sending `X.gz` with Content-Encoding for `X`; "
                    "still valid HTTP, clients decode it")
def test_gz_sibling_is_never_substituted(srv):
    r = requests.get(f"{srv['url']}/dists/stable/main/binary-amd64/Packages",
                     headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200 and r.content == b"Package: x\n"
    assert "Content-Encoding" not in r.headers


@pytest.mark.parametrize("path", [
    "/../keys/timestamp", "/metadata/../../keys/timestamp", "/%2e%2e/keys/timestamp",
    "/metadata/%2e%2e/%2e%2e/keys/timestamp", "/metadata%2f..%2f..%2fkeys%2ftimestamp",
    "/..%5ckeys%5ctimestamp", "//etc/passwd", "/%00",
])
def test_traversal_is_404(srv, path):
    assert _raw_get(srv, path) in (400, 404)


def test_symlink_escaping_public_is_404(srv):
    assert _raw_get(srv, "/escape") == 404
    assert _raw_get(srv, "/escape-dir/timestamp") == 404


def test_symlink_inside_public_is_served(srv):
    assert requests.get(f"{srv['url']}/inside", timeout=10).status_code == 200


def test_hidden_files_and_directories_are_404(srv):
    assert _raw_get(srv, "/.hidden") == 404
    assert _raw_get(srv, "/metadata/") == 404
    assert _raw_get(srv, "/metadata") == 404


def test_root_redirects_to_the_web_page(srv):
    r = requests.get(f"{srv['url']}/", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/ui/"


def test_writes_are_not_allowed_on_the_tree(srv):
    r = requests.put(f"{srv['url']}/metadata/timestamp.json", data=b"x", timeout=10)
    assert r.status_code == 405





def test_startup_removes_uploads_left_by_a_crash(tmp_path):
    repo = FakeRepository.create(tmp_path / "repo")
    stale = tmp_path / "repo" / "staging" / "upload-0123abcd"
    stale.mkdir(parents=True)
    (stale / "udriver_x-0.1.0-py3-none-any.whl").write_bytes(b"half")
    other = tmp_path / "repo" / "staging" / "core-owned"
    other.write_text("not ours\n")
    create_app(tmp_path / "repo", repo_factory=repo.factory)
    assert not stale.exists() and other.exists()
    assert (tmp_path / "repo" / "staging").stat().st_mode & 0o777 == 0o700


def test_create_app_refuses_a_directory_that_is_not_a_repository(tmp_path):
    from udriver.errors import RepositoryError
    with pytest.raises(RepositoryError):
        create_app(tmp_path)  # the real core's Repository.open
    assert not (tmp_path / "staging").exists()
