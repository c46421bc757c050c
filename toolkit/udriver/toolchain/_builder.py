"""`udriver build`: a driver project -> `dist/<wheel>` and `dist/<deb>`, checked.

Order of operations:
1. load and validate `pyproject.toml` (`_project`): a bad ID table, entry point or ABI
   stops here, before anything is compiled;
2. in a fresh temporary directory: build the wheel (`_wheel`), embed the manifest and
   normalise it (`_wheelfile`), build the .deb from it (`_deb`);
3. run the `udriver check` checks on both; any FAILED line fails the build;
4. only then copy each artifact into `dist/` as `.<name>.part` and rename it into place,
   so a failed build leaves `dist/` exactly as it was and a reader never sees half a file.

SOURCE_DATE_EPOCH: the environment's value, else the time of the project's last git
commit, else the mtime of `pyproject.toml`. The same epoch and source give the same bytes.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BuildError
from ..fsio import replace_atomic
from ._checks import CheckResult, check_deb, check_wheel
from ._deb import build_deb
from ._project import Project, load_project
from ._wheel import build_wheel
from ._wheelfile import rewrite_wheel

__all__ = ["BuildResult", "build_project", "source_date_epoch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """What `build_project` wrote."""

    project: Project
    """The validated project."""
    wheel: Path
    """`dist/<wheel>`."""
    deb: Path | None
    """`dist/<deb>`, None with `deb=False`."""
    checks: dict[str, list[CheckResult]] = field(default_factory=dict)
    """Artifact file name -> the checks run on it (all passed)."""
    epoch: int = 0
    """The SOURCE_DATE_EPOCH used."""


def source_date_epoch(root: Path) -> int:
    """SOURCE_DATE_EPOCH for a build of `root` (see the module docstring).

    Raises:
        BuildError: SOURCE_DATE_EPOCH is set but not a non-negative integer.
    """
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env is not None and env.strip():
        if not re.fullmatch(r"[0-9]+", env.strip()):
            raise BuildError(f"SOURCE_DATE_EPOCH must be seconds since 1970, got {env!r}")
        return int(env)
    try:
        proc = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%ct", "--", "."],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              timeout=30, check=False)
        if proc.returncode == 0 and proc.stdout.strip().isdigit():
            return int(proc.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return int((root / "pyproject.toml").stat().st_mtime)


def _glibc(wheel: Path) -> tuple[int, int] | None:
    m = re.search(r"manylinux_(\d+)_(\d+)_", wheel.name)
    if m:
        return int(m.group(1)), int(m.group(2))
    return (2, 5) if "manylinux1" in wheel.name else None


def build_project(path: str | Path = ".", *, out_dir: str | Path | None = None,
                  deb: bool = True) -> BuildResult:
    """Build and check a driver project; write its wheel (and .deb) into `dist/`.

    Raises:
        ManifestError: the project's `pyproject.toml` / ID table is invalid.
        AbiError: the project needs an ABI this udriver does not provide.
        BuildError: compiling, auditwheel, dpkg-deb or a check failed; `dist/` unchanged.
    """
    project = load_project(path)
    dist = Path(out_dir) if out_dir else project.root / "dist"
    epoch = source_date_epoch(project.root)
    log.info("building %s %s (SOURCE_DATE_EPOCH=%d)", project.name, project.version, epoch)
    with tempfile.TemporaryDirectory(prefix="udriver-build-") as tmp:
        work = Path(tmp)
        (work / "wheel").mkdir()
        raw = build_wheel(project, work / "wheel", epoch)
        out = work / "out"
        out.mkdir()
        wheel = out / raw.name
        rewrite_wheel(raw, wheel, project.manifest(), epoch)
        checks = {wheel.name: check_wheel(wheel, project=project)}
        debfile = None
        if deb:
            (work / "deb").mkdir()
            debfile = build_deb(wheel, project.manifest(), maintainer=project.maintainer,
                                summary=project.summary, license_name=project.license,
                                epoch=epoch, work=work / "deb", out_dir=out,
                                native_glibc=_glibc(wheel) if project.has_c else None)
            checks[debfile.name] = check_deb(debfile, project=project)
        failed = [f"{name}: {c.line()}" for name, cs in checks.items() for c in cs if not c.ok]
        if failed:
            raise BuildError("the built artifacts fail their checks (dist/ left unchanged):\n  "
                             + "\n  ".join(failed))
        written = _publish([p for p in (wheel, debfile) if p is not None], dist)
    return BuildResult(project, written[0], written[1] if deb else None, checks, epoch)


def _publish(files: list[Path], dist: Path) -> list[Path]:
    """Copy each file to `dist/.<name>.part`, then rename it into place."""
    try:
        dist.mkdir(parents=True, exist_ok=True)
        out = []
        for f in files:
            replace_atomic(dist / f.name, functools.partial(shutil.copyfile, f), 0o644)
            out.append(dist / f.name)
        return out
    except OSError as e:
        raise BuildError(f"cannot write into {dist}: {e.strerror}") from e
