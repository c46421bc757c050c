"""`udriver check`: validate built wheels and debs, one verdict per check.

Checks (each yields one `CheckResult`):

    wheel: id-table, gate, wheel-name, entry-point, abi, pyproject*, driver-ids, auditwheel
    deb:   id-table, gate, control, modaliases, udev-rule, depends, md5sums, layout, abi,
           pyproject*, lintian (strict only)

`gate` is the repository's acceptance gate (`udriver.gate.admit`): PASSED when the
artifact may be published, else one `gate/<rule>` FAILED line per problem, exactly the
problems `udriver-repo publish` and the upload API would refuse it for.

`*` runs when the driver's source is known (`source=`, or the artifact sits in
`<project>/dist/`); with `strict`, an unknown source is a failure. `driver-ids` imports
the driver from the wheel (unpacked into a temporary directory) in a child interpreter,
so it runs the wheel's code: only check artifacts you are prepared to import.
`udriver build` runs the same checks on what it built.
"""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..abi import check_abi
from ..artifacts import UDEV_RULES_DIR, DebInfo, read_deb, read_wheel
from ..errors import GateError, UdriverError
from ..gate import admit
from ..manifest import ENTRY_POINT_GROUP, DriverManifest
from ..modalias import parse_pattern
from ._deb import (
    DRIVER_ROOT,
    _extract_wheel,
    deb_package_name,
    deb_version,
    modaliases_field,
    runtime_depends,
    udev_rule_lines,
    udev_rules_path,
)
from ._project import Project, load_project
from ._wheel import auditwheel_show, outside_libraries

__all__ = ["CheckResult", "check_artifact", "check_deb", "check_wheel", "driver_ids", "gate"]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one artifact."""

    name: str
    """Short check name, e.g. "udev-rule"."""
    ok: bool
    """True when the check passed."""
    detail: str = ""
    """Why it failed (or a short note when it passed)."""

    def line(self) -> str:
        if self.ok:
            return f"PASSED {self.name}" + (f" ({self.detail})" if self.detail else "")
        return f"FAILED {self.name}: {self.detail}"


def _find_project(artifact: Path, source: Path | None) -> Project | None:
    if source is not None:
        return load_project(source)
    parent = artifact.resolve().parent
    if parent.name == "dist" and (parent.parent / "pyproject.toml").is_file():
        try:
            return load_project(parent.parent)
        except UdriverError:
            return None
    return None


def check_artifact(path: str | Path, *, source: str | Path | None = None,
                   strict: bool = False) -> list[CheckResult]:
    """Run every check that applies to a wheel or a .deb.

    Raises:
        ManifestError: `source` is given but its pyproject.toml is invalid.
    """
    p = Path(path)
    project = _find_project(p, Path(source) if source else None)
    if p.name.endswith(".whl"):
        return check_wheel(p, project=project, strict=strict)
    if p.name.endswith(".deb"):
        return check_deb(p, project=project, strict=strict)
    return [CheckResult("artifact", False, f"{p}: not a .whl or .deb")]


def _abi(m: DriverManifest) -> CheckResult:
    try:
        check_abi(m.abi)
    except UdriverError as e:
        return CheckResult("abi", False, str(e))
    return CheckResult("abi", True, f"{m.abi[0]}.{m.abi[1]}")


def gate(path: Path) -> list[CheckResult]:
    """The acceptance gate's verdict: one PASSED `gate`, or one FAILED line per problem."""
    try:
        admit(path)
    except GateError as e:
        return [CheckResult(f"gate/{rule}", False, msg) for rule, msg in e.problems]
    except UdriverError as e:
        return [CheckResult("gate", False, str(e))]
    return [CheckResult("gate", True, "a repository would accept it")]


def _pyproject(m: DriverManifest, project: Project | None, strict: bool) -> list[CheckResult]:
    if project is None:
        return [CheckResult("pyproject", False, "driver source unknown; pass --source DIR")] \
            if strict else []
    want = project.manifest()
    if want == m:
        return [CheckResult("pyproject", True)]
    diffs = [f"`{k}`: artifact {getattr(m, k)!r} != pyproject {getattr(want, k)!r}"
             for k in ("package", "version", "driver", "entry_point", "abi", "modaliases",
                       "bridge")
             if getattr(m, k) != getattr(want, k)]
    return [CheckResult("pyproject", False, f"artifact disagrees with {project.pyproject}: "
                        + "; ".join(diffs) + "; fix: rebuild with `udriver build`")]


def check_wheel(path: Path, *, project: Project | None = None,
                strict: bool = False) -> list[CheckResult]:
    """Checks for a driver wheel (see the module docstring)."""
    try:
        info = read_wheel(path)
    except UdriverError as e:
        return [CheckResult("id-table", False, str(e))]
    m = info.manifest
    out = [CheckResult("id-table", True, f"{len(m.modaliases)} pattern(s)"), *gate(path)]
    try:
        name, ver, _, tags = parse_wheel_filename(path.name)
        if canonicalize_name(m.package) != name or str(ver) != str(type(ver)(m.version)):
            out.append(CheckResult("wheel-name", False, f"{path.name} is not "
                                   f"{m.package} {m.version} as the manifest says"))
        else:
            out.append(CheckResult("wheel-name", True))
    except (InvalidWheelFilename, ValueError) as e:
        tags = frozenset()
        out.append(CheckResult("wheel-name", False, str(e)))
    cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        cp.read_string(info.entry_points)
        ep = cp.get(ENTRY_POINT_GROUP, m.driver, fallback=None)
    except configparser.Error:
        ep = None
    if ep is None:
        out.append(CheckResult("entry-point", False, f"{info.dist_info}/entry_points.txt has no "
                               f"`{m.driver}` in [{ENTRY_POINT_GROUP}]; fix: add it to "
                               f'[project.entry-points."{ENTRY_POINT_GROUP}"] in pyproject.toml'))
    elif ep.strip() != m.entry_point:
        out.append(CheckResult("entry-point", False, f"entry point `{m.driver}` is {ep.strip()!r} "
                               f"but the manifest says {m.entry_point!r}"))
    else:
        out.append(CheckResult("entry-point", True, m.entry_point))
    out.append(_abi(m))
    out += _pyproject(m, project, strict)
    out.append(driver_ids(path, m, project))
    native = any(n.endswith(".so") or ".so." in n for n in info.members)
    tag_text = ".".join(sorted(str(t) for t in tags))
    if not native:
        ok = all(t.interpreter.startswith("py") and t.abi == "none" and t.platform == "any"
                 for t in tags) and bool(tags)
        out.append(CheckResult("auditwheel", ok, f"pure Python, {tag_text}" if ok else
                               f"no native code but tagged {tag_text}; expected py3-none-any"))
    else:
        out.append(_native_libs(path, info.members))
        ok, what = auditwheel_show(path)
        if ok and not all(t.abi == "abi3" and t.platform.startswith("manylinux") for t in tags):
            ok, what = False, f"tagged {tag_text}; expected cp311-abi3-manylinux_*"
        out.append(CheckResult("auditwheel", ok, f"{what}; {tag_text}" if ok else what))
    return out


def _native_libs(path: Path, members: tuple[str, ...]) -> CheckResult:
    import zipfile
    try:
        with zipfile.ZipFile(path) as zf:
            objs = {n: zf.read(n) for n in members if n.endswith(".so") or ".so." in n}
        outside = outside_libraries(objs)
    except (UdriverError, OSError, zipfile.BadZipFile) as e:
        return CheckResult("native-libs", False, str(e))
    if outside:
        return CheckResult("native-libs", False, "links libraries from outside the wheel: " +
                           "; ".join(f"{so} needs {', '.join(libs)}" for so, libs in outside.items()))
    return CheckResult("native-libs", True, "libc only")


_IMPORT_SCRIPT = r"""
import importlib.metadata as md, inspect, json, sys
root, driver = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
out = {}
try:
    eps = [ep for d in md.distributions(path=[root]) for ep in d.entry_points
           if ep.group == "udriver.drivers" and ep.name == driver]
    cls = eps[0].load()
    from udriver.modalias import Pattern, PciId, parse_pattern
    ids = []
    for x in getattr(cls, "ids", None) or ():
        if isinstance(x, PciId): x = x.to_pattern()
        ids.append(str(x if isinstance(x, Pattern) else parse_pattern(x)))
    out["ids"] = ids
    out["cls"] = cls.__qualname__
    try:
        out["file"] = inspect.getsourcefile(cls)
        lines, start = inspect.getsourcelines(cls)
        out["line"] = next((start + i for i, l in enumerate(lines) if l.strip().startswith("ids")), start)
    except (OSError, TypeError):
        pass
    try:
        from udriver.runtime import Driver
        out["is_driver"] = issubclass(cls, Driver)
    except ImportError:
        out["is_driver"] = None
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""


def driver_ids(wheel: Path, m: DriverManifest, project: Project | None) -> CheckResult:
    """Import the driver class from the wheel and compare its `ids` with the ID table."""
    with tempfile.TemporaryDirectory(prefix="udriver-check-") as tmp:
        _extract_wheel(wheel, Path(tmp))
        proc = subprocess.run([sys.executable, "-c", _IMPORT_SCRIPT, tmp, m.driver],
                              capture_output=True, text=True, timeout=120, check=False)
        try:
            res = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return CheckResult("driver-ids", False, f"importing {m.entry_point} crashed: "
                               f"{proc.stderr.strip()[-400:]}")
        where = str(res.get("file") or m.entry_point)
        if where.startswith(tmp + "/"):
            rel = where[len(tmp) + 1:]
            where = str(project.root / rel) if project and (project.root / rel).exists() else rel
    if "error" in res:
        return CheckResult("driver-ids", False, f"cannot load entry point `{m.driver}` = "
                           f"{m.entry_point!r}: {res['error']}")
    if res.get("is_driver") is False:
        return CheckResult("driver-ids", False, f"{where}: {res['cls']} is not a subclass of "
                           "udriver.runtime.Driver")
    loc = f"{where}:{res['line']}" if res.get("line") else where
    ids, table = sorted(res["ids"]), sorted(m.modaliases)
    if ids == table:
        return CheckResult("driver-ids", True, f"{res['cls']}.ids")
    extra = sorted(set(table) - set(ids))
    missing = sorted(set(ids) - set(table))
    dup = len(ids) != len(set(ids))
    why = [f"the ID table disagrees with `{res['cls']}.ids` ({loc})"]
    if extra:
        why.append(f"only in [tool.udriver] modaliases: {extra}")
    if missing:
        why.append(f"only in {res['cls']}.ids: {missing}")
    if dup:
        why.append(f"{res['cls']}.ids lists a pattern twice")
    why.append(f"fix: make `{res['cls']}.ids` and `modaliases` in pyproject.toml list the same patterns")
    return CheckResult("driver-ids", False, "; ".join(why))


def check_deb(path: Path, *, project: Project | None = None,
              strict: bool = False) -> list[CheckResult]:
    """Checks for a driver .deb (see the module docstring)."""
    try:
        info = read_deb(path)
    except UdriverError as e:
        return [CheckResult("id-table", False, str(e))]
    m = info.manifest
    if m is None:
        return [CheckResult("id-table", False, f"{path}: no manifest under "
                            "/usr/share/udriver/drivers/; build it with `udriver build`")]
    out = [CheckResult("id-table", True, f"{len(m.modaliases)} pattern(s)"), *gate(path)]
    out.append(_control(info, m))
    out.append(_modaliases(info, m))
    out.append(_udev(info, m))
    depends = info.control.get("Depends", "")
    want = runtime_depends(m.abi) if m.abi[0] else ""
    out.append(CheckResult("depends", bool(want) and want in depends, depends if want in depends
                           else f"`Depends: {depends}` lacks the runtime range `{want}`"))
    bad = sorted(n for n in set(info.md5sums) | set(info.files)
                 if info.md5sums.get(n) != info.files.get(n))
    out.append(CheckResult("md5sums", not bad, f"{len(info.md5sums)} file(s)" if not bad
                           else f"DEBIAN/md5sums wrong or missing for {bad[:5]}"))
    out.append(_layout(info, m))
    out.append(_abi(m))
    out += _pyproject(m, project, strict)
    if strict:
        out.append(lintian(path))
    return out


def _control(info: DebInfo, m: DriverManifest) -> CheckResult:
    problems = [f"`{k}` missing" for k in ("Package", "Version", "Architecture", "Maintainer",
                                            "Description") if not info.control.get(k)]
    if info.package != deb_package_name(m.driver):
        problems.append(f"`Package: {info.package}` should be {deb_package_name(m.driver)}")
    if info.version != deb_version(m.version):
        problems.append(f"`Version: {info.version}` should be {deb_version(m.version)}")
    return CheckResult("control", not problems, "; ".join(problems))


def _modaliases(info: DebInfo, m: DriverManifest) -> CheckResult:
    try:
        groups = info.modaliases
        got = sorted(str(parse_pattern(p)) for ps in groups.values() for p in ps)
    except UdriverError as e:
        return CheckResult("modaliases", False, str(e))
    if list(groups) == ["udriver"] and got == sorted(m.modaliases):
        return CheckResult("modaliases", True)
    return CheckResult("modaliases", False, f"`Modaliases: {info.control.get('Modaliases', '')}` "
                       f"does not match the ID table; expected `{modaliases_field(m)}`")


def _udev(info: DebInfo, m: DriverManifest) -> CheckResult:
    want_path = udev_rules_path(m.driver)
    rules = info.udev_rules
    if set(rules) != {want_path}:
        return CheckResult("udev-rule", False, f"expected exactly /{want_path}, found "
                           f"{sorted('/' + r for r in rules)}")
    lines = [ln.strip() for ln in rules[want_path].decode("utf-8", "replace").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if sorted(lines) != sorted(udev_rule_lines(m)):
        return CheckResult("udev-rule", False, f"/{want_path} does not have exactly one rule "
                           "per pattern of the ID table")
    return CheckResult("udev-rule", True, f"{len(lines)} rule(s)")


def _layout(info: DebInfo, m: DriverManifest) -> CheckResult:
    base = f"{DRIVER_ROOT}/{m.driver}/"
    allowed = (base, f"usr/share/doc/{info.package}/", f"{UDEV_RULES_DIR}/")
    stray = sorted(f for f in info.files if not f.startswith(allowed)
                   and f != f"usr/share/udriver/drivers/{m.driver}.json")
    eps = [f for f in info.files if f.startswith(base) and f.endswith(".dist-info/entry_points.txt")
           and f.count("/") == base.count("/") + 1]
    if stray or info.symlinks or len(eps) != 1:
        why = []
        if stray:
            why.append(f"files outside the driver's directories: {stray[:5]}")
        if info.symlinks:
            why.append(f"symlinks are not allowed: {sorted(info.symlinks)[:5]}")
        if len(eps) != 1:
            why.append(f"expected one /{base}*.dist-info/entry_points.txt, found {len(eps)}")
        return CheckResult("layout", False, "; ".join(why))
    return CheckResult("layout", True, f"/{base}")


def lintian(path: Path) -> CheckResult:
    """Run lintian; errors fail the check, warnings are listed (DESIGN: justify them)."""
    try:
        proc = subprocess.run(["lintian", "--no-tag-display-limit", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600, check=False)
    except FileNotFoundError:
        return CheckResult("lintian", False, "lintian is not installed (apt install lintian)")
    tags = [ln.strip() for ln in proc.stdout.splitlines() if ln[:2] in ("E:", "W:")]
    errors = [t for t in tags if t.startswith("E:")]
    if errors:
        return CheckResult("lintian", False, "; ".join(errors))
    return CheckResult("lintian", True, "; ".join(tags) or "clean")
