"""cffi build script for `udriver_e1000e._native` (API mode, abi3, libc only)."""

from pathlib import Path

from cffi import FFI

from udriver.runtime import get_include

HERE = Path(__file__).resolve().parent
ffibuilder = FFI()
ffibuilder.cdef((HERE / "e1k_cdef.h").read_text())
ffibuilder.set_source(
    "udriver_e1000e._native",
    '#include "udriver.h"\n#include "e1k.h"',
    sources=[f"native/{name}.c" for name in ("e1k_rx", "e1k_tx", "e1k_wait", "e1k_perf", "e1k_tap")],
    include_dirs=[get_include(), "native"],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wformat=2"],
    py_limited_api=True,
)
