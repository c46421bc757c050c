"""No `udriver` command that needs no repository imports python-tuf (issue 13, acceptance 6).

`udriver devices` took 1.0 s where `lspci -nnk` takes 22 ms: every command imported
python-tuf, and through securesystemslib's signer module boto3 whenever it was installed.
Every subcommand is found by walking the parser (a new one fails here until ARGV gives it
a command line), and each runs as the `udriver` command does (`udriver.cli.run`, in its own
process) twice: with no repository configured, where none may import the repository
stack, and with one configured, where only the commands that read its signed metadata may,
and without an HTTP client when they read it from the cache. None may ever import a
cloud-KMS SDK (boto3).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from udriver.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tuf", "securesystemslib", "requests", "urllib3", "installer", "boto3", "botocore")
# The commands that read a configured repository's signed metadata. `devices` does for its
# AVAILABLE column, and only when a repository is configured; `update` with no driver
# installed has nothing to look up. With a derived lookup filled by an earlier run,
# `devices` and `search --offline` answer without python-tuf (tests/client/test_lookup.py).
NEEDS_REPOSITORY = {"devices", "search", "show", "install"}
ABSENT = "0000:ff:1f.7"
ARGV: dict[str, list[str]] = {
    "devices": ["devices"], "status": ["status"], "history": ["history"],
    "hold": ["hold", "acme"], "unhold": ["unhold", "acme"], "remove": ["remove", "acme"],
    "rollback": ["rollback", "acme"], "bind": ["bind", ABSENT], "unbind": ["unbind", ABSENT],
    "run": ["run", "--device", ABSENT, "--driver", "acme"],
    "supervise": ["supervise", "--device", "bad", "--driver", "acme"],
    "autobind": ["autobind", "bad"], "new": ["new", "acme", "--pci", "5a5a:0001", "--dir", "{tmp}"],
    "build": ["build", "{tmp}/missing"], "check": ["check", "{tmp}/missing.whl"],
    "repo list": ["repo", "list"], "repo remove": ["repo", "remove", "nosuch"],
    "repo add": ["repo", "add", "x", "ftp://127.0.0.1/", "--root", "{tmp}/missing"],
    "upload": ["upload", "{tmp}/missing.whl", "--url", "http://127.0.0.1:9"],
    "search": ["search", "5a5a:0001", "--offline"], "show": ["show", "acme", "--offline"],
    "install": ["install", "acme", "--offline"], "update": ["update", "--offline"],
}


def _leaves(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[str]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path)
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*path, name))


LEAVES = sorted(_leaves(build_parser(None)))


def test_every_subcommand_has_a_command_line() -> None:
    assert sorted(set(LEAVES) ^ set(ARGV)) == []


def _imports(argv: list[str], env: dict[str, str]) -> set[str]:
    code = ("import atexit, sys\n"
            "def report():\n"
            "    mods = {m.split('.')[0] for m, v in sys.modules.items() if v is not None}\n"
            f"    print('IMPORTED', sorted(mods & {set(HEAVY)!r}), file=sys.stderr)\n"
            "atexit.register(report)\n"
            "sys.argv[0] = 'udriver'\n"
            "from udriver.cli import run\n"
            "run()\n")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                       env=env, check=False, timeout=120, stdin=subprocess.DEVNULL)
    assert "Traceback" not in r.stderr, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("IMPORTED ")]
    return set(eval(line.removeprefix("IMPORTED ")))  # a list of str literals, printed above


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("imports")
    from udriver_vm.tufrepo import TufRepo
    repo = TufRepo(tmp / "tuf")
    repo.publish()
    out = {}
    for name in ("none", "configured"):
        out[name] = dict(os.environ, UDRIVER_CONFIG_DIR=str(tmp / name / "etc"),
                         UDRIVER_STATE_DIR=str(tmp / name / "var"),
                         UDRIVER_RUN_DIR=str(tmp / name / "run"), TMPDIR_FOR_TEST=str(tmp))
    cfg = out["configured"]
    r = subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()", "repo", "add",
                        "main", "http://127.0.0.1:9", "--root", str(repo.path / "root.json")],
                       env=cfg, capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("leaf", LEAVES)
def test_no_repository_stack_without_a_repository(leaf: str,
                                                  envs: dict[str, dict[str, str]]) -> None:
    env = envs["none"]
    argv = [a.format(tmp=env["TMPDIR_FOR_TEST"] + "/" + leaf.replace(" ", "-")) for a in ARGV[leaf]]
    assert _imports(argv, env) == set()


@pytest.mark.parametrize("leaf", LEAVES)
def test_only_repository_commands_load_it(leaf: str, envs: dict[str, dict[str, str]]) -> None:
    env = envs["configured"]
    argv = [a.format(tmp=env["TMPDIR_FOR_TEST"] + "/c-" + leaf.replace(" ", "-"))
            for a in ARGV[leaf]]
    got = _imports(argv, env)
    if leaf in NEEDS_REPOSITORY:
        assert "tuf" in got  # it did read the repository: the check above is not vacuous
        assert not got & {"boto3", "botocore"}, "a cloud-KMS SDK was imported"
        # Cached metadata only (`devices` without --refresh, the others --offline): no HTTP
        # client either (requests' charset detection alone cost 0.3-0.8 s).
        assert "requests" not in got
    else:
        assert got == set()


def test_online_search_fetches_without_requests(tmp_path: Path) -> None:
    """An online `udriver search` talks HTTP through urllib3 (which python-tuf imports
    anyway), not requests: requests and its charset detection were 0.1 s of it. Once its
    cache and lookup are filled, and while the server's timestamp.json is the one it
    verified, it asks the server without python-tuf or urllib3 at all (`_fresh`)."""
    from udriver_vm.tufrepo import Server, TufRepo
    repo = TufRepo(tmp_path / "tuf")
    repo.publish()
    server = Server(repo.public)
    try:
        env = dict(os.environ, UDRIVER_CONFIG_DIR=str(tmp_path / "etc"),
                   UDRIVER_STATE_DIR=str(tmp_path / "var"), UDRIVER_RUN_DIR=str(tmp_path / "run"))
        r = subprocess.run([sys.executable, "-c", "from udriver.cli import run; run()", "repo",
                            "add", "main", server.url, "--root", str(repo.path / "root.json")],
                           env=env, capture_output=True, text=True, check=False, timeout=120)
        assert r.returncode == 0, r.stderr
        got = _imports(["search", "5a5a:0001"], env)  # fills the cache and the lookup
        assert "tuf" in got and "urllib3" in got  # it did go online
        assert not got & {"requests", "boto3", "botocore"}
        assert (tmp_path / "var/repos/main/metadata/timestamp.json").is_file()
        for _ in range(2):  # nothing new on the server: no python-tuf, no urllib3
            assert _imports(["search", "5a5a:0001"], env) == set()
        repo.write_timestamp(7)  # a new timestamp: the full path again, through TUF
        got = _imports(["search", "5a5a:0001"], env)
        assert "tuf" in got and not got & {"requests", "boto3", "botocore"}
        assert _imports(["search", "5a5a:0001"], env) == set()  # and the new one is kept
    finally:
        server.close()


# What `devices` and `status` do without, with no repository configured (each was a
# measurable part of their start-up: bench/cli_wall.py, docs/cli.md "Start-up time").
LIGHT = ("udriver.client._client", "udriver.pci._bind", "udriver.pci._iommu", "subprocess",
         "hashlib", "_hashlib", "urllib3", "tuf", "requests", "packaging.version", "shutil",
         "tempfile", "dataclasses", "inspect", "socket", "logging", "threading")


@pytest.mark.parametrize("argv", [["devices"], ["status"], ["devices", "--json"]])
def test_devices_and_status_stay_light(argv: list[str], envs: dict[str, dict[str, str]]) -> None:
    # Only what udriver imports: this environment's site hooks may load some at start-up.
    code = ("import sys\n"
            "pre = set(sys.modules)\n"
            "from udriver.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            f"print('LOADED', sorted(m for m in {LIGHT!r} if m in sys.modules and m not in pre),"
            " file=sys.stderr)\n"
            "sys.exit(rc)\n")
    snapshot = ROOT / "tests" / "fixtures" / "sysfs" / "small-vm"  # a machine's PCI devices
    r = subprocess.run([sys.executable, "-c", code, *argv], text=True,
                       env={**envs["none"], "UDRIVER_SYSFS_ROOT": str(snapshot)},
                       capture_output=True, check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout  # it did list something ("no drivers installed", the devices)
    assert "LOADED []" in r.stderr.splitlines(), r.stderr
