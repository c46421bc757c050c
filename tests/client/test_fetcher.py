"""udriver.client._fetcher against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from tuf.api import exceptions

from udriver.client._fetcher import FetchOptions, OfflineFetcher, RequestsFetcher


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        n = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path == "/ok":
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
    f = RequestsFetcher(progress=lambda u, got, total, done: seen.append((got, total, done)))
    assert f.download_bytes(f"{url}/ok", 300_000) == b"x" * 200_000
    assert seen[-1] == (200_000, 200_000, True)
    assert all(total == 200_000 for _, total, _ in seen)


def test_http_error_is_download_http_error(url: str) -> None:
    with pytest.raises(exceptions.DownloadHTTPError) as ei:
        RequestsFetcher().download_bytes(f"{url}/missing", 100)
    assert ei.value.status_code == 404
    assert str(ei.value) == f"HTTP 404 fetching {url}/missing"


def test_retries_5xx_then_succeeds(url: str) -> None:
    f = RequestsFetcher(FetchOptions(retries=3, backoff=0.01))
    assert f.download_bytes(f"{url}/flaky", 100) == b"recovered"
    assert _Handler.hits["/flaky"] == 3


def test_retries_exhausted_reports_status(url: str) -> None:
    f = RequestsFetcher(FetchOptions(retries=1, backoff=0.01))
    with pytest.raises(exceptions.DownloadHTTPError) as ei:
        f.download_bytes(f"{url}/flaky", 100)
    assert ei.value.status_code == 503


def test_read_timeout_is_slow_retrieval(url: str) -> None:
    f = RequestsFetcher(FetchOptions(read_timeout=0.3, retries=0))
    with pytest.raises(exceptions.SlowRetrievalError):
        f.download_bytes(f"{url}/slow", 100)


def test_connection_refused_is_download_error() -> None:
    f = RequestsFetcher(FetchOptions(retries=0, connect_timeout=1))
    with pytest.raises(exceptions.DownloadError, match="cannot fetch http://127.0.0.1:9/x"):
        f.download_bytes("http://127.0.0.1:9/x", 100)


def test_length_limit_enforced_by_tuf(url: str) -> None:
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        RequestsFetcher().download_bytes(f"{url}/ok", 1000)


def test_ca_bundle_and_env_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    f = RequestsFetcher(FetchOptions(ca_bundle="/etc/ssl/certs/ca-certificates.crt"))
    assert f.session.verify == "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = f.session.merge_environment_settings("https://repo.example/", {}, None, None, None)
    assert settings["proxies"]["https"] == "http://proxy.invalid:3128"
    assert f.session.verify == "/etc/ssl/certs/ca-certificates.crt"


def test_offline_fetcher_refuses() -> None:
    with pytest.raises(exceptions.DownloadHTTPError, match="offline: not fetching"):
        OfflineFetcher().download_bytes("http://127.0.0.1:9/x", 10)
