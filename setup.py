"""Here because cffi's `cffi_modules` is a setup() keyword, and because the wheel ships
`driver-template/` (a top-level folder of the checkout) as `udriver/data/driver-template`,
which package-data cannot reach; metadata is in pyproject.toml."""

import shutil
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


setup(cffi_modules=["native/build_ffi.py:ffibuilder"], cmdclass={"build_py": BuildPyWithTemplate})
