"""A configured repository seen through python-tuf's `ngclient.Updater`.

Every byte that leaves this module was verified by the TUF client workflow (TUF
specification 1.0, section 5): root rotation (5.3), timestamp (5.4), snapshot (5.5),
targets and delegations (5.6), then target length and hashes (5.7). This module
owns the I/O around it and turns python-tuf's exceptions into udriver's closed set:

    ExpiredMetadataError       -> RepositoryError "expired <role> metadata (expired <date>)"
    BadVersionNumberError      -> RepositoryError "rollback attack: ..."
    UnsignedMetadataError      -> RepositoryError "bad signature: ..."
    LengthOrHashMismatchError  -> RepositoryError "... does not match its signed hash ..."
    DownloadHTTPError/others   -> DownloadError

Name ownership: an index entry is acted on only once its driver and distribution names
are owned (signed `names/<name>` records) by the role that signed its index
(`check_owner`, rules in `_owners`).

Offline mode (`--offline`): python-tuf 7 has no offline switch, so `_OfflineUpdater`
replaces `refresh()` by loading the cached top-level metadata through the same
`TrustedMetadataSet` (signatures, versions and expiry are checked exactly as online),
with a fetcher that refuses the network. Cached metadata that has expired is refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tuf.api import exceptions as tuf_exc
from tuf.api.metadata import Root, TargetFile, Targets, Timestamp  # type: ignore[attr-defined]
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from ..errors import DownloadError, RepositoryError, UdriverError
from ._config import RepoConfig
from ._fetcher import FetchOptions, OfflineFetcher, Progress, RequestsFetcher
from ._index import IndexEntry, index_name, index_target, parse_index
from ._owners import claimed_names, owner_problems

NAMES_ROLE = "names"
"""The role top-level targets delegates `names/*` to (name ownership, see `_owners`)."""

__all__ = ["RemoteRepo", "tuf_error"]

log = logging.getLogger(__name__)
_EXPIRED_RE = re.compile(r"(root|timestamp|snapshot|targets|[\w.-]+?)(?:\.json)? is expired")


class _OfflineUpdater(Updater):
    """An Updater whose refresh reads only the metadata cache (see module docstring)."""

    def refresh(self) -> None:
        # 5.3: newer roots only from root_history/ (the OfflineFetcher answers 404).
        self._load_root()
        # 5.4: the cached timestamp must verify AND be unexpired; online, an expired
        # local timestamp is only used for rollback protection of the new one.
        try:
            data = self._load_local_metadata(Timestamp.type)
        except OSError as e:
            raise tuf_exc.DownloadError("offline: no cached timestamp metadata; "
                                        "run once without --offline") from e
        self._trusted_set.update_timestamp(data)
        # 5.5 and 5.6: python-tuf uses the local copies when they are valid as final;
        # if not, it would fetch, and the OfflineFetcher refuses.
        self._load_snapshot()
        self._load_targets(Targets.type, Root.type)


def _role_expiry(updater: Updater | None, role: str) -> str:
    if updater is None or role not in ("root", "timestamp", "snapshot", "targets"):
        return ""
    ts = updater._trusted_set
    try:
        md = ts[role]  # the set keeps an expired role it refused as final (TUF 5.4.4)
    except KeyError:
        return ""
    return md.expires.strftime("%Y-%m-%dT%H:%M:%SZ")


def tuf_error(e: Exception, repo: str, updater: Updater | None = None,
              what: str = "") -> UdriverError:
    """Translate a python-tuf exception into a udriver error with a clear message."""
    where = f"repository {repo!r}" + (f", {what}" if what else "")
    if isinstance(e, tuf_exc.ExpiredMetadataError):
        m = _EXPIRED_RE.search(str(e))
        role = m.group(1) if m else "repository"
        role = role.removeprefix("New ")
        date = _role_expiry(updater, role)
        when = f" (expired {date})" if date else ""
        err: UdriverError = RepositoryError(f"{where}: expired {role} metadata{when}")
        err.hint = "the repository must re-sign its metadata; if this persists, ask its operator"
        return err
    if isinstance(e, tuf_exc.BadVersionNumberError):
        return RepositoryError(f"{where}: rollback attack: {e} "
                               f"(the server offered older metadata than this machine trusts)")
    if isinstance(e, tuf_exc.UnsignedMetadataError):
        return RepositoryError(f"{where}: bad signature: {e}")
    if isinstance(e, tuf_exc.LengthOrHashMismatchError):
        return RepositoryError(f"{where}: downloaded file does not match its signed length/hash "
                               f"(tampered or corrupt): {e}")
    if isinstance(e, tuf_exc.DownloadHTTPError):
        return DownloadError(f"{where}: {e}")
    if isinstance(e, tuf_exc.SlowRetrievalError):
        return DownloadError(f"{where}: server too slow: {e}")
    if isinstance(e, tuf_exc.DownloadError):
        # The fetcher already named the cause of a network failure (requests' exceptions
        # are OSErrors); repeating urllib3's retry chain only buries it.
        cause = f" ({e.__cause__})" if e.__cause__ and not isinstance(e.__cause__, OSError) else ""
        err = DownloadError(f"{where}: download failed: {e}{cause}")
        if str(e).startswith("cannot fetch "):  # no answer at all (RequestsFetcher._fetch)
            err.hint = ("is the repository's server up, and its URL right? `udriver repo list` "
                        "shows it; --offline uses what this machine has cached")
        return err
    if isinstance(e, tuf_exc.RepositoryError):
        return RepositoryError(f"{where}: metadata failed verification: {e}")
    return RepositoryError(f"{where}: {type(e).__name__}: {e}")


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
        self._owners: dict[str, str | None] = {}

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

    def _new_updater(self) -> Updater:
        with self._tuf("loading trusted root"):
            if not (self.metadata_dir / "root.json").exists():
                raise self._no_root()
            self.target_dir.mkdir(parents=True, exist_ok=True)
            if self.offline:
                cls: type[Updater] = _OfflineUpdater
                fetcher: FetcherInterface = OfflineFetcher()
            else:
                cls = Updater
                fetcher = self._fetcher or RequestsFetcher(
                    FetchOptions(ca_bundle=self.config.ca_bundle,
                                 auth=self.config.credentials()))
            # bootstrap=None: the cached root.json, installed by `repo add` and kept
            # current by python-tuf across root rotations, is the trust anchor.
            upd = cls(str(self.metadata_dir), self.metadata_url,
                      target_dir=str(self.target_dir), target_base_url=self.targets_url,
                      fetcher=fetcher, config=self._tuf_config, bootstrap=None)
        self._pending = upd
        with self._tuf("refreshing metadata"):
            upd.refresh()
        self._updater, self._pending = upd, None
        return upd

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
            tmp = local.with_name(f".{local.name}.{os.getpid()}.part")
            try:
                upd.download_target(info, str(tmp))
                os.replace(tmp, local)
                return local
            finally:
                tmp.unlink(missing_ok=True)
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
        upd = self.updater()
        with self._tuf(f"looking up the role signing {name}"):
            stack: list[tuple[str, str]] = [(Targets.type, Root.type)]
            visited: set[str] = set()
            while stack and len(visited) <= upd.config.max_delegations:
                role, parent = stack.pop()
                if role in visited:
                    continue
                md = upd._load_targets(role, parent)
                found = md.targets.get(name)
                if found is not None:
                    if found != info:
                        break
                    return info, role
                visited.add(role)
                if md.delegations is not None:
                    children = []
                    for child, terminating in md.delegations.get_roles_for_target(name):
                        children.append((child, role))
                        if terminating:
                            stack = []
                            break
                    stack.extend(reversed(children))
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
            return []
        path = self.fetch(target, info)
        return parse_index(path.read_bytes(), name, self.name, signer)

    def cached_index_names(self) -> list[str]:
        """Indexes present in the target cache, e.g. ["1234", "1234/8"] (text search)."""
        base = self.target_dir / "index"
        return sorted(p.relative_to(base).with_suffix("").as_posix()
                      for p in base.rglob("*.json") if not p.name.startswith("."))

