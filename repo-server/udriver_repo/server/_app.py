"""The aiohttp application: routes, error shape, start-up and graceful shutdown.

Routes:
    GET/HEAD  /<path>                      REPO/public, read-only (`_static`)
    GET       /ui/                         the read-only web page (`_web`)
    PUT/POST  /api/v1/packages/<filename>  upload and publish (`_upload`)
    GET       /api/v1/health               `{"status": "ok"}`

Start-up order: open the repository (RepositoryError if REPO is not one), create
REPO/staging (0700) and remove upload directories a previous crash left there, create the
audit table, then bind. Shutdown (SIGTERM or SIGINT, via `aiohttp.web.run_app`): stop
accepting connections, let in-flight requests finish for up to `shutdown_timeout`
seconds, wait for running publishes, return normally (exit status 0).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from udriver.errors import RepositoryError

from ._audit import AuditLog
from ._catalog import Catalog
from ._gateway import RepoGateway, RepositoryLike, _default_factory
from ._pciids import PciNames
from ._state import STATE, ServerConfig, ServerState, json_error
from ._static import handle_static
from ._upload import UPLOAD_PATH, expect_upload, handle_upload
from ._web import NAMES, handle_ui

__all__ = ["create_app", "serve"]

_log = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    except Exception:
        _log.exception("unhandled error for %s %s", request.method, request.path)
        return json_error(500, "internal-error", "internal server error (see the server log)")


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _to_ui(request: web.Request) -> web.StreamResponse:
    if request.match_info.get("path", "") == "":
        raise web.HTTPFound("/ui/")
    return await handle_static(request)


async def _cleanup(app: web.Application) -> None:
    app[STATE].gateway.close()


def _clean_staging(staging: Path) -> None:
    for stale in staging.glob("upload-*"):
        _log.warning("removing upload left over from an earlier run: %s", stale)
        shutil.rmtree(stale, ignore_errors=True)


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
    probe = factory(repo)  # RepositoryError if REPO is not a repository
    close = getattr(probe, "close", None)
    if callable(close):
        close()
    public = repo / "public"
    if not public.is_dir():
        raise RepositoryError(f"not a repository: {repo} has no `public/` directory "
                              "(create one with `udriver-repo init`)")
    staging = repo / "staging"
    try:
        staging.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        raise RepositoryError(f"cannot create {staging}: {e.strerror}") from e
    _clean_staging(staging)
    state = ServerState(
        repo_path=repo, public=public.resolve(), staging=staging, config=config,
        gateway=RepoGateway(repo, factory, workers=config.workers),
        audit=AuditLog(repo / "state.db"), catalog=Catalog(public.resolve()))
    app = web.Application(middlewares=[_errors])
    app[STATE] = state
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


def serve(repo_path: str | Path, host: str = "127.0.0.1", port: int = 8080,
          config: ServerConfig | None = None) -> None:
    """Serve a repository until SIGTERM or SIGINT, then shut down gracefully.

    Listens on 127.0.0.1 by default; put nginx or a CDN in front for anything public
    (docs/serving.md). Returns normally after a graceful shutdown.

    Raises:
        RepositoryError: REPO is not a repository.
        OSError: the address cannot be bound.
    """
    config = config or ServerConfig()
    app = create_app(repo_path, config)
    _log.info("serving %s on http://%s:%d/ (uploads up to %d bytes)", repo_path, host, port,
              config.max_upload_bytes)
    web.run_app(app, host=host, port=port, print=None,
                shutdown_timeout=config.shutdown_timeout, handle_signals=True,
                access_log=logging.getLogger("udriver_repo.server.access"))
    _log.info("server stopped")
