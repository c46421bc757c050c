"""Name ownership: which vendor role owns each driver and package name.  (pure)

A driver name decides what runs on a client: it is the wheel's `udriver.drivers` entry
point, the client store's directory, the .deb package `udriver-driver-<name>` and its
udev rules file. TUF's delegations (spec 4.5) bind a vendor's key to target *paths*
(`drivers/<vvvv>/*`, `index/<vvvv>/*`), not to the names inside those files, so without
more any vendor could sign an index entry named after another vendor's driver. The
repository therefore records, in signed metadata that clients check, which vendor role
owns each name:

    targets ─ names              paths ["names/*"], online `names` key
               └─ names-00 .. names-ff   TAP 15 succinct hash bins (bit_length 8), same key
                    target names/<canonical name>
                      custom {"owner": "vendor-<x>"}   (file: the same record as JSON)

A client looking up k names fetches the `names` role (one succinct delegation, ~0.5 kB)
and at most k bins, whatever the size of the repository. The repository signs a record
only after checking the claim (first publish assigns a free name; `udriver-repo names
assign` is the operator's override), the same way `class` is signed after checking the
publisher's class grant.

Canonical names: lower case with runs of `-`, `_` and `.` folded to `-` (PEP 503), so
`edu_x`, `edu-x` and `Edu.X` are one name, as they are for pip (the wheel project) and
for the deb package name (`deb_package_name` maps `_` to `-`). A driver claims its
driver name and its distribution (wheel project) name; both must be free or its own.

This module is pure: it decides over records and names and never touches files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from tuf.api.metadata import SuccinctRoles, TargetFile

from udriver.repoformat import RESERVED, canonical_name, name_target

__all__ = [
    "NAME_BITS",
    "NAME_PREFIX",
    "deb_version_cmp",
    "name_bins",
    "name_record",
    "owner_of",
    "ownership_problems",
    "record_target",
    "version_problems",
]

NAME_BITS = 8
"""TAP 15 `bit_length`: 256 bins `names-00`..`names-ff`."""
NAME_PREFIX = "names"
"""TAP 15 `name_prefix` of the bins."""


def name_bins(keyid: str) -> SuccinctRoles:
    """The succinct hash-bin delegation of the `names` role (TAP 15)."""
    return SuccinctRoles([keyid], 1, NAME_BITS, NAME_PREFIX)


def name_record(name: str, owner: str) -> bytes:
    """The bytes of target `names/<name>`: the record itself, deterministic JSON."""
    obj = {"format": 1, "name": canonical_name(name), "owner": owner}
    return (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()


def record_target(name: str, owner: str) -> tuple[TargetFile, bytes]:
    """The signed target for `name` owned by role `owner`, and its file's bytes.

    The owner is in the target's `custom` field (TUF spec 4.5 "custom"), so a client
    reads it from the verified metadata without downloading the file.
    """
    data = name_record(name, owner)
    tf = TargetFile.from_data(name_target(name), data, ["sha256"])
    tf.unrecognized_fields["custom"] = {"owner": owner}
    return tf, data


def owner_of(tf: TargetFile | None) -> str | None:
    """The owner role a name record names, or None (no record, or a malformed one)."""
    if tf is None:
        return None
    owner = tf.custom.get("owner") if isinstance(tf.custom, dict) else None
    return owner if isinstance(owner, str) and owner else None


def ownership_problems(role: str, owners: Mapping[str, str | None]) -> list[str]:
    """Why role `role` may not publish names owned as in `owners` (name -> owner or None
    for a free name). An empty list: every name is free or already `role`'s."""
    return [f"the name `{n}` is reserved until the repository's operator assigns it"
            if o == RESERVED else f"the name `{n}` belongs to {o!r}, not {role!r}"
            for n, o in sorted(owners.items()) if o is not None and o != role]


# -- versions ------------------------------------------------------------------------

def _order(c: str) -> int:
    # deb-version(7): letters sort earliest, then non-letters; `~` before anything,
    # even the end of the part.
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of one upstream-version or revision part (deb-version(7))."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first = 0
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            first = first or ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first:
            return first
    return 0


def _split_deb_version(v: str) -> tuple[int, str, str]:
    epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    try:
        e = int(epoch or "0")
    except ValueError:
        e = 0
    return e, upstream, revision


def deb_version_cmp(a: str, b: str) -> int:
    """Compare two Debian versions as dpkg does (deb-version(7)): <0, 0 or >0."""
    ea, ua, ra = _split_deb_version(a)
    eb, ub, rb = _split_deb_version(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _same_deb_version(a: str, b: str) -> bool:
    """Equal for dpkg, or (driver debs carry the PEP 440 version as their upstream
    version, `udriver build`'s `deb_version`) equal upstream versions under PEP 440."""
    if deb_version_cmp(a, b) == 0:
        return True
    (ea, ua, ra), (eb, ub, rb) = _split_deb_version(a), _split_deb_version(b)
    try:
        return (ea, ra) == (eb, rb) and Version(ua) == Version(ub)
    except InvalidVersion:
        return False


def _identity(filename: str) -> tuple[str, str, str] | None:
    """(kind, canonical package, version text) of a driver file name, or None."""
    if filename.endswith(".whl"):
        try:
            name, ver, _, _ = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        return "wheel", str(canonicalize_name(name)), str(ver)
    if filename.endswith(".deb"):
        parts = filename[:-len(".deb")].split("_")
        if len(parts) != 3:
            return None
        return "deb", parts[0], parts[1]
    return None


def version_problems(existing: Iterable[str], new: Iterable[str]) -> list[str]:
    """New driver file names that repeat a published version under another spelling.

    Equal versions are compared normalised: PEP 440 for wheels (`1.0.0.0` is `1.0.0`,
    PEP 440 "Normalization"), dpkg's order for debs (`1.0-01` is `1.0-1`), and for debs
    also PEP 440 on the upstream part (`1.0.0.0-1` is `1.0.0-1`: both are the deb of
    a driver whose PEP 440 versions are equal). A file name
    equal to a published one is not a problem here (its bytes are compared elsewhere).

    Args:
        existing: base names of the files a role already lists.
        new: base names of the files being published.
    """
    by_key: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for f in existing:
        ident = _identity(f)
        if ident is not None:
            by_key.setdefault(ident[:2], []).append((ident[2], f))
    problems: list[str] = []
    for f in new:
        ident = _identity(f)
        if ident is None:
            continue
        kind, pkg, ver = ident
        for other_ver, other in by_key.get((kind, pkg), []):
            if other == f:
                continue
            same = (Version(other_ver) == Version(ver) if kind == "wheel"
                    else _same_deb_version(other_ver, ver))
            if same:
                problems.append(f"{f} has the same version as the published {other} "
                                f"({ver} == {other_ver} once normalised); publish a new version")
    return problems
