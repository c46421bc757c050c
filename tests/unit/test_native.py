"""The native layer on the host (no VFIO here): ABI table, header, error paths, no fd leaks."""

from __future__ import annotations

import ctypes
import errno
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from udriver._nativecall import CAPSULE_NAME, api_address, api_capsule, check, ffi, lib
from udriver.abi import ABI_VERSION
from udriver.errors import NativeError
from udriver.runtime import get_include

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "native"
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Wformat=2", "-Werror", "-pedantic"]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_api_table_header_matches_python_abi() -> None:
    api = lib.udriver_get_api()
    assert (api.abi_major, api.abi_minor) == ABI_VERSION
    assert (lib.UDRIVER_ABI_MAJOR, lib.UDRIVER_ABI_MINOR) == ABI_VERSION
    assert api.size == 8 + 26 * ffi.sizeof("void *")


def test_shipped_header_is_the_native_header() -> None:
    shipped = Path(get_include()) / "udriver.h"
    assert filecmp.cmp(shipped, NATIVE / "udriver.h", shallow=False)


def test_capsule_holds_the_table() -> None:
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    assert get(api_capsule(), CAPSULE_NAME) == api_address() != 0


@pytest.mark.parametrize("src", sorted(p.name for p in NATIVE.glob("*.c")))
def test_each_c_file_compiles_with_strict_warnings(src: str, tmp_path: Path) -> None:
    r = subprocess.run(["gcc", *CFLAGS, "-c", str(NATIVE / src), "-o",
                        str(tmp_path / "o.o")], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


_MACRO_TEST = r"""
#include <stdio.h>
#include <udriver.h>
int main(void) {
    struct udriver_api a = {0};
    int ok[6];
    a.abi_major = 1; a.abi_minor = UDRIVER_ABI_MINOR; a.size = sizeof(a);
    ok[0] = UDRIVER_API_COMPATIBLE(&a);
    a.abi_minor = UDRIVER_ABI_MINOR - 1; ok[5] = UDRIVER_API_COMPATIBLE(&a);  /* older runtime */
    a.abi_minor = UDRIVER_ABI_MINOR + 3; ok[1] = UDRIVER_API_COMPATIBLE(&a);  /* newer: fine */
    a.abi_major = 2; a.abi_minor = 0; ok[2] = UDRIVER_API_COMPATIBLE(&a);  /* other major */
    a.abi_major = 1; a.size = 8; ok[3] = UDRIVER_API_COMPATIBLE(&a);       /* short table */
    const struct udriver_api *none = NULL; ok[4] = UDRIVER_API_COMPATIBLE(none);
    printf("%d%d%d%d%d%d\n", ok[0], ok[1], ok[2], ok[3], ok[4], ok[5]);
    return 0;
}
"""


def test_header_compat_macro_in_a_c_driver(tmp_path: Path) -> None:
    (tmp_path / "t.c").write_text(_MACRO_TEST)
    subprocess.run(["gcc", *CFLAGS, "-I", get_include(), str(tmp_path / "t.c"), "-o",
                    str(tmp_path / "t")], check=True)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True)
    assert out.stdout == "110000\n"  # ABI 1.1 header: a 1.0 table is refused


def test_c_driver_calls_through_the_table(tmp_path: Path) -> None:
    """A driver's own extension gets the table by address and calls it (no linking)."""
    code = f"""
import cffi, sys
ffi = cffi.FFI()
ffi.cdef("int probe_bad(uintptr_t api); int read_null(uintptr_t api);")
ffi.set_source("_drv", '''
#include <udriver.h>
int probe_bad(uintptr_t a) {{
    const struct udriver_api *api = (const struct udriver_api *)a;
    struct udriver_device *dev;
    if (!UDRIVER_API_COMPATIBLE(api)) return 1;
    return api->open("nonsense", &dev);
}}
int read_null(uintptr_t a) {{
    const struct udriver_api *api = (const struct udriver_api *)a;
    uint32_t v;
    return api->bar_read32(NULL, 0, 0, &v);
}}''', include_dirs=[{get_include()!r}], extra_compile_args={CFLAGS[:-1]!r})
ffi.compile(tmpdir={str(tmp_path)!r})
sys.path.insert(0, {str(tmp_path)!r})
import _drv
from udriver.runtime import api_address
print(_drv.lib.probe_bad(api_address()), _drv.lib.read_null(api_address()))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(-errno.EINVAL), str(-errno.EINVAL)]


def test_open_rejects_malformed_bdf() -> None:
    out = ffi.new("struct udriver_device **")
    for bdf in (b"", b"00:03.0", b"0000:00:03.8", b"0000:00:03.0x", b"0000:0G:03.0",
                b"0000:00:03.0/../../x"):
        assert lib.ud_api_open(bdf, out) == -errno.EINVAL, bdf
    assert lib.ud_api_open(ffi.NULL, out) == -errno.EINVAL


def test_open_missing_device_is_enodev() -> None:
    out = ffi.new("struct udriver_device **")
    assert lib.ud_api_open(b"0000:ff:1f.7", out) == -errno.ENODEV
    assert out[0] == ffi.NULL


def test_open_fds_owns_the_fds_on_failure() -> None:
    out = ffi.new("struct udriver_device **")
    before = _fds()
    for bdf in (b"bad", b"0000:ff:1f.7"):
        a, b = os.open("/dev/null", os.O_RDWR), os.open("/dev/null", os.O_RDWR)
        ret = lib.ud_api_open_fds(a, b, bdf, out)
        assert ret < 0
        for fd in (a, b):
            with pytest.raises(OSError) as e:
                os.fstat(fd)
            assert e.value.errno == errno.EBADF
    assert _fds() == before


def test_failed_opens_leak_no_fd() -> None:
    out = ffi.new("struct udriver_device **")
    before = _fds()
    for _ in range(200):
        lib.ud_api_open(b"0000:ff:1f.7", out)
        lib.ud_api_open(b"0000:00:00.0", out)  # exists on most hosts; no IOMMU / no vfio
    assert _fds() == before


def test_null_handles_are_rejected_not_dereferenced() -> None:
    dma = ffi.new("struct udriver_dma *")
    info = ffi.new("struct udriver_device_info *")
    v = ffi.new("uint64_t *")
    assert lib.ud_api_close(ffi.NULL) == -errno.EBADF
    assert lib.ud_api_device_info(ffi.NULL, info) == -errno.EINVAL
    assert lib.ud_api_bar_read64(ffi.NULL, 0, 0, v) == -errno.EINVAL
    assert lib.ud_api_bar_write64(ffi.NULL, 0, 0, 1) == -errno.EINVAL
    assert lib.ud_api_config_read(ffi.NULL, 0, ffi.new("char[4]"), 4) == -errno.EINVAL
    assert lib.ud_api_irq_enable(ffi.NULL, 1, 0, 1, ffi.new("int32_t[1]")) == -errno.EINVAL
    assert lib.ud_api_irq_disable(ffi.NULL, 1) == -errno.EINVAL
    assert lib.ud_api_dma_alloc(ffi.NULL, 4096, dma) == -errno.EINVAL
    assert lib.ud_api_dma_map(ffi.NULL, dma, 0xFFFFFFF) == -errno.EINVAL
    assert lib.ud_api_dma_free(ffi.NULL, dma) == -errno.EINVAL  # vaddr NULL: nothing to free
    assert lib.ud_api_reset(ffi.NULL) == -errno.EINVAL
    assert lib.ud_api_device_fd(ffi.NULL) == -errno.EBADF


def test_check_turns_negative_errno_into_native_error() -> None:
    assert check(0, "x") == 0
    with pytest.raises(NativeError) as e:
        check(-errno.ENODEV, "open 0000:00:03.0")
    assert e.value.errno == errno.ENODEV
    assert str(e.value) == "open 0000:00:03.0: No such device (errno 19)"


def test_build_script_sets_strict_flags() -> None:
    text = (NATIVE / "build_ffi.py").read_text()
    for flag in ("-std=c11", "-Wall", "-Wextra", "-Werror"):
        assert f'"{flag}"' in text
    assert "py_limited_api=True" in text
    assert len(text.splitlines()) < 50
