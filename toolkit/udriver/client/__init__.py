"""The udriver client: repositories, TUF-verified fetching, resolution, install.

Modules (private unless named here):

    _config     repository configuration and trust anchors
    _fetcher    python-tuf FetcherInterface over requests
    _remote     one repository through ngclient.Updater (online and offline)
    _index      per-vendor driver indexes (pure)
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
    from ._client import Client, InstallResult, annotate
    from ._config import RepoConfig, add_repo, get_repo, list_repos, remove_repo
    from ._devices import local_devices
    from ._index import IndexEntry
    from ._remote import RemoteRepo
    from ._status import clear_status, read_status, record_status
    from ._store import DriverStore, InstalledDriver

# Imported on first use: python-tuf (and securesystemslib's signer back-ends) take a
# noticeable fraction of a second to import, which `udriver status` or the supervisor
# should not pay.
_LAZY = {
    "Client": "_client", "InstallResult": "_client", "annotate": "_client",
    "RepoConfig": "_config", "add_repo": "_config", "get_repo": "_config",
    "list_repos": "_config", "remove_repo": "_config",
    "local_devices": "_devices", "IndexEntry": "_index", "RemoteRepo": "_remote",
    "record_status": "_status", "read_status": "_status", "clear_status": "_status",
    "DriverStore": "_store", "InstalledDriver": "_store",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
