"""The client's operations: resolve, install, update, search, show.

This module joins the pieces and owns the order of operations of an install:

1. resolve each device through its index shard (and its vendor's `any` shard and
   per-vendor index, if any) and the class index (`resolve`);
2. group devices by the chosen driver version, so a package is installed once even
   for several devices;
3. download the wheel through TUF (length and hashes verified, TUF spec 5.7);
4. read its embedded `udriver.json` and check it against the index entry and every
   device (`_verify.check_package`); on any mismatch nothing is installed;
5. install into the store (`_store.DriverStore`), which switches `current` atomically,
   and record the owner role it came from.

Name ownership: before an entry is installed (or returned by `find`), its names must
be owned by the role that signed its index (`_remote.RemoteRepo.check_owner`), so only
the owner's driver of a name is ever installed; an installed driver is never replaced
by, nor counted as "unchanged" against, a driver of another owner (`_check_origin`),
and `update` refuses a driver whose name changed owner (`_check_still_owned`).

Repositories are consulted in name order; a repository that fails verification fails
the operation (an attacker must not be able to steer us to another mirror by breaking
one), except in `annotate()` (`_annotate`), which is informational and only logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from .._log import getLogger
from ..abi import ABI_VERSION, AbiVersion
from ..errors import ConfigError, DownloadError, InstallError, UdriverError
from ..manifest import DriverManifest
from ..modalias import Modalias, PatternIndex, parse_pattern
from ..repoformat import (
    CLASS_INDEX,
    IndexEntry,
    build_pattern_index,
    lookup_names,
)
from ._config import RepoConfig, list_repos
from ._fresh import unchanged
from ._inventory import installed_for, installed_manifests
from ._lookup import Lookup, cached_index_names
from ._origin import check_origin, check_still_owned
from ._results import InstallResult
from ._spec import not_found, parse_spec, query_alias, within
from ._store import DriverStore, InstalledDriver
from ._verify import check_package
from .resolve import Candidate, choose, choose_named, choose_version

if TYPE_CHECKING:  # python-tuf and requests are imported only when a repository is used:
    # they cost ~0.4 s, which `udriver devices` and `status` should not pay.
    from tuf.ngclient.fetcher import FetcherInterface

    from ._fetcher import Progress
    from ._remote import RemoteRepo

__all__ = ["Client", "InstallResult"]

log = getLogger(__name__)


class Client:
    """Client operations over the configured repositories and the local store.

    Args:
        repos: repositories to use (default: every configured one).
        offline: use only cached, unexpired metadata (see `_remote`).
        store: the driver store (default: `<state>/drivers`).
        fetcher: injected into every repository (tests); default requests.
        progress: download progress callback.
        provided: the runtime's ABI.
    """

    def __init__(self, repos: Sequence[RepoConfig] | None = None, *, offline: bool = False,
                 store: DriverStore | None = None, fetcher: FetcherInterface | None = None,
                 progress: Progress | None = None, provided: AbiVersion = ABI_VERSION) -> None:
        self.repos = list(repos) if repos is not None else list_repos()
        self.offline = offline
        self._fetcher, self._progress = fetcher, progress
        self._remotes: list[RemoteRepo] | None = None
        self._lookups = {c.name: Lookup(c) for c in self.repos}
        self._current: dict[str, bool] = {}  # repository -> `_fresh.unchanged` said so
        self.store = store or DriverStore()
        self.provided = provided
        self._entries: dict[tuple[str, str], list[IndexEntry]] = {}

    @property
    def remotes(self) -> list[RemoteRepo]:
        """A `RemoteRepo` per repository, made on first use (it imports python-tuf,
        which an answer from the lookup, `_lookup`, does without)."""
        if self._remotes is None:
            from ._remote import RemoteRepo
            self._remotes = [RemoteRepo(c, offline=self.offline, fetcher=self._fetcher,
                                        progress=self._progress) for c in self.repos]
            for r in self._remotes:
                r.lookup = self._lookups.get(r.name)
        return self._remotes

    def _require_repos(self) -> None:
        if not self.repos:
            err = ConfigError("no repository is configured")
            err.hint = "add one with `udriver repo add NAME URL --root ROOT.json`"
            raise err

    # -- index access ----------------------------------------------------------------
    def entries(self, indexes: Iterable[int | str | None], *, tolerant: bool = False
                ) -> list[IndexEntry]:
        """Entries of the given indexes, every repository, each driver version once.

        Args:
            indexes: index names ("1234/8", "class", ...; see `lookup_names`), or PCI
                vendors, meaning every index of that vendor (None: the class index).

        Raises:
            RepositoryError, DownloadError: unless `tolerant`, when they are logged.
        """
        names: set[str] = set()
        for i in indexes:
            names.update([i] if isinstance(i, str) else lookup_names(i))
        out: list[IndexEntry] = []
        seen: set[tuple[str, str, str, str]] = set()
        # Offline, metadata that was never cached only means "not known here": no warning.
        report = log.info if self.offline else log.warning
        for repo in self.repos:
            for name in sorted(names):
                key = (repo.name, name)
                if key not in self._entries:
                    try:
                        self._entries[key] = self._index(repo, name)
                    except UdriverError as e:
                        if not tolerant:
                            raise
                        report("%s", e)
                        self._entries[key] = []
                # A driver for several devices is listed in each of their shards.
                for entry in self._entries[key]:
                    k = (entry.repo, entry.package, entry.version, entry.driver)
                    if k not in seen:
                        seen.add(k)
                        out.append(entry)
            if self._remotes is not None:  # the full path ran: keep what it verified
                self._lookups[repo.name].save(self._remote(repo.name))
        return out

    def _index(self, repo: RepoConfig, name: str) -> list[IndexEntry]:
        """One index's entries: from the lookup when it can answer (online, after the root
        and timestamp steps, `_lookup` point 4, asked without python-tuf when nothing is
        new, `_fresh`), else through TUF (`RemoteRepo.index` finishes the refresh)."""
        lookup = self._lookups[repo.name]
        if not self.offline and repo.name not in self._current:  # once per repository
            self._current[repo.name] = self._fetcher is None and unchanged(repo, lookup)
            if not self._current[repo.name]:
                lookup.reload()  # `_fresh` read it: read again after the refresh below
        if not self.offline and not self._current[repo.name]:  # the root, timestamp steps
            self._remote(repo.name).refresh_timestamp()
        got = lookup.get(name, offline=self.offline)
        if got is not None:
            return got
        try:
            return self._remote(repo.name).index(name)
        except DownloadError as e:
            if self.offline:  # not cached: the same answer until the cache changes
                lookup.add_miss(name, e)
                lookup.save(self._remote(repo.name))
            raise

    @staticmethod
    def _device_indexes(devices: Iterable[Modalias]) -> set[str]:
        """The indexes that can list drivers for `devices`, and the class index."""
        out = {CLASS_INDEX}
        for a in devices:
            out.update(lookup_names(a.vendor, a.device))
        return out

    def pattern_index(self, devices: Mapping[str, Modalias], *, tolerant: bool = False
                      ) -> PatternIndex[IndexEntry]:
        """A PatternIndex over the indexes the devices (and class-wide drivers) need."""
        return build_pattern_index(self.entries(self._device_indexes(devices.values()),
                                                tolerant=tolerant))

    def resolve(self, devices: Mapping[str, Modalias], *, tolerant: bool = False
                ) -> dict[str, Candidate | None]:
        """The best driver version for each device (see `resolve`)."""
        idx = self.pattern_index(devices, tolerant=tolerant)
        return {bdf: choose(alias, idx, self.provided) for bdf, alias in devices.items()}

    # -- install ---------------------------------------------------------------------
    def _remote(self, name: str) -> RemoteRepo:
        for r in self.remotes:
            if r.name == name:
                return r
        raise ConfigError(f"No repository named {name!r} is configured")

    def install_entry(self, entry: IndexEntry, devices: Mapping[str, Modalias] | None = None
                      ) -> InstallResult:
        """Download, check (module steps 3-4) and install one index entry (step 5).

        Raises:
            InstallError: the entry has no wheel.
            RepositoryError, DownloadError: verification or download failed.
            PackageError: the package does not match the index or the devices.
        """
        target = entry.files.get("wheel")
        if target is None:
            raise InstallError(f"{entry.package} {entry.version} has no wheel in repository "
                               f"{entry.repo!r} (only a .deb; install it with apt)")
        if entry.repo:
            self._remote(entry.repo).check_owner(entry)
        before = self.store.get(entry.driver)
        if before is not None and before.current is not None:
            check_origin(self.store, entry, before)
        if before is not None and before.current == entry.version:
            return InstallResult(entry.driver, entry.version, before.previous, entry.repo,
                                 sorted(devices or {}), changed=False)
        wheel = self._remote(entry.repo).fetch(target)
        from ..artifacts import read_wheel_manifest  # zipfile &c.: not for `devices`

        manifest = read_wheel_manifest(wheel)
        check_package(manifest, entry, devices)
        info = self.store.install_wheel(wheel, manifest, entry.repo)
        if entry.publisher:
            self.store.set_origin(entry.driver, entry.repo, entry.publisher)
        return InstallResult(info.driver, entry.version,
                             before.current if before else None, entry.repo,
                             sorted(devices or {}))

    def install_for_devices(self, devices: Mapping[str, Modalias]) -> list[InstallResult]:
        """Resolve and install drivers for `devices`; each package is installed once.

        Raises:
            InstallError: a device has no matching, ABI-compatible driver.
            RepositoryError, DownloadError, PackageError: as for `install_entry`.
        """
        self._require_repos()
        chosen = self.resolve(devices)
        missing = sorted(b for b, c in chosen.items() if c is None)
        if missing:
            raise InstallError("no compatible driver in any repository for "
                               + ", ".join(f"{b} ({devices[b]})" for b in missing))
        groups: dict[IndexEntry, dict[str, Modalias]] = {}
        for bdf, cand in chosen.items():
            assert cand is not None
            groups.setdefault(cand.entry, {})[bdf] = devices[bdf]
        return [self.install_entry(e, devs) for e, devs in groups.items()]

    def installed_for(self, devices: Mapping[str, Modalias]) -> dict[str, DriverManifest | None]:
        """The installed driver (store or .deb) claiming each device (`_inventory`)."""
        return installed_for(devices, installed_manifests(self.store))

    def install_auto(self, devices: Mapping[str, Modalias]) -> list[InstallResult]:
        """Install drivers for every device that no installed driver claims and for
        which a repository has a compatible driver; others are left alone.

        Raises:
            RepositoryError, DownloadError, PackageError: as for `install_entry`.
        """
        self._require_repos()
        have = self.installed_for(devices)
        todo = {b: a for b, a in devices.items() if have[b] is None}
        chosen = self.resolve(todo)
        want = {b: todo[b] for b, c in chosen.items() if c is not None}
        return self.install_for_devices(want) if want else []

    def find(self, spec: str, devices: Mapping[str, Modalias], verb: str = "install"
             ) -> IndexEntry:
        """Find "DRIVER" or "DRIVER==VERSION" in the indexes relevant to this machine: the
        local devices' shards, the class index and any index already cached, then every
        shard of the local devices' vendors. A version whose ID table matches a local
        device is preferred; the one found must be published by the name's owner.

        Raises:
            InstallError: not found, or no ABI-compatible version.
        """
        self._require_repos()
        name, version, allowed = parse_spec(spec)
        entries = self.entries(self._device_indexes(devices.values()) | self._cached_indexes())
        best = choose_named(within(entries, name, allowed), name, version, devices, self.provided)
        if best is None:
            # Not in the devices' own shards: widen to every shard of their vendors.
            wide: set[int | str | None] = {a.vendor for a in devices.values()}
            entries = self.entries(wide | self._device_indexes(devices.values())
                                   | self._cached_indexes())
            best = choose_named(within(entries, name, allowed), name, version, devices, self.provided)
        if best is None and verb == "show":
            # Not for this machine's devices: the name's signed owner record says which
            # vendor role publishes it, and that role's delegation which PCI vendors.
            owned = self._owner_indexes(name)
            if owned:
                entries = self.entries(owned | self._device_indexes(devices.values()))
                best = choose_named(within(entries, name, allowed), name, version, devices, self.provided)
        if best is None:
            raise not_found(spec, verb, [e for e in entries if name in (e.driver, e.package)],
                            bool(version or allowed is not None))
        self._remote(best.repo).check_owner(best)
        return best

    def _owner_indexes(self, name: str) -> set[str]:
        """Every index of the PCI vendors of the role that owns `name`, in each
        repository that records name owners (`RemoteRepo.owner_indexes`)."""
        out: set[str] = set()
        for remote in self.remotes:
            try:
                out |= remote.owner_indexes(name)
            except DownloadError as e:
                if not self.offline:
                    raise
                log.info("%s", e)  # offline, and the records are not cached: not known here
        return out

    def _cached_indexes(self) -> set[str]:
        return {n for c in self.repos for n in cached_index_names(c.state / "targets")}

    def install_local_wheel(self, wheel: Path, devices: Mapping[str, Modalias] | None = None
                            ) -> InstallResult:
        """Install a wheel file given by the administrator (no repository; still checked:
        RECORD hashes, manifest validity, and the devices if given).

        Raises:
            PackageError: invalid wheel, or its ID table does not match `devices`.
        """
        from ..artifacts import read_wheel_manifest  # zipfile &c.: not for `devices`

        manifest = read_wheel_manifest(wheel)
        pseudo = IndexEntry(manifest.package, manifest.driver, manifest.version, manifest.abi,
                            manifest.modaliases, {"wheel": ""}, "", "")
        check_package(manifest, pseudo, devices)
        before = self.store.get(manifest.driver)
        info = self.store.install_wheel(wheel, manifest)
        return InstallResult(info.driver, manifest.version, before.current if before else None,
                             "", sorted(devices or {}),
                             changed=before is None or before.current != manifest.version)

    def upgradable(self) -> list[tuple[InstalledDriver, IndexEntry]]:
        """Installed drivers with a newer compatible version, and that version (held ones
        included: see `InstalledDriver.held`). Installs nothing.

        Raises:
            RepositoryError, DownloadError: verification or download of metadata failed.
        """
        self._require_repos()
        out = []
        for inst in self.store.installed():
            m = inst.manifest()
            if m is None or inst.current is None:
                continue
            check_still_owned(self.store, self.remotes, inst.driver)
            names = {n for p in m.patterns for n in lookup_names(p.vendor, p.device)}
            best = choose_version(self.entries(names), inst.driver, None, self.provided)
            if best is not None and best.parsed_version > Version(inst.current):
                out.append((inst, best))
        return out

    def update(self) -> list[InstallResult]:
        """Install the newest compatible version of every installed driver not held.

        Raises:
            RepositoryError, DownloadError, PackageError: as for `install_entry`.
        """
        return [self.install_entry(best) for inst, best in self.upgradable() if not inst.held]

    # -- queries ---------------------------------------------------------------------
    def search(self, query: str, devices: Mapping[str, Modalias] | None = None
               ) -> list[IndexEntry]:
        """Drivers for "VVVV", "VVVV:DDDD", a modalias, or a text in the name.

        Raises:
            RepositoryError, DownloadError: verification or download failed.
        """
        self._require_repos()
        q = query.strip().lower()
        alias = query_alias(q)
        if alias is not None:
            vendor, device = alias
            entries = self.entries({CLASS_INDEX, *lookup_names(vendor, device)})
            hits = []
            for e in entries:
                for p in map(parse_pattern, e.modaliases):
                    if p.vendor in (None, vendor) and (device is None or p.device in (None, device)):
                        hits.append(e)
                        break
        else:
            names = self._device_indexes((devices or {}).values())
            entries = self.entries(names | self._cached_indexes())
            hits = [e for e in entries if q in e.driver.lower() or q in e.package.lower()]
        return sorted(set(hits), key=lambda e: (e.driver, e.parsed_version, e.repo))

    def show(self, spec: str, devices: Mapping[str, Modalias]) -> tuple[list[IndexEntry],
                                                                      InstalledDriver | None]:
        """Every published version of a driver, and what is installed of it."""
        best = self.find(spec.partition("==")[0], devices, verb="show")
        names = {n for p in map(parse_pattern, best.modaliases)
                 for n in lookup_names(p.vendor, p.device)}
        versions = [e for e in self.entries(names) if e.driver == best.driver]
        return sorted(set(versions), key=lambda e: e.parsed_version), self.store.get(best.driver)
