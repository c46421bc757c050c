"""Planning a publish's apt change before anything is written.

A publish decides on TUF and on apt first and writes neither if either is refused
(issue 9 case 3): `plan_apt` builds every stanza from validated data
(`_packages.driver_stanza`: the manifest and the file's own hashes and size, never the
upload's control fields), checks that no pool path would be replaced
(`AptView.check_pool_file`), and re-encodes the touched chunks in memory
(`AptView.plan`); the caller writes pool files and commits the plan only after TUF.
Driver debs go to `pool/main/<vendor-role>/<package>/<file>`, so two vendors' files
never share a path (case 1).
"""

from __future__ import annotations

from ._apt import AptView
from ._packages import Chunk, deb_stanza, driver_stanza
from ._validate import Artifact

__all__ = ["plan_apt", "publish_apt_debs"]


def plan_apt(apt: AptView, vrole: str, debs: list[Artifact]
             ) -> tuple[dict[str, bytes], dict[str, Chunk] | None]:
    """Pool files to write and the planned apt view (None: unchanged) for `debs`.

    Stanzas are built from validated data only (`_packages.driver_stanza`); a deb goes to
    `pool/main/<vendor-role>/...`, or stays at the path it was published at before
    (same bytes). Writes nothing.

    Raises:
        PackageError: a control value is malformed.
        ConflictError: a pool path holds other bytes.
        RepositoryError: the committed apt view cannot be read.
    """
    if not debs:
        return {}, None
    stanzas: dict[str, str] = {}
    pool: dict[str, bytes] = {}
    for a in debs:
        assert a.control is not None
        legacy = apt.pool_path(a.control.get("Package", "x"), a.path.name)
        rel = legacy if apt.has_pool_file(legacy, a.data) else \
            apt.pool_path(a.control.get("Package", "x"), a.path.name, vrole)
        apt.check_pool_file(rel, a.data)
        stanzas[rel] = driver_stanza(a.control, a.manifest, rel, a.data)
        pool[rel] = a.data
    return pool, apt.plan(stanzas)

def publish_apt_debs(apt: AptView, debs: list[tuple[dict[str, str], str, bytes]]) -> bool:
    """Add an operator's system debs to the apt view (planned before any write)."""
    stanzas: dict[str, str] = {}
    pool: dict[str, bytes] = {}
    for control, name, data in debs:
        rel = apt.pool_path(control["Package"], name)
        apt.check_pool_file(rel, data)
        stanzas[rel] = deb_stanza(control, rel, data)
        pool[rel] = data
    plan = apt.plan(stanzas)
    for rel, data in pool.items():
        apt.add_pool_file(rel, data)
    if plan is None:
        return False
    apt.commit_plan(plan)
    return True
