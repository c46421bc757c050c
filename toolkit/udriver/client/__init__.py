"""The udriver client: repositories, TUF-verified fetching, resolution, install.

Modules (private unless named here):

    _config     repository configuration and trust anchors
    _fetcher    python-tuf FetcherInterface over urllib3
    _remote     one repository through ngclient.Updater (online and offline)
    _lookup     verified index answers kept for the next run (read without python-tuf)
    _fresh      online: is the server's timestamp still the cached one? (no python-tuf)
    _rawhttp    the one GET `_fresh` makes, over a plain socket; proxy_for, ca_bundle
    (the index format, shards and name ownership: `udriver.repoformat`)
    resolve     device -> driver version (pure)
    _verify     package ID table vs index entry and devices (pure)
    _store      per-version install dirs, atomic `current`, rollback
    _inventory  which installed driver (store or .deb) claims a device
    (per-device status records: `udriver._devstate`, re-exported here)
    _client     the operations joining them, and `annotate()`
    conformance the TUF conformance suite's client-under-test CLI
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .._devstate import clear_status as clear_status
    from .._devstate import read_status as read_status
    from .._devstate import record_status as record_status
    from ..repoformat import IndexEntry as IndexEntry
    from ._annotate import annotate as annotate
    from ._auth import MaskingFilter as MaskingFilter
    from ._auth import mask_secrets as mask_secrets
    from ._client import Client as Client
    from ._config import RepoConfig as RepoConfig
    from ._config import add_repo as add_repo
    from ._config import get_repo as get_repo
    from ._config import list_repos as list_repos
    from ._config import remove_repo as remove_repo
    from ._devices import local_devices as local_devices
    from ._fetcher import FetchOptions as FetchOptions
    from ._fetcher import HttpFetcher as HttpFetcher
    from ._fetcher import RequestsFetcher as RequestsFetcher
    from ._history import read_history as read_history
    from ._history import set_reason as set_reason
    from ._inventory import find_installed as find_installed
    from ._inventory import installed_manifests as installed_manifests
    from ._remote import RemoteRepo as RemoteRepo
    from ._results import InstallResult as InstallResult
    from ._spec import is_device_query as is_device_query
    from ._store import DriverStore as DriverStore
    from ._store import InstalledDriver as InstalledDriver
    from ._upload import read_token as read_token
    from ._upload import upload as upload

# Imported on first use: python-tuf (and securesystemslib's signer back-ends) take a
# noticeable fraction of a second to import, which `udriver status` or the supervisor
# should not pay.
_LAZY = {
    "IndexEntry": "..repoformat",
    "Client": "_client", "InstallResult": "_results", "annotate": "_annotate",
    "RepoConfig": "_config", "add_repo": "_config", "get_repo": "_config",
    "list_repos": "_config", "remove_repo": "_config",
    "local_devices": "_devices", "is_device_query": "_spec", "RemoteRepo": "_remote", "mask_secrets": "_auth",
    "FetchOptions": "_fetcher", "HttpFetcher": "_fetcher", "RequestsFetcher": "_fetcher",
    "find_installed": "_inventory", "installed_manifests": "_inventory",
    "record_status": ".._devstate", "read_status": ".._devstate", "clear_status": ".._devstate",
    "DriverStore": "_store", "InstalledDriver": "_store",
    "MaskingFilter": "_auth", "read_history": "_history", "set_reason": "_history",
    "read_token": "_upload", "upload": "_upload",
}

__all__ = [
    "Client", "DriverStore", "FetchOptions", "HttpFetcher", "IndexEntry", "InstallResult", "InstalledDriver",
    "MaskingFilter", "RemoteRepo", "RepoConfig", "RequestsFetcher", "add_repo", "annotate", "clear_status",
    "find_installed", "get_repo", "installed_manifests", "is_device_query", "list_repos",
    "local_devices", "mask_secrets", "read_history", "read_status", "read_token",
    "record_status", "remove_repo", "set_reason", "upload",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
