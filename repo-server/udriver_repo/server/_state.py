"""Configuration and per-application state of the HTTP service, and the JSON error shape."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ._audit import AuditLog
    from ._catalog import Catalog
    from ._gateway import RepoGateway

__all__ = ["STATE", "ServerConfig", "ServerState", "json_error"]

DEFAULT_MAX_UPLOAD = 256 * 1024 * 1024
"""Same as `udriver.artifacts.Limits.archive_bytes`: a bigger upload could not be read anyway."""


@dataclass(frozen=True)
class ServerConfig:
    """How the service behaves. Every field has a safe default."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    """Largest accepted upload body; bigger ones get 413."""
    shutdown_timeout: float = 30.0
    """Seconds to let in-flight requests finish after SIGTERM/SIGINT."""
    workers: int = 4
    """Worker threads for blocking repository calls."""
    pci_ids: Path | None = None
    """pci.ids file for device names on the web page; None looks in the usual places."""


@dataclass
class ServerState:
    """Everything a request handler needs, stored on the application under `STATE`."""

    repo_path: Path
    """The repository directory REPO."""
    public: Path
    """REPO/public, resolved (no symlinks): the only directory served."""
    staging: Path
    """REPO/staging: the only directory uploads are written to."""
    config: ServerConfig
    """Limits and timeouts."""
    gateway: RepoGateway
    """Door to the repository core."""
    audit: AuditLog
    """Audit table in state.db."""
    catalog: Catalog
    """What is published, read from the public tree (for the web page)."""


STATE: web.AppKey[ServerState] = web.AppKey("udriver_state", ServerState)


def json_error(status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error response: `{"error": code, "message": message, "status": status}`."""
    return web.json_response({"error": code, "message": message, "status": status},
                             status=status, headers=headers)
