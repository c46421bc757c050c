"""Configured repositories: `<config>/repos.d/<name>.json` and their trust anchors.

Layout (see `udriver.paths`):

    <config>/repos.d/<name>.json              {"name", "url", "auto_install", "ca_bundle"}
    <config>/auth.d/<name>.json               its credentials, 0600 (see `_auth`)
    <state>/repos/<name>/metadata/root.json   trusted root (python-tuf keeps it current)
    <state>/repos/<name>/targets/             verified target cache (indexes, packages)
    <state>/repos/<name>/lookup.json          answers derived from it (see `_lookup`)

Adding a repository checks the root it is given the way a TUF client would before
trusting it (TUF spec 5.2, "Load the trusted root metadata file"): it must parse as
root metadata and be signed by a threshold of its own root keys. Files are written to a
temporary name and renamed, so a half-written config is never read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .._log import getLogger
from .._record import record
from ..errors import ConfigError
from ..fsio import write_atomic
from ..paths import config_dir, state_dir
from ._auth import (
    Credentials,
    load_credentials,
    mask_secrets,
    remove_credentials,
    save_credentials,
    split_credentials,
)

if TYPE_CHECKING:  # python-tuf is imported when a root is checked, not by every command
    from tuf.api.metadata import Metadata, Root  # type: ignore[attr-defined]

__all__ = [
    "RepoConfig",
    "add_repo",
    "check_root",
    "check_url",
    "get_repo",
    "list_repos",
    "remove_repo",
    "repo_state_dir",
]

log = getLogger(__name__)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@record(frozen=True)
class RepoConfig:
    """One configured repository."""

    name: str
    """Local name, e.g. "main"."""
    url: str
    """Base URL of the static tree (metadata/ and targets/ live under it)."""
    auto_install: bool = False
    """Install drivers automatically for new devices (hotplug, `install --auto`)."""
    ca_bundle: str | None = None
    """CA bundle for HTTPS, instead of the system default."""

    def credentials(self) -> Credentials | None:
        """Its stored credentials (`<config>/auth.d/<name>.json`), or None.

        Raises:
            ConfigError: the credentials file is unreadable, malformed or not 0600.
        """
        return load_credentials(self.name)

    @property
    def display_url(self) -> str:
        """The URL as it may be shown: any password masked."""
        return mask_secrets(self.url)

    @property
    def metadata_url(self) -> str:
        return self.url.rstrip("/") + "/metadata/"

    @property
    def targets_url(self) -> str:
        return self.url.rstrip("/") + "/targets/"

    @property
    def state(self) -> Path:
        return repo_state_dir(self.name)


def _as_dict(cfg: RepoConfig) -> dict[str, object]:
    return {"name": cfg.name, "url": cfg.url, "auto_install": cfg.auto_install,
            "ca_bundle": cfg.ca_bundle}


def _repos_dir() -> Path:
    return config_dir() / "repos.d"


def repo_state_dir(name: str) -> Path:
    """`<state>/repos/<name>`."""
    return state_dir() / "repos" / name


def check_url(url: str) -> str:
    """Validate a repository base URL and return it without a trailing slash.

    Raises:
        ConfigError: not an absolute http(s) URL with a host, or has a query/fragment.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        raise ConfigError(f"Invalid repository URL ({e}): {mask_secrets(url)!r}") from e
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"Invalid repository URL (scheme must be http or https): "
                          f"{mask_secrets(url)!r}")
    if not parts.hostname:
        raise ConfigError(f"Invalid repository URL (no host): {mask_secrets(url)!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"Invalid repository URL (no query or fragment allowed): "
                          f"{mask_secrets(url)!r}")
    return url.rstrip("/")


def check_root(data: bytes, source: str) -> Metadata[Root]:
    """Parse trusted root metadata and check it is signed by its own threshold.

    Raises:
        ConfigError: not root metadata, or not self-signed by a threshold of root keys.
    """
    from tuf.api.exceptions import UnsignedMetadataError
    from tuf.api.metadata import Metadata, Root  # type: ignore[attr-defined]

    try:
        md = Metadata[Root].from_bytes(data)
    except Exception as e:  # python-tuf raises DeserializationError / ValueError / KeyError
        raise ConfigError(f"Invalid TUF root metadata ({e}): {source}") from e
    if not isinstance(md.signed, Root):
        raise ConfigError(f"Invalid TUF root metadata (role is {md.signed.type!r}): {source}")
    try:
        # TUF spec 5.2: the trusted root must be signed by a threshold of its own keys.
        md.verify_delegate(Root.type, md)
    except UnsignedMetadataError as e:
        raise ConfigError(f"Invalid TUF root metadata (not signed by its threshold of root "
                          f"keys: {e}): {source}") from e
    return md


def add_repo(name: str, url: str, root: Path, *, auto_install: bool = False,
             ca_bundle: str | None = None) -> RepoConfig:
    """Configure a repository and install its trust anchor.

    A `user:password@` in `url` is stored apart from it, 0600 (see `_auth`).

    Raises:
        ConfigError: bad name or URL, duplicate name, unreadable or invalid root,
            missing CA bundle.
    """
    if not _NAME_RE.match(name):
        raise ConfigError(f"Invalid repository name (lower-case letters, digits, `.`, `_`, "
                          f"`-`; at most 64): {name!r}")
    url, creds = split_credentials(check_url(url))
    if (_repos_dir() / f"{name}.json").exists():
        err = ConfigError(f"A repository named {name!r} is already configured")
        err.hint = f"remove it first with `udriver repo remove {name}`"
        raise err
    try:
        data = Path(root).read_bytes()
    except OSError as e:
        raise ConfigError(f"Cannot read root metadata ({e.strerror}): {str(root)!r}") from e
    check_root(data, str(root))
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise ConfigError(f"CA bundle not found: {ca_bundle!r}")
    cfg = RepoConfig(name, url, auto_install, ca_bundle)
    meta = cfg.state / "metadata"
    if cfg.state.exists():  # leftovers of a removed repo with the same name: do not trust them
        import shutil  # on use: it loads bz2 and lzma
        shutil.rmtree(cfg.state)
    meta.mkdir(parents=True)
    write_atomic(meta / "root.json", data)
    if creds is not None:
        save_credentials(name, creds)
    else:
        remove_credentials(name)  # leftovers of a removed repo with the same name
    write_atomic(_repos_dir() / f"{name}.json",
                  (json.dumps(_as_dict(cfg), sort_keys=True, indent=2) + "\n").encode())
    log.info("added repository %s at %s", name, cfg.display_url)
    return cfg


def _load(path: Path) -> RepoConfig:
    try:
        obj = json.loads(path.read_bytes())
        cfg = RepoConfig(name=obj["name"], url=check_url(obj["url"]),
                         auto_install=bool(obj.get("auto_install", False)),
                         ca_bundle=obj.get("ca_bundle"))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"Invalid repository configuration ({e}): {str(path)!r}") from e
    if cfg.name != path.stem:
        raise ConfigError(f"Invalid repository configuration (`name` {cfg.name!r} differs from "
                          f"the file name): {str(path)!r}")
    return cfg


def list_repos(*, auto_install_only: bool = False) -> list[RepoConfig]:
    """Every configured repository, ordered by name (that order is also priority).

    Args:
        auto_install_only: only those added with `--auto-install` (what hotplug may use).

    Raises:
        ConfigError: a configuration file is invalid.
    """
    d = _repos_dir()
    if not d.is_dir():
        return []
    repos = [_load(p) for p in sorted(d.glob("*.json"))]
    return [r for r in repos if r.auto_install] if auto_install_only else repos


def get_repo(name: str) -> RepoConfig:
    """The repository called `name`.

    Raises:
        ConfigError: no such repository, or its configuration is invalid.
    """
    path = _repos_dir() / f"{name}.json"
    if not _NAME_RE.match(name) or not path.exists():
        raise ConfigError(f"No repository named {name!r} is configured")
    return _load(path)


def remove_repo(name: str) -> None:
    """Forget a repository: its configuration, trusted metadata and cache.

    Raises:
        ConfigError: no such repository.
    """
    cfg = get_repo(name)
    (_repos_dir() / f"{name}.json").unlink()
    remove_credentials(name)
    import shutil  # on use: it loads bz2 and lzma
    shutil.rmtree(cfg.state, ignore_errors=True)
    log.info("removed repository %s", name)
