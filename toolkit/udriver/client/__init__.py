"""The udriver client: repositories, TUF-verified fetching, resolution, install.

Modules (private unless named here):

    _config     repository configuration and trust anchors
    _fetcher    python-tuf FetcherInterface over urllib3
    _remote     one repository through ngclient.Updater (online and offline)
    _lookup     verified index answers kept for the next run (read without python-tuf)
    (the index format, shards and name ownership: `udriver.repoformat`)
    resolve     device -> driver version (pure)
    _verify     package ID table vs index entry and devices (pure)
    _store      per-version install dirs, atomic `current`, rollback
    _status     per-device status records for the supervisor
    _client     the operations joining them, and `annotate()`
    conformance the TUF conformance suite's client-under-test CLI
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..repoformat import IndexEntry as IndexEntry
    from ._annotate import annotate as annotate
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
    from ._remote import RemoteRepo as RemoteRepo
    from ._results import InstallResult as InstallResult
    from ._status import clear_status as clear_status
    from ._status import read_status as read_status
    from ._status import record_status as record_status
    from ._store import DriverStore as DriverStore
    from ._store import InstalledDriver as InstalledDriver

# Imported on first use: python-tuf (and securesystemslib's signer back-ends) take a
# noticeable fraction of a second to import, which `udriver status` or the supervisor
# should not pay.
_LAZY = {
    "IndexEntry": "..repoformat",
    "Client": "_client", "InstallResult": "_results", "annotate": "_annotate",
    "RepoConfig": "_config", "add_repo": "_config", "get_repo": "_config",
    "list_repos": "_config", "remove_repo": "_config",
    "local_devices": "_devices", "RemoteRepo": "_remote", "mask_secrets": "_auth",
    "FetchOptions": "_fetcher", "HttpFetcher": "_fetcher", "RequestsFetcher": "_fetcher",
    "record_status": "_status", "read_status": "_status", "clear_status": "_status",
    "DriverStore": "_store", "InstalledDriver": "_store",
}

__all__ = [
    "Client", "DriverStore", "FetchOptions", "HttpFetcher", "IndexEntry", "InstallResult", "InstalledDriver",
    "RemoteRepo", "RepoConfig", "RequestsFetcher", "add_repo", "annotate", "clear_status",
    "get_repo", "list_repos", "local_devices", "mask_secrets", "read_status", "record_status",
    "remove_repo",
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    full = f"{__package__.rpartition('.')[0]}.{mod[2:]}" if mod.startswith("..") \
        else f"{__name__}.{mod}"
    value = getattr(importlib.import_module(full), name)
    globals()[name] = value
    return value
