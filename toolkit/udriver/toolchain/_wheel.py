"""Build a driver wheel with pypa/build, then repair and check native code with auditwheel.

Order of operations:
1. copy the project (without dist/, build/, VCS and caches) into the build directory, so
   the source tree is never written to and compiler paths are the same every time;
2. `build.ProjectBuilder(...).build("wheel")` without isolation: the build runs in this
   interpreter's environment, which has setuptools, cffi and `udriver` itself (a C
   driver's build script takes `udriver.h` from `udriver.runtime.get_include()`), and
   needs no network;
3. with C code: `auditwheel repair` retags the `cp311-abi3-linux_x86_64` wheel as
   `manylinux_2_X`; if it had to graft a library into the wheel, the driver links a
   library from outside its wheel and the build FAILS (DESIGN.md: a driver reaches the
   runtime only through the ABI table, so there is nothing to graft);
4. the caller embeds the manifest and normalises the zip (`_wheelfile`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ._project import Project
from ._wheelfile import rewrite_wheel

__all__ = [
    "SYSTEM_LIBRARIES",
    "auditwheel_show",
    "build_wheel",
    "copy_source",
    "needed_libraries",
    "outside_libraries",
]

#: The only shared libraries a driver's native code may need: the C library itself
#: (glibc's parts and the dynamic loader). Everything else - even what the manylinux
#: policy would allow, such as libz - is "a library outside the wheel" (DESIGN.md).
SYSTEM_LIBRARIES = frozenset({"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
                              "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"})

log = logging.getLogger(__name__)

_IGNORE = shutil.ignore_patterns("dist", "build", ".git", ".hg", "__pycache__", "*.pyc",
                                 "*.egg-info", ".venv", "venv", ".pytest_cache", ".mypy_cache",
                                 ".ruff_cache", "*.so", "wheelhouse")
_GCC_ERROR_RE = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)?\s*(?:fatal )?error:\s*(?P<msg>.*)$",
                           re.MULTILINE)


def copy_source(project: Project, dest: Path) -> Path:
    """Copy the project tree to `dest` (which must not exist), leaving out build debris."""
    shutil.copytree(project.root, dest, ignore=_IGNORE, symlinks=True)
    return dest


class _Runner:
    """A pyproject_hooks runner that keeps the backend's output for error messages."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.output = ""

    def __call__(self, cmd: Sequence[str], cwd: str | None = None,
                 extra_environ: Mapping[str, str] | None = None) -> None:
        env = dict(self.env)
        env.update(extra_environ or {})
        proc = subprocess.run(list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace", check=False)
        self.output += proc.stdout
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout)


def _compile_error(output: str, src: Path, project: Project) -> BuildError | None:
    errors = list(_GCC_ERROR_RE.finditer(output))
    if not errors:
        return None
    lines = []
    for m in errors[:5]:
        f = m.group("file")
        for prefix in (str(src) + "/", "./"):
            f = f.removeprefix(prefix)
        lines.append(f"{project.root / f}:{m.group('line')}: {m.group('msg')}")
    err = BuildError("C compile error:\n  " + "\n  ".join(lines))
    err.hint = "fix the C source at the line shown (run `udriver -v build` for the compiler's full output)"
    return err


def build_wheel(project: Project, work: Path, epoch: int) -> Path:
    """Build the project's wheel in `work`; return the (repaired) wheel's path.

    Raises:
        BuildError: missing build dependencies, a compile error, a backend failure, or a
            native library from outside the wheel.
    """
    try:
        import build  # pypa/build; the `build` extra
    except ImportError as e:
        err = BuildError(f"pypa/build is not installed, and `udriver build` needs it ({e})")
        err.hint = ("pip install 'udriver[build]', or with udriver's .deb: apt install "
                    "python3-build python3-setuptools")
        raise err from e

    src = copy_source(project, work / "src")
    raw = work / "raw"
    env = dict(os.environ)
    env["SOURCE_DATE_EPOCH"] = str(epoch)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # Reproducible objects: no temp-dir paths in debug info or __FILE__.
    prefix_map = f"-ffile-prefix-map={src}=."
    env["CFLAGS"] = (env.get("CFLAGS", "") + " " + prefix_map).strip()
    runner = _Runner(env)
    builder = build.ProjectBuilder(src, python_executable=sys.executable, runner=runner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = _run_backend(builder, raw, runner, project, src)
    for w in caught:  # the backend's warnings, relayed by pypa/build: diagnostics, not output
        log.info("build backend: %s", str(w.message).strip().splitlines()[0])
    if not _has_native(built):
        return built
    with zipfile.ZipFile(built) as zf:
        outside = outside_libraries({n: zf.read(n) for n in zf.namelist() if _is_so(n)})
    if outside:
        raise _outside_error(outside, project)
    fixed = work / "fixed" / built.name
    fixed.parent.mkdir()
    rewrite_wheel(built, fixed, None, epoch, _native_fixer(work / "elf"))
    return _repair(fixed, work / "repaired", env, project)


def _run_backend(builder: Any, raw: Path, runner: _Runner, project: Project, src: Path) -> Path:
    import build
    # Only the static `[build-system] requires` are checked: asking the backend for its
    # dynamic ones costs a whole interpreter start (setuptools adds none we lack).
    missing = {chain for req in sorted(builder.build_system_requires)
               for chain in build.check_dependency(req)}
    if missing:
        names = sorted(" -> ".join(chain) for chain in missing)
        err = BuildError(f"build dependencies missing from this environment: {', '.join(names)}")
        err.hint = ("pip install 'udriver[build]', or with udriver's .deb: apt install "
                    "python3-build python3-setuptools (udriver builds without isolation, "
                    "offline)")
        raise err
    try:
        built = Path(builder.build("wheel", raw))
    except build.BuildBackendException as e:
        log.debug("backend output:\n%s", runner.output)
        cerr = _compile_error(runner.output, src, project)
        if cerr is not None:
            raise cerr from e
        tail = "\n".join(runner.output.strip().splitlines()[-15:])
        raise BuildError(f"building the wheel of {project.root} failed:\n{tail}") from e
    except build.BuildException as e:
        raise BuildError(f"building the wheel of {project.root} failed: {e}") from e
    log.debug("backend output:\n%s", runner.output)
    return built


def _native_fixer(tmp: Path) -> Callable[[str, bytes], bytes]:
    """Strip each shared object and drop its RUNPATH.

    The build host's interpreter may add `-Wl,-rpath` (pyenv does), which would point a
    binary package at a host directory (lintian: custom-library-search-path); debug
    symbols would carry build paths (lintian: unstripped-binary-or-object).
    """
    tmp.mkdir(exist_ok=True)

    def fix(name: str, data: bytes) -> bytes:
        if not (name.endswith(".so") or ".so." in name):
            return data
        f = tmp / "obj.so"
        f.write_bytes(data)
        for cmd in (["patchelf", "--remove-rpath", str(f)],
                    ["strip", "--strip-unneeded", "--remove-section=.comment", str(f)]):
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
            if proc.returncode:
                raise BuildError(f"{cmd[0]} failed on {name}: {proc.stdout.strip()}")
        return f.read_bytes()
    return fix


def _is_so(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


def _has_native(wheel: Path) -> bool:
    with zipfile.ZipFile(wheel) as zf:
        return any(_is_so(n) for n in zf.namelist())


def needed_libraries(data: bytes) -> list[str]:
    """DT_NEEDED entries of an ELF shared object (System V gABI, "Dynamic Section").

    Raises:
        BuildError: not an ELF file.
    """
    import io

    from elftools.common.exceptions import ELFError  # pyelftools, an auditwheel dependency
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    try:
        elf = ELFFile(io.BytesIO(data))
        out: list[str] = []
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                out += [str(getattr(t, "needed", "")) for t in sec.iter_tags("DT_NEEDED")]
        return out
    except (ELFError, ValueError) as e:
        raise BuildError(f"not an ELF shared object: {e}") from e


def outside_libraries(objects: dict[str, bytes]) -> dict[str, list[str]]:
    """Shared object name -> libraries it needs from outside the wheel (not libc)."""
    inside = {Path(n).name for n in objects}
    out: dict[str, list[str]] = {}
    for name, data in sorted(objects.items()):
        bad = [lib for lib in needed_libraries(data) if lib not in SYSTEM_LIBRARIES and lib not in inside]
        if bad:
            out[name] = bad
    return out


def _outside_error(outside: dict[str, list[str]], project: Project) -> BuildError:
    what = "; ".join(f"{', '.join(libs)} (needed by {so})" for so, libs in outside.items())
    err = BuildError(f"native library linked from outside the wheel: {what}; a udriver "
                     "driver may only use libc and reach the runtime through the udriver C "
                     "ABI table")
    err.hint = (f"remove the library from `libraries=`/`extra_link_args`/`-l` in "
                f"{project.root / 'setup.py'} or native/build_ffi.py, or compile that code "
                "into the extension")
    return err


def _repair(wheel: Path, outdir: Path, env: Mapping[str, str], project: Project) -> Path:
    """`auditwheel repair`, refusing any grafted library."""
    outdir.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "auditwheel", "repair", "--plat", "auto", "-w", str(outdir),
         str(wheel)], env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", check=False)
    if proc.returncode:
        raise BuildError(f"auditwheel repair refused {wheel.name}:\n{proc.stdout.strip()}")
    repaired = sorted(outdir.glob("*.whl"))
    if len(repaired) != 1:
        raise BuildError(f"auditwheel repair wrote {len(repaired)} wheels, expected 1")
    with zipfile.ZipFile(repaired[0]) as zf:
        grafted = sorted(n for n in zf.namelist() if re.match(r"^[^/]+\.libs/", n))
    if grafted:
        libs = ", ".join(Path(n).name for n in grafted)
        err = BuildError(
            f"native library linked from outside the wheel: {libs} (auditwheel would graft "
            f"it into {wheel.name}); a udriver driver may only use libc and reach the runtime "
            "through the udriver C ABI table")
        err.hint = (f"remove the library from `libraries=`/`-l` in {project.root / 'setup.py'} "
                    "or your cffi build script, or compile that code into the extension")
        raise err
    return repaired[0]


def auditwheel_show(wheel: Path) -> tuple[bool, str]:
    """Run `auditwheel show`; (ok, the platform tag or the reason it is not ok)."""
    proc = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", check=False)
    text = " ".join(proc.stdout.split())
    if proc.returncode:
        return False, text or f"auditwheel show exited {proc.returncode}"
    m = re.search(r'consistent with the following platform tag: "([^"]+)"', text)
    if m is None:
        return False, f"auditwheel show gave no platform tag: {text[:300]}"
    if "external shared libraries" in text and "requires the external shared libraries" in text:
        return False, f"links shared libraries from outside the wheel: {text[:300]}"
    return True, m.group(1)
