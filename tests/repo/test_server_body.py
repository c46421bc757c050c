"""Issue 9, case 8 (second half): the upload body is the file itself.

A zip file is read from its end, so an HTML page (or a multipart preamble) in front of a
wheel still unpacks: before this, such a polyglot was published and served from the
repository. Now the `Content-Type` must be the file's own, `application/octet-stream` or
absent (415 otherwise, `multipart/form-data` included), any `Content-Encoding` is 415, and
the body must start with the format's signature (400 `bad-body`). Each rejection: a JSON
error, an audit row, nothing published, nothing left in staging; the repository still
verifies afterwards. Positive controls show that the accepted types do publish.
"""

from __future__ import annotations

import gzip
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _hardening import Srv, audit_rows, error, nothing_published, running, verifies
from test_server_helpers import make_deb, make_wheel
from udriver_repo.server import ServerConfig

from udriver_vm.repofactory import make_driver

HTML = b"<!DOCTYPE html><html><body><script>alert(document.domain)</script></body></html>\n"


@pytest.fixture(scope="module")
def srv(repo_template) -> Iterator[Srv]:  # type: ignore[no-untyped-def]
    with running(repo_template, ServerConfig(max_upload_bytes=4 << 20), "udr-body-") as s:
        yield s


@pytest.fixture
def guard(srv: Srv) -> Iterator[None]:
    with nothing_published(srv):
        yield


def _put(srv: Srv, name: str, data: bytes, headers: dict[str, str] | None = None,
         vendor: str = "qemu") -> requests.Response:
    h = {"Authorization": f"Bearer {srv.tokens[vendor]}", **(headers or {})}
    return requests.put(f"{srv.url}/api/v1/packages/{name}", data=data, headers=h, timeout=60)


def _last(srv: Srv, n: int) -> list[tuple[object, ...]]:
    return [(r["vendor"], r["status"], r["result"]) for r in audit_rows(srv.path)[n:]]


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary=----x",
    "text/html",
    "text/html; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/vnd.debian.binary-package",  # a deb's type for a wheel
])
def test_wrong_content_type_for_a_wheel_is_415(srv, guard, tmp_path, content_type):
    w = make_wheel(tmp_path, "ctype")
    n = len(audit_rows(srv.path))
    msg = error(_put(srv, w.name, w.read_bytes(), {"Content-Type": content_type}), 415,
                "unsupported-media-type")
    assert "Content-Type" in msg
    assert _last(srv, n) == [("qemu", 415, "unsupported-media-type")]


def test_multipart_is_415_with_a_hint(srv, guard, tmp_path):
    w = make_wheel(tmp_path, "multi")
    r = requests.put(f"{srv.url}/api/v1/packages/{w.name}", files={"file": w.read_bytes()},
                     headers={"Authorization": f"Bearer {srv.tokens['qemu']}"}, timeout=60)
    assert "curl -T" in error(r, 415, "unsupported-media-type")


def test_zip_content_type_for_a_deb_is_415(srv, guard, tmp_path):
    d = make_deb(tmp_path, "ctdeb")
    error(_put(srv, d.name, d.read_bytes(), {"Content-Type": "application/zip"}), 415,
          "unsupported-media-type")


def test_content_encoding_is_415(srv, guard, tmp_path):
    w = make_wheel(tmp_path, "gz")
    n = len(audit_rows(srv.path))
    r = _put(srv, w.name, gzip.compress(w.read_bytes()), {"Content-Encoding": "gzip"})
    assert "Content-Encoding" in error(r, 415, "unsupported-media-type")
    assert _last(srv, n) == [("qemu", 415, "unsupported-media-type")]


def _polyglot(tmp_path: Path, name: str) -> bytes:
    data = HTML + make_wheel(tmp_path, name).read_bytes()
    # The attack is real: with the page in front, Python still opens it as a valid wheel.
    (tmp_path / "poly.whl").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "poly.whl") as zf:
        assert zf.testzip() is None and any(n.endswith("udriver.json") for n in zf.namelist())
    return data


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "application/zip"])
def test_html_prefix_before_a_wheel_is_400(srv, guard, tmp_path, content_type):
    data = _polyglot(tmp_path, "poly")
    n = len(audit_rows(srv.path))
    headers = {"Content-Type": content_type} if content_type else {}
    msg = error(_put(srv, "udriver_poly-0.1.0-py3-none-any.whl", data, headers), 400,
                "bad-body")
    assert "PK" in msg and "<!DO" in msg
    assert _last(srv, n) == [("qemu", 400, "bad-body")]


def test_multipart_body_sent_as_octet_stream_is_400(srv, guard, tmp_path):
    w = make_wheel(tmp_path, "mpart")
    body = (b"------x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.whl\"\r\n"
            b"Content-Type: application/zip\r\n\r\n" + w.read_bytes() + b"\r\n------x--\r\n")
    error(_put(srv, w.name, body, {"Content-Type": "application/octet-stream"}), 400,
          "bad-body")


def test_html_prefix_before_a_deb_is_400(srv, guard, tmp_path):
    d = make_deb(tmp_path, "polydeb")
    n = len(audit_rows(srv.path))
    error(_put(srv, d.name, HTML + d.read_bytes()), 400, "bad-body")
    assert _last(srv, n) == [("qemu", 400, "bad-body")]


def test_body_shorter_than_the_signature_is_400(srv, guard):
    error(_put(srv, "udriver_tiny-0.1.0-py3-none-any.whl", b"PK"), 400, "bad-body")


@pytest.mark.parametrize("content_type", [None, "application/octet-stream",
                                          "application/zip", "application/x-wheel+zip"])
def test_accepted_content_types_publish_a_wheel(srv, tmp_path, content_type):
    slug = (content_type or "none").replace("/", "").replace("-", "").replace("+", "")
    w = make_wheel(tmp_path, f"ok{slug}")
    headers = {"Content-Type": content_type} if content_type else {}
    r = _put(srv, w.name, w.read_bytes(), headers)
    assert r.status_code == 201, r.text


def test_deb_content_type_publishes_a_deb(srv, tmp_path):
    _, (_, d) = make_driver(tmp_path, "udriver-okdeb", driver="okdeb",
                            modaliases=("pci:v00001234d00000777sv*sd*bc*sc*i*",))
    r = _put(srv, d.name, d.read_bytes(),
             {"Content-Type": "application/vnd.debian.binary-package"})
    assert r.status_code == 201, r.text


def test_documented_curl_command_publishes(srv, tmp_path):
    """The upload command of docs/serving.md (`curl -T`), as is: it sends no Content-Type
    (or octet-stream), and is accepted; `curl -F` (multipart) is refused with 415."""
    _, (w,) = make_driver(tmp_path, "udriver-curl", driver="curl", deb=False,
                          modaliases=("pci:v00001234d00000778sv*sd*bc*sc*i*",))
    url = f"{srv.url}/api/v1/packages/{w.name}"
    auth = f"Authorization: Bearer {srv.tokens['qemu']}"
    form = subprocess.run(["curl", "-sS", "-F", f"file=@{w}", "-H", auth, url],
                          capture_output=True, text=True, timeout=60, check=True)
    assert '"unsupported-media-type"' in form.stdout, form.stdout
    ok = subprocess.run(["curl", "--fail-with-body", "-sS", "-T", str(w), "-H", auth, url],
                        capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0 and '"published"' in ok.stdout, ok.stdout + ok.stderr


def test_repository_still_verifies(srv):
    verifies(srv.path)
