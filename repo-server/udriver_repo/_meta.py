"""TUF metadata of the repository: role layout, keys, and the commit protocol.

Role layout (TUF spec 4.3/4.5 delegations; consistent snapshots, spec 5.x):

    root ─ targets ─┬─ class              paths drivers/class/*, index/class.json
                    └─ bin-0 .. bin-f     paths drivers/???X/*, index/???X/*, index/???X.json
                        └─ bin-YX         paths drivers/??YX/*, index/??YX/*, index/??YX.json
                            └─ vendor-<name>  paths drivers/<vvvv>/*, index/<vvvv>/*,
                                              index/<vvvv>.json, for each owned PCI
                                              vendor vvvv ending in YX
                    └─ names              paths names/*: who owns each driver name
                        └─ names-00 .. names-ff   (TAP 15 succinct bins; see `_owners`)

The 256 leaf bins key vendors by the *low* byte of the PCI vendor ID (real IDs cluster
in their high byte), so each lists ~1/256 of the publishers; 16 middle bins, keyed by
the last hex digit, delegate 16 leaves each. Two levels of 16 instead of one of 256:
a client looking up k vendors fetches targets.json (16 delegations) plus k middle and k
leaf bins, ~2.5 kB + k * 6.5 kB, instead of a 45 kB targets.json plus k leaves (the
metadata a client fetches does not depend on the number of drivers; see
bench/repo_scale.py). All bins share one online `bins` key; `class` has its own online
key and is signed by the repository after it checked the publisher's class grant;
`names` and its bins share the online `names` key, signed after the repository checked
a name claim.

Commit protocol (what makes a publish atomic and crash-safe):

1. `Transaction` reads the *committed* state: `timestamp.json` -> the snapshot version
   it names -> the role versions that snapshot names. Never a directory listing, so
   stray files from a killed publisher are ignored (and later overwritten).
2. Target files are written first under content-addressed names (`<sha256>.<name>`).
3. Each changed role is written as `<committed+1>.<role>.json`, then
   `<n+1>.snapshot.json`; none of these is reachable until step 4.
4. `timestamp.json` is replaced by rename(2): the single switch a client sees
   (client workflow 5.4 reads timestamp first, then 5.5 snapshot, 5.6 targets).
5. Only then, versions that fell out of the last `KEEP_VERSIONS` of each role written
   are deleted; the committed timestamp no longer reaches them. Root versions are never
   deleted (clients walk the whole root chain, client workflow 5.3).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.signer import Key, Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from udriver.errors import RepositoryError
from udriver.repoformat import NAMES_ROLE, IndexEntry, parse_index

from ._fsio import write_atomic
from ._keys import NaclSigner, generate_key, load_key
from ._owners import NAME_PREFIX, name_bins

__all__ = [
    "BINS",
    "CLASS_ROLE",
    "EXPIRY_DEFAULTS",
    "KEEP_VERSIONS",
    "MID_BINS",
    "SERIALIZER",
    "Keyring",
    "Transaction",
    "bin_of",
    "bin_paths",
    "expiry_kind",
    "mid_of",
    "names_roles",
    "read_index",
    "target_path",
    "vendor_paths",
    "vendor_role",
]

EXPIRY_DEFAULTS: dict[str, timedelta] = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "bins": timedelta(days=90),
    "class": timedelta(days=90),
    "names": timedelta(days=90),
    "vendor": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}
BINS = [f"bin-{i:02x}" for i in range(256)]
"""The leaf bins, which delegate to vendor roles."""
MID_BINS = [f"bin-{i:x}" for i in range(16)]
"""The middle bins: `targets` delegates to these, each delegates to 16 leaves."""
CLASS_ROLE = "class"
SERIALIZER = JSONSerializer(compact=True)
KEEP_VERSIONS = 4


def bin_of(vvvv: str) -> str:
    """The leaf bin role delegating PCI vendor `vvvv` (4 lower-case hex digits)."""
    return f"bin-{vvvv[2:]}"


def mid_of(leaf: str) -> str:
    """The middle bin delegating leaf bin `leaf` ("bin-YX" -> "bin-X")."""
    return f"bin-{leaf[-1]}"


def vendor_role(name: str) -> str:
    return f"vendor-{name}"


def bin_paths(bin_name: str) -> list[str]:
    """Paths delegated to a leaf ("bin-YX") or middle ("bin-X") bin."""
    xx = bin_name[4:]
    wild = "?" * (4 - len(xx))
    return [f"drivers/{wild}{xx}/*", f"index/{wild}{xx}/*", f"index/{wild}{xx}.json"]


def vendor_paths(ids: list[str]) -> list[str]:
    """Paths delegated to a vendor role: its drivers, its index shards, and the
    per-vendor index of format 1 (`index/<vvvv>.json`), which clients still read."""
    return [p for v in ids for p in (f"drivers/{v}/*", f"index/{v}/*", f"index/{v}.json")]


def expiry_kind(role: str) -> str:
    if role.startswith("bin-"):
        return "bins"
    if role.startswith("vendor-"):
        return "vendor"
    if role == NAMES_ROLE or role.startswith(f"{NAME_PREFIX}-"):
        return "names"
    return role


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Keyring:
    """Private keys by name (`REPO/keys/<name>.key`), loaded lazily and cached."""

    def __init__(self, key_dir: Path, extra: dict[str, NaclSigner] | None = None) -> None:
        self.dir = key_dir
        self._cache: dict[str, NaclSigner] = dict(extra or {})

    def get(self, name: str) -> NaclSigner:
        if name not in self._cache:
            self._cache[name] = load_key(self.dir / f"{name}.key")
        return self._cache[name]

    def have(self, name: str) -> bool:
        return name in self._cache or (self.dir / f"{name}.key").exists()

    def generate(self, name: str) -> NaclSigner:
        self._cache[name] = generate_key(self.dir / f"{name}.key")
        return self._cache[name]

    def forget(self, name: str) -> None:
        """Delete the private key `name` (a revoked publisher's)."""
        self._cache.pop(name, None)
        (self.dir / f"{name}.key").unlink(missing_ok=True)

    def put(self, name: str, signer: NaclSigner) -> None:
        self._cache[name] = signer

    def root_signers(self) -> list[NaclSigner]:
        """Every root key present in the key directory (offline ones are not)."""
        names = sorted(p.stem for p in self.dir.glob("root-*.key"))
        return [self.get(n) for n in names]


def role_key_name(role: str) -> str:
    """Name of the key file that signs `role`."""
    if role.startswith("bin-"):
        return "bins"
    if role.startswith(f"{NAME_PREFIX}-"):
        return NAMES_ROLE  # the name bins share the `names` key (TAP 15 succinct roles)
    return role


class Transaction:
    """Changes to delegated targets roles, committed with one timestamp rename."""

    def __init__(self, metadata_dir: Path, keys: Keyring, expiry: dict[str, timedelta]) -> None:
        self.dir = metadata_dir
        self.keys = keys
        self.expiry = expiry
        try:
            self.timestamp = Metadata[Timestamp].from_file(str(metadata_dir / "timestamp.json"))
            sv = self.timestamp.signed.snapshot_meta.version
            self.snapshot = Metadata[Snapshot].from_file(str(metadata_dir / f"{sv}.snapshot.json"))
        except Exception as e:
            raise RepositoryError(f"cannot read committed metadata in {metadata_dir}: {e}") from e
        self._loaded: dict[str, Metadata[Targets]] = {}
        self.staged: dict[str, Metadata[Targets]] = {}

    def committed_version(self, role: str) -> int:
        mf = self.snapshot.signed.meta.get(f"{role}.json")
        return mf.version if mf else 0

    def has(self, role: str) -> bool:
        return role in self.staged or self.committed_version(role) > 0

    def load(self, role: str) -> Metadata[Targets]:
        """The role as it will be committed (staged copy if any, else the committed one).

        Raises:
            RepositoryError: the role is not in the committed snapshot.
        """
        if role in self.staged:
            return self.staged[role]
        if role not in self._loaded:
            v = self.committed_version(role)
            if v == 0:
                raise RepositoryError(f"role {role!r} is not in the repository")
            path = self.dir / f"{v}.{role}.json"
            try:
                self._loaded[role] = Metadata[Targets].from_file(str(path))
            except Exception as e:
                raise RepositoryError(f"cannot read {path}: {e}") from e
        return self._loaded[role]

    def stage(self, role: str, md: Metadata[Targets]) -> None:
        """Mark `md` as the next version of `role` (version and expiry set at commit)."""
        self.staged[role] = md

    def new_role(self, role: str) -> Metadata[Targets]:
        md = Metadata(Targets(version=1, expires=_now()))
        self.staged[role] = md
        return md

    def _write(self, role: str, md: Metadata[Targets] | Metadata[Snapshot], signer: Signer,
               kind: str) -> bytes:
        md.signed.expires = _now() + self.expiry[kind]
        md.signatures.clear()
        md.sign(signer)
        data = md.to_bytes(SERIALIZER)
        write_atomic(self.dir / f"{md.signed.version}.{role}.json", data)
        return data

    def commit(self) -> int:
        """Write staged roles, a new snapshot, and switch timestamp.json. Returns its version.

        Raises:
            RepositoryError: a key is missing or a write failed.
        """
        snap = self.snapshot.signed
        for role, md in sorted(self.staged.items()):
            # Versions derive from the committed snapshot, not from files on disk.
            md.signed.version = self.committed_version(role) + 1
            self._write(role, md, self.keys.get(role_key_name(role)), expiry_kind(role))
            snap.meta[f"{role}.json"] = MetaFile(version=md.signed.version)
        snap.version += 1
        snap_bytes = self._write("snapshot", self.snapshot, self.keys.get("snapshot"), "snapshot")
        ts = self.timestamp.signed
        # TUF spec 5.5.2/5.5.4: timestamp pins the snapshot's version, length and hash.
        ts.snapshot_meta = MetaFile.from_data(snap.version, snap_bytes, ["sha256"])
        ts.version += 1
        ts.expires = _now() + self.expiry["timestamp"]
        self.timestamp.signatures.clear()
        self.timestamp.sign(self.keys.get("timestamp"))
        write_atomic(self.dir / "timestamp.json", self.timestamp.to_bytes(SERIALIZER))
        written = {role: md.signed.version for role, md in self.staged.items()}
        written["snapshot"] = snap.version
        for role, version in written.items():
            (self.dir / f"{version - KEEP_VERSIONS}.{role}.json").unlink(missing_ok=True)
        self.staged.clear()
        return ts.version


def load_root(metadata_dir: Path) -> Metadata[Root]:
    """The newest root, following N.root.json from 1 (roots are committed before use).

    Raises:
        RepositoryError: no root or unreadable.
    """
    n = 1
    while (metadata_dir / f"{n + 1}.root.json").exists():
        n += 1
    try:
        return Metadata[Root].from_file(str(metadata_dir / f"{n}.root.json"))
    except Exception as e:
        raise RepositoryError(f"cannot read root metadata {n}.root.json: {e}") from e


def read_config(repo: Path) -> dict[str, object]:
    try:
        obj = json.loads((repo / "config.json").read_bytes())
    except (OSError, ValueError) as e:
        raise RepositoryError(f"not a udriver repository (no valid config.json): {repo}") from e
    if not isinstance(obj, dict) or obj.get("format") != 1:
        raise RepositoryError(f"not a udriver repository (bad config.json): {repo}")
    return obj


def expiry_from_config(cfg: dict[str, object]) -> dict[str, timedelta]:
    out = dict(EXPIRY_DEFAULTS)
    raw = cfg.get("expiry_seconds", {})
    if isinstance(raw, dict):
        for k, v in raw.items():
            if k in out and isinstance(v, (int, float)):
                out[k] = timedelta(seconds=v)
    return out


def names_roles(key: Key) -> dict[str, Metadata[Targets]]:
    """The `names` role and its 256 empty succinct bins (see `_owners`), unsigned.

    TUF spec 4.5: `names` delegates with `succinct_roles` (TAP 15) instead of listing
    256 roles, so it stays ~0.5 kB; every bin is terminating and signed by `key`.
    """
    top = Metadata(Targets(version=1, expires=_now(), delegations=Delegations(
        keys={key.keyid: key}, roles=None, succinct_roles=name_bins(key.keyid))))
    out = {NAMES_ROLE: top}
    for b in name_bins(key.keyid).get_roles():
        out[b] = Metadata(Targets(version=1, expires=_now()))
    return out


def make_bin(delegations: dict[str, tuple[object, list[str]]] | None = None) -> Metadata[Targets]:
    """An empty bin role (delegations filled by the caller)."""
    return Metadata(Targets(version=1, expires=_now(),
                            delegations=Delegations(keys={}, roles={})))


def delegated(name: str, keyid: str, paths: list[str]) -> DelegatedRole:
    return DelegatedRole(name, [keyid], 1, True, paths=paths)


def target_path(public: Path, target: str, tf: TargetFile) -> Path:
    """Consistent-snapshot file of a target (TUF spec 5.7.3: `<sha256>.<name>`)."""
    d, _, base = target.rpartition("/")
    return public / "targets" / d / f"{tf.hashes['sha256']}.{base}"


def read_index(public: Path, md: Metadata[Targets], path: str, name: str) -> list[IndexEntry]:
    """The committed index `path` that role `md` lists ([] if it lists none), checked
    against its signed length and hashes.

    Raises:
        RepositoryError: the file is missing, does not match, or is not an index.
    """
    tf = md.signed.targets.get(path)
    if tf is None:
        return []
    p = target_path(public, path, tf)
    try:
        data = p.read_bytes()
        tf.verify_length_and_hashes(data)
    except Exception as e:
        raise RepositoryError(f"committed index {path} is missing or corrupt ({p}): {e}") from e
    return parse_index(data, name)
