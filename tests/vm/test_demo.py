"""Issue 6, acceptance 4: the README's main command runs the whole chain and shows the
driver running on the hot-plugged device.

`make demo` is `.ci/setup` (which CI has just run, as part of `make test`) followed by
`python3 examples/demo.py`; this runs the latter exactly as `make demo` does.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from udriver_vm.chroot import need_tools
from vm._fixtures import require_vm

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_make_demo_drives_the_hot_plugged_device(tmp_path: Path) -> None:
    require_vm("6.1")
    need_tools("dpkg-buildpackage", "debootstrap", "git")
    r = subprocess.run([sys.executable, "examples/demo.py", "--workdir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    out = r.stdout
    assert r.returncode == 0, out[-6000:] + r.stderr[-3000:]
    for n in range(1, 7):
        assert f"\n[{n}/6] " in out, n
    assert "\nDemo PASSED: the hot-plugged edu device was driven by the driver" in out
    # The guest ran the packaged udriver under systemd...
    assert "    /usr/lib/systemd/systemd\n    udriver\t0.1.0\n" in out
    assert "Active: active (running)" in out and "udriver@0000:" in out
    # ...and the driver's own output, from the journal, shows it working on the device.
    events = [ast.literal_eval(line.strip()) for line in out.splitlines()
              if line.startswith("    {'")]
    checks = {e["check"]: e["ok"] for e in events if "check" in e}
    assert checks["factorial_msi"] is True and checks["dma"] is True, events
    assert {"event": "done", "ok": True} in events
    assert "systemctl stop: inactive, result success" in out
