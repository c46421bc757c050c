"""Connection limits aiohttp does not enforce by itself, and per-vendor upload slots.

Rules:
- **Header timeout.** A connection must deliver a complete request head within
  `ServerConfig.header_timeout` seconds of being accepted, else it is closed (and audited
  as `header-timeout`). aiohttp 3.8 (Debian 12) has no such timer: a client that sends
  half a request line and waits keeps the connection, and its buffers, for ever. Each
  accepted connection's protocol is wrapped (`_Guarded`) with a timer that the first
  request's handler cancels (the `_mark` middleware). For every later request on a
  keep-alive connection aiohttp's own `keepalive_timeout`, set to the same value, closes
  a connection that has not delivered the next complete head that long after the
  previous response was sent (both aiohttp 3.8 and 3.9+ count a half-received head as
  idle).
- **Body timeouts** are the upload handler's (`_upload._receive`): a gap between two
  chunks over `body_timeout`, or a whole body over `upload_timeout`, ends the upload.
  Bodies the application does not read are drained by aiohttp for at most its
  `lingering_time` (10 s), then the connection is closed.
- **Upload slots.** A vendor may have at most `ServerConfig.vendor_uploads` uploads in
  progress (body being received or being published); one more gets 429 with
  `Retry-After` (RFC 6585 section 4) before anything is written to staging.
- Only the public API of asyncio (a protocol wrapper) and of aiohttp (`AppRunner.server`
  is the protocol factory every site uses) is relied on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._access import AccessLogger, RedactParserErrors
from ._state import STATE, ServerState, app_key

__all__ = ["GUARDS", "GuardedRunner", "mark_request"]

_log = logging.getLogger(__name__)

GUARDS: Any = app_key("udriver_guards", dict)
"""App key: transport -> its `_Guarded` protocol, while the connection is open."""


class _Guarded(asyncio.Protocol):
    """Passes every event to aiohttp's protocol; closes the transport if no request has
    started `timeout` seconds after the connection was accepted."""

    def __init__(self, inner: Any, state: ServerState, registry: dict[Any, _Guarded]) -> None:
        self._inner = inner
        self._state = state
        self._registry = registry
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._registry[transport] = self
        self._timer = asyncio.get_running_loop().call_later(
            self._state.config.header_timeout, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._registry.pop(self._transport, None)
        self._inner.connection_lost(exc)

    def request_started(self) -> None:
        """A complete request head arrived and its handler runs: the timer is done."""
        self.started = True
        self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if self.started or transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        timeout = self._state.config.header_timeout
        _log.info("closing %s: no complete request head within %g s", client, timeout)
        transport.close()
        asyncio.get_running_loop().run_in_executor(None, lambda: self._state.audit.record(
            action="connect", status=408, result="header-timeout", client=client,
            message=f"no complete request head within {timeout:g} s; connection closed"))


class _Factory:
    """aiohttp's `web.Server` (the protocol factory), each protocol wrapped in `_Guarded`.
    Everything else (`shutdown`, `connections`...) is the wrapped server's."""

    def __init__(self, server: web.Server, state: ServerState,
                 registry: dict[Any, _Guarded]) -> None:
        self._server, self._state, self._registry = server, state, registry

    def __call__(self) -> _Guarded:
        return _Guarded(self._server(), self._state, self._registry)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class GuardedRunner(web.AppRunner):
    """`web.AppRunner` for an app of `create_app`: header timeout, keep-alive timeout,
    the escaping access log (`_access.AccessLogger`, which never logs a query string)."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        """Args:
            app: an application made by `create_app` (its config gives the timeouts).
            **kwargs: passed to `web.AppRunner` (e.g. `shutdown_timeout`).
        """
        state: ServerState = app[STATE]
        kwargs.setdefault("keepalive_timeout", state.config.header_timeout)
        kwargs.setdefault("access_log_class", AccessLogger.bound(state))
        kwargs.setdefault("access_log", logging.getLogger("udriver_repo.server.access"))
        super().__init__(app, handle_signals=False, **kwargs)
        server_log = logging.getLogger("aiohttp.server")
        if not any(isinstance(f, RedactParserErrors) for f in server_log.filters):
            server_log.addFilter(RedactParserErrors())
        self._udriver_state = state
        self._udriver_registry: dict[Any, _Guarded] = app[GUARDS]

    @property
    def server(self) -> Any:
        """The protocol factory sites listen with (wrapped); None before `setup()`."""
        inner = super().server
        return None if inner is None else _Factory(inner, self._udriver_state,
                                                   self._udriver_registry)


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def mark_request(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Middleware: tell the connection's guard that a request head was complete."""
    guard = request.app[GUARDS].get(request.transport)
    if guard is not None:
        guard.request_started()
    return await handler(request)
