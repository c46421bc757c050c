"""python-tuf's `FetcherInterface` over a `requests.Session`.

Only `_fetch(url)` is overridden, as python-tuf asks; length limits, hashes and
signatures stay python-tuf's job. What the session adds for users:

- timeouts (connect, read between chunks): a stalled server raises `SlowRetrievalError`;
- retries with backoff for connection errors and 429/5xx (urllib3 `Retry`), GET only;
- proxies and `REQUESTS_CA_BUNDLE` from the environment (`trust_env`), or an explicit
  CA bundle;
- an optional progress callback per download (the CLI draws a bar on a terminal);
- HTTP Basic credentials stored apart from the URL (`_auth`); messages never carry them,
  and a failed connection is reported by its cause ("connection refused"), not by
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
from ._auth import Credentials, mask_secrets

if TYPE_CHECKING:
    import requests

__all__ = ["FetchOptions", "OfflineFetcher", "Progress", "RequestsFetcher"]

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
    """The root cause of a requests/urllib3 failure in a few words, credentials masked."""
    text = str(e)
    m = _ERRNO.search(text)
    if m:
        return f"{m.group(2).strip().rstrip('.').lower()} (errno {m.group(1)})"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    return mask_secrets(text)[:200]


class RequestsFetcher(FetcherInterface):
    """Fetch over HTTP(S) with one pooled `requests.Session`."""

    def __init__(self, options: FetchOptions = FetchOptions(),
                 progress: Progress | None = None) -> None:
        # requests (and its charset detection) is imported by the first fetcher, not with
        # this module: commands that read only cached metadata (`udriver devices`, any
        # `--offline`) never load it (issue 13: 0.3-0.8 s of a 1 s `udriver devices`).
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.options = options
        self.progress = progress
        self.session = requests.Session()
        self.session.trust_env = True  # proxies (HTTPS_PROXY, NO_PROXY...) from the environment
        self.session.headers["User-Agent"] = f"udriver/{__version__}"
        if options.ca_bundle:
            self.session.verify = options.ca_bundle
        if options.auth is not None:
            self.session.auth = (options.auth.username, options.auth.password)
        retry = Retry(total=options.retries, connect=options.retries, read=options.retries,
                      status=options.retries, backoff_factor=options.backoff,
                      status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",),
                      raise_on_status=False, respect_retry_after_header=True)
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _fetch(self, url: str) -> Iterator[bytes]:
        """Start a GET and return the body as chunks.

        Raises:
            tuf.api.exceptions.DownloadHTTPError: the server answered with a non-200 status.
            tuf.api.exceptions.SlowRetrievalError: connect or read timeout.
            tuf.api.exceptions.DownloadError: connection failed after retries.
        """
        import requests

        o = self.options
        shown = mask_secrets(url)
        try:
            resp = self.session.get(url, stream=True, timeout=(o.connect_timeout, o.read_timeout))
        except requests.exceptions.ConnectTimeout as e:
            raise exceptions.DownloadError(f"cannot fetch {shown}: connection timed out") from e
        except requests.exceptions.Timeout as e:
            raise exceptions.SlowRetrievalError(f"timed out fetching {shown}") from e
        except requests.exceptions.RequestException as e:
            raise exceptions.DownloadError(f"cannot fetch {shown}: {_reason(e)}") from e
        if resp.status_code != 200:
            resp.close()
            hint = " (wrong or missing credentials)" if resp.status_code in (401, 403) else ""
            raise exceptions.DownloadHTTPError(f"HTTP {resp.status_code} fetching {shown}{hint}",
                                               resp.status_code)
        return self._chunks(url, resp)

    def _chunks(self, url: str, resp: requests.Response) -> Iterator[bytes]:
        import requests

        total_hdr = resp.headers.get("Content-Length")
        total = int(total_hdr) if total_hdr and total_hdr.isdigit() else None
        got = 0
        try:
            for chunk in resp.iter_content(self.options.chunk_size):
                got += len(chunk)
                if self.progress:
                    self.progress(url, got, total, False)
                yield chunk
        except requests.exceptions.RequestException as e:
            # urllib3 ReadTimeoutError surfaces as ConnectionError here
            if "timed out" in str(e).lower():
                raise exceptions.SlowRetrievalError(f"timed out reading {mask_secrets(url)}") from e
            raise exceptions.DownloadError(
                f"connection lost reading {mask_secrets(url)}: {_reason(e)}") from e
        finally:
            if self.progress:
                self.progress(url, got, total, True)
            resp.close()


class OfflineFetcher(FetcherInterface):
    """A fetcher that never touches the network (for `--offline`).

    It answers 404 so that python-tuf's root update (TUF spec 5.3) stops at the newest
    cached root instead of failing; every other fetch is caught by the offline
    updater before it gets here.
    """

    def _fetch(self, url: str) -> Iterator[bytes]:
        raise exceptions.DownloadHTTPError(f"offline: not fetching {url}", 404)
