"""Here because cffi's `cffi_modules` is a setup() keyword, because the wheel ships
`driver-template/` (a top-level folder of the checkout) as `udriver/data/driver-template`,
which package-data cannot reach, and because the wheel's data carries the man page
(written from the CLI's own parser, udriver.cli._manpage) and the bash completion file for
pip users; metadata is in pyproject.toml."""

import os
import shutil
import sys
import time
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithTemplate(build_py):
    """build_py, plus a copy of driver-template/ inside the package (for `udriver new`)."""

    def run(self) -> None:
        super().run()
        src = Path(__file__).resolve().parent / "driver-template"
        dst = Path(self.build_lib) / "udriver" / "data" / "driver-template"
        if src.is_dir() and not self.editable_mode:
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _man_page() -> str:
    """build/man/udriver.1 from build_parser() (reproducible: SOURCE_DATE_EPOCH's date)."""
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here / "toolkit"))
    try:
        from udriver import __version__
        from udriver.cli import build_parser
        from udriver.cli._manpage import render
    finally:
        sys.path.pop(0)
    when = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH") or 0) or None)
    out = here / "build" / "man" / "udriver.1"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(build_parser(None), "udriver", __version__,
                          time.strftime("%Y-%m-%d", when)))
    return str(out.relative_to(here))


setup(cffi_modules=["native/build_ffi.py:ffibuilder"], cmdclass={"build_py": BuildPyWithTemplate},
      data_files=[("share/man/man1", [_man_page()]),
                  ("share/bash-completion/completions", ["completion/udriver"])])
