"""Planning a publish: a pure decision over the committed state (no I/O).

Like python-tuf's `TrustedMetadataSet`, this module takes data and returns a decision;
it never opens a file, a database or a socket. `plan_publish(committed, artifacts,
vendor)` sees the artifacts the acceptance gate admitted (`_validate`), the publisher's
record, and a `Committed` snapshot the executor (`_publish`) read beforehand: the
target maps of the vendor's role and of `class`, the committed entries of every index
shard the publish touches, and the recorded owner of every name it claims. It returns
a `Plan`: the target entries to add per role, the target files to write, the names to
record, and what was published. A refusal raises before anything is written.

Checks, in this order (each one a rejection path with its own unit test):

1. the vendor is active (`AuthError`), and there is something to publish;
2. per (package, version): one wheel and/or one deb, carrying the same manifest
   (`PackageError`), within the vendor's scope (`ScopeError`, DESIGN.md: one
   delegated role per PCI vendor; TUF spec 5.6.7.2.1 enforces it on clients);
3. names: every driver and distribution name is free or the vendor's own
   (`NameOwnedError`; the records are `udriver.repoformat`'s name ownership);
4. per driver, in (package, version) order: no published file with an equal version
   once normalised (`ConflictError`, PEP 440 / deb-version(7)); a file name already
   published carries the same bytes (TUF targets are immutable: spec 5.7.3,
   consistent snapshots); the index shards (`udriver.repoformat.index_names`) do not
   list this version with other files, driver, ABI or ID table (`merge_entry`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tuf.api.metadata import TargetFile

from udriver.errors import PackageError
from udriver.repoformat import CLASS_INDEX, IndexEntry, claimed_names, encode_index, index_names

from ._errors import AuthError, ConflictError, NameOwnedError
from ._meta import CLASS_ROLE, vendor_role
from ._owners import ownership_problems, version_problems
from ._scope import check_scope
from ._types import PublishedDriver, Vendor
from ._validate import Artifact

__all__ = ["Committed", "Plan", "check_artifacts", "merge_entry", "plan_publish"]

Groups = dict[tuple[str, str], list[Artifact]]


@dataclass(frozen=True)
class Committed:
    """What a publish plan depends on, read from the committed TUF state beforehand."""

    targets: Mapping[str, Mapping[str, TargetFile]]
    """Role -> its target map, for the publishing vendor's role and `class` (a role
    missing here has no targets yet)."""
    indexes: Mapping[str, Sequence[IndexEntry]] = field(default_factory=dict)
    """Index shard name -> its committed entries (missing: no such index yet)."""
    owners: Mapping[str, str | None] = field(default_factory=dict)
    """Canonical name -> its recorded owner role (None or missing: free)."""


@dataclass
class Plan:
    """Everything a publish will write; empty `targets` and `names`: nothing changes."""

    targets: dict[str, dict[str, TargetFile]] = field(default_factory=dict)
    """Role -> target entries to add or replace in its metadata."""
    files: dict[str, tuple[TargetFile, bytes]] = field(default_factory=dict)
    """Target name -> (its entry, the bytes to store under its consistent-snapshot name)."""
    names: list[str] = field(default_factory=list)
    """Free canonical names to record for the vendor's role."""
    drivers: list[PublishedDriver] = field(default_factory=list)
    """What the publish makes available, one per (package, version)."""
    debs: list[Artifact] = field(default_factory=list)
    """The .deb artifacts, for the apt view."""

    @property
    def changed(self) -> bool:
        """Whether any TUF metadata changes."""
        return bool(self.targets or self.names)


def check_artifacts(artifacts: Sequence[Artifact], vendor: Vendor) -> Groups:
    """Group artifacts by (package, version) and apply checks 1-2.

    Raises:
        AuthError: the vendor is revoked.
        PackageError: nothing to publish, two files of one kind for one version, or a
            wheel and a deb that disagree.
        ScopeError: an ID-table pattern outside the vendor's scope.
    """
    if vendor.revoked:
        raise AuthError(f"vendor {vendor.name!r} is revoked")
    if not artifacts:
        raise PackageError("nothing to publish: no files given")
    groups: Groups = {}
    for a in artifacts:
        groups.setdefault((a.manifest.package, a.manifest.version), []).append(a)
    for (pkg, ver), group in groups.items():
        kinds = [a.kind for a in group]
        if len(set(kinds)) != len(kinds):
            raise PackageError(f"{pkg} {ver}: more than one {kinds[0]} in one publish")
        if len({a.manifest for a in group}) != 1:
            raise PackageError(f"{pkg} {ver}: the wheel and the deb carry different ID "
                               "tables or entry points; rebuild both with `udriver build`")
        check_scope(vendor, group[0].manifest.patterns,
                    what=", ".join(a.path.name for a in group))
    return groups


def merge_entry(entries: Sequence[IndexEntry], new: IndexEntry
                ) -> tuple[list[IndexEntry], bool]:
    """Add `new` to `entries`, merging the files of the same (package, version).

    Returns (entries, changed). Equal file names were already checked to carry equal
    bytes; here a same-version entry must agree on driver, ABI and ID table.

    Raises:
        ConflictError: same package and version with another driver, ABI or ID table.
    """
    out: list[IndexEntry] = []
    changed = True
    for e in entries:
        if (e.package, e.version) != (new.package, new.version):
            out.append(e)
            continue
        old_json, new_json = e.to_json(), new.to_json()
        for name in ("driver", "abi", "modaliases"):
            if old_json[name] != new_json[name]:
                raise ConflictError(
                    f"{new.package} {new.version} is already published with a different "
                    f"`{name}` ({old_json[name]!r}, new {new_json[name]!r}); publish a new "
                    "version")
        files = {**e.files, **new.files}
        changed = files != e.files
        new = replace(e, files=files)
    out.append(new)
    return out, changed


def _check_names(committed: Committed, role: str, groups: Groups) -> list[str]:
    owners: dict[str, str | None] = {}
    for group in groups.values():
        m = group[0].manifest
        for n in claimed_names(m.driver, m.package):
            owners[n] = committed.owners.get(n)
    problems = ownership_problems(role, owners)
    if problems:
        what = ", ".join(a.path.name for g in groups.values() for a in g)
        err = NameOwnedError(f"{what}: " + "; ".join(problems)
                             + " (a driver name and its distribution name belong to "
                             "the vendor that first published them)")
        err.hint = "rename the driver, or ask the repository's operator"
        raise err
    return sorted(n for n, o in owners.items() if o is None)


def _length_and_hashes(target: str, data: bytes) -> tuple[int, dict[str, str]]:
    tf = TargetFile.from_data(target, data, ["sha256"])
    return tf.length, tf.hashes


class _Work:
    """The plan being built over a working copy of the committed state."""

    def __init__(self, committed: Committed) -> None:
        self.targets = {r: dict(t) for r, t in committed.targets.items()}
        self.indexes = {n: list(e) for n, e in committed.indexes.items()}
        self.plan = Plan()

    def add(self, role: str, target: str, data: bytes) -> TargetFile:
        tf = TargetFile.from_data(target, data, ["sha256"])
        self.targets.setdefault(role, {})[target] = tf
        self.plan.targets.setdefault(role, {})[target] = tf
        self.plan.files[target] = (tf, data)
        return tf

    def published_files(self, roles: Sequence[str]) -> list[str]:
        return [t.rpartition("/")[2] for r in roles for t in self.targets.get(r, {})
                if t.startswith("drivers/")]


def _plan_driver(work: _Work, vrole: str, group: list[Artifact]) -> PublishedDriver:
    m = group[0].manifest
    pkg, ver = m.package, m.version
    idx = index_names(m.modaliases)
    dirname = CLASS_INDEX if CLASS_INDEX in idx else idx[0].split("/")[0]
    files_role = CLASS_ROLE if dirname == CLASS_INDEX else vrole
    problems = version_problems(work.published_files([vrole, CLASS_ROLE]),
                                [a.path.name for a in group])
    if problems:
        raise ConflictError("; ".join(problems))
    files: dict[str, str] = {}
    for a in sorted(group, key=lambda a: a.kind):
        target = f"drivers/{dirname}/{a.path.name}"
        old = work.targets.get(files_role, {}).get(target)
        if old is None:
            work.add(files_role, target, a.data)
        elif (old.length, old.hashes) != _length_and_hashes(target, a.data):
            raise ConflictError(f"{a.path.name} is already published with different "
                                f"bytes (sha256 {old.hashes.get('sha256')}); publish "
                                "a new version instead")
        files[a.kind] = target
    entry = IndexEntry.of_manifest(m, files)
    for ix in idx:
        role = CLASS_ROLE if ix == CLASS_INDEX else vrole
        current = work.indexes.get(ix, [])
        for e in current:
            if (e.package, e.version) == (pkg, ver):
                for kind, target in files.items():
                    if e.files.get(kind, target) != target:
                        raise ConflictError(f"{pkg} {ver} already has a {kind} "
                                            f"({e.files[kind]}); publish a new version instead")
        # The class index is signed by the repository, not the publisher: the entry
        # names the publisher's role, which clients compare with the name's owner.
        merged, changed = merge_entry(
            current, replace(entry, vendor=vrole) if role == CLASS_ROLE else entry)
        if changed:
            work.indexes[ix] = merged
            work.add(role, f"index/{ix}.json", encode_index(ix, merged))
    return PublishedDriver(m.package, m.driver, m.version, f"{m.abi[0]}.{m.abi[1]}",
                           m.modaliases, files, tuple(f"index/{ix}.json" for ix in idx))


def plan_publish(committed: Committed, artifacts: Sequence[Artifact], vendor: Vendor) -> Plan:
    """Decide what publishing `artifacts` as `vendor` writes (see the module docstring).

    Raises:
        AuthError: the vendor is revoked.
        PackageError: nothing to publish, or inconsistent wheel and deb.
        ScopeError: IDs outside the vendor's scope.
        NameOwnedError: a driver or distribution name another role owns.
        ConflictError: a version equal to a published one once normalised, a file name
            published with other bytes, or a version published with other files, driver,
            ABI or ID table.
    """
    groups = check_artifacts(artifacts, vendor)
    vrole = vendor_role(vendor.name)
    work = _Work(committed)
    work.plan.names = _check_names(committed, vrole, groups)
    for key in sorted(groups):
        work.plan.drivers.append(_plan_driver(work, vrole, groups[key]))
    work.plan.debs = [a for g in groups.values() for a in g if a.kind == "deb"]
    return work.plan
