"""The gate's rules for a driver wheel (binary distribution format spec, PEP 427/491).

Order: inflate every member within the bounds (`_bounds.scan_zip`), then check the
members (names, types, modes, no `.data` tree), then the ID table, then the single
dist-info (`_rules`), its RECORD (every file listed with its sha256 and size, so what
the client's store checks is what the gate saw), then the file name against the
metadata, the tags against the contents, and the ABI.
"""

from __future__ import annotations

import csv
import io
import re
import stat

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..manifest import MANIFEST_NAME, DriverManifest
from ._bounds import Tally, ZipMember, scan_zip
from ._rules import check_dist_info, check_distributions, check_manifest_abi, parse_manifest

__all__ = ["admit_wheel"]

_KEEP = {"METADATA", "entry_points.txt", MANIFEST_NAME, "RECORD", "WHEEL"}
_BAD_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWOTH


def _keep(name: str) -> bool:
    top, _, base = name.partition("/")
    return top.endswith(".dist-info") and base in _KEEP


def admit_wheel(filename: str, data: bytes, tally: Tally) -> DriverManifest | None:
    """Apply every wheel rule; returns the manifest when one could be read."""
    members = scan_zip(data, tally, _keep)
    if members is None:
        return None
    names = [z.name for z in members]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        tally.add("member-name", f"duplicate member names in the wheel: {dups[:5]}")
    for z in members:
        _member(z, tally)
    top = {n.split("/")[0] for n in names}
    found = [z for z in members if _keep(z.name) and z.name.endswith("/" + MANIFEST_NAME)]
    if len(found) > 1:
        tally.add("dist-info", f"more than one `{MANIFEST_NAME}`: "
                  f"{', '.join(z.name for z in found)}")
    m = parse_manifest(found[0].data if found else None, f"{filename}:{found[0].name}"
                       if found else filename, tally,
                       f"no `*.dist-info/{MANIFEST_NAME}` in the wheel; build it with "
                       "`udriver build` so the ID table is embedded")
    if m is None:
        return None
    dist = check_distributions(top, m, "the wheel", tally)
    if dist is not None:
        files = {z.name.split("/", 1)[1]: z.data for z in members
                 if z.name.startswith(dist + "/") and z.name.count("/") == 1 and z.data is not None}
        check_dist_info(files, dist, m, tally)
        if found and not found[0].name.startswith(dist + "/"):
            tally.add("dist-info", f"the ID table is in {found[0].name}, not in {dist}/")
        if "WHEEL" not in files:
            tally.add("dist-info", f"no `{dist}/WHEEL`")
        _record(files.get("RECORD"), dist, members, tally)
    if "udriver" in top:
        tally.add("layout", "the wheel ships a top-level `udriver` package, which would "
                  "shadow the runtime that loads the driver")
    tags = _file_name(filename, m, tally)
    native = any(n.endswith(".so") or ".so." in n for n in names)
    if not native and tags and not all(
            t.interpreter.startswith("py") and t.abi == "none" and t.platform == "any"
            for t in tags):
        tally.add("tags", "no native code but not tagged py3-none-any")
    if native and tags and not all(t.abi == "abi3" and t.platform.startswith("manylinux")
                                   for t in tags):
        tally.add("tags", "native code must be tagged cp3xx-abi3-manylinux_*")
    check_manifest_abi(m, tally)
    return m


def _member(z: ZipMember, tally: Tally) -> None:
    kind = stat.S_IFMT(z.mode)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        what = "a symlink" if kind == stat.S_IFLNK else f"of type {kind:o}"
        tally.add("member-type", f"member {z.name!r} is {what}; a wheel holds only regular "
                  "files")
    if stat.S_IMODE(z.mode) & _BAD_BITS:
        tally.add("mode", f"member {z.name!r} has mode {stat.S_IMODE(z.mode):04o} "
                  "(setuid, setgid, sticky or world-writable)")
    if re.match(r"^[^/]+\.data(/|$)", z.name):
        tally.add("layout", f"member {z.name!r}: a `.data` directory installs files outside "
                  "the driver's directory; keep every file inside the package")


def _file_name(filename: str, m: DriverManifest, tally: Tally) -> frozenset[Tag]:
    """The file name (PEP 427: `{name}-{version}(-{build})?-{py}-{abi}-{plat}.whl`)
    against the manifest; returns the tags (empty when the name is invalid)."""
    try:
        name, ver, _, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as e:
        tally.add("file-name", f"invalid wheel file name: {e}")
        return frozenset()
    spelled = filename.split("-")[1]
    try:
        same = canonicalize_name(m.package) == name and ver == Version(m.version)
    except InvalidVersion:
        same = False
    if not same:
        tally.add("file-name", f"file name disagrees with the metadata: file name says "
                  f"{name} {ver} but the manifest says {m.package} {m.version}")
    elif spelled != m.version:
        tally.add("file-name", f"file name disagrees with the metadata: version {spelled!r} "
                  f"is the same PEP 440 version as the manifest's {m.version!r} but spelled "
                  f"differently; name the file with {m.version!r}")
    return frozenset(tags)


def _record(data: bytes | None, dist: str, members: list[ZipMember], tally: Tally) -> None:
    """RECORD lists every file with `sha256=<urlsafe b64>` and its size (PEP 376/427)."""
    if data is None:
        tally.add("record", f"no `{dist}/RECORD`")
        return
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as e:
        tally.add("record", f"`{dist}/RECORD` is not a UTF-8 CSV file: {e}")
        return
    listed: dict[str, tuple[str, str]] = {}
    for row in rows:
        if not row:
            continue
        if len(row) != 3:
            tally.add("record", f"`{dist}/RECORD` row is not `path,hash,size`: {row!r}")
            continue
        listed[row[0]] = (row[1], row[2])
    problems: list[str] = []
    for z in members:
        if z.is_dir or z.name == f"{dist}/RECORD":
            continue
        entry = listed.pop(z.name, None)
        if entry is None:
            problems.append(f"{z.name} is not listed")
        elif entry != (f"sha256={z.sha256}", str(z.size)):
            problems.append(f"{z.name} has hash/size {entry[0] or '(none)'},{entry[1] or '(none)'}"
                            f", the file is sha256={z.sha256},{z.size}")
    listed.pop(f"{dist}/RECORD", None)
    problems += [f"{n} is listed but not in the wheel" for n in sorted(listed)]
    if problems:
        tally.add("record", f"`{dist}/RECORD` does not match the wheel: "
                  + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))
