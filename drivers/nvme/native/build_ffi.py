"""cffi build script for `udriver_nvme._native` (API mode, abi3, libc only)."""

from pathlib import Path

from cffi import FFI

from udriver.runtime import get_include

HERE = Path(__file__).resolve().parent
ffibuilder = FFI()
ffibuilder.cdef((HERE / "nvme_cdef.h").read_text())
ffibuilder.set_source(
    "udriver_nvme._native",
    '#include "udriver.h"\n#include "nvme_c.h"',
    sources=[f"native/{name}.c" for name in ("nvme_queue", "nvme_prp", "nvme_io", "nvme_tag",
                                                   "nvme_nbd", "nvme_uring", "nvme_ublk")],
    include_dirs=[get_include(), "native"],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wformat=2"],
    py_limited_api=True,
)
