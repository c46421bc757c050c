"""Every subcommand of `udriver` and `udriver-repo`, fed the mistakes users make (issue 13, 2).

The subcommands are found by walking both argparse parsers, so a new one is covered
automatically: it gets the generic mistake (an option it does not have) at once, and the
test fails until MISTAKES names the mistakes that fit it. The mistakes are the ones users
make: a busy port, a missing file, a bad URL, a server that does not answer (a closed
port on 127.0.0.1), an ordinary user doing what needs root, a malformed PCI address, a
driver that does not exist, a broken configuration file.

Each command runs as its own process, as a user runs it. The rule it is held to
(docs/cli.md): exactly one `error:` line on stderr (ours, or argparse's `PROG: error:`
for a usage mistake) saying what is wrong, a `hint:` where one helps, a non-zero exit,
nothing on stdout, and never a traceback.

"An ordinary user" is uid/gid 65534 (nobody) with no supplementary groups, started with
setpriv(1). The interpreter running the tests lives under /root (pyenv, mode 0700), which
nobody cannot traverse, so that process keeps CAP_DAC_READ_SEARCH (read and search any
path, capabilities(7)) and nothing else: every write still needs what an ordinary user
has. The plain-user routes without it are tests/integration/test_install_routes.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from udriver_repo.cli import build_parser as repo_parser

from udriver.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "repo"))

from udriver_vm.treeserver import TreeServer

pytestmark = pytest.mark.slow

ABSENT_BDF = "0000:ff:1f.7"  # well-formed, on no machine (bus ff, device 1f, function 7)


@dataclass(frozen=True)
class Mistake:
    """One mistake: where it runs, the command line, what the error and hint must say."""

    env: str  # "plain", "dead" (its repository does not answer), "live", "broken" (bad
    #           repos.d file), "statefile", "vendor" (an upload token), "nonroot" (uid 65534)
    argv: tuple[str, ...]
    error: str  # a fragment of the one error line
    hint: str | None = None  # a fragment of the hint line, when one must be there


def M(env: str, *argv: str, error: str, hint: str | None = None) -> Mistake:
    return Mistake(env, argv, error, hint)


_NEEDS_ROOT = "this needs root"
_AS_ROOT = "run it as root"
_REFUSED = "connection refused"
_SERVER_UP = "is the repository's server up"
_BAD_BDF = "Invalid PCI address"
_NO_REPO = "not a udriver repository"

# {tool} {subcommand...}: mistakes. Placeholders: {missing} a path that does not exist,
# {root} the repository's root.json, {repo} an initialised repository, {closed} a
# closed port on 127.0.0.1, {busy} a port another process listens on, {sysdir} a
# directory owned by root (0755) standing in for /etc/udriver and /var/lib/udriver.
MISTAKES: dict[str, list[Mistake]] = {
    "udriver devices": [M("plain", "devices", "--sysfs-root", "{missing}",
                          error="No PCI devices directory", hint="is sysfs mounted?")],
    "udriver bind": [M("plain", "bind", "0000:zz", error=_BAD_BDF)],
    "udriver unbind": [M("plain", "unbind", "99", error=_BAD_BDF)],
    "udriver run": [M("plain", "run", "--device", "bad", "--driver", "edu", error=_BAD_BDF),
                    M("nonroot", "run", "--device", ABSENT_BDF, "--driver", "nosuch",
                      error="No driver named 'nosuch'", hint="installed drivers: ")],
    "udriver new": [M("plain", "new", "acme", "--pci", "zz", error="--pci must be VVVV:DDDD"),
                    M("plain", "new", "Bad Name", "--pci", "5a5a:0001",
                      error="driver name must match")],
    "udriver build": [M("plain", "build", "{missing}", error="cannot read")],
    "udriver check": [M("plain", "check", "{missing}.whl", error="no such file")],
    "udriver repo add": [
        M("plain", "repo", "add", "x", "ftp://127.0.0.1/", "--root", "{root}",
          error="Invalid repository URL"),
        M("plain", "repo", "add", "x", "http://127.0.0.1:{closed}", "--root", "{missing}",
          error="Cannot read root metadata"),
        M("nonroot", "repo", "add", "x", "http://127.0.0.1:{closed}", "--root", "{root}",
          error=_NEEDS_ROOT, hint=_AS_ROOT)],
    "udriver repo list": [M("broken", "repo", "list", error="Invalid repository configuration")],
    "udriver repo remove": [M("plain", "repo", "remove", "nosuch",
                              error="No repository named 'nosuch'")],
    "udriver search": [M("dead", "search", "1234", error=_REFUSED, hint=_SERVER_UP),
                       M("plain", "search", "1234", error="no repository is configured",
                         hint="udriver repo add")],
    "udriver show": [M("dead", "show", "acme", error=_REFUSED, hint=_SERVER_UP),
                     M("live", "show", "nosuch", error="cannot show 'nosuch': not found",
                       hint="udriver search VVVV:DDDD")],
    "udriver install": [M("dead", "install", "acme", error=_REFUSED, hint=_SERVER_UP),
                        M("live", "install", "nosuch", error="cannot install 'nosuch'",
                          hint="udriver search VVVV:DDDD"),
                        # A malformed address is called one, as by `bind` and `run`
                        # (the one grammar, udriver.pci._address); a well-formed one that
                        # is not there is not on this machine.
                        M("plain", "install", "--device", "bad", error=_BAD_BDF),
                        M("plain", "install", "--device", ABSENT_BDF,
                          error="no such PCI device"),
                        M("plain", "install", "--wheel", "{missing}.whl", error="cannot read"),
                        M("broken", "install", "acme",
                          error="Invalid repository configuration")],
    "udriver remove": [M("plain", "remove", "nosuch", error="driver 'nosuch' is not installed")],
    "udriver update": [M("broken", "update", error="Invalid repository configuration")],
    "udriver rollback": [M("plain", "rollback", "nosuch", error="'nosuch' is not installed")],
    "udriver upload": [
        M("plain", "upload", "{file}", "--url", "http://127.0.0.1:{closed}",
          error="No upload token", hint="UDRIVER_UPLOAD_TOKEN"),
        M("vendor", "upload", "{missing}.whl", "--url", "http://127.0.0.1:{closed}",
          error="does not exist"),
        M("vendor", "upload", "{file}", "--url", "ftp://127.0.0.1/",
          error="Invalid repository URL"),
        M("vendor", "upload", "{file}", "--url", "http://u:pw@127.0.0.1:{closed}",
          error=f"cannot reach http://u:********@127.0.0.1:{{closed}}: {_REFUSED}")],
    "udriver hold": [M("plain", "hold", "nosuch", error="driver 'nosuch' is not installed")],
    "udriver unhold": [M("plain", "unhold", "nosuch", error="driver 'nosuch' is not installed")],
    "udriver history": [M("statefile", "history", error="Cannot read the history")],
    "udriver status": [M("statefile", "status", error="state directory is not a directory",
                         hint="UDRIVER_STATE_DIR")],
    "udriver supervise": [M("plain", "supervise", "--device", "bad", "--driver", "edu",
                            error=_BAD_BDF),
                          M("nonroot", "supervise", "--device", ABSENT_BDF, "--driver", "edu",
                            error="udriver supervise needs root", hint="systemctl start"),
                          M("nonroot", "supervise", "--device", ABSENT_BDF, "--systemd-exec",
                            error="udriver supervise needs root", hint=_AS_ROOT)],
    "udriver autobind": [M("plain", "autobind", "bad", error=_BAD_BDF),
                         M("nonroot", "autobind", "--update-rules", "--rules-file",
                           "{sysdir}/60-udriver.rules", error=_NEEDS_ROOT, hint=_AS_ROOT)],
    "udriver-repo init": [M("plain", "init", "--repo", "{repo}", error="already a repository"),
                          M("nonroot", "init", "--repo", "{sysdir}/r",
                            error="cannot create repository at {sysdir}/r: Permission denied")],
    "udriver-repo vendor add": [M("plain", "vendor", "add", "a", "--pci-vendor", "zz",
                                  "--repo", "{repo}", error="expected 4 hex digits")],
    "udriver-repo vendor list": [M("plain", "vendor", "list", "--repo", "{missing}",
                                   error=_NO_REPO)],
    "udriver-repo vendor revoke": [M("plain", "vendor", "revoke", "nosuch", "--repo", "{repo}",
                                     error="no such vendor: 'nosuch'")],
    "udriver-repo names list": [M("plain", "names", "list", "--repo", "{missing}",
                                  error=_NO_REPO)],
    "udriver-repo names assign": [M("plain", "names", "assign", "acme", "nosuch", "--repo",
                                    "{repo}", error="no active vendor 'nosuch'")],
    "udriver-repo names migrate": [M("plain", "names", "migrate", "--repo", "{missing}",
                                     error=_NO_REPO)],
    "udriver-repo publish": [M("plain", "publish", "{missing}.whl", "--vendor", "a", "--repo",
                               "{repo}", error="no such vendor"),
                             M("plain", "publish", "{file}", "--repo", "{repo}",
                               error="`--vendor` is required")],
    "udriver-repo rotate-key": [M("plain", "rotate-key", "nosuch", "--repo", "{repo}",
                                  error="unknown role 'nosuch'")],
    "udriver-repo sign-root": [M("plain", "sign-root", "--key", "{missing}", "--repo", "{repo}",
                                 error="key file not found")],
    "udriver-repo refresh": [M("plain", "refresh", "--repo", "{missing}", error=_NO_REPO)],
    "udriver-repo audit": [M("plain", "audit", "--repo", "{missing}", error=_NO_REPO),
                           M("plain", "audit", "--limit", "0", "--repo", "{repo}",
                             error="expected a number of rows 1-1000000, got '0'")],
    "udriver-repo verify": [
        M("plain", "verify", "--repo", "{repo}", "--url", "http://127.0.0.1:{closed}",
          error=f"cannot reach http://127.0.0.1:{{closed}}: {_REFUSED}",
          hint="udriver-repo serve"),
        M("plain", "verify", "--repo", "{repo}", "--url", "ftp://127.0.0.1/",
          error="Invalid repository URL")],
    "udriver-repo serve": [
        M("plain", "serve", "--repo", "{repo}", "--port", "{busy}",
          error="address already in use", hint="--port 0"),
        M("plain", "serve", "--repo", "{repo}", "--port", "99999",
          error="expected a port number 0-65535"),
        M("plain", "serve", "--repo", "{missing}", "--port", "0", error=_NO_REPO)],
}


def _leaves(p: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*path, name))


def _all_leaves() -> list[tuple[str, ...]]:
    return [*_leaves(build_parser(None), ("udriver",)), *_leaves(repo_parser(), ("udriver-repo",))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    tmp: Path
    values: dict[str, str]
    envs: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("setpriv") is None:
        pytest.fail("needs setpriv (util-linux, installed by .ci/setup)")
    tmp = tmp_path_factory.mktemp("mistakes")
    tmp.chmod(0o755)
    from udriver_repo import Repository
    repo = Repository.init(tmp / "repo")
    repo.stop_agent()
    root = tmp / "root.json"
    shutil.copy(repo.public / "keys" / "root.json", root)
    root.chmod(0o644)
    sysdir = tmp / "system"  # root's, 0755: what /etc/udriver and /var/lib/udriver are
    sysdir.mkdir(mode=0o755)
    (tmp / "file.whl").write_bytes(b"not a wheel")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    server = TreeServer(repo.public)
    base = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
            "HOME": str(tmp)}
    if os.environ.get("PYTHONPATH"):
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]

    def client_env(name: str) -> dict[str, str]:
        d = tmp / name
        return {**base, "UDRIVER_CONFIG_DIR": str(d / "etc"), "UDRIVER_STATE_DIR": str(d / "var"),
                "UDRIVER_RUN_DIR": str(d / "run")}

    envs = {n: client_env(n) for n in ("plain", "dead", "live", "broken", "statefile")}
    envs["vendor"] = {**envs["plain"], "UDRIVER_UPLOAD_TOKEN": "not-a-real-token"}
    envs["nonroot"] = {**base, "UDRIVER_CONFIG_DIR": str(sysdir / "etc"),
                       "UDRIVER_STATE_DIR": str(sysdir / "var"),
                       "UDRIVER_RUN_DIR": str(sysdir / "run"),
                       "UDRIVER_DEB_DRIVER_DIR": str(sysdir / "debs")}
    closed = _free_port()
    for name, url in (("dead", f"http://127.0.0.1:{closed}"), ("live", server.url)):
        r = _run(("udriver", "repo", "add", "main", url, "--root", str(root)), envs[name])
        assert r.returncode == 0, r.stderr
    (tmp / "broken" / "etc" / "repos.d").mkdir(parents=True)
    (tmp / "broken" / "etc" / "repos.d" / "main.json").write_text("{")
    (tmp / "statefile").mkdir()
    (tmp / "statefile" / "var").write_text("a file where the state directory should be")
    values = {"missing": str(tmp / "missing"), "root": str(root), "repo": str(repo.path),
              "closed": str(closed), "busy": str(busy.getsockname()[1]), "sysdir": str(sysdir),
              "file": str(tmp / "file.whl")}
    try:
        yield World(tmp, values, envs)
    finally:
        server.stop()
        busy.close()


def _run(argv: tuple[str, ...], env: dict[str, str], *,
         nonroot: bool = False) -> subprocess.CompletedProcess[str]:
    tool = {"udriver": "udriver.cli", "udriver-repo": "udriver_repo.cli"}[argv[0]]
    cmd = [sys.executable, "-c", f"from {tool} import run; run()", *argv[1:]]
    if nonroot:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", *cmd]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          check=False, cwd="/")


def _assert_one_error(r: subprocess.CompletedProcess[str], what: str,
                      error: str, hint: str | None) -> None:
    where = f"{what}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr, where
    assert r.returncode not in (0, None), where
    assert r.stdout == "", where
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, where
    line = errors[0]
    assert line.startswith("error: ") or ": error: " in line, where  # ours, or argparse's
    assert error in line, where
    if hint is not None:
        hints = [h for h in r.stderr.splitlines() if h.startswith("hint: ")]
        assert len(hints) == 1 and hint in hints[0], where


def test_every_subcommand_has_its_mistakes() -> None:
    """A new subcommand fails here until MISTAKES says which mistakes fit it."""
    leaves = {" ".join(p) for p in _all_leaves()}
    assert sorted(leaves - set(MISTAKES)) == []
    assert sorted(set(MISTAKES) - leaves) == []  # no stale entries
    assert all(MISTAKES.values())


@pytest.mark.parametrize("leaf", [" ".join(p) for p in _all_leaves()])
def test_mistakes(leaf: str, world: World) -> None:
    tool, *words = leaf.split()
    # Generic, for every subcommand: an option it does not have. argparse's usage error
    # (a missing required argument is reported first where there is one), exit status 2.
    r = _run((tool, *words, "--no-such-option"), world.envs["plain"])
    _assert_one_error(r, f"{leaf} --no-such-option", "error: ", None)
    assert r.returncode == 2 and r.stderr.splitlines()[-1].startswith(f"{tool}")
    for m in MISTAKES.get(leaf, []):
        argv = tuple(a.format(**world.values) for a in m.argv)
        r = _run((tool, *argv), world.envs[m.env], nonroot=m.env == "nonroot")
        _assert_one_error(r, f"{tool} {' '.join(argv)} ({m.env})",
                          m.error.format(**world.values), m.hint)
    # Nothing was written where an ordinary user may not write.
    assert sorted(p.name for p in Path(world.values["sysdir"]).iterdir()) == []
