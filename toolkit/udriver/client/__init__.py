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

from ._client import Client, InstallResult, annotate
from ._config import RepoConfig, add_repo, get_repo, list_repos, remove_repo
from ._devices import local_devices
from ._index import IndexEntry
from ._remote import RemoteRepo
from ._status import clear_status, read_status, record_status
from ._store import DriverStore, InstalledDriver

__all__ = [
    "Client", "InstallResult", "annotate",
    "RepoConfig", "add_repo", "get_repo", "list_repos", "remove_repo",
    "local_devices", "IndexEntry", "RemoteRepo",
    "record_status", "read_status", "clear_status",
    "DriverStore", "InstalledDriver",
]
