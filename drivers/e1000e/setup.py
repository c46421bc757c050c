"""Only here because cffi's `cffi_modules` is a setup() keyword; metadata is in pyproject.toml."""

from setuptools import setup

setup(
    cffi_modules=["native/build_ffi.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
