"""Rules a wheel and a .deb share: the ID table, versions, and the driver's dist-info.

The dist-info decides what code a client runs: `importlib.metadata` finds every
`*.dist-info` and `*.egg-info` at the top of a sys.path entry, and the runtime loads the
`udriver.drivers` entry point by name. So a driver's tree holds exactly one
distribution, whose `entry_points.txt` holds exactly one entry point, named after the
driver itself (binary distribution format spec, "The .dist-info directory"; entry
points spec, "File format"), and whose METADATA requires nothing but udriver (core
metadata spec, `Requires-Dist`): a publisher cannot name another vendor's driver, run a
console script, or pull a package from anywhere else.

Every check appends to a `Tally`; nothing raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.parser import BytesHeaderParser
from email.policy import compat32

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from ..abi import check_abi
from ..errors import UdriverError
from ..manifest import ENTRY_POINT_GROUP, MANIFEST_NAME, DriverManifest
from ._bounds import Tally

__all__ = ["ALLOWED_REQUIRES", "check_dist_info", "check_distributions", "check_manifest_abi",
           "parse_manifest", "version_key"]

#: Distributions a driver may require: the runtime that loads it, and nothing else.
ALLOWED_REQUIRES = frozenset({"udriver"})
_SECTION_RE = re.compile(r"^\[\s*([^\]]*?)\s*\]$")
_ENTRY_RE = re.compile(r"^([^=\s][^=]*?)\s*=\s*(.*?)$")
#: Top-level names in a sys.path entry that importlib.metadata or site treats as
#: distributions or path hooks.
_DIST_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".egg", ".pth")


def version_key(version: str) -> str:
    """The PEP 440 identity of a version: `1.0.0.0`, `1.0` and `1` are one key.

    Raises:
        InvalidVersion: not a PEP 440 version.
    """
    return canonicalize_version(Version(version), strip_trailing_zero=True)


def parse_manifest(data: bytes | None, where: str, tally: Tally,
                   missing: str) -> DriverManifest | None:
    """The embedded `udriver.json`, or None (with a problem) when absent or invalid."""
    if data is None:
        tally.add("id-table" if missing.startswith("no ID table") else "dist-info", missing)
        return None
    try:
        m = DriverManifest.from_json(data, where)
    except UdriverError as e:
        tally.add("id-table", f"invalid ID table: {e}")
        return None
    try:
        v = Version(m.version)
    except InvalidVersion:
        tally.add("version", f"`version` in {where} is not a PEP 440 version: {m.version!r}")
        return m
    if str(v) != m.version:
        tally.add("version", f"`version` in {where} is {m.version!r}, not in PEP 440 normal "
                  f"form; write {str(v)!r}")
    return m


def check_manifest_abi(m: DriverManifest, tally: Tally) -> None:
    try:
        check_abi(m.abi)
    except UdriverError as e:
        tally.add("abi", str(e))


def check_distributions(top: set[str], m: DriverManifest, where: str,
                        tally: Tally) -> str | None:
    """Exactly one top-level `<name>-<version>.dist-info` of the driver's own distribution,
    and no other distribution or `.pth` file beside it. Returns the dist-info's name."""
    dists = sorted(t for t in top if t.endswith(_DIST_SUFFIXES))
    own = [d for d in dists if d.endswith(".dist-info") and _names_dist(d, m)]
    others = [d for d in dists if d not in own[:1]]
    if others:
        tally.add("dist-info", f"{where} may hold only the driver's own `{_dist_name(m)}"
                  f"-{m.version}.dist-info`, but it also has {others}: another distribution "
                  "or a .pth file would let the package declare code for other names")
    if not own:
        tally.add("dist-info", f"{where} has no `{_dist_name(m)}-{m.version}.dist-info` "
                  f"for {m.package} {m.version}")
        return None
    return own[0]


def _dist_name(m: DriverManifest) -> str:
    return re.sub(r"[-_.]+", "_", m.package)


def _names_dist(dirname: str, m: DriverManifest) -> bool:
    name, sep, ver = dirname.removesuffix(".dist-info").rpartition("-")
    if not sep:
        return False
    try:
        return canonicalize_name(name) == canonicalize_name(m.package) and \
            Version(ver) == Version(m.version)
    except InvalidVersion:
        return False


def check_dist_info(files: Mapping[str, bytes | None], dist_info: str, m: DriverManifest,
                    tally: Tally) -> None:
    """`entry_points.txt` and `METADATA` of the driver's dist-info (see the module rules).

    Args:
        files: dist-info file name (e.g. `METADATA`) -> contents (None when too large).
        dist_info: the dist-info directory's name, for messages.
        m: the validated manifest.
        tally: where problems go.
    """
    _entry_points(files.get("entry_points.txt"), dist_info, m, tally)
    _metadata(files.get("METADATA"), dist_info, m, tally)
    if MANIFEST_NAME not in files:
        tally.add("dist-info", f"no `{dist_info}/{MANIFEST_NAME}`")


def _entry_points(data: bytes | None, dist_info: str, m: DriverManifest, tally: Tally) -> None:
    where = f"`{dist_info}/entry_points.txt`"
    if data is None:
        tally.add("entry-points", f"`entry_points.txt` [{ENTRY_POINT_GROUP}] `{m.driver}` is "
                  f"None, the manifest says {m.entry_point!r} ({where} is missing)")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        tally.add("entry-points", f"{where} is not UTF-8")
        return
    section: str | None = None
    entries: list[tuple[str, str, str]] = []
    bad: list[str] = []
    sections: list[str] = []
    # Stricter than both configparser and importlib.metadata: any line that is not blank
    # or a `#` comment must be a section header or `name = value`; `;` is not a comment.
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if (sm := _SECTION_RE.match(s)) is not None:
            section = sm.group(1)
            sections.append(section)
        elif (em := _ENTRY_RE.match(s)) is not None and section is not None:
            entries.append((section, em.group(1), em.group(2)))
        else:
            bad.append(s)
    if bad:
        tally.add("entry-points", f"{where}: lines that are neither `[group]` nor `name = "
                  f"object`: {bad[:3]}")
    foreign = sorted({s for s in sections if s != ENTRY_POINT_GROUP})
    if foreign:
        tally.add("entry-points", f"{where} declares entry point groups {foreign}; a driver "
                  f"may declare only [{ENTRY_POINT_GROUP}] (console scripts and plugins run "
                  "code outside the driver's sandbox)")
    if sections.count(ENTRY_POINT_GROUP) > 1:
        tally.add("entry-points", f"{where} has [{ENTRY_POINT_GROUP}] more than once")
    ours = [(n, v) for s, n, v in entries if s == ENTRY_POINT_GROUP]
    names = sorted({n for n, _ in ours if n != m.driver})
    if names:
        tally.add("entry-points", f"{where} declares [{ENTRY_POINT_GROUP}] entry points "
                  f"{names} besides the driver's own `{m.driver}`: a package may name only "
                  "its own driver")
    mine = [v for n, v in ours if n == m.driver]
    if len(mine) > 1:
        tally.add("entry-points", f"{where} declares `{m.driver}` {len(mine)} times")
    ep = mine[0] if mine else None
    if ep != m.entry_point:
        tally.add("entry-points", f"`entry_points.txt` [{ENTRY_POINT_GROUP}] `{m.driver}` is "
                  f"{ep!r}, the manifest says {m.entry_point!r}")


def _metadata(data: bytes | None, dist_info: str, m: DriverManifest, tally: Tally) -> None:
    where = f"`{dist_info}/METADATA`"
    if data is None:
        tally.add("metadata", f"{where} is missing")
        return
    # Core metadata is RFC 822 headers (core metadata spec); the body is the description.
    msg = BytesHeaderParser(policy=compat32).parsebytes(data)
    name, version = msg.get("Name"), msg.get("Version")
    if name is None or canonicalize_name(str(name)) != canonicalize_name(m.package):
        tally.add("metadata", f"{where} `Name: {name}` is not the manifest's {m.package!r}")
    if version is None or str(version).strip() != m.version:
        tally.add("metadata", f"{where} `Version: {version}` is not the manifest's "
                  f"{m.version!r}")
    for raw in msg.get_all("Requires-Dist") or []:
        text = str(raw).strip()
        try:
            req = Requirement(text)
        except InvalidRequirement:
            tally.add("requires-dist", f"{where} has an invalid `Requires-Dist: {text}`")
            continue
        if canonicalize_name(req.name) not in ALLOWED_REQUIRES or req.url:
            tally.add("requires-dist", f"{where} has `Requires-Dist: {text}`; a driver may "
                      "depend only on udriver (the runtime provides everything else)")
