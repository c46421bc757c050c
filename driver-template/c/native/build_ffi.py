"""cffi build script for `{{module}}._native` (API mode, abi3).

`udriver.h` comes from the udriver runtime (`udriver.runtime.get_include()`); the C code
reaches the runtime only through the `struct udriver_api` table it is handed at run
time, so the extension links against nothing but libc.
"""

from pathlib import Path

from cffi import FFI
from udriver.runtime import get_include

HERE = Path(__file__).resolve().parent
ffibuilder = FFI()
ffibuilder.cdef((HERE / "{{module}}_cdef.h").read_text())
ffibuilder.set_source(
    "{{module}}._native",
    '#include "{{module}}.h"',
    sources=["native/{{module}}.c"],
    include_dirs=[get_include(), "native"],
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wformat=2"],
    py_limited_api=True,
)
