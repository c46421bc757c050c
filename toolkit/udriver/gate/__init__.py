"""The acceptance gate: may this wheel or .deb be published?

One function, `admit(path)`, decides for `udriver-repo publish`, the HTTP upload and
`udriver check` alike. It reads the file once (at most `GateLimits.archive_bytes`),
then works only on those bytes, so what it judged is what gets published
(`Admitted.data`). It never extracts, imports or runs anything from the artifact.

It collects every problem before it answers (`GateError.problems`, each a
`(rule, message)` pair); a missing or invalid ID table in an otherwise sound archive
raises `GateIdTableError`, which is also a `ManifestError`. The rules:

- bounds (`_bounds`): the file, the number of members, each member, each compressed
  stream's ratio, and the total expanded, for the wheel's zip and the .deb's `ar`,
  control.tar.* and data.tar.*;
- names and versions agree with the metadata, compared after normalisation (PEP 440:
  `1.0.0.0` is `1.0.0`; Debian policy 5.6.12) and then required to be spelled the same;
- the driver's dist-info (`_rules`): one distribution, `Requires-Dist` only udriver,
  entry points only `[udriver.drivers] <driver> = <manifest's entry point>`;
- wheel (`_wheel`): regular files only, no setuid/world-writable modes, no `.data`
  tree, RECORD complete and true, tags that fit the contents;
- .deb (`_deb`): an allow-list of what `udriver build` writes: no maintainer scripts,
  only the driver's own paths, modes 0644/0755, owner root, the control fields and the
  udev rule derived from the ID table.

`check_wheel_bounds(path)` applies only the bounds, for a client about to unpack a
wheel it downloaded (the store: nothing is written when it fails).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import GateError, GateIdTableError
from ..manifest import DriverManifest
from ._bounds import GateLimits, Tally, check_zip_sizes
from ._deb import MAINTAINER_SCRIPTS, admit_deb
from ._rules import ALLOWED_REQUIRES, version_key
from ._wheel import admit_wheel

__all__ = ["ALLOWED_REQUIRES", "MAINTAINER_SCRIPTS", "Admitted", "GateError", "GateIdTableError",
           "GateLimits", "admit", "check_wheel_bounds"]


@dataclass(frozen=True)
class Admitted:
    """An artifact the gate accepted, with everything it checked."""

    path: Path
    """Where it was read from."""
    kind: str
    """"wheel" or "deb"."""
    manifest: DriverManifest
    """The validated ID table and identity."""
    data: bytes
    """The exact bytes the gate judged (publish these, not the file again)."""
    version_key: str
    """The normalised PEP 440 identity of the version (`1.0.0.0` and `1.0` give `1`):
    two artifacts of one package with the same key are the same version."""
    control: dict[str, str] | None = None
    """For a .deb: the control fields, each checked against or derived from the ID table,
    in `udriver._debpolicy.CONTROL_FIELDS` order (None for a wheel)."""


#: Problems with the archive itself: with any of these the artifact is an invalid package
#: first, whatever its ID table says.
_ARCHIVE_RULES = frozenset({"archive", "deb-format", "bomb", "size", "member-name"})


_DEFAULT_LIMITS = GateLimits()


def _raise(name: str, problems: list[tuple[str, str]]) -> None:
    rules = {rule for rule, _ in problems}
    if "id-table" in rules and not rules & _ARCHIVE_RULES:
        raise GateIdTableError(name, problems)
    raise GateError(name, problems)


def _read(path: Path, limits: GateLimits) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limits.archive_bytes + 1)
    except OSError as e:
        raise GateError(path.name, [("archive", f"cannot read it: {e.strerror}")]) from e
    if len(data) > limits.archive_bytes:
        raise GateError(path.name, [("size", (f"the file is larger than "
                                               f"{limits.archive_bytes} bytes"))])
    return data


def admit(path: str | Path, limits: GateLimits = _DEFAULT_LIMITS) -> Admitted:
    """Decide whether a driver wheel or .deb may be published.

    Args:
        path: the artifact; its name (`*.whl` or `*.deb`) is part of what is checked.
        limits: the bounds; the defaults are what the repository enforces.

    Returns:
        The accepted artifact, its bytes and its validated metadata.

    Raises:
        GateIdTableError: the ID table is missing or invalid (and maybe more problems).
        GateError: any other problem; `.problems` lists every one.
    """
    p = Path(path)
    if p.name.endswith(".whl"):
        kind = "wheel"
    elif p.name.endswith(".deb"):
        kind = "deb"
    else:
        raise GateError(p.name, [("file-name", ("not a driver artifact (expected a .whl or "
                                                ".deb file name)"))])
    data = _read(p, limits)
    tally = Tally(limits, len(data))
    control = None
    if kind == "wheel":
        m = admit_wheel(p.name, data, tally)
    else:
        m, control = admit_deb(p.name, data, tally)
    if tally.problems or m is None:
        _raise(p.name, tally.problems or [("archive", "no driver metadata found")])
    assert m is not None
    return Admitted(p, kind, m, data, version_key(m.version), control)


def check_wheel_bounds(path: str | Path, limits: GateLimits = _DEFAULT_LIMITS) -> None:
    """Only the gate's size and ratio bounds, for a wheel about to be unpacked.

    Checks the declared sizes in the zip's central directory, which bound what any
    zipfile-based unpacker (pypa/installer) can write; reads nothing else.

    Raises:
        GateError: not a zip, or over a bound (every such problem listed).
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            zf = zipfile.ZipFile(f) if size <= limits.archive_bytes else None
            if zf is None:
                raise GateError(p.name, [("size", (f"the file is larger than "
                                                   f"{limits.archive_bytes} bytes"))])
            with zf:
                tally = Tally(limits, size)
                check_zip_sizes(zf, tally)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise GateError(p.name, [("archive", f"not a valid wheel (zip) file: {e}")]) from e
    if tally.problems:
        raise GateError(p.name, tally.problems)

