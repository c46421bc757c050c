"""The driver build toolchain: `udriver new`, `udriver build`, `udriver check`.

    new_driver(name, pci, ...)   render driver-template/ into a new project (_template)
    build_project(path)          pyproject -> checked wheel + .deb in dist/ (_builder)
    build_deb(wheel, manifest..) the .deb of a built wheel, without a project tree (_deb)
    check_artifact(path)         PASSED/FAILED verdicts for a wheel or .deb (_checks)
    load_project(path)           validated `[tool.udriver]` with file:line errors (_project)

Contract with the rest of udriver (see driver-template/README.md):
- wheel: `*.dist-info/udriver.json` (udriver.manifest), entry point in `udriver.drivers`;
  pure Python -> py3-none-any, C (cffi, py_limited_api) -> cp311-abi3-manylinux_2_X;
- deb `udriver-driver-<driver>`: files under /usr/lib/udriver/drivers/<driver>/, manifest
  at /usr/share/udriver/drivers/<driver>.json, `Modaliases: udriver(...)`,
  /usr/lib/udev/rules.d/60-udriver-<driver>.rules, `Depends: udriver (>= A), udriver (<< B)`.
"""

from ._builder import BuildResult, build_project, source_date_epoch
from ._checks import CheckResult, check_artifact
from ._deb import build_deb, deb_package_name, deb_version, runtime_depends, udev_rule_lines
from ._project import Project, load_project
from ._template import NewDriver, new_driver

__all__ = [
    "BuildResult",
    "CheckResult",
    "NewDriver",
    "Project",
    "build_deb",
    "build_project",
    "check_artifact",
    "deb_package_name",
    "deb_version",
    "load_project",
    "new_driver",
    "runtime_depends",
    "source_date_epoch",
    "udev_rule_lines",
]
