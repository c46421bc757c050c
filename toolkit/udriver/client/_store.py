"""The local driver store: one directory per version, an atomic `current` symlink.

Layout (see `udriver.paths`):

    <state>/drivers/<driver>/.lock           flock(2) held for any change
    <state>/drivers/<driver>/<version>/      a complete install (pypa/installer)
    <state>/drivers/<driver>/current  -> <version>
    <state>/drivers/<driver>/previous -> <version>
    <state>/drivers/<driver>/.stage-*        an install in progress (or killed)

Order of an install, chosen so that a SIGKILL at any point leaves `current` pointing
at a complete version:

1. take the driver's lock; delete leftovers (`.stage-*`, `.link-*`, `.trash-*`) of
   installs that were killed (nobody else can be running: we hold the lock);
2. check the wheel against the acceptance gate's size and ratio bounds
   (`udriver.gate.check_wheel_bounds`: declared sizes, per member and in total, which
   bound what pypa/installer can write; a bomb writes nothing), then validate its RECORD (every file listed, sizes and sha256 match), then let
   pypa/installer write it into a fresh `.stage-*` directory on the same filesystem,
   with every scheme path inside it (installer refuses paths that escape it);
3. rename the stage to `<version>` (rename(2) is atomic) and fsync the parent;
4. point `previous` at the old version, then `current` at the new one, each by
   creating a symlink under a temporary name and renaming it over the old link;
5. prune versions other than `current` and `previous` (renamed to `.trash-*` first,
   so a half-deleted tree never looks like a version).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._log import getLogger
from .._record import field
from .._record import record as record_class
from ..errors import InstallError, PackageError
from ..fsio import fsync_dir, replace_atomic, write_atomic
from ..manifest import MANIFEST_NAME, DriverManifest
from ..paths import state_dir
from ._history import is_held, record, set_hold

__all__ = ["DriverStore", "InstalledDriver"]

log = getLogger(__name__)


def _rmtree(path: Path, ignore_errors: bool = False) -> None:
    """shutil.rmtree, imported on use: shutil loads bz2 and lzma (shared libraries), a
    cost `udriver devices` and `status`, which only read the store, need not pay."""
    import shutil
    shutil.rmtree(path, ignore_errors=ignore_errors)


_VERSION_DIR_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}$")
_LEFTOVER_PREFIXES = (".stage-", ".link-", ".trash-")
_ORIGIN = ".origin.json"
"""Per driver: {"repo", "owner"} it was installed from (see `DriverStore.origin`)."""


@record_class(frozen=True)
class InstalledDriver:
    """What the store holds for one driver."""

    driver: str
    """Driver name."""
    current: str | None
    """Version `current` points at."""
    previous: str | None
    """Version `previous` points at (what `rollback` returns to)."""
    versions: list[str] = field(default_factory=list)
    """Every complete version directory."""
    path: Path | None = None
    """`<state>/drivers/<driver>/current` when there is a current version."""
    held: bool = field(default=False, compare=False)
    """Held at its version: `udriver update` leaves it (see `_history`)."""

    def manifest(self) -> DriverManifest | None:
        """The current version's embedded `udriver.json`, or None if unreadable."""
        if self.path is None:
            return None
        for mf in self.path.glob(f"*.dist-info/{MANIFEST_NAME}"):
            try:
                return DriverManifest.from_json(mf.read_bytes(), str(mf))
            except (OSError, PackageError) as e:
                log.warning("cannot read %s: %s", mf, e)
        return None


def _change(old: str | None, new: str) -> str:
    """The history's word for switching `current` from `old` to `new`."""
    if old is None:
        return "install"
    from packaging.version import InvalidVersion, Version
    try:
        return "upgrade" if Version(new) > Version(old) else "downgrade"
    except InvalidVersion:
        return "install"


class DriverStore:
    """Install, switch, roll back and remove driver versions.

    Args:
        root: the store directory; default `<state>/drivers`.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else state_dir() / "drivers"

    # -- reading -------------------------------------------------------------------
    def _link(self, d: Path, name: str) -> str | None:
        try:
            target = os.readlink(d / name)
        except OSError:
            return None
        return target if (d / target).is_dir() and _VERSION_DIR_RE.match(target) else None

    def get(self, driver: str) -> InstalledDriver | None:
        """The store's view of `driver`, or None if it was never installed."""
        d = self.root / driver
        if not d.is_dir():
            return None
        versions = sorted(p.name for p in d.iterdir()
                          if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
        cur = self._link(d, "current")
        if not versions and cur is None:
            return None
        return InstalledDriver(driver, cur, self._link(d, "previous"), versions,
                               d / "current" if cur else None, is_held(self.root, driver))

    def installed(self) -> list[InstalledDriver]:
        """Every driver with at least one version, sorted by name."""
        if not self.root.is_dir():
            return []
        out = [self.get(p.name) for p in sorted(self.root.iterdir()) if p.is_dir()]
        return [i for i in out if i is not None]

    # -- changing --------------------------------------------------------------------
    @contextmanager
    def _locked(self, driver: str) -> Iterator[Path]:
        d = self.root / driver
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InstallError(f"cannot create {str(d)!r}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            for p in d.iterdir():  # step 1: leftovers of killed installs
                if p.name.startswith(_LEFTOVER_PREFIXES):
                    log.info("removing leftover %s", p)
                    if p.is_dir() and not p.is_symlink():
                        _rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
            yield d
        finally:
            os.close(fd)

    def _set_link(self, d: Path, name: str, version: str) -> None:
        replace_atomic(d / name, lambda tmp: os.symlink(version, tmp),  # rename(2): atomic
                       prefix=f".link-{name}-")

    def install_wheel(self, wheel: Path, manifest: DriverManifest | None = None,
                      repo: str = "") -> InstalledDriver:
        """Install `wheel` as a new version and make it current (module steps 1-5).

        Args:
            wheel: a verified wheel file.
            manifest: its embedded manifest if already read (and checked) by the caller.
            repo: the repository it came from, for the history ("" for a local wheel).

        Raises:
            GateError: the wheel would unpack to more than the gate's bounds (a
                PackageError; nothing is written, not even the driver's directory).
            PackageError: the wheel is invalid (RECORD mismatch, bad manifest, unsafe paths).
            InstallError: the store could not be written.
        """
        from ..gate import check_wheel_bounds  # imported on use: `status` needs none of it

        check_wheel_bounds(wheel)  # step 2, first half: before anything touches the store
        if manifest is None:
            from ..artifacts import read_wheel_manifest  # zipfile &c.: not for `status`

            manifest = read_wheel_manifest(wheel)
        driver, version = manifest.driver, manifest.version
        if not _VERSION_DIR_RE.match(version):
            raise PackageError(f"Unsafe version for a directory name: {version!r}")
        with self._locked(driver) as d:
            old = self._link(d, "current")
            if not (d / version).is_dir():
                self._stage(wheel, d, version)
            if old != version:
                if old is not None:
                    self._set_link(d, "previous", old)
                self._set_link(d, "current", version)
                fsync_dir(d)
            self._prune(d)
        log.info("installed %s %s (previous: %s)", driver, version, old)
        if old != version:
            record(_change(old, version), driver, before=old, after=version, repo=repo,
                   store_root=self.root)
        info = self.get(driver)
        assert info is not None
        return info

    def _stage(self, wheel: Path, d: Path, version: str) -> None:
        # pypa/installer is imported on use: `udriver devices` and `status` read the store
        # without installing anything.
        import tempfile

        from installer import install as _installer_install
        from installer.destinations import SchemeDictionaryDestination
        from installer.exceptions import InstallerError
        from installer.sources import WheelFile

        stage = Path(tempfile.mkdtemp(prefix=f".stage-{version}-", dir=d))
        # mkdtemp makes it 0700; the driver runs as an unprivileged user and must read it.
        os.chmod(stage, 0o755)
        schemes = {"purelib": stage, "platlib": stage, "headers": stage / "include",
                   "scripts": stage / "bin", "data": stage / "data"}
        dest = SchemeDictionaryDestination({k: str(v) for k, v in schemes.items()},
                                           interpreter=sys.executable, script_kind="posix")
        try:
            with WheelFile.open(wheel) as src:
                # installer does not check hashes by itself: RECORD first, contents too.
                src.validate_record(validate_contents=True)
                _installer_install(src, dest, {"INSTALLER": b"udriver\n"})
        except WheelFile.validation_error as e:
            _rmtree(stage, ignore_errors=True)
            raise PackageError(f"Invalid wheel (RECORD check failed: {'; '.join(e.issues)}): "
                               f"{wheel.name!r}") from e
        except (InstallerError, ValueError, KeyError, OSError) as e:
            _rmtree(stage, ignore_errors=True)
            if isinstance(e, OSError) and not isinstance(e, FileExistsError):
                raise InstallError(f"cannot install {wheel.name!r} into {str(d)!r}: {e}") from e
            raise PackageError(f"Invalid wheel ({e}): {wheel.name!r}") from e
        except BaseException:
            _rmtree(stage, ignore_errors=True)
            raise
        os.rename(stage, d / version)  # step 3: atomic
        fsync_dir(d)

    def _prune(self, d: Path) -> None:
        keep = {self._link(d, "current"), self._link(d, "previous")}
        for p in d.iterdir():
            if p.name.startswith(".") or p.is_symlink() or not p.is_dir() or p.name in keep:
                continue
            trash = d / f".trash-{p.name}-{os.getpid()}"
            os.rename(p, trash)
            _rmtree(trash, ignore_errors=True)

    def rollback(self, driver: str) -> tuple[str, str]:
        """Swap `current` and `previous`; returns (from_version, to_version).

        Raises:
            InstallError: not installed, or no previous version to return to.
        """
        info = self.get(driver)
        if info is None:
            raise InstallError(f"driver {driver!r} is not installed")
        if info.previous is None or info.previous == info.current:
            raise InstallError(f"driver {driver!r} has no previous version to roll back to "
                               f"(current: {info.current})")
        with self._locked(driver) as d:
            cur, prev = self._link(d, "current"), self._link(d, "previous")
            assert cur is not None and prev is not None
            self._set_link(d, "current", prev)
            self._set_link(d, "previous", cur)
            fsync_dir(d)
        log.info("rolled back %s from %s to %s", driver, cur, prev)
        record("rollback", driver, before=cur, after=prev, store_root=self.root)
        # Held, so that `udriver update` does not upgrade it straight back (`unhold`).
        set_hold(self.root, driver, True)
        return cur, prev

    def hold(self, driver: str, held: bool = True) -> bool:
        """Hold `driver` at its version (or release it); True if that changed anything.

        Raises:
            InstallError: not installed.
        """
        return set_hold(self.root, driver, held)

    def remove(self, driver: str) -> list[str]:
        """Remove every version of `driver`; returns the versions removed.

        Raises:
            InstallError: not installed.
        """
        info = self.get(driver)
        if info is None:
            raise InstallError(f"driver {driver!r} is not installed")
        with self._locked(driver) as d:
            (d / "current").unlink(missing_ok=True)  # first: nothing looks installed any more
            (d / "previous").unlink(missing_ok=True)
            fsync_dir(d)
            self._prune(d)
        _rmtree(self.root / driver, ignore_errors=True)
        record("remove", driver, before=info.current, store_root=self.root)
        return info.versions

    # -- provenance (name ownership) -----------------------------------------------
    def origin(self, driver: str) -> tuple[str, str] | None:
        """(repository, owner role) `driver` was installed from, or None if not recorded
        (a local wheel, or installed before owners were recorded)."""
        try:
            obj = json.loads((self.root / driver / _ORIGIN).read_bytes())
            repo, owner = obj["repo"], obj["owner"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return (repo, owner) if isinstance(repo, str) and isinstance(owner, str) else None

    def set_origin(self, driver: str, repo: str, owner: str) -> None:
        """Record where `driver` comes from, so a later install or update whose owner
        differs is refused instead of mixing two vendors' code under one name.

        Raises:
            InstallError: the record cannot be written.
        """
        data = json.dumps({"repo": repo, "owner": owner}, sort_keys=True).encode()
        with self._locked(driver) as d:
            try:
                write_atomic(d / _ORIGIN, data, prefix=".link-origin-")
            except OSError as e:
                raise InstallError(f"cannot record the origin of {driver!r}: {e}") from e
