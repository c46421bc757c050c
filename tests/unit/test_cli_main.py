"""The top-level CLI handler: exact text and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from udriver import __version__, cli
from udriver.errors import DeviceError


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        cli.main(["--version"])
    assert ei.value.code == 0
    assert capsys.readouterr().out == f"udriver {__version__}\n"


def _fake_command(monkeypatch: pytest.MonkeyPatch, behaviour: object) -> None:
    def fake_parser(argv: object = None) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog="udriver")
        p.add_argument("-v", "--verbose", action="count", default=0)
        p.set_defaults(_main=behaviour)
        return p
    monkeypatch.setattr(cli, "build_parser", fake_parser)


def test_udriver_error_is_one_line_with_hint(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: argparse.Namespace) -> int:
        e = DeviceError("no PCI device at '0000:00:1f.7'")
        e.hint = "run `udriver devices` to list devices"
        raise e
    _fake_command(monkeypatch, boom)
    assert cli.main([]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("error: no PCI device at '0000:00:1f.7'\n"
                   "hint: run `udriver devices` to list devices\n")


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt
    _fake_command(monkeypatch, interrupted)
    assert cli.main([]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_unexpected_error_keeps_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("bug")
    _fake_command(monkeypatch, bug)
    with pytest.raises(ZeroDivisionError):
        cli.main([])


def test_env_option_default_and_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UDRIVER_TEST_URL", "http://127.0.0.1:9/")
    p = argparse.ArgumentParser()
    cli.env_option(p, "--url", env="UDRIVER_TEST_URL", help="repository URL")
    assert p.parse_args([]).url == "http://127.0.0.1:9/"
    assert p.parse_args(["--url", "x"]).url == "x"
    assert "[env: UDRIVER_TEST_URL]" in p.format_help()


def test_command_table_help_matches_modules() -> None:
    import importlib

    for name, (modname, help_text) in cli._COMMANDS.items():
        mod = importlib.import_module(modname)
        assert mod.HELP == help_text, name


def test_only_the_invoked_command_is_imported() -> None:
    import subprocess
    import sys

    code = ("import sys; from udriver import cli; cli.build_parser(['devices', '--json']); "
            "print(sorted(m for m in sys.modules if m.startswith('udriver.cli._')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['udriver.cli._devices']"


@pytest.mark.parametrize("argv,level", [(["-v", "devices"], 1), (["devices", "-v"], 1),
                                        (["devices", "-vv"], 2), (["devices"], 0),
                                        (["install", "--verbose", "acme"], 1)])
def test_verbose_before_or_after_the_command(argv: list[str], level: int) -> None:
    from udriver.cli import build_parser
    assert build_parser(argv).parse_args(argv).verbose == level


def test_devices_and_status_do_not_import_the_repository_stack(tmp_path: Path) -> None:
    """`udriver devices` took 1.0 s where `lspci -nnk` takes 22 ms: every command imported
    python-tuf (and through securesystemslib, boto3 when installed), requests and
    pypa/installer, even with no repository configured (issue 13)."""
    import os
    import subprocess
    import sys

    root = tmp_path / "root"
    (root / "sys/bus/pci/devices").mkdir(parents=True)
    heavy = ("tuf", "securesystemslib", "requests", "urllib3", "installer", "boto3")
    for argv in (["devices", "--sysfs-root", str(root)], ["status"]):
        code = ("import sys; from udriver.cli import main; rc = main(sys.argv[1:]); "
                f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(heavy)!r}))")
        env = dict(os.environ, UDRIVER_CONFIG_DIR=str(tmp_path / "etc"),
                   UDRIVER_STATE_DIR=str(tmp_path / "var"), UDRIVER_RUN_DIR=str(tmp_path / "run"))
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                           env=env, check=False, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-1] == "[]", (argv, r.stdout)
