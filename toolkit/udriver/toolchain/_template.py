"""`udriver new`: render `driver-template/` into a new driver project.

Rules:
- the target directory must not exist; the project is rendered into a sibling temporary
  directory and renamed into place, so a failure leaves nothing behind;
- placeholders are `{{key}}`; an unknown key is an error (a template typo cannot ship);
- `__module__` in a path becomes the module name; `c/` overlays `common/` with `--with-c`.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..abi import ABI_VERSION, format_abi
from ..errors import ConfigError, ManifestError
from ..modalias import PciId

__all__ = ["NewDriver", "new_driver", "template_dir"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_PCI_RE = re.compile(r"^([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})$")
_CLASS_RE = re.compile(r"^[0-9A-Fa-f]{6}$")
_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_]+)\}\}")


@dataclass(frozen=True)
class NewDriver:
    """What `udriver new` created."""

    path: Path
    """The new project directory."""
    pattern: str
    """The modalias pattern it declares."""
    files: tuple[str, ...]
    """Files written, relative to `path`."""


def template_dir() -> Path:
    """`driver-template/`: $UDRIVER_TEMPLATE_DIR, the source checkout, or an installed copy.

    Raises:
        ConfigError: the template cannot be found.
    """
    env = os.environ.get("UDRIVER_TEMPLATE_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [here.parents[3] / "driver-template",          # a source checkout
                   here.parents[1] / "data" / "driver-template",  # a wheel that ships it
                   Path("/usr/share/udriver/driver-template")]     # the udriver .deb
    for c in candidates:
        if (c / "common" / "pyproject.toml").is_file():
            return c
    err = ConfigError(f"driver template not found (looked in {', '.join(map(str, candidates))})")
    err.hint = ("set UDRIVER_TEMPLATE_DIR to a copy of the checkout's driver-template/ folder, "
                "or reinstall udriver from its wheel or .deb (both ship the template)")
    raise err


def _author() -> tuple[str, str]:
    def git(key: str) -> str:
        try:
            return subprocess.run(["git", "config", "--get", key], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    name = git("user.name") or "Driver Author"
    email = git("user.email") or f"{getpass.getuser()}@example.org"
    return name, email


def _values(name: str, pci: str, class_code: str | None, with_c: bool,
            author: tuple[str, str] | None) -> dict[str, str]:
    m = _PCI_RE.match(pci)
    if m is None:
        raise ManifestError(f"--pci must be VVVV:DDDD (4 hex digits each), got {pci!r}")
    vendor, device = int(m.group(1), 16), int(m.group(2), 16)
    cc = None
    if class_code is not None:
        if not _CLASS_RE.match(class_code):
            raise ManifestError(f"--class must be CCSSPP (6 hex digits), got {class_code!r}")
        cc = int(class_code, 16)
    pid = PciId(vendor, device, class_code=cc)
    pciid = f"PciId(0x{vendor:04X}, 0x{device:04X}" + (f", class_code=0x{cc:06X})" if cc is not None else ")")
    example = (f"pci:v{vendor:08X}d{device:08X}sv00000000sd00000000"
               + (f"bc{cc >> 16:02X}sc{(cc >> 8) & 0xFF:02X}i{cc & 0xFF:02X}" if cc is not None
                  else "bc00sc00i00"))
    author_name, author_email = author or _author()
    cls = "".join(p.capitalize() for p in name.split("_")) + "Driver"
    return {
        "name": name, "module": name, "MODULE": name.upper(), "Class": cls,
        "dist": f"udriver-{name.replace('_', '-')}", "dist_us": f"udriver_{name}",
        "vendor_hex": f"{vendor:04x}", "device_hex": f"{device:04x}",
        "pattern": str(pid.to_pattern()), "pciid": pciid, "example_modalias": example,
        "abi": format_abi(ABI_VERSION), "author_name": author_name, "author_email": author_email,
        **_license_style(),
        "c_build_requires": ', "cffi>=1.16"' if with_c else "",
        # None even for C: the runtime brings cffi's backend (udriver depends on cffi, the
        # .deb on python3-cffi-backend), and a repository accepts `Requires-Dist` on
        # udriver only (udriver.gate).
        "c_dependencies": "",
        "c_layout": (f"\n    {name}/native.py      the C part's Python wrapper\n"
                     f"    native/               {name}.c, {name}.h (registers), cffi build script\n"
                     "    setup.py              cffi_modules, abi3") if with_c else "",
    }


def _setuptools_version() -> tuple[int, ...] | None:
    """The installed setuptools' version (None if it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return tuple(int(x) for x in version("setuptools").split(".")[:2] if x.isdigit())
    except PackageNotFoundError:
        return None


def _license_style() -> dict[str, str]:
    """`[project] license` as the setuptools that will build the driver reads it.

    An SPDX string (PEP 639) needs setuptools 77; Debian 12 has 66, which reads only the
    older table form (which newer setuptools still accept, with a deprecation warning).
    `udriver build` runs without isolation, so the installed setuptools is the one that
    matters; without one, the modern form (pip installs a current setuptools).
    """
    have = _setuptools_version()
    if have is not None and have < (77,):
        return {"setuptools_requires": '"setuptools>=61"', "license": '{ text = "Apache-2.0" }'}
    return {"setuptools_requires": '"setuptools>=77"', "license": '"Apache-2.0"'}


def _render(text: str, values: dict[str, str], src: Path) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise ConfigError(f"{src}: unknown template placeholder {{{{{key}}}}}")
        return values[key]
    return _PLACEHOLDER.sub(sub, text)


def new_driver(name: str, pci: str, *, class_code: str | None = None, with_c: bool = False,
               directory: str | Path = ".", author: tuple[str, str] | None = None) -> NewDriver:
    """Create `<directory>/<name>/` from the template.

    Raises:
        ManifestError: bad `name`, `pci` or `class_code` (the message says the format).
        ConfigError: the target exists or the template is missing/broken.
    """
    if not _NAME_RE.match(name):
        raise ManifestError(f"driver name must match {_NAME_RE.pattern} (it is also the Python "
                            f"module name), got {name!r}; e.g. `udriver new acme --pci 5a5a:0001`")
    values = _values(name, pci, class_code, with_c, author)
    tpl = template_dir()
    target = Path(directory) / name
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another name or directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    layers = [tpl / "common"] + ([tpl / "c"] if with_c else [])
    files: dict[str, Path] = {}
    for layer in layers:
        for src in sorted(layer.rglob("*")):
            if src.is_file() and "__pycache__" not in src.parts:
                rel = src.relative_to(layer).as_posix().replace("__module__", name)
                files[rel] = src
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        for rel, src in sorted(files.items()):
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(_render(src.read_text(encoding="utf-8"), values, src), encoding="utf-8")
        tmp.chmod(0o755)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return NewDriver(target, values["pattern"], tuple(sorted(files)))
