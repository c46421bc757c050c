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
- aiohttp logs such a refusal on `aiohttp.server` at ERROR with the exception, whose
  message quotes the offending line, e.g. the first 8 KiB of an over-long
  `Authorization: Bearer ...`: `RedactParserErrors` replaces that record by one line
  naming the client and the kind of error, without the bytes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .._audit import escape_text

__all__ = ["AccessLogger", "RedactParserErrors", "log_line"]


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
    """aiohttp access logger writing `log_line`; audits requests the parser refused.

    aiohttp builds it from `(logger, log_format)` only; `bound(state)` makes the subclass
    that knows the server's state (a refused request has no route, so no `request.app`).
    """

    _state: Any = None

    @classmethod
    def bound(cls, state: Any) -> type[AccessLogger]:
        """A subclass whose audit rows go to `state.audit`."""
        return type("BoundAccessLogger", (cls,), {"_state": state})

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
        # the bytes (web_protocol.RequestHandler._make_error_handler).
        state = self._state
        if state is None:
            return
        client = str(request.remote)
        asyncio.get_running_loop().run_in_executor(None, lambda: state.audit.record(
            action="http", status=status, result="malformed-request", client=client,
            message="the HTTP parser refused the request (bad request line, a header over "
                    "the size limit or invalid bytes)"))


class RedactParserErrors(logging.Filter):
    """Filter for `aiohttp.server`: an HTTP parser error is logged without its bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a record carrying an `HttpProcessingError`; pass every other record."""
        from aiohttp.http_exceptions import HttpProcessingError
        try:
            exc = record.exc_info[1] if record.exc_info else None
            if isinstance(exc, HttpProcessingError):
                args = (escape_text(record.getMessage()), type(exc).__name__,
                        getattr(exc, "code", 400))
                record.msg, record.args = "%s (%s %s; the offending bytes are not logged)", args
                record.exc_info = None
                record.exc_text = None
                record.levelno, record.levelname = logging.INFO, "INFO"
        except Exception:  # noqa: BLE001 - a filter must never fail the request being answered
            record.msg, record.args, record.exc_info = "(unloggable parser error)", (), None
        return True
