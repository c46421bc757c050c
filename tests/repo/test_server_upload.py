"""Upload API of repo-server, against the real server on 127.0.0.1 and the real repository core.

One test per rejection path (issue 4, acceptance 3 and 4), each checking the status, the
JSON error body, that nothing was written outside staging (the public tree is unchanged),
that staging is empty again, that an audit row was written, and that the server still
serves afterwards.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import sqlite3
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from test_server_helpers import ServerThread, copy_repo, make_deb, make_wheel
from udriver_repo.server import ServerConfig, create_app

from udriver_vm.repofactory import make_driver

LIMIT = 4 * 1024 * 1024  # upload limit for these tests


@pytest.fixture(scope="module")
def env(repo_template) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    """The real repository core behind the real server on 127.0.0.1:<random port>."""
    base = Path(tempfile.mkdtemp(prefix="udr-srv-"))  # short: GnuPG socket path limit
    path = copy_repo(repo_template.path, base / "repo")
    app = create_app(path, ServerConfig(max_upload_bytes=LIMIT))
    srv = ServerThread(app).start()
    yield {"url": srv.url, "path": path, "port": srv.port, **repo_template.tokens}
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _repo_files(repo: Path) -> dict[str, str]:
    """Every file of REPO except the ones a rejected upload may touch: state.db (the audit
    row), staging/ (checked empty separately) and the GnuPG home (agent sockets)."""
    out = {}
    for top, dirs, files in os.walk(repo):
        rel = Path(top).relative_to(repo)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in ("staging", "gnupg")]
        for f in files:
            if rel == Path(".") and f.startswith("state.db"):
                continue
            out[str(rel / f)] = hashlib.sha256((Path(top) / f).read_bytes()).hexdigest()
    return out


@pytest.fixture
def check(env: dict[str, object]) -> Iterator[dict[str, object]]:
    """Snapshot the public tree; after the test: staging empty, server serving."""
    path = env["path"]
    assert isinstance(path, Path)
    before = _tree(path / "public")
    everything = _repo_files(path)
    state: dict[str, object] = {"before": before}
    yield state
    assert list((path / "staging").iterdir()) == []
    r = requests.get(f"{env['url']}/api/v1/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    if state.get("expect_unchanged", True):
        assert _tree(path / "public") == state["before"], "a rejected upload changed the tree"
        if state["before"] is before:
            assert _repo_files(path) == everything, "a rejected upload wrote outside staging"


def _put(env: dict[str, object], file: Path, token: str | None = "qemu",
         name: str | None = None) -> requests.Response:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {env.get(token, token)}"
    return requests.put(f"{env['url']}/api/v1/packages/{name or file.name}",
                        data=file.read_bytes(), headers=headers, timeout=60)


def _audit(env: dict[str, object]) -> list[tuple[object, ...]]:
    path = env["path"]
    assert isinstance(path, Path)
    with sqlite3.connect(path / "state.db") as c:
        return c.execute("SELECT vendor, filename, status, result, sha256, client "
                         "FROM server_audit ORDER BY id").fetchall()


def _error(r: requests.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


# ------------------------------------------------------------------- 401


def test_no_token_is_401(env, check, tmp_path):
    r = _put(env, make_wheel(tmp_path, "notoken"), token=None)
    assert "Authorization" in _error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert _audit(env)[-1][:4] == (None, "udriver_notoken-0.1.0-py3-none-any.whl", 401,
                                   "unauthorized")


def test_wrong_token_is_401(env, check, tmp_path):
    r = _put(env, make_wheel(tmp_path, "wrongtoken"), token="not-a-real-token")
    assert "not valid" in _error(r, 401, "unauthorized")


def test_basic_auth_instead_of_bearer_is_401(env, check, tmp_path):
    r = requests.put(f"{env['url']}/api/v1/packages/udriver_x-0.1.0-py3-none-any.whl",
                     data=make_wheel(tmp_path, "x").read_bytes(), auth=("acme", "pw"), timeout=30)
    _error(r, 401, "unauthorized")


# ------------------------------------------------------------------- 400: archives


def test_truncated_wheel_is_400(env, check, tmp_path):
    w = make_wheel(tmp_path, "trunc")
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    assert "zip" in _error(_put(env, w), 400, "invalid-package")


def test_corrupted_deb_is_400(env, check, tmp_path):
    d = make_deb(tmp_path, "corrupt")
    data = bytearray(d.read_bytes())
    data[200:260] = b"\xff" * 60  # inside control.tar.gz
    d.write_bytes(bytes(data))
    _error(_put(env, d), 400, "invalid-package")


def test_truncated_deb_is_400(env, check, tmp_path):
    d = make_deb(tmp_path, "truncdeb")
    d.write_bytes(d.read_bytes()[:-300])
    _error(_put(env, d), 400, "invalid-package")


def test_wheel_with_dotdot_path_is_400(env, check, tmp_path):
    w = make_wheel(tmp_path, "dotdot", extra={"../../etc/evil.py": b"x = 1\n"})
    assert "unsafe member name" in _error(_put(env, w), 400, "invalid-package")


def test_wheel_with_absolute_path_is_400(env, check, tmp_path):
    w = make_wheel(tmp_path, "abs", extra={"/etc/evil.py": b"x = 1\n"})
    assert "unsafe member name" in _error(_put(env, w), 400, "invalid-package")


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members:
        out.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode())
        out.write(data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _raw_deb(tmp_path: Path, driver: str, data_members: list[tuple[str, bytes]]) -> Path:
    control = (f"Package: udriver-driver-{driver}\nVersion: 0.1.0\nArchitecture: all\n"
               "Maintainer: T <t@example.org>\nDescription: x\n x\n").encode()
    deb = _ar([("debian-binary", b"2.0\n"), ("control.tar.gz", _tar([("./control", control)])),
               ("data.tar.gz", _tar(data_members))])
    path = tmp_path / f"udriver-driver-{driver}_0.1.0_all.deb"
    path.write_bytes(deb)
    return path


def test_deb_with_dotdot_path_is_400(env, check, tmp_path):
    d = _raw_deb(tmp_path, "debdotdot", [("./usr/../../etc/cron.d/evil", b"* * * * * root x\n")])
    assert "unsafe member name" in _error(_put(env, d), 400, "invalid-package")


def test_deb_with_absolute_path_is_400(env, check, tmp_path):
    d = _raw_deb(tmp_path, "debabs", [("/etc/cron.d/evil", b"* * * * * root x\n")])
    assert "unsafe member name" in _error(_put(env, d), 400, "invalid-package")


def test_zip_bomb_is_400(env, check, tmp_path):
    # 256 MiB of zeros in one member, ~250 KiB compressed (ratio ~1000:1).
    w = make_wheel(tmp_path, "bomb")
    with zipfile.ZipFile(w, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("bomb_drv/blob.bin", bytes(256 * 1024 * 1024))
    assert w.stat().st_size < LIMIT
    assert "zip bomb" in _error(_put(env, w), 400, "invalid-package")


def test_zip_bomb_by_total_size_is_400(env, check, tmp_path):
    # Members that each look harmless but declare > 1 GiB together: forge the sizes in the
    # central directory (what an attacker would do) instead of compressing a real GiB.
    w = make_wheel(tmp_path, "bomb2")
    data = bytearray(w.read_bytes())
    cd = data.find(b"PK\x01\x02")
    count = 0
    while cd != -1:
        data[cd + 24:cd + 28] = (600 * 1024 * 1024).to_bytes(4, "little")  # uncompressed size
        count += 1
        cd = data.find(b"PK\x01\x02", cd + 4)
    assert count >= 2
    w.write_bytes(bytes(data))
    assert "zip bomb" in _error(_put(env, w), 400, "invalid-package")


# ------------------------------------------------------------------- 400: metadata


def test_wheel_without_id_table_is_400(env, check, tmp_path):
    w = make_wheel(tmp_path, "noids", with_manifest=False)
    assert "udriver.json" in _error(_put(env, w), 400, "invalid-package")


def test_deb_without_id_table_is_400(env, check, tmp_path):
    d = make_deb(tmp_path, "debnoids", with_manifest=False)
    assert "ID table" in _error(_put(env, d), 400, "invalid-id-table")


def test_wheel_with_invalid_id_table_is_400(env, check, tmp_path):
    w = make_wheel(tmp_path, "badids", modaliases=["pci:v1234d*"])
    _error(_put(env, w), 400, "invalid-id-table")


def test_wheel_name_disagreeing_with_metadata_is_400(env, check, tmp_path):
    w = make_wheel(tmp_path, "named", version="0.1.0",
                   filename="udriver_named-0.2.0-py3-none-any.whl")
    msg = _error(_put(env, w), 400, "invalid-package")
    assert "disagrees" in msg and "0.2.0" in msg and "0.1.0" in msg


def test_deb_name_disagreeing_with_metadata_is_400(env, check, tmp_path):
    d = make_deb(tmp_path, "debnamed", filename="udriver-driver-other_0.1.0_all.deb")
    msg = _error(_put(env, d), 400, "invalid-package")
    assert "disagrees" in msg and "udriver-driver-debnamed" in msg


@pytest.mark.parametrize("name", ["evil.txt", ".hidden-0.1-py3-none-any.whl",
                                  "a b-0.1-py3-none-any.whl", "x_1:0_all.deb"])
def test_bad_file_name_is_400(env, check, tmp_path, name):
    w = make_wheel(tmp_path, "badname")
    _error(_put(env, w, name=name), 400, "bad-filename")


def test_encoded_slash_in_file_name_writes_nothing(env, check, tmp_path):
    w = make_wheel(tmp_path, "slash")
    r = _put(env, w, name="..%2F..%2Fudriver_slash-0.1.0-py3-none-any.whl")
    assert r.status_code in (400, 404)
    assert not (Path(str(env["path"])) / "udriver_slash-0.1.0-py3-none-any.whl").exists()


def test_empty_body_is_400(env, check, tmp_path):
    empty = tmp_path / "udriver_empty-0.1.0-py3-none-any.whl"
    empty.write_bytes(b"")
    _error(_put(env, empty), 400, "empty")


# ------------------------------------------------------------------- 413


def _raw_request(env: dict[str, object], head: str, body: bytes = b"") -> bytes:
    """Send raw bytes, then read one complete response (head + Content-Length body).

    The server may keep reading ("lingering close") to let the client see the answer; we
    do not wait for the connection to close, only for the answer, and time it.
    """
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", int(str(env["port"]))), timeout=10) as s:
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            c = s.recv(65536)
            assert c, f"connection closed before a response: {data!r}"
            data += c
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = int(next((ln.split(b":", 1)[1] for ln in head_part.split(b"\r\n")
                           if ln.lower().startswith(b"content-length:")), b"0"))
        while len(rest) < length:
            c = s.recv(65536)
            assert c, "connection closed in the middle of the response"
            rest += c
    # Only a sliver of the body is ever sent, so any answer at all came before the body;
    # the bound only keeps a hung server from hanging the test.
    assert time.monotonic() - start < 20, "the server waited for the body before answering"
    return head_part + b"\r\n\r\n" + rest


def test_oversize_content_length_is_413_before_the_body_is_sent(env, check):
    # Only 1 KiB of a declared 1 GiB is ever sent: the answer must not wait for the rest.
    head = (f"PUT /api/v1/packages/udriver_big-0.1.0-py3-none-any.whl HTTP/1.1\r\n"
            f"Host: x\r\nAuthorization: Bearer {env['acme']}\r\nContent-Length: {1 << 30}\r\n\r\n")
    resp = _raw_request(env, head, b"\0" * 1024)
    assert resp.startswith(b"HTTP/1.1 413 "), resp[:200]
    assert b'"too-large"' in resp


def test_oversize_streamed_body_is_413(env, check):
    def chunks() -> Iterator[bytes]:
        yield b"PK\x03\x04"  # a zip's signature: the body must start like a wheel
        for _ in range(LIMIT // 65536 + 8):
            yield b"\0" * 65536
    try:
        r = requests.put(f"{env['url']}/api/v1/packages/udriver_stream-0.1.0-py3-none-any.whl",
                         data=chunks(), headers={"Authorization": f"Bearer {env['acme']}"},
                         timeout=60)
    except requests.ConnectionError:
        pytest.fail("the server closed the connection without a 413 response")
    assert "stopped reading" in _error(r, 413, "too-large")


def test_expect_continue_oversize_is_refused_before_the_body(env, check):
    head = (f"PUT /api/v1/packages/udriver_big-0.1.0-py3-none-any.whl HTTP/1.1\r\n"
            f"Host: x\r\nAuthorization: Bearer {env['acme']}\r\nExpect: 100-continue\r\n"
            f"Content-Length: {1 << 30}\r\n\r\n")
    resp = _raw_request(env, head)
    assert resp.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in resp


def test_expect_continue_without_token_is_401_before_the_body(env, check):
    head = ("PUT /api/v1/packages/udriver_big-0.1.0-py3-none-any.whl HTTP/1.1\r\n"
            "Host: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
    resp = _raw_request(env, head)
    assert resp.startswith(b"HTTP/1.1 401 ") and b"100 Continue" not in resp


# ------------------------------------------------------------------- 403 / 409 / 200 / 201


def test_other_vendors_ids_is_403_and_nothing_published(env, check, tmp_path):
    # qemu owns PCI vendor 1234 only; 8086 belongs to acme.
    _, files = make_driver(tmp_path, "udriver-e1000", driver="e1000", deb=False,
                           modaliases=("pci:v00008086d000010D3sv*sd*bc*sc*i*",))
    msg = _error(_put(env, files[0], token="qemu"), 403, "out-of-scope")
    assert "8086" in msg
    assert _audit(env)[-1][0] == "qemu" and _audit(env)[-1][2:4] == (403, "out-of-scope")


def test_class_wide_driver_without_grant_is_403(env, check, tmp_path):
    _, files = make_driver(tmp_path, "udriver-anynvme", driver="anynvme", deb=False,
                           modaliases=("pci:v*d*sv*sd*bc01sc08i02*",))
    _error(_put(env, files[0], token="qemu"), 403, "out-of-scope")


def test_publish_is_201_and_same_bytes_again_is_200(env, check, tmp_path):
    check["expect_unchanged"] = False
    _, (w,) = make_driver(tmp_path, "udriver-idem", driver="idem", deb=False,
                          modaliases=("pci:v00001234d00000001sv*sd*bc*sc*i*",))
    r = _put(env, w)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["result"] == "published" and body["package"] == "udriver-idem"
    assert body["sha256"] == hashlib.sha256(w.read_bytes()).hexdigest()
    tree = _tree(Path(str(env["path"])) / "public")
    assert any(name.startswith("metadata/") for name in set(tree) - set(check["before"]))
    r2 = _put(env, w)
    assert r2.status_code == 200 and r2.json()["result"] == "unchanged", r2.text
    assert _tree(Path(str(env["path"])) / "public") == tree
    rows = _audit(env)[-2:]
    assert [(row[0], row[2], row[3]) for row in rows] == [("qemu", 201, "published"),
                                                          ("qemu", 200, "unchanged")]
    assert rows[0][4] == body["sha256"] and rows[0][5] == "127.0.0.1"


def test_same_version_different_bytes_is_409(env, check, tmp_path):
    check["expect_unchanged"] = False
    mods = ("pci:v00001234d00000002sv*sd*bc*sc*i*",)
    _, (first,) = make_driver(tmp_path / "a", "udriver-confl", driver="confl", deb=False,
                              modaliases=mods)
    assert _put(env, first).status_code == 201
    check["before"] = _tree(Path(str(env["path"])) / "public")
    _, (second,) = make_driver(tmp_path / "b", "udriver-confl", driver="confl", deb=False,
                               modaliases=mods, extra=b"other bytes")
    _error(_put(env, second), 409, "conflict")
    assert _tree(Path(str(env["path"])) / "public") == check["before"]


def test_deb_publish_is_201(env, check, tmp_path):
    check["expect_unchanged"] = False
    _, (_, deb) = make_driver(tmp_path, "udriver-debok", driver="debok",
                              modaliases=("pci:v00001234d00000003sv*sd*bc*sc*i*",))
    r = _put(env, deb)
    assert r.status_code == 201, r.text
    assert r.json()["driver"] == "debok"


def test_post_works_like_put(env, check, tmp_path):
    check["expect_unchanged"] = False
    _, (w,) = make_driver(tmp_path, "udriver-viapost", driver="viapost", deb=False,
                          modaliases=("pci:v00001234d00000004sv*sd*bc*sc*i*",))
    r = requests.post(f"{env['url']}/api/v1/packages/{w.name}", data=w.read_bytes(),
                      headers={"Authorization": f"Bearer {env['qemu']}"}, timeout=60)
    assert r.status_code == 201, r.text


def test_unknown_api_path_is_json_404(env, check):
    r = requests.get(f"{env['url']}/api/v1/nothing", timeout=10)
    _error(r, 404, "not-found")



def test_revoked_vendor_token_is_401(env, check, tmp_path):
    from udriver_repo import Repository
    repo = Repository.open(Path(str(env["path"])))
    token = repo.add_vendor("revokee", [0x1B37])
    repo.revoke_vendor("revokee")
    check["before"] = _tree(Path(str(env["path"])) / "public")
    _, (w,) = make_driver(tmp_path, "udriver-rev", driver="rev", deb=False,
                          modaliases=("pci:v00001B37d00000001sv*sd*bc*sc*i*",))
    _error(_put(env, w, token=token), 401, "unauthorized")


def test_forwarded_for_is_logged_but_not_trusted(env, check, tmp_path):
    w = make_wheel(tmp_path, "xff")
    r = requests.put(f"{env['url']}/api/v1/packages/{w.name}", data=w.read_bytes(),
                     headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
    _error(r, 401, "unauthorized")
    assert _audit(env)[-1][5] == "127.0.0.1 (X-Forwarded-For: 203.0.113.9)"


def test_client_disconnect_mid_upload_leaves_nothing(env, check, tmp_path):
    _, (w,) = make_driver(tmp_path, "udriver-abort", driver="abort", deb=False,
                          modaliases=("pci:v00001234d00000005sv*sd*bc*sc*i*",))
    data = w.read_bytes()
    before = len(_audit(env))
    with socket.create_connection(("127.0.0.1", int(str(env["port"]))), timeout=10) as s:
        s.sendall((f"PUT /api/v1/packages/{w.name} HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {env['qemu']}\r\n"
                   f"Content-Length: {len(data) + 1000}\r\n\r\n").encode() + data)
        staging = Path(str(env["path"])) / "staging"
        deadline = time.monotonic() + 20
        while not list(staging.glob("upload-*")):  # the handler is streaming into staging
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)
    deadline = time.monotonic() + 10
    while len(_audit(env)) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_audit(env)) == before + 1
    # `check` asserts staging is empty and the public tree unchanged
