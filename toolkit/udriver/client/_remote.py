"""A configured repository seen through python-tuf's `ngclient.Updater`.

Every byte that leaves this module was verified by the TUF client workflow (TUF
specification 1.0, section 5): root rotation (5.3), timestamp (5.4), snapshot (5.5),
targets and delegations (5.6), then target length and hashes (5.7). This module
owns the I/O around it and turns python-tuf's exceptions into udriver's closed set
(`_tuf.tuf_error`).

Name ownership: an index entry is acted on only once its driver and distribution names
are owned (signed `names/<name>` records) by the role that signed its index
(`check_owner`, rules in `udriver.repoformat`).

Offline mode (`--offline`) reads only the metadata cache (`_tuf.OfflineUpdater`), with a
fetcher that refuses the network. Cached metadata that has expired is refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Root, TargetFile, Targets  # type: ignore[attr-defined]
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from .._log import ready
from ..errors import DownloadError, RepositoryError, UdriverError
from ..fsio import replace_atomic
from ..repoformat import (
    NAMES_ROLE,
    RESERVED,
    IndexEntry,
    canonical_name,
    claimed_names,
    index_name,
    index_target,
    lookup_names,
    owner_problems,
    parse_index,
)
from ._config import RepoConfig
from ._fetcher import FetchOptions, HttpFetcher, OfflineFetcher, Progress
from ._lookup import Lookup, cached_index_names
from ._roles import role_vendors, signing_role
from ._tuf import OfflineUpdater, tuf_error

ready()  # python-tuf and urllib3 log through `logging`: set up the CLI's handlers

__all__ = ["RemoteRepo"]

log = logging.getLogger(__name__)

# `Updater.refresh()` is these four steps, in this order (python-tuf 2 to 7); the first
# two alone serve `refresh_timestamp`. Should a python-tuf lack them, refresh() it is.
_STEPS = all(hasattr(Updater, m) for m in ("_load_root", "_load_timestamp",
                                           "_load_snapshot", "_load_targets"))


class RemoteRepo:
    """Verified access to one configured repository.

    Args:
        config: the repository.
        offline: use only cached, unexpired metadata and cached targets.
        fetcher: injectable for tests; default `RequestsFetcher`.
        progress: download progress callback (targets only).
    """

    def __init__(self, config: RepoConfig, *, offline: bool = False,
                 fetcher: FetcherInterface | None = None, progress: Progress | None = None,
                 config_tuf: UpdaterConfig | None = None, metadata_dir: Path | None = None,
                 target_dir: Path | None = None, metadata_url: str | None = None,
                 targets_url: str | None = None) -> None:
        self.config = config
        self.offline = offline
        self.metadata_dir = metadata_dir or config.state / "metadata"
        self.target_dir = target_dir or config.state / "targets"
        self.metadata_url = metadata_url or config.metadata_url
        self.targets_url = targets_url or config.targets_url
        self._fetcher = fetcher
        self._progress = progress
        self._tuf_config = config_tuf
        self._updater: Updater | None = None
        self._pending: Updater | None = None  # being refreshed (names dates in errors)
        self._timestamped: Updater | None = None  # root and timestamp steps done
        self._owners: dict[str, str | None] = {}
        self.lookup: Lookup | None = None
        """Told each verified index answer (`_lookup`), when set."""

    @property
    def name(self) -> str:
        return self.config.name

    @contextmanager
    def _tuf(self, what: str) -> Iterator[None]:
        try:
            yield
        except UdriverError:
            raise
        except (tuf_exc.RepositoryError, tuf_exc.DownloadError) as e:
            raise tuf_error(e, self.name, self._updater or self._pending, what) from e
        except OSError as e:
            raise RepositoryError(f"repository {self.name!r}, {what}: cannot use the local "
                                  f"cache {str(self.metadata_dir.parent)!r}: {e}") from e

    def updater(self) -> Updater:
        """The (refreshed) Updater; created and refreshed on first use.

        Raises:
            RepositoryError: metadata failed verification (expired, rollback, signature).
            DownloadError: the repository could not be reached.
        """
        if self._updater is not None:
            return self._updater
        # python-tuf replaces root.json by remove-then-symlink (Updater.__init__ and root
        # rotation in refresh), so two processes sharing this cache (two devices
        # hot-plugged at once) can see it missing or collide on the symlink. Creating
        # and refreshing the Updater is therefore serialised per repository cache; the
        # other metadata writes are atomic renames and need no lock.
        with self._tuf("locking the metadata cache"), self._metadata_lock():
            if self._timestamped is not None:
                return self._finish(self._timestamped)
            return self._new_updater()

    @contextmanager
    def _metadata_lock(self) -> Iterator[None]:
        if not self.metadata_dir.is_dir():
            raise self._no_root()
        fd = os.open(self.metadata_dir.parent / ".metadata.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _no_root(self) -> RepositoryError:
        return RepositoryError(f"repository {self.name!r}: no trusted root in "
                               f"{str(self.metadata_dir)!r}; re-add the repository")

    def _new_updater(self, *, top_only: bool = False) -> Updater:
        """A new Updater over the cache, refreshed (TUF spec 5.3-5.6); with `top_only`,
        only its root and timestamp steps (5.3, 5.4): see `refresh_timestamp`."""
        with self._tuf("loading trusted root"):
            if not (self.metadata_dir / "root.json").exists():
                raise self._no_root()
            self.target_dir.mkdir(parents=True, exist_ok=True)
            if self.offline:
                cls: type[Updater] = OfflineUpdater
                fetcher: FetcherInterface = OfflineFetcher()
            else:
                cls = Updater
                fetcher = self._fetcher or HttpFetcher(
                    FetchOptions(ca_bundle=self.config.ca_bundle,
                                 auth=self.config.credentials()))
            # bootstrap=None: the cached root.json, installed by `repo add` and kept
            # current by python-tuf across root rotations, is the trust anchor.
            upd = cls(str(self.metadata_dir), self.metadata_url,
                      target_dir=str(self.target_dir), target_base_url=self.targets_url,
                      fetcher=fetcher, config=self._tuf_config, bootstrap=None)
        self._pending = upd
        with self._tuf("refreshing metadata"):
            if top_only and _STEPS and not self.offline:
                upd._load_root()
                upd._load_timestamp()
                self._timestamped, self._pending = upd, None
                return upd
            upd.refresh()
        self._updater, self._pending = upd, None
        return upd

    def _finish(self, upd: Updater) -> Updater:
        """The snapshot and targets steps (TUF spec 5.5, 5.6) of an Updater whose root
        and timestamp steps ran (`refresh_timestamp`): `Updater.refresh()`'s last two."""
        self._pending, self._timestamped = upd, None
        with self._tuf("refreshing metadata"):
            upd._load_snapshot()
            upd._load_targets(Targets.type, Root.type)
        self._updater, self._pending = upd, None
        return upd

    def refresh_timestamp(self) -> None:
        """The root and timestamp steps of the TUF client workflow (spec 5.3, 5.4): new
        roots and the timestamp from the server, verified and cached. The snapshot and
        targets steps (5.5, 5.6) follow on the first use of the updater (`updater()`).

        This is what an online command runs before it asks the derived lookup
        (`_lookup`, point 4): when nothing is new, the cached snapshot and targets are
        the bytes already verified under this very root and timestamp when the lookup
        was written, and the lookup answers without loading them again; when anything
        is new, the lookup is stale and the full path finishes the refresh.

        Raises:
            RepositoryError: metadata failed verification.
            DownloadError: the repository could not be reached.
        """
        if self._updater is not None or self._timestamped is not None:
            return
        with self._tuf("locking the metadata cache"), self._metadata_lock():
            self._new_updater(top_only=True)

    def verified_updater(self) -> Updater | None:
        """The Updater whose refresh completed in this process (None before)."""
        return self._updater

    def refresh(self) -> None:
        """Run the TUF client workflow for the top-level roles (spec 5.3-5.6).

        Raises:
            RepositoryError: metadata failed verification.
            DownloadError: the repository could not be reached.
        """
        self.updater()

    def targetinfo(self, name: str) -> TargetFile | None:
        """Signed info for target `name`, walking delegations; None if no role lists it.

        Raises:
            RepositoryError: metadata failed verification.
            DownloadError: the repository could not be reached.
        """
        upd = self.updater()
        with self._tuf(f"looking up {name}"):
            return upd.get_targetinfo(name)

    def fetch(self, name: str, info: TargetFile | None = None) -> Path:
        """Verified local copy of target `name` (from the cache when still current).

        Raises:
            RepositoryError: not in the repository, or failed verification (tampered).
            DownloadError: download failed (or not cached in offline mode).
        """
        upd = self.updater()
        info = info or self.targetinfo(name)
        if info is None:
            raise RepositoryError(f"repository {self.name!r}: no signed target {name!r}")
        local = self._local_path(name)
        with self._tuf(f"downloading {name}"):
            cached = upd.find_cached_target(info, str(local))
            if cached is not None:
                return Path(cached)
            if self.offline:
                raise DownloadError(f"repository {self.name!r}: {name} is not cached "
                                    f"(offline mode)")
            if self._progress and hasattr(upd._fetcher, "progress"):
                upd._fetcher.progress = self._progress
            # Download under a private name, then rename: another process (two devices
            # hot-plugged at once) never reads a half-written file.
            try:
                replace_atomic(local, lambda tmp: upd.download_target(info, str(tmp)))
                return local
            finally:
                if hasattr(upd._fetcher, "progress"):
                    upd._fetcher.progress = None

    def _local_path(self, name: str) -> Path:
        # Keep the target's own basename (pypa/installer reads a wheel's name and version
        # from it) under a directory per path component; never trust the name blindly.
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\0" in p
                                                   for p in parts):
            raise RepositoryError(f"repository {self.name!r}: unsafe target name {name!r}")
        return self.target_dir.joinpath(*parts)

    def signed_targetinfo(self, name: str) -> tuple[TargetFile | None, str]:
        """Signed info for target `name` and the role that listed it ("" if none).

        The walk is python-tuf's own (`Updater.get_targetinfo`, TUF spec 5.6.7: preorder
        depth-first over delegations, a terminating delegation stops backtracking), run
        over the metadata that call has just verified and cached, because python-tuf
        does not say which role listed a target; both answers must agree.

        Raises:
            RepositoryError: metadata failed verification, or the walks disagree.
            DownloadError: the repository could not be reached.
        """
        info = self.targetinfo(name)
        if info is None:
            return None, ""
        with self._tuf(f"looking up the role signing {name}"):
            role = signing_role(self.updater(), name, info)
        if role is not None:
            return info, role
        raise RepositoryError(f"repository {self.name!r}: cannot tell which role signs {name}")

    def names_enforced(self) -> bool:
        """Whether this repository records name owners (targets delegates `names`).

        Raises:
            RepositoryError, DownloadError: as for `refresh`.
        """
        dele = self.updater()._trusted_set.targets.delegations
        return dele is not None and dele.roles is not None and NAMES_ROLE in dele.roles

    def name_owner(self, name: str) -> str | None:
        """The owner role of canonical `name` from its signed record (None: no record).

        Only the verified metadata is read (the record's `custom` field); the names
        role and the one succinct bin holding `name` are fetched (TAP 15), nothing else.

        Raises:
            RepositoryError, DownloadError: as for `targetinfo`.
        """
        if name not in self._owners:
            info = self.targetinfo(f"{NAMES_ROLE}/{name}")
            custom = info.custom if info is not None else None
            owner = custom.get("owner") if isinstance(custom, dict) else None
            self._owners[name] = owner if isinstance(owner, str) and owner else None
        return self._owners[name]

    def role_vendors(self, role: str) -> list[int] | None:
        """The PCI vendors whose indexes delegated role `role` may sign (`_roles`);
        None if no role delegates it.

        Raises:
            RepositoryError, DownloadError: as for `targetinfo`.
        """
        with self._tuf(f"looking up the delegations of role {role!r}"):
            return role_vendors(self.updater(), role)

    def owner_indexes(self, name: str) -> set[str]:
        """The indexes of the PCI vendors of the role owning driver name `name` (its
        `names/` record, then `role_vendors`); empty when names are not recorded here.

        Raises:
            RepositoryError, DownloadError: as for `targetinfo`.
        """
        if not self.names_enforced():
            return set()
        owner = self.name_owner(canonical_name(name))
        vendors = self.role_vendors(owner) if owner and owner != RESERVED else None
        return {n for v in vendors or [] for n in lookup_names(v)}

    def check_owner(self, e: IndexEntry) -> None:
        """Refuse an entry whose names the role that signed it does not own (`_owners`).

        Called for each entry the client is about to act on (install, update, `find`),
        so a machine fetches the name bins of the drivers it uses, not of every entry
        of every index it reads.

        Raises:
            RepositoryError: naming the entry, the signer and the owner.
            DownloadError: the records could not be fetched.
        """
        if not self.names_enforced():
            return
        owners = {n: self.name_owner(n) for n in claimed_names(e.driver, e.package)}
        problems = owner_problems(e.publisher, owners)
        if problems:
            err = RepositoryError(
                    f"repository {self.name!r}: index/{e.index}.json (signed by "
                    f"{e.signer!r}) lists {e.driver} {e.version}, but " + "; ".join(problems)
                    + "; refusing it (a vendor may publish only under names it owns)")
            err.hint = "nothing was installed; report this to the repository's operator"
            raise err

    def index(self, index: int | str | None) -> list[IndexEntry]:
        """Entries of one index target, each knowing the role that signed it (for
        `check_owner`); [] if no role lists it.

        Args:
            index: its name ("1234/8", "1234/any", "class", "1234"), or a PCI vendor
                for the per-vendor `index/<vvvv>.json` (None: `index/class.json`).

        Raises:
            RepositoryError: verification failed or the index is malformed.
            DownloadError: download failed.
        """
        name = index if isinstance(index, str) else index_name(index)
        target = index_target(name)
        info, signer = self.signed_targetinfo(target)
        if info is None:
            if self.lookup is not None:
                self.lookup.add(name, None, "", {})
            return []
        data = self.fetch(target, info).read_bytes()
        entries = parse_index(data, name, self.name, signer)
        if self.lookup is not None:
            self.lookup.add(name, data, signer, dict(info.hashes))
        return entries

    def cached_index_names(self) -> list[str]:
        """Indexes present in the target cache, e.g. ["1234", "1234/8"] (text search)."""
        return cached_index_names(self.target_dir)

