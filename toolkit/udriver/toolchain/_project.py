"""Read and validate a driver project's `pyproject.toml`.

The one place a driver declares what it drives is `[tool.udriver]`:

    [project]
    name = "udriver-acme"
    version = "0.1.0"

    [project.entry-points."udriver.drivers"]
    acme = "acme.driver:AcmeDriver"

    [tool.udriver]
    driver = "acme"
    abi = "1.0"
    modaliases = ["pci:v00005A5Ad00000001sv*sd*bc*sc*i*"]
    # optional, ABI 1.1: the kernel bridge the driver needs ("block" or "net")
    bridge = "block"

Validation collects every problem before raising, and each problem names the file, the
line (found by locating the offending value in the text) and the fix. This module only
reads the project directory; it never imports the driver.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..abi import ABI_VERSION, AbiVersion, check_abi, format_abi, parse_abi
from ..errors import AbiError, ManifestError
from ..manifest import ENTRY_POINT_GROUP, DriverManifest, bridge_problem
from ..modalias import parse_pattern

__all__ = ["PYPROJECT", "Project", "load_project"]

PYPROJECT = "pyproject.toml"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_EP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")
_STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'')


@dataclass(frozen=True)
class Project:
    """A validated driver project."""

    root: Path
    """The project directory."""
    name: str
    """Distribution name (`[project] name`)."""
    version: str
    """Distribution version (`[project] version`)."""
    driver: str
    """Entry-point name (`[tool.udriver] driver`)."""
    entry_point: str
    """"module:Class" from `[project.entry-points."udriver.drivers"]`."""
    abi: AbiVersion
    """`[tool.udriver] abi`."""
    modaliases: tuple[str, ...]
    """Canonical patterns, sorted."""
    has_c: bool
    """True when the project builds C code (a `setup.py` with `cffi_modules`)."""
    maintainer: str
    """"Name <email>" from the first `[project] authors` entry with an email."""
    summary: str
    """`[project] description`."""
    license: str
    """SPDX-ish license name from `[project] license`."""
    bridge: str | None = None
    """`[tool.udriver] bridge`: the kernel bridge the driver needs, None for none."""

    @property
    def pyproject(self) -> Path:
        return self.root / PYPROJECT

    def manifest(self) -> DriverManifest:
        return DriverManifest(self.name, self.version, self.driver, self.entry_point,
                              self.abi, self.modaliases, self.bridge)


class _Text:
    """The pyproject text, to point problems at line numbers."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def line_of(self, needle: str, start: int = 0) -> int | None:
        i = self.text.find(needle, start)
        return None if i < 0 else self.text.count("\n", 0, i) + 1

    def where(self, line: int | None) -> str:
        return f"{self.path}:{line}" if line else str(self.path)

    def section_start(self, header: str) -> int:
        m = re.search(r"^\s*\[" + re.escape(header) + r"\]\s*$", self.text, re.MULTILINE)
        return m.end() if m else 0

    def array_items(self, key: str, section: str) -> list[tuple[str, int]]:
        """(raw string, line) of each string literal in `key = [...]` of `section`."""
        start = self.section_start(section)
        m = re.compile(r"^\s*" + re.escape(key) + r"\s*=\s*\[", re.MULTILINE).search(self.text, start)
        if m is None:
            return []
        out: list[tuple[str, int]] = []
        pos = m.end()
        while pos < len(self.text):
            sm = _STRING_RE.search(self.text, pos)
            close = self.text.find("]", pos)
            if sm is None or (close >= 0 and close < sm.start()):
                break
            raw = sm.group(1) if sm.group(1) is not None else sm.group(2)
            out.append((raw, self.text.count("\n", 0, sm.start()) + 1))
            pos = sm.end()
        return out


def load_project(root: str | Path) -> Project:
    """Read and validate `<root>/pyproject.toml`.

    Raises:
        ManifestError: missing or invalid `pyproject.toml`, `[tool.udriver]`, entry point
            or modalias table; the message lists every problem with file, line and fix.
        AbiError: `[tool.udriver] abi` names an ABI this udriver does not provide.
    """
    root = Path(root).resolve()
    path = root / PYPROJECT
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ManifestError(f"{path}: cannot read: {e.strerror}; run `udriver new` to create "
                            "a driver project, or pass the project directory") from e
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{path}: not valid TOML: {e}") from e
    t = _Text(path, raw)
    problems: list[str] = []
    raw_project = data.get("project")
    project: dict[str, object] = raw_project if isinstance(raw_project, dict) else {}
    tool = data.get("tool", {}).get("udriver") if isinstance(data.get("tool"), dict) else None
    if not isinstance(tool, dict):
        raise ManifestError(f"{path}: no `[tool.udriver]` table; add one with `driver`, `abi` "
                            "and `modaliases` (see driver-template/README.md)")
    name, version = project.get("name"), project.get("version")
    for key, val in (("name", name), ("version", version)):
        if not isinstance(val, str) or not val:
            problems.append(f"{t.where(t.line_of('[project]'))}: `[project] {key}` must be a "
                            "static string (dynamic metadata is not supported)")
    driver = tool.get("driver")
    if not isinstance(driver, str) or not _NAME_RE.match(driver):
        problems.append(f"{t.where(t.line_of('driver', t.section_start('tool.udriver')))}: "
                        f"`driver` must match {_NAME_RE.pattern}, got {driver!r}; "
                        "fix: e.g. driver = \"acme\"")
        driver = ""
    entry_point = _entry_point(project, driver, t, problems)
    abi = _abi(tool, t, problems)
    mods = _modaliases(tool, t, problems)
    bridge = tool.get("bridge")
    why = bridge_problem(bridge, abi)
    if why is not None:
        problems.append(f"{t.where(t.line_of('bridge', t.section_start('tool.udriver')))}: "
                        f"{why}; fix: bridge = \"block\" (a block device) or \"net\" (a "
                        f"network interface), or remove the key")
    if problems:
        raise ManifestError("; ".join(problems) if len(problems) == 1
                            else f"{len(problems)} problems:\n  " + "\n  ".join(problems))
    setup_py = root / "setup.py"
    has_c = setup_py.is_file() and "cffi_modules" in setup_py.read_text(encoding="utf-8")
    return Project(root, str(name), str(version), driver, entry_point, abi, mods, has_c,
                   _maintainer(project), str(project.get("description") or ""),
                   _license(project), bridge if isinstance(bridge, str) else None)


def _entry_point(project: dict[str, object], driver: str, t: _Text, problems: list[str]) -> str:
    eps = project.get("entry-points")
    group = eps.get(ENTRY_POINT_GROUP) if isinstance(eps, dict) else None
    hint = f'add\n      [project.entry-points."{ENTRY_POINT_GROUP}"]\n      {driver or "<driver>"} = "<module>:<DriverClass>"'
    if not isinstance(group, dict) or not group:
        problems.append(f"{t.path}: missing entry point: no `[project.entry-points.\"{ENTRY_POINT_GROUP}\"]` "
                        f"table; fix: {hint}")
        return ""
    ep = group.get(driver)
    line = t.line_of(f'"{ENTRY_POINT_GROUP}"')
    if ep is None:
        problems.append(f"{t.where(line)}: missing entry point: `{driver}` is not in "
                        f"[project.entry-points.\"{ENTRY_POINT_GROUP}\"] (found {sorted(group)}); "
                        f"fix: {hint}")
        return ""
    if not isinstance(ep, str) or not _EP_RE.match(ep):
        problems.append(f"{t.where(t.line_of(str(ep)))}: entry point `{driver}` must be "
                        f"\"module:Class\", got {ep!r}")
        return ""
    if len(group) > 1:
        problems.append(f"{t.where(line)}: one driver per package: "
                        f"[project.entry-points.\"{ENTRY_POINT_GROUP}\"] lists {sorted(group)}; "
                        f"fix: keep only `{driver}`")
    return ep


def _abi(tool: dict[str, object], t: _Text, problems: list[str]) -> AbiVersion:
    text = tool.get("abi")
    line = t.line_of("abi", t.section_start("tool.udriver"))
    try:
        abi = parse_abi(text if isinstance(text, str) else repr(text))
        check_abi(abi, ABI_VERSION)
        return abi
    except AbiError as e:
        problems.append(f"{t.where(line)}: `abi = {text!r}`: {e}; fix: set abi = "
                        f"\"{format_abi(ABI_VERSION)}\" (the ABI this udriver provides) or "
                        "build with a udriver that provides the ABI you need")
        return (0, 0)


def _modaliases(tool: dict[str, object], t: _Text, problems: list[str]) -> tuple[str, ...]:
    raw = tool.get("modaliases")
    if not isinstance(raw, list) or not raw:
        problems.append(f"{t.where(t.line_of('[tool.udriver]'))}: `modaliases` must be a non-empty "
                        "list of patterns; fix: modaliases = [\"pci:v00001234d000011E8sv*sd*bc*sc*i*\"]")
        return ()
    located = t.array_items("modaliases", "tool.udriver")
    lines = [ln for _, ln in located] if len(located) == len(raw) else [None] * len(raw)
    seen: dict[str, int] = {}
    out: list[str] = []
    for i, (entry, line) in enumerate(zip(raw, lines)):
        try:
            canon = str(parse_pattern(entry))
        except ManifestError as e:
            problems.append(f"{t.where(line)}: malformed modalias pattern in `modaliases` entry {i}: "
                            f"{e}; fix: write it as the kernel does, "
                            "pci:v<8 hex>d<8 hex>sv<8 hex|*>sd<8 hex|*>bc<2 hex|*>sc<2 hex|*>i<2 hex|*>")
            continue
        if canon in seen:
            first = lines[seen[canon]]
            problems.append(f"{t.where(line)}: duplicate modalias pattern {entry!r} in `modaliases` "
                            f"(entry {i} is the same as entry {seen[canon]}"
                            f"{f' on line {first}' if first else ''}); fix: delete one of them")
            continue
        seen[canon] = i
        out.append(canon)
    return tuple(sorted(out))


def _maintainer(project: dict[str, object]) -> str:
    """`[project] maintainers`/`authors` (first with an email), else $DEBFULLNAME <$DEBEMAIL>."""
    for key in ("maintainers", "authors"):
        people = project.get(key) or []
        if isinstance(people, list):
            for a in people:
                if isinstance(a, dict) and a.get("email"):
                    return f"{a.get('name') or a['email']} <{a['email']}>"
    email = os.environ.get("DEBEMAIL", "")
    if email:
        return f"{os.environ.get('DEBFULLNAME') or email} <{email}>"
    return ""


def _license(project: dict[str, object]) -> str:
    lic = project.get("license")
    if isinstance(lic, str):
        return lic
    if isinstance(lic, dict) and isinstance(lic.get("text"), str):
        return str(lic["text"])
    return ""
