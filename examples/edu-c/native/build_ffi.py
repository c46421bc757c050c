"""cffi build script for `udriver_edu_c._native` (API mode, abi3, libc only)."""

from pathlib import Path

from cffi import FFI

from udriver.runtime import get_include

HERE = Path(__file__).resolve().parent
ffibuilder = FFI()
ffibuilder.cdef((HERE / "edu_c_cdef.h").read_text())
ffibuilder.set_source(
    "udriver_edu_c._native",
    '#include "udriver.h"\n#include "edu_c.h"',
    sources=["native/edu_c.c"],
    include_dirs=[get_include(), "native"],
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wformat=2"],
    py_limited_api=True,
)
