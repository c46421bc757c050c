"""`udriver install/remove` keep the hotplug rules in step, where hotplug rules are in use."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EDU, Published
from udriver.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_rules_follow_install_and_remove(capsys: pytest.CaptureFixture[str],
                                         configured: Published, env: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rules = env / "rules.d" / "60-udriver.rules"
    rules.parent.mkdir()
    rules.write_text("# written by udriver autobind --update-rules\n")
    monkeypatch.setenv("UDRIVER_UDEV_RULES", str(rules))
    monkeypatch.setenv("PATH", str(env / "no-udevadm"))  # no udevadm: no reload attempted
    assert _run(capsys, "search", "1234:11e8")[0] == 0  # caches the vendor's index
    assert _run(capsys, "install", "edu")[0] == 0
    text = rules.read_text()
    assert f'ENV{{MODALIAS}}=="{EDU}"' in text, text
    assert _run(capsys, "remove", "edu")[0] == 0
    assert EDU not in rules.read_text()


def test_no_rules_file_means_no_rules(capsys: pytest.CaptureFixture[str],
                                      configured: Published, env: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    rules = env / "rules.d" / "60-udriver.rules"
    monkeypatch.setenv("UDRIVER_UDEV_RULES", str(rules))
    assert _run(capsys, "search", "1234:11e8")[0] == 0
    rc, out, err = _run(capsys, "install", "edu")
    assert (rc, out, err) == (0, "installed edu 0.1.0 from main\n", ""), err
    assert not rules.exists() and not rules.parent.exists()
