"""Placeholder until the native layer lands: builds an empty private extension."""

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef("int udriver_placeholder(void);")
ffibuilder.set_source("udriver._native", "int udriver_placeholder(void) { return 0; }")
