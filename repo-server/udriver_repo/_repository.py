"""The repository: one directory REPO, its static tree REPO/public, and the operations.

Rules:
- Every mutation holds `RepoLock` (flock on REPO/lock), so publishers are serialised
  across threads and processes.
- What is published is read from the committed TUF state (see `_meta.Transaction`),
  never from the database, so a crash at any point leaves clients the old or the new
  state and the next publish derives its versions from what clients can see.
- Publish order: validate and scope-check (no lock, no writes) -> lock -> plan every
  change in memory, TUF and apt alike (name ownership, conflicts and a view that cannot
  be updated raise here, before any write) -> write content-addressed target files ->
  commit TUF (timestamp rename) -> write pool files -> commit apt (InRelease rename).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tuf.api.metadata import (
    TargetFile,
)

from udriver.artifacts import read_deb
from udriver.errors import PackageError
from udriver.repoformat import CLASS_INDEX, IndexEntry, claimed_names, index_names

from ._apt import AptView
from ._aptplan import plan_apt, publish_apt_debs
from ._audit import AuditLog
from ._errors import AuthError
from ._fsio import RepoLock, write_new
from ._gpg import Gpg
from ._init import create_repository
from ._meta import (
    CLASS_ROLE,
    Keyring,
    Transaction,
    expiry_from_config,
    read_config,
    read_index,
    target_path,
    vendor_role,
)
from ._naming import (
    MigrationReport,
    assign_name,
    ensure_names,
    list_names,
    migrate_names,
    name_owner,
    record_name,
)
from ._plan import Committed, check_artifacts, plan_publish
from ._rotation import refresh, rotate_key, sign_root
from ._state import State
from ._types import PublishResult, Vendor, VerifyReport
from ._validate import Artifact, validate
from ._vendors import add_vendor, ensure_vendor_role, revoke_vendor

__all__ = ["Repository"]

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Repository:
    """A udriver repository directory (layout: see the repository contract)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        self.public = self.path / "public"
        self.metadata_dir = self.public / "metadata"
        self.config = read_config(self.path)
        self.expiry = expiry_from_config(self.config)
        self.keys = Keyring(self.path / "keys")
        self.state = State(self.path / "state.db")
        self.audit = AuditLog(self.path / "state.db")
        """The one audit log (`_audit`): migrated from an older state.db's two tables."""
        self.gpg = Gpg(self.path / "gnupg")
        self.apt = AptView(self.public, self.gpg)

    # ------------------------------------------------------------------ create / open

    @classmethod
    def init(cls, path: Path | str, root_threshold: int = 1,
             expiry: dict[str, timedelta] | None = None,
             root_key_dir: Path | str | None = None, root_keys: int | None = None) -> Repository:
        """Create keys, top-level roles, bins and the apt key in a new directory.

        Args:
            path: the repository directory (created; must not already be a repository).
            root_threshold: signatures a new root version needs (TUF spec 4.3 threshold).
            expiry: per-role lifetimes overriding `EXPIRY_DEFAULTS` (keys: root, targets,
                bins, class, vendor, snapshot, timestamp).
            root_key_dir: keep the root private keys here instead of REPO/keys, so root
                can be kept offline (`sign-root` then signs new root versions).
            root_keys: how many root keys to create (default: `root_threshold`).

        Raises:
            RepositoryError: bad arguments, or `path` is already a repository.
        """
        repo = Path(path)
        create_repository(repo, root_threshold, expiry or {}, root_key_dir, root_keys)
        self = cls(repo)
        self.apt.commit({})
        self.audit.event("admin", "init", f"root threshold {root_threshold}")
        log.info("initialised repository %s", repo)
        return self

    @classmethod
    def open(cls, path: Path | str) -> Repository:
        """Open an existing repository.

        Raises:
            RepositoryError: `path` is not a repository.
        """
        return cls(Path(path))

    def close(self) -> None:
        """Nothing to release (connections are per call); present for the server."""

    def stop_agent(self) -> None:
        """Stop the gpg-agent serving REPO/gnupg (tests, shutdown)."""
        self.gpg.stop_agent()

    # ------------------------------------------------------------------ vendors

    def add_vendor(self, name: str, pci_vendors: Sequence[int], class_grant: bool = False) -> str:
        """Create a publisher and its delegated role; return its upload token (shown once).

        Raises:
            RepositoryError: bad name or IDs, name taken, or a PCI vendor ID already owned.
        """
        return add_vendor(self, name, pci_vendors, class_grant)

    def list_vendors(self) -> list[Vendor]:
        """Every publisher, revoked ones included, sorted by name."""
        return self.state.vendors()

    def revoke_vendor(self, name: str) -> None:
        """Revoke a publisher: its tokens, its delegation, its role and its key
        (`_vendors.revoke_vendor`).

        Raises:
            RepositoryError: unknown vendor.
        """
        revoke_vendor(self, name)

    def authenticate(self, token: str) -> Vendor | None:
        """The active vendor owning `token`, or None. Hashed, constant-time compare."""
        name = self.state.authenticate(token)
        return self.state.vendor(name) if name else None

    # ------------------------------------------------------------------ publishing

    def publish(self, files: Sequence[Path | str], vendor: str, *,
                record: bool = True) -> PublishResult:
        """Validate, scope-check, and atomically publish wheels and/or debs.

        Args:
            files: the wheels and/or debs.
            vendor: the publishing vendor.
            record: write the `publish` row of the audit log; the server passes False,
                its upload row records the publish.

        Raises:
            PackageError: an invalid artifact, or inconsistent wheel and deb.
            ScopeError: IDs outside the vendor's scope.
            NameOwnedError: a driver or distribution name another vendor owns (a
                ScopeError: HTTP 403).
            ConflictError: same name and version already published with other bytes, a
                version equal to a published one once normalised, or a pool file with
                other bytes.
            AuthError: unknown or revoked vendor.
            RepositoryError: a repository failure.
        """
        v = self.state.vendor(vendor)
        if v is None:
            raise AuthError(f"no such vendor: {vendor!r}")
        if v.revoked:
            raise AuthError(f"vendor {vendor!r} is revoked")
        if not files:
            raise PackageError("nothing to publish: no files given")
        arts = [validate(Path(f)) for f in files]
        check_artifacts(arts, v)  # refused before taking the lock; planned again under it
        with RepoLock(self.path):
            result = self._publish_locked(v, arts)
        if record:
            self.audit.event(vendor, "publish-unchanged" if result.unchanged else "publish",
                             " ".join(a.path.name for a in arts), vendor=vendor)
        return result

    def _publish_locked(self, v: Vendor, arts: Sequence[Artifact]) -> PublishResult:
        """Read the committed state, plan purely (`_plan.plan_publish`), then write.

        Order: vendor role and names role (created when missing, staged only) -> the
        committed state the plan needs -> the plan (every refusal raises here, before
        any write) -> the apt view planned in memory -> write target files -> commit
        TUF -> write pool files -> commit apt.
        """
        txn = Transaction(self.metadata_dir, self.keys, self.expiry)
        ensure_vendor_role(txn, self.keys, v)
        vrole = vendor_role(v.name)
        writes: dict[Path, bytes] = {}
        ensure_names(self, txn, writes)
        plan = plan_publish(self._committed(txn, vrole, arts), arts, v)
        for n in plan.names:
            record_name(txn, self.public, n, vrole, writes)
        for role, tfs in sorted(plan.targets.items()):
            md = txn.load(role)
            md.signed.targets.update(tfs)
            txn.stage(role, md)
        for target, (tf, data) in plan.files.items():
            writes[self._target_path(target, tf)] = data
        pool, apt_plan = plan_apt(self.apt, vrole, plan.debs)
        ts_version = 0
        tuf_changed = bool(txn.staged)
        if tuf_changed:
            for p, data in writes.items():
                write_new(p, data)
            ts_version = txn.commit()
        for rel, data in pool.items():
            self.apt.add_pool_file(rel, data)
        if apt_plan is not None:
            self.apt.commit_plan(apt_plan)
        return PublishResult(v.name, tuple(plan.drivers),
                             unchanged=not tuf_changed and apt_plan is None,
                             timestamp_version=ts_version)

    def _committed(self, txn: Transaction, vrole: str, arts: Sequence[Artifact]) -> Committed:
        """What `plan_publish` needs of the state `txn` stands on (reads metadata and the
        committed index files, each checked against its signed hash)."""
        targets = {r: dict(txn.load(r).signed.targets) for r in (vrole, CLASS_ROLE)
                   if txn.has(r)}
        indexes: dict[str, list[IndexEntry]] = {}
        owners: dict[str, str | None] = {}
        for a in arts:
            m = a.manifest
            for ix in index_names(m.modaliases):
                role = CLASS_ROLE if ix == CLASS_INDEX else vrole
                if ix not in indexes and txn.has(role):
                    indexes[ix] = read_index(self.public, txn.load(role), f"index/{ix}.json", ix)
            for n in claimed_names(m.driver, m.package):
                owners[n] = name_owner(txn, n)
        return Committed(targets, indexes, owners)

    def publish_system(self, files: Sequence[Path | str]) -> bool:
        """Add packages that are not drivers (udriver itself, say) to the apt view only.

        An operator's action from the shell, never an upload: these packages get no TUF
        targets and no vendor scope, so a driver package is refused here (it must go
        through `publish`, where TUF signs it and the vendor's scope is checked). Returns
        True when the apt view changed.

        Raises:
            PackageError: not a .deb, unreadable, a driver package, or a file name that
                disagrees with its control data (deb-version(7): <name>_<version>_<arch>).
            RepositoryError: a repository failure.
        """
        if not files:
            raise PackageError("nothing to publish: no files given")
        items: list[tuple[dict[str, str], str, bytes]] = []
        for f in map(Path, files):
            if f.suffix != ".deb":
                raise PackageError(f"{f.name}: only .deb files go into the apt view")
            info = read_deb(f)
            if info.manifest is not None:
                raise PackageError(f"{f.name} is a driver package: publish it with `--vendor` "
                                   "so that TUF signs it within the vendor's scope")
            c = info.control
            try:
                want = f"{c['Package']}_{c['Version'].rpartition(':')[2]}_{c['Architecture']}.deb"
            except KeyError as e:
                raise PackageError(f"{f.name}: control data has no `{e.args[0]}` field") from e
            if f.name != want:
                raise PackageError(f"{f.name}: the file name disagrees with its control data "
                                   f"(expected {want!r})")
            items.append((dict(c), f.name, f.read_bytes()))
        with RepoLock(self.path):
            changed = publish_apt_debs(self.apt, items)
        self.audit.event("operator", "publish-system" if changed else "publish-system-unchanged",
                         " ".join(Path(f).name for f in files))
        return changed

    def _target_path(self, target: str, tf: TargetFile) -> Path:
        """Consistent-snapshot file name of a target (`_meta.target_path`)."""
        return target_path(self.public, target, tf)

    def index(self, name: str) -> list[dict[str, object]]:
        """Committed index entries, as written (`IndexEntry.to_json`); [] if none.

        `name` is a shard ("1234/8", "1234/any"), "class", or a PCI vendor ("1234"): then
        every entry of its shards (and of a format-1 `index/1234.json`, if one is listed),
        each (package, version, driver) once, sorted.
        """
        txn = Transaction(self.metadata_dir, self.keys, self.expiry)
        if name == CLASS_INDEX:
            entries = read_index(self.public, txn.load(CLASS_ROLE), f"index/{name}.json", name)
            return [e.to_json() for e in entries]
        vid = name.split("/")[0]
        owner = self.state.owner_of([int(vid, 16)]).get(int(vid, 16))
        if owner is None or not txn.has(vendor_role(owner)):
            return []
        md = txn.load(vendor_role(owner))
        if "/" in name:
            return [e.to_json() for e in read_index(self.public, md, f"index/{name}.json", name)]
        merged: dict[tuple[str, str, str], IndexEntry] = {}
        for path in sorted(md.signed.targets):
            if path == f"index/{vid}.json" or path.startswith(f"index/{vid}/"):
                for e in read_index(self.public, md, path, path[len("index/"):-len(".json")]):
                    merged.setdefault(e.key, e)
        return [merged[k].to_json() for k in sorted(merged)]

    # ------------------------------------------------------------------ names

    def name_owner(self, txn: Transaction, name: str) -> str | None:
        """The role owning `name` in the metadata `txn` will commit (None: free)."""
        return name_owner(txn, name)

    def names(self) -> dict[str, str]:
        """Every recorded name and its owner role (`_naming.list_names`)."""
        return list_names(self)

    def migrate_names(self) -> MigrationReport:
        """`udriver-repo names migrate` (`_naming.migrate_names`).

        Raises:
            RepositoryError: the `targets` key is missing, an index is corrupt, or a write
                failed.
        """
        return migrate_names(self)

    def assign_name(self, name: str, vendor: str) -> str | None:
        """The operator assigns `name` to `vendor`; returns the previous owner role.

        Raises:
            RepositoryError: unknown or revoked vendor, or an invalid name.
        """
        return assign_name(self, name, vendor)

    # ------------------------------------------------------------------ keys and expiry

    def refresh(self) -> int:
        """Re-sign snapshot, timestamp and any role past half its lifetime (`_rotation`).

        Raises:
            RepositoryError: a key is missing or a write failed.
        """
        return refresh(self)

    def rotate_key(self, role: str) -> None:
        """Replace the key of `role` (`_rotation.rotate_key`).

        Raises:
            RepositoryError: unknown role, or offline root signatures are needed.
        """
        rotate_key(self, role)

    def sign_root(self, key_file: Path | str) -> bool:
        """Sign the pending root with an offline key; True once committed (`_rotation`).

        Raises:
            RepositoryError: no pending root, bad key file, or still short of signatures.
        """
        return sign_root(self, key_file)

    # ------------------------------------------------------------------ verify

    def verify(self, url: str | None = None) -> VerifyReport:
        """Run a fresh python-tuf client (and an apt checker) against the tree.

        With `url`, fetch over HTTP(S) from a server serving the tree; otherwise read
        REPO/public directly. Trust starts from this repository's 1.root.json.
        """
        from ._verify import verify_tree
        root = (self.metadata_dir / "1.root.json").read_bytes()
        return verify_tree(root, public=None if url else self.public, url=url)
