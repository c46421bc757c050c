"""udriver.client._fetcher against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from tuf.api import exceptions

from udriver.client._fetcher import FetchOptions, HttpFetcher, OfflineFetcher, proxy_for


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        n = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path in ("/ok", "http://repo.invalid/ok"):
            self._send(200, b"x" * 200_000)
        elif self.path == "/flaky" and n < 3:
            self._send(503, b"busy")
        elif self.path == "/flaky":
            self._send(200, b"recovered")
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"12345")
            self.wfile.flush()
            time.sleep(2)
        else:
            self._send(404, b"no")

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def url() -> Iterator[str]:
    _Handler.hits = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_streams_and_reports_progress(url: str) -> None:
    seen: list[tuple[int, int | None, bool]] = []
    f = HttpFetcher(progress=lambda u, got, total, done: seen.append((got, total, done)))
    assert f.download_bytes(f"{url}/ok", 300_000) == b"x" * 200_000
    assert seen[-1] == (200_000, 200_000, True)
    assert all(total == 200_000 for _, total, _ in seen)


def test_http_error_is_download_http_error(url: str) -> None:
    with pytest.raises(exceptions.DownloadHTTPError) as ei:
        HttpFetcher().download_bytes(f"{url}/missing", 100)
    assert ei.value.status_code == 404
    assert str(ei.value) == f"HTTP 404 fetching {url}/missing"


def test_retries_5xx_then_succeeds(url: str) -> None:
    f = HttpFetcher(FetchOptions(retries=3, backoff=0.01))
    assert f.download_bytes(f"{url}/flaky", 100) == b"recovered"
    assert _Handler.hits["/flaky"] == 3


def test_retries_exhausted_reports_status(url: str) -> None:
    f = HttpFetcher(FetchOptions(retries=1, backoff=0.01))
    with pytest.raises(exceptions.DownloadHTTPError) as ei:
        f.download_bytes(f"{url}/flaky", 100)
    assert ei.value.status_code == 503


def test_read_timeout_is_slow_retrieval(url: str) -> None:
    f = HttpFetcher(FetchOptions(read_timeout=0.3, retries=0))
    with pytest.raises(exceptions.SlowRetrievalError):
        f.download_bytes(f"{url}/slow", 100)


def test_connection_refused_is_download_error() -> None:
    f = HttpFetcher(FetchOptions(retries=0, connect_timeout=1))
    with pytest.raises(exceptions.DownloadError, match="cannot fetch http://127.0.0.1:9/x"):
        f.download_bytes("http://127.0.0.1:9/x", 100)


def test_length_limit_enforced_by_tuf(url: str) -> None:
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        HttpFetcher().download_bytes(f"{url}/ok", 1000)


def test_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/from-env.pem")
    assert HttpFetcher().ca_bundle == "/etc/ssl/certs/from-env.pem"
    f = HttpFetcher(FetchOptions(ca_bundle="/etc/ssl/certs/ca-certificates.crt"))
    assert f.ca_bundle == "/etc/ssl/certs/ca-certificates.crt"  # the repository's own wins
    assert f.pool("https://repo.example/").connection_pool_kw["ca_certs"] == f.ca_bundle
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert HttpFetcher().ca_bundle is None  # the system's store


@pytest.mark.parametrize("env,url,want", [
    ({"HTTPS_PROXY": "http://proxy.invalid:3128"}, "https://repo.example/m", "http://proxy.invalid:3128"),
    ({"https_proxy": "http://p:1"}, "http://repo.example/m", None),
    ({"http_proxy": "http://p:1"}, "http://repo.example/m", "http://p:1"),
    ({"ALL_PROXY": "http://p:2"}, "https://repo.example/m", "http://p:2"),
    ({"https_proxy": "http://p:1", "NO_PROXY": "example"}, "https://repo.example/m", None),
    ({"https_proxy": "http://p:1", "no_proxy": ".example"}, "https://repo.example/m", None),
    ({"https_proxy": "http://p:1", "no_proxy": "le"}, "https://repo.example/m", "http://p:1"),
    ({"https_proxy": "http://p:1", "no_proxy": "127.0.0.1:8080"}, "https://127.0.0.1:8080/m",
     None),
    ({"https_proxy": "http://p:1", "no_proxy": "x, *"}, "https://u:pw@repo.example/m", None),
])
def test_env_proxies(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str,
                     want: str | None) -> None:
    for k in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(k, raising=False)
        monkeypatch.delenv(k.upper(), raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert proxy_for(url) == want
    pool = HttpFetcher().pool(url)
    assert getattr(pool, "proxy", None) is None if want is None \
        else pool.proxy.url == want  # type: ignore[attr-defined]


def test_through_a_proxy(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The request goes to the proxy named by the environment (here the test server,
    which answers the absolute-form request line for the path it names)."""
    monkeypatch.setenv("http_proxy", url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert HttpFetcher().download_bytes("http://repo.invalid/ok", 300_000) == b"x" * 200_000
    assert _Handler.hits == {"http://repo.invalid/ok": 1}


def test_offline_fetcher_refuses() -> None:
    with pytest.raises(exceptions.DownloadHTTPError, match="offline: not fetching"):
        OfflineFetcher().download_bytes("http://127.0.0.1:9/x", 10)
