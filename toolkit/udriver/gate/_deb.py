"""The gate's rules for a driver .deb: an allow-list, because apt runs it as root.

A .deb is installed by dpkg as root on every machine that trusts the repository. So a
driver .deb may hold exactly what `udriver build` writes (`udriver._debpolicy`) and
nothing else. Order (deb(5), Debian policy sections in brackets):

1. `ar` members: exactly `debian-binary` ("2.0\\n"), `control.tar.{gz,xz}`,
   `data.tar.{gz,xz}` (deb(5); dpkg would also accept `_`-members, we do not);
2. control.tar: only `control` and `md5sums`; no maintainer scripts at all [6.1]
   (`preinst`, `postinst`, `prerm`, `postrm`, `config`, `triggers`), no `conffiles`;
3. data.tar, every member: a safe relative name, a directory or a regular file (no
   symlink, hard link, device, FIFO or sparse file), mode exactly 0755 (directories) or
   0644/0755 (files), owner and group root by id and by name (dpkg maps names first),
   only plain pax headers, each parent directory listed before it [10.9];
4. the ID table at /usr/share/udriver/drivers/<driver>.json;
5. paths: only the driver's own (`/usr/lib/udriver/drivers/<driver>/`,
   `/usr/share/doc/<package>/`, its manifest, its udev rule) [10.1];
6. control fields: exactly `CONTROL_FIELDS`, each with the value `udriver build`
   derives from the ID table (`Package`, `Version` [5.6.12], `Depends` [7.1],
   `Modaliases`...), one paragraph [5.1];
7. the udev rule, byte for byte what `udev_rules_text` makes (a rule's RUN+= is root
   code); md5sums; the driver's dist-info (`_rules`); the ABI; the file name
   `<Package>_<Version without epoch>_<Architecture>.deb` [5.6.12, dpkg-name(1)].
"""

from __future__ import annotations

import re
import stat

from .._debpolicy import (
    CONTROL_FIELDS,
    DEB_MANIFEST_DIR,
    DRIVER_ROOT,
    PRIORITY,
    SECTION,
    UDEV_RULES_DIR,
    control_depends,
    deb_package_name,
    deb_version,
    modaliases_field,
    udev_rules_path,
    udev_rules_text,
)
from ..artifacts import parse_control
from ..errors import UdriverError
from ..manifest import DriverManifest
from ._bounds import Tally, TarMember, scan_tar
from ._rules import check_dist_info, check_distributions, check_manifest_abi, parse_manifest

__all__ = ["MAINTAINER_SCRIPTS", "admit_deb"]

#: Control members that dpkg runs as root (policy 6.1, deb-triggers(5), debconf's config).
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config", "triggers")
_PAX_OK = {"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime"}
# Debian policy 5.6.12: [epoch:]upstream[-revision].
_DEB_VERSION_RE = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")
_MAINTAINER_RE = re.compile(r"^[^<>\n]+ <[^@<>\s]+@[^@<>\s]+>$")
_ARCH_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_NATIVE_DEPENDS_RE = re.compile(r"^libc6 \(>= [0-9]{1,3}\.[0-9]{1,3}\), ")
_CTRL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _ar(data: bytes, tally: Tally) -> dict[str, bytes] | None:
    """The members of the `ar` archive (ar(5)): name -> bytes, or None when malformed."""
    if not data.startswith(b"!<arch>\n"):
        tally.add("deb-format", "not a .deb (missing `!<arch>` ar magic)")
        return None
    out: list[tuple[str, bytes]] = []
    pos = 8
    while pos < len(data):
        hdr = data[pos:pos + 60]
        if len(hdr) != 60 or hdr[58:60] != b"`\n":
            tally.add("deb-format", f"corrupt ar member header at offset {pos}")
            return None
        name = hdr[0:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(hdr[48:58].decode("ascii").strip())
        except ValueError:
            tally.add("deb-format", f"corrupt ar member size at offset {pos}")
            return None
        if size < 0 or pos + 60 + size > len(data):
            tally.add("deb-format", f"ar member {name!r} runs past the end of the file")
            return None
        out.append((name, data[pos + 60:pos + 60 + size]))
        pos += 60 + size + (size & 1)
        if len(out) > 3:
            break
    names = [n for n, _ in out]
    if (len(names) != 3 or names[0] != "debian-binary"
            or names[1] not in ("control.tar.gz", "control.tar.xz")
            or names[2] not in ("data.tar.gz", "data.tar.xz")):
        tally.add("deb-format", "ar members must be exactly debian-binary, control.tar.{gz,xz}, "
                  f"data.tar.{{gz,xz}} in that order, got {names}")
        return None
    if out[0][1] != b"2.0\n":
        tally.add("deb-format", f"debian-binary is {out[0][1][:16]!r}, not \"2.0\\n\"")
        return None
    return dict(out)


def _owner_mode(t: TarMember, what: str, tally: Tally, modes: tuple[int, ...]) -> None:
    i = t.info
    if i.uid != 0 or i.gid != 0 or i.uname not in ("root", "") or i.gname not in ("root", ""):
        tally.add("owner", f"{what} member {t.raw_name!r} is owned by {i.uname or i.uid}:"
                  f"{i.gname or i.gid}, not root:root")
    mode = stat.S_IMODE(i.mode)
    if mode not in modes:
        why = [w for bit, w in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid"),
                                (stat.S_ISVTX, "sticky"), (stat.S_IWOTH, "world-writable"))
               if mode & bit]
        tally.add("mode", f"{what} member {t.raw_name!r} has mode {mode:04o}"
                  + (f" ({', '.join(why)})" if why else "")
                  + f"; allowed: {', '.join(f'{x:04o}' for x in modes)}")
    bad_pax = sorted(set(i.pax_headers) - _PAX_OK)
    if bad_pax:
        tally.add("pax-header", f"{what} member {t.raw_name!r} has pax headers {bad_pax[:3]} "
                  "(extended attributes, sparse maps... are not allowed)")


def _control_tar(raw: bytes, what: str, tally: Tally) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for t in scan_tar(raw, what, tally, lambda n: n in ("control", "md5sums")):
        if t.name is None:
            tally.add("member-name", f"unsafe member name in {what}: {t.raw_name!r}")
        elif t.name == "":
            if not t.info.isdir():
                tally.add("member-type", f"{what}: `./` is not a directory")
            _owner_mode(t, what, tally, (0o755,))
        elif t.name in MAINTAINER_SCRIPTS:
            tally.add("maintainer-script", f"maintainer script `{t.name}`: a driver .deb may "
                      "not carry maintainer scripts (dpkg runs them as root on every machine)")
        elif t.name in ("control", "md5sums") and t.info.isreg() and not t.info.issparse():
            _owner_mode(t, what, tally, (0o644,))
            if t.data is not None:
                out[t.name] = t.data
        else:
            tally.add("control-member", f"{what} has {t.name!r}; a driver .deb carries only "
                      "`control` and `md5sums`")
    return out


def _data_member(t: TarMember, what: str, tally: Tally, seen: set[str]) -> None:
    i = t.info
    if t.name is None:
        tally.add("member-name", f"unsafe member name in {what}: {t.raw_name!r}")
        return
    if t.name == "":  # `./`, the root: dpkg leaves the real / alone, but check it anyway
        if not i.isdir():
            tally.add("member-type", f"{what}: `./` is not a directory")
        _owner_mode(t, what, tally, (0o755,))
        return
    if t.name in seen:
        tally.add("member-name", f"{what} has {t.name!r} twice")
    parent = t.name.rpartition("/")[0]
    if t.name and parent not in seen:
        tally.add("layout", f"{what}: {t.name!r} comes before its directory {parent or './'!r}")
    seen.add(t.name)
    if i.isdir():
        _owner_mode(t, what, tally, (0o755,))
    elif i.isreg() and not i.issparse():
        _owner_mode(t, what, tally, (0o644, 0o755))
    else:
        kind = ("a symlink" if i.issym() else "a hard link" if i.islnk()
                else "a device" if i.ischr() or i.isblk() else "a FIFO" if i.isfifo()
                else "a sparse file" if i.issparse() else f"of tar type {i.type!r}")
        tally.add("member-type", f"{what} member {t.raw_name!r} is {kind}; a driver .deb "
                  "holds only regular files and directories")


def _keep(name: str) -> bool:
    parts = name.split("/")
    if name.startswith(DEB_MANIFEST_DIR + "/"):
        return len(parts) == DEB_MANIFEST_DIR.count("/") + 2 and name.endswith(".json")
    if name.startswith(UDEV_RULES_DIR + "/"):
        return True
    depth = DRIVER_ROOT.count("/") + 1
    return (name.startswith(DRIVER_ROOT + "/") and len(parts) == depth + 3
            and parts[depth + 1].endswith(".dist-info"))


def admit_deb(filename: str, data: bytes, tally: Tally) -> tuple[DriverManifest | None,
                                                                  dict[str, str] | None]:
    """Apply every .deb rule; returns the manifest and the validated control fields."""
    members = _ar(data, tally)
    if members is None:
        return None, None
    ctl_name, data_name = (n for n in members if n != "debian-binary")
    ctl = _control_tar(members[ctl_name], ctl_name, tally)
    files: dict[str, str] = {}
    small: dict[str, bytes] = {}
    seen: set[str] = {""}
    for t in scan_tar(members[data_name], data_name, tally, _keep):
        _data_member(t, data_name, tally, seen)
        if t.name and t.md5 is not None:
            files[t.name] = t.md5
            if t.data is not None:
                small[t.name] = t.data
    dirs = seen - set(files)
    control: dict[str, str] = {}
    if "control" not in ctl:
        tally.add("control-field", f"{ctl_name} has no `control` file")
    else:
        try:
            text = ctl["control"].decode("utf-8")
            control = parse_control(text, f"{filename}:control")
            if text.strip().count("\n\n"):
                tally.add("control-field", "`control` has more than one paragraph")
        except (UnicodeDecodeError, UdriverError) as e:
            tally.add("control-field", f"`control` is not one valid deb822 paragraph: {e}")
    _md5sums(ctl.get("md5sums"), files, tally)
    manifests = {k: v for k, v in small.items() if k.startswith(DEB_MANIFEST_DIR + "/")}
    if len(manifests) > 1:
        tally.add("layout", f"more than one ID table under /{DEB_MANIFEST_DIR}: {sorted(manifests)}")
    mname, mdata = next(iter(manifests.items()), ("", None))
    m = parse_manifest(mdata, f"{filename}:/{mname}", tally,
                       f"no ID table under /{DEB_MANIFEST_DIR}/; build it with `udriver build`")
    _file_name(filename, control, tally)
    if m is None:
        return None, None
    if mname and mname != f"{DEB_MANIFEST_DIR}/{m.driver}.json":
        tally.add("layout", f"the ID table of driver `{m.driver}` is /{mname}, not "
                  f"/{DEB_MANIFEST_DIR}/{m.driver}.json")
    _paths(files, dirs, m, tally)
    rule = small.get(udev_rules_path(m.driver))
    if rule is not None and rule != udev_rules_text(m):
        tally.add("udev-rule", f"/{udev_rules_path(m.driver)} is not exactly the rule udriver "
                  "generates from the ID table (a udev rule's RUN+= runs as root)")
    base = f"{DRIVER_ROOT}/{m.driver}"
    top = {n[len(base) + 1:].split("/")[0] for n in seen if n.startswith(base + "/")}
    dist = check_distributions(top, m, f"/{base}/", tally)
    if dist is not None:
        prefix = f"{base}/{dist}/"
        di = {k[len(prefix):]: v for k, v in small.items() if k.startswith(prefix)}
        check_dist_info(di, dist, m, tally)
        inner = di.get("udriver.json")
        if inner is not None and inner != m.to_json():
            tally.add("dist-info", f"/{prefix}udriver.json is not the ID table at /{mname}")
    check_manifest_abi(m, tally)
    native = any(n.endswith(".so") or ".so." in n for n in files)
    return m, _fields(control, m, native, tally)


def _md5sums(data: bytes | None, files: dict[str, str], tally: Tally) -> None:
    if data is None:
        tally.add("md5sums", "no `md5sums` in the control archive")
        return
    listed: dict[str, str] = {}
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if not re.match(r"^[0-9a-f]{32}$", digest) or not name:
            tally.add("md5sums", f"md5sums:{n}: not `<md5>  <path>`: {line!r}")
            return
        listed[name.removeprefix("./")] = digest
    bad = sorted(n for n in set(listed) | set(files) if listed.get(n) != files.get(n))
    if bad:
        tally.add("md5sums", f"DEBIAN/md5sums wrong or missing for {bad[:5]}")


def _paths(files: dict[str, str], dirs: set[str], m: DriverManifest, tally: Tally) -> None:
    pkg = deb_package_name(m.driver)
    own = (f"{DRIVER_ROOT}/{m.driver}", f"usr/share/doc/{pkg}")
    exact = {f"{DEB_MANIFEST_DIR}/{m.driver}.json", udev_rules_path(m.driver)}
    parents = {p.rsplit("/", i)[0] for p in (*own, *exact) for i in range(1, p.count("/") + 1)}
    stray = sorted(f for f in files if f not in exact and not f.startswith(tuple(o + "/" for o in own)))
    stray += sorted(d for d in dirs if d and d not in parents and d not in own
                    and not d.startswith(tuple(o + "/" for o in own)))
    if stray:
        tally.add("path", f"outside the driver's own paths (/{own[0]}/, /{own[1]}/, its ID "
                  f"table and its udev rule): {['/' + s for s in stray[:5]]}")


def _file_name(filename: str, c: dict[str, str], tally: Tally) -> None:
    want = (f"{c.get('Package', '')}_{c.get('Version', '').rpartition(':')[2]}_"
            f"{c.get('Architecture', '')}.deb")
    if filename != want:
        tally.add("file-name", f"file name disagrees with the control data (expected {want!r})")


def _fields(c: dict[str, str], m: DriverManifest, native: bool,
            tally: Tally) -> dict[str, str] | None:
    """Check every control field; returns the validated fields, built from the manifest."""
    before = len(tally.problems)
    extra = [k for k in c if k not in CONTROL_FIELDS]
    for k in extra:
        tally.add("control-field", f"control field `{k}` is not allowed: a driver .deb has "
                  f"only the fields `udriver build` writes ({', '.join(CONTROL_FIELDS)})")
    missing = [k for k in CONTROL_FIELDS if k not in c]
    if missing:
        tally.add("control-field", f"control fields missing: {missing}")
    try:
        version = deb_version(m.version)
    except UdriverError as e:
        tally.add("version", str(e))
        version = ""
    arch = c.get("Architecture", "")
    want = {"Package": deb_package_name(m.driver), "Version": version,
            "Section": SECTION, "Priority": PRIORITY, "Modaliases": modaliases_field(m)}
    try:
        depends = control_depends(m.abi, None)
    except UdriverError:
        depends = ""  # the ABI problem is reported by check_manifest_abi
    got_dep = c.get("Depends", "")
    if native:
        ok_dep = bool(_NATIVE_DEPENDS_RE.match(got_dep)) and \
            got_dep.partition("), ")[2] == "python3-cffi-backend, " + depends
    else:
        ok_dep = got_dep == depends
    for k, v in want.items():
        if k in c and c[k] != v:
            tally.add("control-field", f"`{k}: {c[k]}` should be `{k}: {v}`")
    if "Version" in c and not _DEB_VERSION_RE.match(c["Version"]):
        tally.add("version", f"`Version: {c['Version']}` is not a Debian version (policy 5.6.12)")
    if "Depends" in c and not ok_dep:
        tally.add("depends", f"`Depends: {got_dep}` may name only what `udriver build` writes: "
                  f"`{depends}`" + (" after libc6 and python3-cffi-backend" if native else ""))
    if "Architecture" in c and (not _ARCH_RE.match(arch) or (arch == "all") == native):
        tally.add("control-field", f"`Architecture: {arch}` does not fit the contents "
                  f"({'native code: the dpkg architecture' if native else 'pure Python: all'})")
    if "Maintainer" in c and not _MAINTAINER_RE.match(c["Maintainer"]):
        tally.add("control-field", f"`Maintainer: {c['Maintainer']}` is not `Name <email>`")
    if "Installed-Size" in c and not re.match(r"^[0-9]{1,9}$", c["Installed-Size"]):
        tally.add("control-field", f"`Installed-Size: {c['Installed-Size']}` is not a number")
    desc = c.get("Description", "")
    if "Description" in c and (not desc.split("\n")[0].strip() or len(desc.split("\n")[0]) > 80):
        tally.add("control-field", "`Description` needs a synopsis of 1-80 characters")
    bad = sorted(k for k, v in c.items() if _CTRL_CHARS.search(v) or (k != "Description" and "\n" in v))
    if bad:
        tally.add("control-field", f"control fields {bad} hold control characters or line breaks")
    if len(tally.problems) != before:
        return None
    vals = {**want, "Architecture": arch, "Maintainer": c["Maintainer"],
            "Installed-Size": c["Installed-Size"], "Depends": got_dep, "Description": desc}
    return {k: vals[k] for k in CONTROL_FIELDS}
