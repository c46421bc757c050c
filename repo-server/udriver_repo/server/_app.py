"""The aiohttp application: routes, error shape, start-up and graceful shutdown.

Routes:
    GET/HEAD  /<path>                      REPO/public, read-only (`_static`)
    GET       /ui/                         the read-only web page (`_web`)
    PUT/POST  /api/v1/packages/<filename>  upload and publish (`_upload`)
    GET       /api/v1/health               `{"status": "ok"}`

Start-up order: open the repository (RepositoryError if REPO is not one), create
REPO/staging (0700) and remove upload directories a previous crash left there, create the
audit table and make state.db (and its -wal/-shm) 0600, then bind. Run it with `GuardedRunner` (as `serve` does): that adds the
header timeout, the keep-alive timeout and the escaping access log (`_guard`, `_access`).

Shutdown on SIGTERM or SIGINT, in this order:
1. close the listening socket (new connections are refused);
2. wait up to `shutdown_timeout` seconds for every request in flight to finish, including
   uploads whose body is still arriving (a middleware counts them);
3. `AppRunner.cleanup()`: close idle keep-alive connections, wait for the publish worker
   threads, run on_cleanup;
4. return normally, so `udriver-repo serve` exits 0.
(We do not use `aiohttp.web.run_app` for this: its shutdown stops reading request bodies
at once, which would fail an upload that is half-way through.)
"""

from __future__ import annotations

import asyncio
import errno
import functools
import inspect
import logging
import shutil
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from udriver.errors import ConfigError, RepositoryError

from .._audit import AuditLog
from ._catalog import Catalog
from ._gateway import RepoGateway, RepositoryLike, _default_factory
from ._guard import GUARDS, GuardedRunner, mark_request
from ._pciids import PciNames
from ._request import Reject, refuse_query
from ._state import STATE, ServerConfig, ServerState, UploadSlots, app_key, json_error
from ._static import handle_static
from ._upload import UPLOAD_PATH, expect_upload, handle_upload
from ._web import NAMES, handle_ui

__all__ = ["GuardedRunner", "create_app", "serve"]

_log = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _query_tokens(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """A token in a URL is refused on every path (RFC 6750 section 5.3: URLs get logged);
    the upload handler refuses any query string itself, with its own audit row."""
    if request.query_string and request.match_info.handler is not handle_upload:
        try:
            refuse_query(request.query, request.query_string)
        except Reject as r:
            if r.code == "token-in-query":
                state: ServerState = request.app[STATE]
                await asyncio.get_running_loop().run_in_executor(None, functools.partial(
                    state.audit.record, action="request", status=r.status, result=r.code,
                    client=request.remote, filename=request.path[:200], message=r.message))
                return json_error(r.status, r.code, r.message)
    return await handler(request)


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """API errors are JSON; nothing unexpected leaks a traceback to the client."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if request.path.startswith("/api/") and e.status >= 400:
            return json_error(e.status, e.reason.lower().replace(" ", "-"), e.reason,
                              headers={k: v for k, v in e.headers.items() if k == "Allow"})
        raise
    except Exception:  # noqa: BLE001 - the one place that turns any bug into a 500
        _log.exception("unhandled error for %s %s", request.method, request.path)
        return json_error(500, "internal-error", "internal server error (see the server log)")


class _InFlight:
    """Counts requests being handled; `idle()` waits until there are none."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False


_INFLIGHT: Any = app_key("udriver_inflight", _InFlight)


@web.middleware
async def _count(request: web.Request, handler: _Handler) -> web.StreamResponse:
    tracker: _InFlight = request.app[_INFLIGHT]
    tracker.enter()
    try:
        return await handler(request)
    finally:
        tracker.leave()


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _to_ui(request: web.Request) -> web.StreamResponse:
    if request.match_info.get("path", "") == "":
        raise web.HTTPFound("/ui/")
    return await handle_static(request)


async def _cleanup(app: web.Application) -> None:
    state: ServerState = app[STATE]
    state.gateway.close()


def _clean_staging(staging: Path) -> None:
    for stale in staging.glob("upload-*"):
        _log.warning("removing upload left over from an earlier run: %s", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _private_db(db: Path) -> None:
    """state.db (token digests, audit log) and its WAL files 0600, also in a repository
    made before `udriver-repo init` created it so."""
    for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        try:
            if f.exists() and f.stat().st_mode & 0o077:
                _log.warning("%s was readable by others (mode %o): now 0600", f,
                             f.stat().st_mode & 0o777)
                f.chmod(0o600)
        except OSError as e:
            _log.warning("cannot make %s private (0600): %s", f, e.strerror)


def create_app(repo_path: str | Path, config: ServerConfig | None = None, *,
               repo_factory: Callable[[Path], RepositoryLike] | None = None) -> web.Application:
    """Build the application for one repository directory.

    Args:
        repo_path: the repository directory REPO (made by `udriver-repo init`).
        config: limits and timeouts; defaults are safe.
        repo_factory: how to open the repository (default `Repository.open`); tests of the
            HTTP layer alone may pass a fake.

    Raises:
        RepositoryError: REPO is not a repository, or staging/state.db cannot be written.
    """
    config = config or ServerConfig()
    repo = Path(repo_path)
    factory = repo_factory or _default_factory
    factory(repo).close()  # RepositoryError if REPO is not a repository
    public = repo / "public"
    if not public.is_dir():
        raise RepositoryError(f"not a repository: {repo} has no `public/` directory "
                              "(create one with `udriver-repo init`)")
    staging = repo / "staging"
    try:
        staging.mkdir(mode=0o700, exist_ok=True)
        staging.chmod(0o700)  # uploads are private until published
    except OSError as e:
        raise RepositoryError(f"cannot create {staging}: {e.strerror}") from e
    _clean_staging(staging)
    audit = AuditLog(repo / "state.db")
    _private_db(repo / "state.db")
    state = ServerState(
        repo_path=repo, public=public.resolve(), staging=staging, config=config,
        gateway=RepoGateway(repo, factory, workers=config.workers),
        audit=audit, catalog=Catalog(public.resolve()),
        slots=UploadSlots(config.vendor_uploads))
    app = web.Application(middlewares=[mark_request, _count, _errors, _query_tokens])
    app[STATE] = state
    app[GUARDS] = {}
    app[_INFLIGHT] = _InFlight()
    app[NAMES] = PciNames(config.pci_ids)
    app.router.add_route("PUT", UPLOAD_PATH, handle_upload, expect_handler=expect_upload)
    app.router.add_route("POST", UPLOAD_PATH, handle_upload, expect_handler=expect_upload)
    app.router.add_get("/api/v1/health", _health)
    app.router.add_get("/ui/", handle_ui)
    app.router.add_get("/ui", _to_ui_slash)
    app.router.add_get("/{path:.*}", _to_ui)
    app.on_cleanup.append(_cleanup)
    return app


async def _to_ui_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/ui/")


async def _run(app: web.Application, host: str, port: int, config: ServerConfig,
               on_ready: Callable[[str], None] | None = None) -> None:
    # aiohttp >= 3.9 takes shutdown_timeout on the runner, 3.8 (Debian 12) on the site.
    timeout: dict[str, Any] = {"shutdown_timeout": config.shutdown_timeout}
    on_runner = "shutdown_timeout" in inspect.signature(web.BaseRunner.__init__).parameters
    runner = GuardedRunner(app, **(timeout if on_runner else {}))
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, **({} if on_runner else timeout))
        try:
            await site.start()
        except OSError as e:
            reason = (e.strerror or str(e)).split(": ")[-1]
            err = ConfigError(f"cannot listen on {host}:{port}: {reason}")
            err.hint = ("another program uses that port: choose another with --port "
                        "(--port 0 takes a free one and prints it)"
                        if e.errno == errno.EADDRINUSE else
                        "check --host (an address of this machine) and --port")
            raise err from e
        if on_ready is not None:
            addr = runner.addresses[0]
            shown = f"[{addr[0]}]" if ":" in str(addr[0]) else str(addr[0])
            on_ready(f"http://{shown}:{addr[1]}/")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        _log.info("serving %s on http://%s:%d/ (uploads up to %d bytes, %d per vendor at "
                  "once; header timeout %g s, body pause %g s, upload %g s)",
                  app[STATE].repo_path, host, port, config.max_upload_bytes,
                  config.vendor_uploads, config.header_timeout, config.body_timeout,
                  config.upload_timeout)
        await stop.wait()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        tracker: _InFlight = app[_INFLIGHT]
        _log.info("shutting down: %d request(s) in flight", tracker.count)
        # 1. refuse new connections (and nothing else yet)
        if on_runner:  # aiohttp >= 3.9: BaseSite.stop() only closes the listening socket
            await site.stop()
        else:  # 3.8: BaseSite.stop() would also shut the connections; close the listener
            listener = getattr(site, "_server", None)
            if listener is not None:
                listener.close()
        if not await tracker.idle(config.shutdown_timeout):  # 2. let requests finish
            _log.warning("%d request(s) still running after %.0f s; closing them",
                         tracker.count, config.shutdown_timeout)
    finally:
        await runner.cleanup()  # 3. idle connections, worker threads, on_cleanup


def serve(repo_path: str | Path, host: str = "127.0.0.1", port: int = 8080,
          config: ServerConfig | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve a repository until SIGTERM or SIGINT, then shut down gracefully.

    Listens on 127.0.0.1 by default; put nginx or a CDN in front for anything public
    (docs/serving.md). Returns normally after a graceful shutdown (see the module
    docstring for the order of operations).

    Args:
        repo_path: the repository directory REPO.
        host: address to bind (loopback by default).
        port: TCP port.
        config: limits and timeouts; None reads `ServerConfig.from_env()`.
        on_ready: called with the base URL once the server listens (port 0: the port
            the kernel chose).

    Raises:
        RepositoryError: REPO is not a repository.
        ConfigError: a `UDRIVER_REPO_*` variable is invalid, or the address cannot be
            bound (in use, not an address of this machine).
    """
    config = config or ServerConfig.from_env()
    app = create_app(repo_path, config)
    asyncio.run(_run(app, host, port, config, on_ready))
    _log.info("server stopped")
