"""examples/edu as a package: installable with pip, metadata agrees with the code."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from udriver.abi import parse_abi
from udriver.errors import ConfigError
from udriver.modalias import normalise_patterns

EDU = Path(__file__).resolve().parents[2] / "examples" / "edu"
sys.path.insert(0, str(EDU))

from udriver_edu import EduDriver
from udriver_edu import _regs as R


def test_pyproject_declares_the_driver() -> None:
    meta = tomllib.loads((EDU / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["udriver.drivers"] == {"edu": "udriver_edu:EduDriver"}
    tool = meta["tool"]["udriver"]
    assert tool["driver"] == "edu"
    assert parse_abi(tool["abi"]) == parse_abi(EduDriver.abi) == (1, 0)
    assert normalise_patterns(tool["modaliases"]) == normalise_patterns(
        str(p) for p in EduDriver.patterns())


def test_register_map_follows_edu_rst() -> None:
    assert (R.VENDOR_ID, R.DEVICE_ID) == (0x1234, 0x11E8)
    assert (R.ID, R.LIVENESS, R.FACTORIAL, R.STATUS, R.IRQ_STATUS) == (0x00, 0x04, 0x08, 0x20, 0x24)
    assert (R.IRQ_RAISE, R.IRQ_ACK) == (0x60, 0x64)
    assert (R.DMA_SRC, R.DMA_DST, R.DMA_COUNT, R.DMA_CMD) == (0x80, 0x88, 0x90, 0x98)
    assert R.DMA_MASK == 0x0FFFFFFF and R.DMA_MAX_TRANSFER == 4095


@pytest.mark.parametrize("opts,words", [
    ({"cycles": "0"}, "`cycles` must be an integer 1..10000000, got '0'"),
    ({"dma_size": "4096"}, "`dma_size` must be an integer 1..4095, got '4096'"),
    ({"dma_size": "lots"}, "`dma_size` must be an integer"),
    ({"checks": "id,teleport"}, "unknown `checks` ['teleport']"),
    ({"irq": "msix"}, "or `irq` 'msix'"),
])
def test_driver_option_validation(opts: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as e:
        EduDriver(opts)
    assert words in str(e.value)


@pytest.mark.slow
def test_pip_installable(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--target", str(tmp_path), str(EDU)],
                   check=True, capture_output=True)
    (info,) = tmp_path.glob("udriver_edu-1.0.0.dist-info")
    assert "[udriver.drivers]\nedu = udriver_edu:EduDriver" in (info / "entry_points.txt").read_text()
    assert (tmp_path / "udriver_edu" / "_regs.py").is_file()
    assert not list(tmp_path.glob("**/*.so"))  # pure Python
