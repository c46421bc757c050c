"""The check without python-tuf (`udriver.client._fresh`) and its HTTP GET (`_rawhttp`).

Online, a command may answer from the derived lookup without python-tuf only when the
server has nothing new: no `N+1.root.json`, and `timestamp.json` byte for byte the one
the lookup was derived from, with neither the root nor that timestamp expired. Every
other case takes the full TUF path, which answers, or refuses, exactly as it does with
the check switched off. Real python-tuf repositories served on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import Published
from udriver.client import Client, get_repo
from udriver.client import _client as client_mod
from udriver.client._fresh import TIMESTAMP_MAX_LENGTH, unchanged
from udriver.client._lookup import Lookup
from udriver.client._rawhttp import get
from udriver.errors import DownloadError, RepositoryError

QUERY = "1234:11e8"


def _metadata(env: Path) -> Path:
    return env / "var/repos/main/metadata"


def _lookup_file(env: Path) -> Path:
    return env / "var/repos/main/lookup.json"


def _unchanged() -> bool:
    return unchanged(get_repo("main"), Lookup(get_repo("main")))


def _versions() -> list[str]:
    return [e.version for e in Client().search(QUERY)]


def _without_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "unchanged", lambda *a, **k: False)


def _refusal(monkeypatch: pytest.MonkeyPatch, kind: type[Exception]) -> tuple[str, str]:
    """The error of an online search with the check, then without it (the full path)."""
    with pytest.raises(kind) as fast:
        Client().search(QUERY)
    with monkeypatch.context() as m:
        _without_check(m)
        with pytest.raises(kind) as full:
            Client().search(QUERY)
    assert str(fast.value) == str(full.value)
    assert fast.value.hint == full.value.hint  # type: ignore[attr-defined]
    return str(fast.value), str(full.value)


def _lookup_never_expires(env: Path) -> None:
    """Leave only the check's own expiry tests (the lookup's expiry is the earliest of
    the metadata it rests on, `_lookup` point 3; its file is not signed)."""
    doc = json.loads(_lookup_file(env).read_bytes())
    doc["expires"] = "2099-01-01T00:00:00Z"
    _lookup_file(env).write_text(json.dumps(doc))


def _wait_until(expires: str) -> None:
    end = time.mktime(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    while time.time() <= end + 0.2:
        time.sleep(0.1)


@pytest.fixture
def filled(configured: Published, env: Path) -> Published:
    Client().search(QUERY)  # the full path: metadata, the index and the lookup
    assert _lookup_file(env).is_file()
    return configured


def test_unchanged_timestamp_answers_without_python_tuf(filled: Published, env: Path) -> None:
    code = ("import sys\n"
            "from udriver.cli import main\n"
            "rc = main(['search', '--json', sys.argv[1]])\n"
            "print('TUF', sorted(m for m in ('tuf', 'urllib3', 'securesystemslib', "
            "'dataclasses', 'http.client', 'logging') if m in sys.modules), "
            "file=sys.stderr)\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code, QUERY], env=dict(os.environ), text=True,
                       capture_output=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "TUF []" in r.stderr.splitlines()
    assert [h["version"] for h in json.loads(r.stdout)] == ["0.1.0"]
    assert _unchanged() is True


def test_changed_timestamp_takes_the_full_path(filled: Published) -> None:
    filled.publish_edu("0.2.0")
    assert _unchanged() is False
    assert _versions() == ["0.1.0", "0.2.0"]  # the new snapshot, seen
    assert _unchanged() is True  # the lookup now rests on the new timestamp


def test_new_timestamp_same_content_takes_the_full_path(filled: Published) -> None:
    filled.repo.write_timestamp(7)  # re-signed: a new version, nothing else new
    assert _unchanged() is False
    assert _versions() == ["0.1.0"]
    assert _unchanged() is True


def test_newer_root_takes_the_full_path(filled: Published, env: Path) -> None:
    filled.repo.rotate_root()  # 2.root.json exists on the server
    assert _unchanged() is False
    assert _versions() == ["0.1.0"]
    root = json.loads((_metadata(env) / "root.json").read_bytes())
    assert root["signed"]["version"] == 2  # python-tuf took the new root


def test_newer_root_cached_locally_takes_the_full_path(filled: Published, env: Path) -> None:
    history = _metadata(env) / "root_history"
    (history / "2.root.json").write_bytes((history / "1.root.json").read_bytes())
    assert _unchanged() is False  # python-tuf would load it first (TUF spec 5.3)


def test_tampered_cached_timestamp_takes_the_full_path(filled: Published, env: Path) -> None:
    """Cached timestamp bytes that are not the server's (re-keyed in the lookup, so the
    lookup itself would answer): the byte comparison declines."""
    ts = _metadata(env) / "timestamp.json"
    ts.write_bytes(json.dumps(json.loads(ts.read_bytes()), indent=4).encode())
    from udriver.client._lookup import _read_key
    doc = json.loads(_lookup_file(env).read_bytes())
    key = _read_key(_metadata(env))
    assert key is not None
    doc["key"] = key[0]
    _lookup_file(env).write_text(json.dumps(doc))
    assert Lookup(get_repo("main")).verified() is not None  # the lookup would answer
    assert _unchanged() is False
    assert _versions() == ["0.1.0"]


def test_expired_cached_timestamp_is_refused_as_the_full_path_refuses(
        configured: Published, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured.repo.write_timestamp(4 / 86400)  # valid for 4 s
    Client().search(QUERY)
    assert _unchanged() is True
    ts = json.loads((_metadata(env) / "timestamp.json").read_bytes())
    _wait_until(ts["signed"]["expires"])  # the server still serves these very bytes
    assert _unchanged() is False
    fast, _ = _refusal(monkeypatch, RepositoryError)
    assert "expired timestamp metadata" in fast
    _lookup_never_expires(env)  # the check's own expiry test (TUF spec 5.4.4) too
    assert Lookup(get_repo("main")).verified() is not None
    assert _unchanged() is False


def test_expired_root_is_refused_as_the_full_path_refuses(
        configured: Published, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    configured.repo.root.signed.expires = soon
    configured.repo.rotate_root()  # root version 2, valid for 4 s
    Client().search(QUERY)
    root = json.loads((_metadata(env) / "root.json").read_bytes())["signed"]
    assert root["version"] == 2
    assert _unchanged() is True
    _wait_until(root["expires"])
    assert _unchanged() is False
    fast, _ = _refusal(monkeypatch, RepositoryError)
    assert "expired root metadata" in fast
    _lookup_never_expires(env)  # the check's own expiry test (TUF spec 5.3.10) too
    assert Lookup(get_repo("main")).verified() is not None
    assert _unchanged() is False


def test_server_down_is_the_same_error_as_before(filled: Published,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    filled.server.close()
    assert _unchanged() is False
    fast, _ = _refusal(monkeypatch, DownloadError)
    assert "cannot fetch" in fast and "2.root.json" in fast


def test_a_proxy_is_left_to_the_full_path(filled: Published,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert _unchanged() is False  # declined without connecting anywhere
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert _unchanged() is True


def test_no_lookup_no_check(configured: Published) -> None:
    assert _unchanged() is False  # nothing verified yet to compare with


def test_timestamp_limit_is_python_tufs() -> None:
    from tuf.ngclient.config import UpdaterConfig
    assert UpdaterConfig().timestamp_max_length == TIMESTAMP_MAX_LENGTH


# -- _rawhttp.get: what it leaves to the full path ----------------------------------------
class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        body = b"x" * 100
        if self.path == "/redirect":
            self.send_response(301)
            self.send_header("Location", "/ok")
        elif self.path == "/gzip":
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
        elif self.path == "/missing":
            self.send_response(404)
        elif self.path == "/trickle":  # each byte well within the read timeout
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.1)
            return
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.seen  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_get_reads_the_body(raw_server: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = raw_server
    r = get(f"{url}/ok", limit=100)
    assert r is not None and r.status == 200 and r.body == b"x" * 100
    assert seen[-1]["User-Agent"].startswith("udriver/")


def test_get_status_only(raw_server: tuple[str, list[dict[str, str]]]) -> None:
    url, _ = raw_server
    r = get(f"{url}/missing", limit=0, body=False)
    assert r is not None and r.status == 404


@pytest.mark.parametrize("path", ["/redirect", "/gzip"])
def test_get_leaves_redirects_and_encodings(raw_server: tuple[str, list[dict[str, str]]],
                                            path: str) -> None:
    url, _ = raw_server
    assert get(f"{url}{path}", limit=1000) is None


def test_get_refuses_an_over_long_body(raw_server: tuple[str, list[dict[str, str]]]) -> None:
    url, _ = raw_server
    assert get(f"{url}/ok", limit=99) is None


def test_get_sends_basic_credentials(raw_server: tuple[str, list[dict[str, str]]]) -> None:
    from udriver.client._auth import Credentials
    url, seen = raw_server
    get(f"{url}/ok", limit=100, auth=Credentials("alice", "s3cret"))
    assert seen[-1]["Authorization"] == "Basic YWxpY2U6czNjcmV0"  # base64 of alice:s3cret


def test_get_leaves_a_user_in_the_url(raw_server: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = raw_server
    assert get(url.replace("http://", "http://bob@") + "/ok", limit=100) is None
    assert seen == []


def test_get_declines_a_server_that_trickles(
        raw_server: tuple[str, list[dict[str, str]]]) -> None:
    """Every read comes well within the timeout, but the whole answer would take 10 s: it
    is declined after 3 x timeout (the full path, with its own limits, then asks)."""
    url, _ = raw_server
    t0 = time.monotonic()
    assert get(f"{url}/trickle", limit=100, timeout=0.5) is None
    assert time.monotonic() - t0 < 4


def test_get_connection_refused_raises() -> None:
    with pytest.raises(OSError):
        get("http://127.0.0.1:9/timestamp.json", limit=100)


# -- https: the repository's CA bundle, and a certificate it does not trust ---------------
def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM), made with `cryptography`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp / "server.crt", tmp / "server.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    import ssl
    crt, pem = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, pem)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", crt
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_get_over_https_with_the_repositorys_ca(tls_server: tuple[str, Path]) -> None:
    url, crt = tls_server
    r = get(f"{url}/ok", limit=100, cafile=str(crt))
    assert r is not None and r.status == 200 and r.body == b"x" * 100


def test_get_over_https_refuses_an_untrusted_certificate(tls_server: tuple[str, Path]) -> None:
    import ssl
    url, _ = tls_server
    with pytest.raises(ssl.SSLCertVerificationError):  # an OSError: the full path then
        get(f"{url}/ok", limit=100)
