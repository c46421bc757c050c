"""The access log (`udriver_repo.server.access`, INFO, shown by `udriver-repo -v serve`).

Rules:
- One line per response: client, method, path, status, bytes, seconds, User-Agent.
- The query string is never written (a token may be in it: RFC 6750 section 5.3 warns
  that URLs are logged); a request that had one is logged as `<path>?<query omitted>`.
  No header other than User-Agent is written; never `Authorization`.
- Every field is escaped with `escape_text`, so a path, a User-Agent or an address cannot
  move the cursor, colour the terminal, end the line or reorder the text with bidi
  overrides.
- A request that aiohttp's HTTP parser refused (bad request line, header over its size
  limit, invalid bytes) never reaches the application; its 400 is written to the audit
  log here (`action` `http`, `result` `malformed-request`), so that it too leaves a row.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ._audit import escape_text
from ._state import STATE

__all__ = ["AccessLogger", "log_line"]


def log_line(request: web.BaseRequest, status: int, size: int, seconds: float) -> str:
    """The access-log line for one response (escaped, without the query string)."""
    path, _, query = request.raw_path.partition("?")
    if query:
        path += "?<query omitted>"
    ua = request.headers.get("User-Agent", "-")
    return (f"{escape_text(str(request.remote))} \"{escape_text(request.method)} "
            f"{escape_text(path[:1000])}\" {status} {size} {seconds:.3f}s "
            f"\"{escape_text(ua[:300])}\"")


class AccessLogger(AbstractAccessLogger):
    """aiohttp access logger writing `log_line`; audits requests the parser refused."""

    @property
    def enabled(self) -> bool:
        """Always called (aiohttp >= 3.9 asks): the audit of refused requests needs it."""
        return True

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Write one line at INFO; audit a parser-level rejection.

        Never raises: a logging failure must not fail the response.
        """
        try:
            if self.logger.isEnabledFor(logging.INFO):
                self.logger.info("%s", log_line(request, response.status,
                                                response.body_length, time))
            if request.method == "UNKNOWN" and 400 <= response.status < 500:
                self._audit_malformed(request, response.status)
        except Exception:
            self.logger.exception("access log failed")

    def _audit_malformed(self, request: web.BaseRequest, status: int) -> None:
        # aiohttp answers with a request whose method is UNKNOWN when its parser refused
        # the bytes (web_protocol.RequestHandler._make_error_handler); its app is ours.
        app: Any = getattr(request, "app", None) or getattr(request, "_app", None)
        state = app.get(STATE) if app is not None else None
        if state is None:
            return
        client = str(request.remote)
        asyncio.get_running_loop().run_in_executor(None, lambda: state.audit.record(
            action="http", status=status, result="malformed-request", client=client,
            message="the HTTP parser refused the request (bad request line, a header over "
                    "the size limit or invalid bytes)"))
