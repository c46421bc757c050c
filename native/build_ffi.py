"""cffi (API mode, abi3) build of the private extension `udriver._native`.

Run by setuptools through `cffi_modules` in setup.py. The C sources are one job per
file; the cdef is kept in udriver_cdef.h. The module exports only `ffi` and `lib`.
"""

from pathlib import Path

from cffi import FFI

_HERE = Path(__file__).resolve().parent
_SOURCES = ["api.c", "device.c", "vfio_group.c", "region.c", "irq.c", "dma.c"]

ffibuilder = FFI()
ffibuilder.cdef((_HERE / "udriver_cdef.h").read_text())
ffibuilder.set_source(
    "udriver._native",
    '#include "ud_internal.h"\n',
    # setuptools wants source paths relative to the project root.
    sources=[str((_HERE / s).relative_to(_HERE.parent)) for s in _SOURCES],
    include_dirs=[str(_HERE)],
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wformat=2", "-Werror",
                        "-Wno-unused-parameter"],
    py_limited_api=True,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
