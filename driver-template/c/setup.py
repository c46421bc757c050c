"""Only here because cffi's `cffi_modules` is a setup() keyword; metadata is in pyproject.toml.

`py_limited_api` makes the extension abi3: one binary for every CPython from 3.11 on.
"""

from setuptools import setup

setup(
    cffi_modules=["native/build_ffi.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
