"""The repository accepts what `udriver build` produces (examples/edu), end to end.

`udriver build` (pypa/build, the toolchain's checks, dpkg-deb) makes the edu driver's
wheel and deb; `Repository.publish` accepts both for vendor `qemu` (PCI 1234); a plain
ngclient downloads the wheel, whose embedded ID table matches QEMU's edu device.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from udriver.artifacts import read_wheel_manifest
from udriver.modalias import Modalias

pytestmark = pytest.mark.slow


def test_publish_udriver_build_output_and_fetch_it(repo, built_edu, make_client):
    res = repo.publish(built_edu, vendor="qemu")
    (d,) = res.drivers
    assert d.indexes == ("index/1234/8.json",) and set(d.files) == {"wheel", "deb"}
    up = make_client()
    up.refresh()
    info = up.get_targetinfo(d.files["wheel"])
    assert info is not None
    wheel = Path(up.download_target(info))
    manifest = read_wheel_manifest(wheel.rename(wheel.with_name(Path(d.files["wheel"]).name)))
    edu = Modalias.from_ids(0x1234, 0x11E8, 0x1AF4, 0x1100, 0x00FF00)
    assert any(p.matches(edu) for p in manifest.patterns)
    assert repo.verify().ok
