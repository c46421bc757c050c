"""`udriver.fsio`: the one write-to-temporary-then-rename helper (client, supervisor,
toolchain and the repository server's `_fsio`)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from udriver import fsio


def test_write_replaces_with_the_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    p = tmp_path / "new" / "f.json"
    fsio.write_atomic(p, b"one", 0o600)
    fsio.write_atomic(p, b"two", 0o644)
    assert p.read_bytes() == b"two" and stat.S_IMODE(p.stat().st_mode) == 0o644
    assert [x.name for x in p.parent.iterdir()] == ["f.json"]


def test_a_failing_make_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"old")

    def make(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        fsio.replace_atomic(p, make)
    assert p.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["f"]


def test_a_symlink_is_swapped_and_the_temporary_named_by_prefix(tmp_path: Path) -> None:
    seen: list[str] = []

    def link(to: str) -> Callable[[Path], None]:
        def make(tmp: Path) -> None:
            seen.append(tmp.name)
            os.symlink(to, tmp)
        return make

    fsio.replace_atomic(tmp_path / "current", link("1.0"), prefix=".link-current-")
    fsio.replace_atomic(tmp_path / "current", link("2.0"), prefix=".link-current-")
    assert os.readlink(tmp_path / "current") == "2.0"
    assert all(n.startswith(".link-current-") for n in seen) and len(seen) == 2
    assert [x.name for x in tmp_path.iterdir()] == ["current"]


@pytest.mark.parametrize("durable,syncs", [(True, 2), (False, 0)])
def test_durable_fsyncs_the_file_and_the_directory(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   durable: bool, syncs: int) -> None:
    synced: list[bool] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    fsio.write_atomic(tmp_path / "f", b"x", durable=durable)
    assert len(synced) == syncs
    if durable:
        assert synced == [False, True]  # the file, then (after the rename) its directory
