"""kernels.py and _initramfs.py pieces that need no guest: payload search, sources, cache, cpio."""

from __future__ import annotations

import json
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from udriver_vm import kernels
from udriver_vm.apt import AptError, SuiteApt
from udriver_vm.initramfs import Cpio, module_closure
from vm._fixtures import in_ci

ELF = b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 64


def _bzimage(tmp_path: Path, payload: bytes) -> Path:
    # A decoy magic first (as in real bzImages, where the magic bytes also occur by chance).
    img = tmp_path / "vmlinuz"
    img.write_bytes(b"MZ" + b"\0" * 300 + b"\xfd7zXZ\x00garbage" + b"\1" * 50 + payload + b"\0" * 64)
    return img


def test_extract_vmlinux_xz(tmp_path: Path) -> None:
    img = _bzimage(tmp_path, lzma.compress(ELF, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32))
    assert kernels.extract_vmlinux(img) == ELF


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_extract_vmlinux_zstd(tmp_path: Path) -> None:
    z = subprocess.run(["zstd", "-q", "-c"], input=ELF, capture_output=True, check=True).stdout
    assert kernels.extract_vmlinux(_bzimage(tmp_path, z)) == ELF


def test_extract_vmlinux_rejects_non_elf_payload(tmp_path: Path) -> None:
    img = _bzimage(tmp_path, lzma.compress(b"not an ELF file", format=lzma.FORMAT_XZ))
    with pytest.raises(kernels.KernelFetchError, match="decompresses to an ELF vmlinux"):
        kernels.extract_vmlinux(img)


SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_is_read_from_the_bookworm_stanza(tmp_path: Path) -> None:
    src = tmp_path / "debian.sources"
    src.write_text(SOURCES)
    assert kernels._debian_mirror(src) == "http://mirror.example/debian"


def test_mirror_missing_bookworm_stanza(tmp_path: Path) -> None:
    src = tmp_path / "debian.sources"
    src.write_text(SOURCES.split("\n\n")[1])
    with pytest.raises(kernels.KernelFetchError, match="no stanza with `Suites: bookworm`"):
        kernels._debian_mirror(src)


def test_mirror_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(kernels.KernelFetchError, match="cannot read .* to find the mirror"):
        kernels._debian_mirror(tmp_path / "absent.sources")


def test_kernel_paths_unknown_name() -> None:
    with pytest.raises(kernels.KernelFetchError, match="unknown kernel '4.19'"):
        kernels.kernel_paths("4.19")


def _bullseye() -> SuiteApt:
    """The private bullseye apt configuration that `kernels.py fetch` left (lists only)."""
    apt = SuiteApt("bullseye", kernels._debian_mirror(), kernels.cache_dir() / "apt" / "bullseye")
    if not apt.has_lists():
        if in_ci():
            pytest.fail("CI=true and `kernels.py fetch` left no bullseye lists", pytrace=False)
        pytest.skip("no bullseye lists: run `python3 -m udriver_vm.kernels fetch`")
    return apt


def test_pin_resolves_to_the_index_sha256() -> None:
    pin = kernels._PINNED["5.10"]
    digest = _bullseye().resolve(pin.packages[0], pin.version, pin.similar)
    stamp = json.loads((kernels.cache_dir() / "linux-5.10" / "stamp.json").read_text())
    assert stamp["debs"][pin.packages[0]] == {"version": pin.version, "sha256": digest}


def test_superseded_pinned_version_says_what_to_bump() -> None:
    pin = kernels._PINNED["5.10"]
    with pytest.raises(AptError) as e:
        _bullseye().resolve(pin.packages[0], "5.10.999-1", pin.similar)
    assert str(e.value) == (
        f"pinned {pin.packages[0]}=5.10.999-1 is no longer in Debian bullseye (it offers: "
        f"{pin.packages[0]} versions {pin.version}); bump the pin in vm/udriver_vm/kernels.py `_PINNED`"
    )


def test_renamed_pinned_package_lists_its_successors() -> None:
    pin = kernels._PINNED["5.10"]
    with pytest.raises(AptError, match="bump the pin") as e:
        _bullseye().resolve("linux-image-5.10.0-99-amd64-unsigned", pin.version, pin.similar)
    assert "(it offers: " in str(e.value) and pin.packages[0] in str(e.value)
    assert "-cloud-" not in str(e.value)  # the regex names only the generic flavour


def test_private_suites_are_invisible_to_the_host_apt() -> None:
    """`apt-get upgrade` on the host must never see bullseye or sid (no file in /etc/apt)."""
    etc = Path("/etc/apt")
    for f in [etc / "sources.list", *etc.glob("sources.list.d/*")]:
        if f.is_file() and not f.name.endswith((".disabled", ".save")):
            text = f.read_text()
            assert not any(w in text.split() for w in ("bullseye", "sid", "unstable")), f


def test_kernel_paths_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_VM_CACHE", str(tmp_path))
    with pytest.raises(kernels.KernelFetchError, match="kernel 6.1 is not cached"):
        kernels.kernel_paths("6.1")


def test_kernel_paths_incomplete_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_VM_CACHE", str(tmp_path))
    entry = tmp_path / "linux-6.12"
    entry.mkdir()
    stamp = {"vmlinux": f"{entry}/vmlinux", "modules_dir": f"{entry}/m", "version": "6.12.0"}
    (entry / "stamp.json").write_text(json.dumps(stamp))
    with pytest.raises(kernels.KernelFetchError, match="cache is incomplete"):
        kernels.kernel_paths("6.12")


def _moddir(tmp_path: Path) -> Path:
    d = tmp_path / "lib/modules/6.1.0-1-amd64"
    d.mkdir(parents=True)
    (d / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko.xz: kernel/fs/netfs/netfs.ko.xz kernel/net/9p/9pnet.ko.xz\n"
        "kernel/fs/netfs/netfs.ko.xz:\n"
        "kernel/net/9p/9pnet.ko.xz:\n"
        "kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz\n"
        "kernel/fs/overlayfs/overlay.ko.xz:\n"
    )
    (d / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")
    return d


def test_module_closure_orders_dependencies_first_and_skips_builtins(tmp_path: Path) -> None:
    order = module_closure(_moddir(tmp_path), ("virtio_pci", "9pnet_virtio", "9p", "overlay"))
    assert order == [
        "kernel/net/9p/9pnet.ko.xz",
        "kernel/net/9p/9pnet_virtio.ko.xz",
        "kernel/fs/netfs/netfs.ko.xz",
        "kernel/fs/9p/9p.ko.xz",
        "kernel/fs/overlayfs/overlay.ko.xz",
    ]


def test_module_closure_unknown_module(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="'nosuch' is neither in modules.dep"):
        module_closure(_moddir(tmp_path), ("nosuch",))


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")
def test_cpio_is_readable_by_gnu_cpio(tmp_path: Path) -> None:
    c = Cpio()
    c.dir("bin")
    c.file("bin/busybox", b"\x7fELF" + b"x" * 1001, 0o755)
    c.file("init", b"#!/bin/sh\n", 0o755)
    (tmp_path / "a.cpio").write_bytes(c.finish())
    out = tmp_path / "out"
    out.mkdir()
    with open(tmp_path / "a.cpio", "rb") as f:
        subprocess.run(["cpio", "-id", "--quiet"], stdin=f, cwd=out, check=True)
    assert (out / "bin/busybox").read_bytes() == b"\x7fELF" + b"x" * 1001
    assert (out / "init").stat().st_mode & 0o777 == 0o755
