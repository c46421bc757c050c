"""Configuration and per-application state of the HTTP service, and the JSON error shape."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from udriver.errors import ConfigError

if TYPE_CHECKING:
    from .._audit import AuditLog
    from ._catalog import Catalog
    from ._gateway import RepoGateway

__all__ = ["ENV", "STATE", "ServerConfig", "ServerState", "UploadSlots", "app_key", "json_error"]

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
    header_timeout: float = 20.0
    """Seconds a connection may take to send a complete request head (from being
    accepted, or from the end of the previous response on a keep-alive connection)."""
    body_timeout: float = 30.0
    """Seconds an upload body may pause between two chunks."""
    upload_timeout: float = 600.0
    """Seconds a whole upload body may take (256 MiB at 0.45 MiB/s)."""
    vendor_uploads: int = 4
    """Uploads one vendor may have in progress at once; one more gets 429."""

    def __post_init__(self) -> None:
        """Raises:
            ConfigError: a limit or timeout is not a positive number.
        """
        for field in ("max_upload_bytes", "shutdown_timeout", "workers", "header_timeout",
                      "body_timeout", "upload_timeout", "vendor_uploads"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"`{field}` must be a positive number, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: object) -> ServerConfig:
        """Defaults overridden by the environment, then by `overrides` that are not None
        (the `udriver-repo serve` options); `serve()` uses this when given no config.

        Variables (see `ENV`): `UDRIVER_REPO_MAX_UPLOAD` (bytes),
        `UDRIVER_REPO_SHUTDOWN_TIMEOUT`, `UDRIVER_REPO_HEADER_TIMEOUT`,
        `UDRIVER_REPO_BODY_TIMEOUT`, `UDRIVER_REPO_UPLOAD_TIMEOUT` (seconds),
        `UDRIVER_REPO_WORKERS`, `UDRIVER_REPO_VENDOR_UPLOADS` (counts) and
        `UDRIVER_REPO_PCI_IDS` (a path).

        Raises:
            ConfigError: a variable or override is set to something that is not a
                positive number.
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        for var, (field, kind) in ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                value = kind(raw)
            except ValueError:
                value = 0
            if value <= 0:
                raise ConfigError(f"`{var}` must be a positive {kind.__name__}, got {raw!r}")
            kwargs[field] = value
        if env.get("UDRIVER_REPO_PCI_IDS"):
            kwargs["pci_ids"] = Path(env["UDRIVER_REPO_PCI_IDS"])
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kwargs)  # type: ignore[arg-type]


ENV: dict[str, tuple[str, type[int | float]]] = {
    "UDRIVER_REPO_MAX_UPLOAD": ("max_upload_bytes", int),
    "UDRIVER_REPO_SHUTDOWN_TIMEOUT": ("shutdown_timeout", float),
    "UDRIVER_REPO_WORKERS": ("workers", int),
    "UDRIVER_REPO_HEADER_TIMEOUT": ("header_timeout", float),
    "UDRIVER_REPO_BODY_TIMEOUT": ("body_timeout", float),
    "UDRIVER_REPO_UPLOAD_TIMEOUT": ("upload_timeout", float),
    "UDRIVER_REPO_VENDOR_UPLOADS": ("vendor_uploads", int),
}
"""Environment variable -> (`ServerConfig` field, type)."""


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
    slots: UploadSlots
    """Uploads in progress per vendor."""


def app_key(name: str, kind: type) -> Any:
    """`web.AppKey(name, kind)` where aiohttp has it (3.9+), else the plain string `name`:
    Debian 12 ships aiohttp 3.8 (python3-aiohttp), which the .deb depends on."""
    return web.AppKey(name, kind) if hasattr(web, "AppKey") else name


STATE: Any = app_key("udriver_state", ServerState)


def json_error(status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
    """A JSON error response: `{"error": code, "message": message, "status": status}`."""
    return web.json_response({"error": code, "message": message, "status": status},
                             status=status, headers=headers)


class UploadSlots:
    """How many uploads each vendor has in progress (event-loop thread only)."""

    def __init__(self, per_vendor: int) -> None:
        """Args:
            per_vendor: uploads a vendor may have in progress at once.
        """
        self.per_vendor = per_vendor
        self._busy: Counter[str] = Counter()

    def in_use(self, vendor: str) -> int:
        """Uploads `vendor` has in progress."""
        return self._busy[vendor]

    def acquire(self, vendor: str) -> bool:
        """Take a slot for `vendor`; False if all of its slots are taken."""
        if self._busy[vendor] >= self.per_vendor:
            return False
        self._busy[vendor] += 1
        return True

    def release(self, vendor: str) -> None:
        """Give back a slot taken by `acquire`."""
        self._busy[vendor] -= 1
        if self._busy[vendor] <= 0:
            del self._busy[vendor]
