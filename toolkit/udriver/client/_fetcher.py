"""python-tuf's `FetcherInterface` over urllib3 (`HttpFetcher`).

Only `_fetch(url)` is overridden, as python-tuf asks; length limits, hashes and
signatures stay python-tuf's job. urllib3 is what python-tuf's own ngclient imports
anyway; requests on top of it cost 0.1 s of every online `udriver search` (mostly its
charset detection, issue 13), for nothing a fetch of signed bytes needs. What the
fetcher adds for users:

- timeouts (connect, read between chunks): a stalled server raises `SlowRetrievalError`;
- retries with backoff for connection errors and 429/5xx (urllib3 `Retry`), GET only;
- proxies from the environment as requests and curl read them (`https_proxy`,
  `http_proxy`, `all_proxy`, `no_proxy`, either case), and the CA bundle from the
  repository's configuration, else `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE`, else the
  system's certificate store;
- an optional progress callback per download (the CLI draws a bar on a terminal);
- HTTP Basic credentials stored apart from the URL (`_auth`), sent to that repository
  only (urllib3 drops the header on a redirect to another host); messages never carry
  them, and a failed connection is reported by its cause ("connection refused"), not by
  urllib3's retry chain.

`OfflineFetcher` refuses every request; it backs `--offline`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from .. import __version__
from .._log import ready
from ._auth import Credentials, mask_secrets
from ._rawhttp import ca_bundle, proxy_for

if TYPE_CHECKING:
    import urllib3

ready()  # python-tuf and urllib3 log through `logging`: set up the CLI's handlers

__all__ = ["FetchOptions", "HttpFetcher", "OfflineFetcher", "Progress", "RequestsFetcher",
           "proxy_for"]

log = logging.getLogger(__name__)

#: progress(url, bytes_so_far, total_or_None, done)
Progress = Callable[[str, int, "int | None", bool], None]


@dataclass(frozen=True)
class FetchOptions:
    """Network settings for one repository."""

    connect_timeout: float = 5.0
    """Seconds to establish a connection."""
    read_timeout: float = 30.0
    """Seconds to wait for the next chunk before giving up."""
    retries: int = 3
    """Retries for connection errors and 429/500/502/503/504."""
    backoff: float = 0.2
    """urllib3 backoff factor (0.2 s, 0.4 s, 0.8 s...)."""
    ca_bundle: str | None = None
    """CA bundle path; None uses the environment / system default."""
    chunk_size: int = 64 * 1024
    """Bytes per chunk handed to python-tuf."""
    auth: Credentials | None = None
    """HTTP Basic credentials for this repository (None: none)."""


_ERRNO = re.compile(r"\[Errno (-?\d+)\] ([^'\")\]]+)")


def _reason(e: BaseException) -> str:
    """The root cause of a urllib3 failure in a few words, credentials masked."""
    text = str(e)
    m = _ERRNO.search(text)
    if m:
        return f"{m.group(2).strip().rstrip('.').lower()} (errno {m.group(1)})"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    return mask_secrets(text)[:200]


class HttpFetcher(FetcherInterface):
    """Fetch over HTTP(S) with pooled urllib3 connections (one pool manager per proxy)."""

    def __init__(self, options: FetchOptions = FetchOptions(),
                 progress: Progress | None = None) -> None:
        import urllib3  # python-tuf's ngclient imports it too: no cost of its own

        self.options = options
        self.progress = progress
        self.ca_bundle = ca_bundle(options.ca_bundle)
        self.headers = {"User-Agent": f"udriver/{__version__}"}
        if options.auth is not None:
            self.headers.update(urllib3.util.make_headers(
                basic_auth=f"{options.auth.username}:{options.auth.password}"))
        self.retry = urllib3.Retry(
            total=options.retries, connect=options.retries, read=options.retries,
            status=options.retries, backoff_factor=options.backoff,
            status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",),
            raise_on_status=False, respect_retry_after_header=True)
        self._pools: dict[str | None, urllib3.PoolManager] = {}

    def pool(self, url: str) -> urllib3.PoolManager:
        """The pool manager for `url`: a `ProxyManager` if the environment names a proxy."""
        import urllib3

        proxy = proxy_for(url)
        if proxy not in self._pools:
            kw: dict[str, object] = {"ca_certs": self.ca_bundle} if self.ca_bundle else {}
            self._pools[proxy] = (urllib3.ProxyManager(proxy, **kw) if proxy  # type: ignore[arg-type]
                                  else urllib3.PoolManager(**kw))  # type: ignore[arg-type]
        return self._pools[proxy]

    def _fetch(self, url: str) -> Iterator[bytes]:
        """Start a GET and return the body as chunks.

        Raises:
            tuf.api.exceptions.DownloadHTTPError: the server answered with a non-200 status.
            tuf.api.exceptions.SlowRetrievalError: connect or read timeout.
            tuf.api.exceptions.DownloadError: connection failed after retries.
        """
        import urllib3

        o = self.options
        shown = mask_secrets(url)
        try:
            resp = self.pool(url).request(
                "GET", url, headers=self.headers, preload_content=False, redirect=True,
                retries=self.retry,
                timeout=urllib3.Timeout(connect=o.connect_timeout, read=o.read_timeout))
        except urllib3.exceptions.HTTPError as e:
            raise self._failure(e, f"cannot fetch {shown}", f"timed out fetching {shown}") \
                from None
        if resp.status != 200:
            resp.drain_conn()
            resp.release_conn()
            hint = " (wrong or missing credentials)" if resp.status in (401, 403) else ""
            raise exceptions.DownloadHTTPError(f"HTTP {resp.status} fetching {shown}{hint}",
                                               resp.status)
        return self._chunks(url, resp)

    @staticmethod
    def _failure(e: urllib3.exceptions.HTTPError, what: str, slow: str
                 ) -> exceptions.DownloadError:
        """python-tuf's exception for a urllib3 failure (the chain is logged at debug)."""
        import urllib3

        log.debug("%s", mask_secrets(repr(e)))
        cause = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason else e
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            return exceptions.DownloadError(f"{what}: {_reason(cause)}")
        if isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
            return exceptions.DownloadError(f"{what}: connection timed out")
        if isinstance(cause, urllib3.exceptions.TimeoutError):
            return exceptions.SlowRetrievalError(slow)
        return exceptions.DownloadError(f"{what}: {_reason(cause)}")

    def _chunks(self, url: str, resp: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        import urllib3

        total_hdr = resp.headers.get("Content-Length")
        total = int(total_hdr) if total_hdr and total_hdr.isdigit() else None
        got = 0
        try:
            for chunk in resp.stream(self.options.chunk_size, decode_content=True):
                got += len(chunk)
                if self.progress:
                    self.progress(url, got, total, False)
                yield chunk
        except urllib3.exceptions.HTTPError as e:
            raise self._failure(e, f"connection lost reading {mask_secrets(url)}",
                                f"timed out reading {mask_secrets(url)}") from None
        finally:
            if self.progress:
                self.progress(url, got, total, True)
            resp.release_conn()


RequestsFetcher = HttpFetcher
"""The name of `HttpFetcher` when it was built on requests (kept for callers)."""


class OfflineFetcher(FetcherInterface):
    """A fetcher that never touches the network (for `--offline`).

    It answers 404 so that python-tuf's root update (TUF spec 5.3) stops at the newest
    cached root instead of failing; every other fetch is caught by the offline
    updater before it gets here.
    """

    def _fetch(self, url: str) -> Iterator[bytes]:
        raise exceptions.DownloadHTTPError(f"offline: not fetching {url}", 404)
