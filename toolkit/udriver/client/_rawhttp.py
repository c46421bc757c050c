"""One small HTTP(S) GET without urllib3 (for `_fresh`), and the proxy rule of every fetch.

`udriver search` asks the server one question before it may answer from its cache: is
`timestamp.json` still the one this machine verified (`_fresh`)? urllib3 alone costs
more to import than the whole answer from the cache (issue 13, acceptance 6), so that
question is asked over a plain socket, HTTP/1.0 (RFC 1945: the server closes the
connection after the response and never sends a chunked body), with `ssl` for https.

It is deliberately narrow: whatever it does not handle exactly (a proxy, a redirect, an
encoded body, a body over the limit, a short read, a malformed response) makes `get`
return None, and the caller then takes the full path through `_fetcher.HttpFetcher`,
which handles all of it. Nothing it returns is trusted: `_fresh` only compares it with
bytes python-tuf already verified.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import __version__

if TYPE_CHECKING:
    import socket

    from ._auth import Credentials

__all__ = ["Response", "ca_bundle", "get", "proxy_for"]

_MAX_HEAD = 64 * 1024
"""Bytes of status line and headers read at most."""
_WHOLE = 3
"""The whole exchange may take this many times the per-read timeout."""


def _env(name: str) -> str:
    return os.environ.get(name) or os.environ.get(name.upper()) or ""


def proxy_for(url: str) -> str | None:
    """The proxy for `url` from the environment, as requests and curl choose it: none
    when `no_proxy` lists the host (or a domain it is in, or `*`), else `<scheme>_proxy`,
    else `all_proxy`."""
    scheme, _, rest = url.partition("://")
    hostport = rest.split("/", 1)[0].rpartition("@")[2].lower()
    host = hostport.rsplit(":", 1)[0].strip("[]") if not hostport.endswith("]") \
        else hostport.strip("[]")
    for entry in _env("no_proxy").replace(" ", "").lower().split(","):
        entry = entry.lstrip(".")
        if entry and (entry == "*" or host == entry or hostport == entry
                      or host.endswith("." + entry)):
            return None
    return _env(f"{scheme.lower()}_proxy") or _env("all_proxy") or None


def ca_bundle(configured: str | None) -> str | None:
    """The CA bundle for HTTPS: the repository's, else `REQUESTS_CA_BUNDLE`, else
    `CURL_CA_BUNDLE`, else None (the system's certificate store)."""
    return (configured or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE") or None)


class Response:
    """A response: its status and, when asked for, its whole body."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


def _recv_head(sock: socket.socket, deadline: float) -> tuple[bytes, bytes] | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(8192)
        if not chunk or len(buf) > _MAX_HEAD or time.monotonic() > deadline:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes) -> tuple[int, dict[str, str]] | None:
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def get(url: str, *, limit: int, body: bool = True, auth: Credentials | None = None,
        cafile: str | None = None, timeout: float = 5.0) -> Response | None:
    """GET `url` (http or https) straight from its server.

    Args:
        limit: the most body bytes accepted (TUF spec 5.4.1: "up to X number of bytes").
        body: read the body (False: the status alone, the connection closed after the
            headers).
        auth: HTTP Basic credentials for this server.
        cafile: CA bundle for https (None: the system's store).
        timeout: seconds allowed to connect, and between two reads; the whole answer
            must come within `_WHOLE` times that (a server that trickles bytes is
            declined, not waited for).

    Returns:
        the response; None when the URL needs what this client leaves to the full
        path: a proxy, a user in the URL, a redirect (3xx), an encoded or over-long
        body, a short read or a malformed response.

    Raises:
        OSError: the connection failed or timed out (`ssl.SSLError` included).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc \
            or proxy_for(url) is not None:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.0", f"Host: {parts.netloc}",
             f"User-Agent: udriver/{__version__}", "Accept-Encoding: identity"]
    if auth is not None:
        import base64
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        lines.append(f"Authorization: Basic {token}")
    import socket  # here: `udriver devices` and `--offline` imports this module, unused

    sock = socket.create_connection((parts.hostname, port), timeout=timeout)
    try:
        if parts.scheme == "https":
            import ssl
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1"))
        deadline = time.monotonic() + _WHOLE * timeout
        got = _recv_head(sock, deadline)
        parsed = _parse_head(got[0]) if got is not None else None
        if got is None or parsed is None:
            return None
        status, headers = parsed
        if not body:
            return Response(status, b"")
        if 300 <= status < 400 or "transfer-encoding" in headers \
                or headers.get("content-encoding", "identity").lower() != "identity":
            return None
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return None
        data = got[1]
        while len(data) <= limit and (length is None or len(data) < int(length)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            if time.monotonic() > deadline:
                return None
            data += chunk
        if len(data) > limit or (length is not None and len(data) != int(length)):
            return None
        return Response(status, data)
    finally:
        sock.close()
