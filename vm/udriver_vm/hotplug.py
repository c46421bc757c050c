"""Shared set-up for the hotplug and supervision VM tests (no tests here).

Host side: build the real edu driver with `udriver build`, and signed repositories with
the repository core (`udriver_repo.Repository`), in the test's tmp dir before boot; they
reach the guest through the harness's shared work folder.

Guest side: `udriver-repo serve` on the guest's loopback, `udriver repo add ... --root
... --auto-install`, `udriver autobind --update-rules` (udev rules), then QMP hotplug.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from ._paths import checkout_root
from .harness import Guest, GuestTimeout

__all__ = [
    "EDU_PATTERN",
    "GuestRepo",
    "build_edu_wheel",
    "copy_repo",
    "crashing_wheel",
    "driver_log",
    "events",
    "hotplug",
    "journal",
    "make_repo",
    "prepare_guest",
    "proc_status",
    "publish_more",
    "status",
    "tamper_driver_file",
    "unit_props",
    "unplug",
    "wait_for",
]

ROOT = checkout_root()
EDU_PATTERN = "pci:v00001234d000011E8sv*sd*bc*sc*i*"
PORT = 8765
SERVE_LOG = "/tmp/udriver-repo-serve.log"


def build_edu_wheel(out: Path, version: str | None = None, *, deb: bool = False) -> Path:
    """`udriver build` of examples/edu (optionally with another version) -> the wheel
    (with `deb`, its .deb is built too, next to it in `out`)."""
    src = out / f"src-{version or 'default'}"
    shutil.copytree(ROOT / "examples/edu", src,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    if version:
        py = src / "pyproject.toml"
        text = py.read_text()
        import re
        py.write_text(re.sub(r'(?m)^version = "[^"]*"', f'version = "{version}"', text, count=1))
    env = dict(os.environ, DEBEMAIL="tests@udriver.dev", DEBFULLNAME="udriver tests")
    subprocess.run(["udriver", "build", str(src), "-o", str(out), *([] if deb else ["--no-deb"])],
                   check=True, capture_output=True, timeout=300, env=env)
    [whl] = sorted(out.glob(f"udriver_edu-{version or '*'}-py3-none-any.whl"))[-1:]
    return whl


def crashing_wheel(out: Path, exit_code: int = 3) -> Path:
    """A driver `crashy` for edu whose probe exits the process with `exit_code`."""
    src = out / "crashy"
    (src / "udriver_crashy").mkdir(parents=True)
    (src / "pyproject.toml").write_text(f"""
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "udriver-crashy"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = []

[project.entry-points."udriver.drivers"]
crashy = "udriver_crashy:Crashy"

[tool.setuptools]
packages = ["udriver_crashy"]

[tool.udriver]
driver = "crashy"
abi = "1.0"
modaliases = ["{EDU_PATTERN}"]
""")
    (src / "udriver_crashy/__init__.py").write_text(f'''
"""Test driver: announces itself, then crashes in probe."""
import json, os, sys
from udriver.runtime import Driver


class Crashy(Driver):
    ids = ["{EDU_PATTERN}"]
    abi = "1.0"

    def probe(self, device):
        print(json.dumps({{"event": "crashy", "pid": os.getpid()}}), flush=True)
        os._exit({exit_code})
''')
    subprocess.run(["udriver", "build", str(src), "-o", str(out), "--no-deb"], check=True,
                   capture_output=True, timeout=300)
    return next(out.glob("udriver_crashy-*.whl"))


def make_repo(path: Path, wheels: list[Path], *, expiry: dict[str, timedelta] | None = None,
              vendor: tuple[str, int] = ("qemu", 0x1234), class_grant: bool = False) -> Path:
    """A signed repository at `path` with one vendor (default `qemu`, PCI vendor 1234)
    publishing `wheels` one publish each (so each gets its own metadata versions).
    `class_grant` lets the vendor publish class-wide patterns (the NVMe driver's)."""
    from udriver_repo import Repository
    repo = Repository.init(path, expiry=expiry)
    repo.add_vendor(vendor[0], [vendor[1]], class_grant=class_grant)
    for whl in wheels:
        repo.publish([whl], vendor[0])
    repo.stop_agent()
    repo.close()
    return path


def wait_for(cond: Any, timeout: float, what: str, step: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = cond()
        except GuestTimeout:  # a guest command crawling on a busy host: ask again
            v = None
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def status(g: Guest, bdf: str) -> dict[str, Any]:
    r = g.run(f"cat /var/lib/udriver/status/{bdf}.json 2>/dev/null", timeout=60)
    return json.loads(r.stdout) if r.rc == 0 and r.stdout.strip() else {}


def proc_status(g: Guest, pid: int) -> dict[str, str]:
    """`/proc/<pid>/status` in the guest as a dict (Uid, CapEff, NoNewPrivs, ...)."""
    text = g.run(f"cat /proc/{pid}/status", timeout=60, check=True).stdout
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def driver_log(g: Guest, bdf: str) -> str:
    return g.run(f"cat /run/udriver/log/{bdf}.log 2>/dev/null", timeout=60).stdout


def events(log: str) -> list[dict[str, Any]]:
    out = []
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def journal(g: Guest, unit: str) -> str:
    """`journalctl -u unit` (messages only) in a guest booted with systemd."""
    return g.run(f"journalctl --no-pager -o cat -u {shlex.quote(unit)}", timeout=120,
                 check=True).stdout


def unit_props(g: Guest, unit: str, *names: str) -> dict[str, str]:
    """`systemctl show -p NAME...` of `unit` as a dict."""
    out = g.run(f"systemctl show {shlex.quote(unit)} " + " ".join(f"-p {n}" for n in names),
                timeout=120, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def edu_bdfs(g: Guest, timeout: float = 180) -> list[str]:
    """`Guest.edu_bdfs` with a timeout for a busy host (TCG guests crawl under load)."""
    r = g.run("cd /sys/bus/pci/devices && for d in *; do "
              '[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ] && echo $d; '
              "done; true", timeout=timeout, check=True)
    return sorted(r.stdout.split())


def hotplug(g: Guest, dev_id: str, bus: str, timeout: float = 60) -> str:
    """device_add an edu; returns its BDF once the guest sees it."""
    before = set(edu_bdfs(g))
    reply = g.qmp("device_add", driver="edu", bus=bus, id=dev_id)
    assert "error" not in reply, reply
    new = wait_for(lambda: sorted(set(edu_bdfs(g)) - before), timeout, f"{dev_id} in sysfs")
    return str(new[0])


def unplug(g: Guest, dev_id: str, bdf: str, timeout: float = 90) -> None:
    reply = g.qmp("device_del", id=dev_id)
    assert "error" not in reply, reply
    wait_for(lambda: bdf not in edu_bdfs(g), timeout, f"{bdf} to leave")


def copy_repo(src: Path, dst: Path) -> Path:
    """Copy a repository directory (without gpg-agent sockets) into the shared folder."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("S.gpg-agent*"))
    return dst


class GuestRepo:
    """A repository served in the guest and configured in the guest's client."""

    def __init__(self, g: Guest, repo_dir: Path) -> None:
        self.g = g
        self.job: Any = None
        self.url = f"http://127.0.0.1:{PORT}"
        self.serve(repo_dir)

    def serve(self, repo_dir: Path) -> None:
        """(Re)start `udriver-repo serve` on the guest's loopback for `repo_dir`."""
        self.stop()
        # SQLite (state.db) wants real file locks: serve a copy on the guest's tmpfs.
        self.job = self.g.run_bg(f"rm -rf /srv/repo && mkdir -p /srv && "
                                 f"cp -a {shlex.quote(str(repo_dir))} /srv/repo && "
                                 f"exec udriver-repo -v serve --repo /srv/repo "
                                 f"--host 127.0.0.1 --port {PORT} > {SERVE_LOG} 2>&1")
        wait_for(lambda: self.g.run(f"python3 -c 'import socket; socket.create_connection("
                                    f"(\"127.0.0.1\", {PORT}), 1)'", timeout=60).rc == 0,
                 300, "udriver-repo serve", step=2.0)

    def configure(self, root: Path, auto_install: bool = True) -> None:
        g = self.g
        flag = " --auto-install" if auto_install else ""
        g.run("set -e; rm -rf /var/lib/udriver /run/udriver /etc/udriver; "
              f"udriver repo add main {self.url} --root {shlex.quote(str(root))}{flag}; "
              "udriver autobind --update-rules", timeout=600, check=True)
        g.udev_reload()

    def downloads(self, what: str = "GET /targets/drivers/") -> int:
        """How many requests for driver files the server has logged."""
        r = self.g.run(f"grep -c {shlex.quote(what)} {SERVE_LOG}", timeout=60)
        return int(r.stdout.strip() or 0)

    def stop(self) -> None:
        if self.job is not None:
            self.job.kill()
            self.job = None


def prepare_guest(g: Guest) -> None:
    """Let the unprivileged driver user run the host's Python (pyenv under /root) and
    give udev the guest's rules directory; bring up loopback (the guest has `-nic none`)."""
    g.run("chmod o+x /root; mkdir -p /etc/udev/rules.d; ip link set lo up", timeout=60, check=True)


# -- attack repositories (host side) ---------------------------------------------------

def tamper_driver_file(repo: Path) -> Path:
    """Flip one byte of the published wheel in the static tree (the server's disk)."""
    [whl] = list((repo / "public/targets/drivers/1234").glob("*.whl"))
    data = bytearray(whl.read_bytes())
    data[len(data) // 2] ^= 0xFF
    whl.write_bytes(bytes(data))
    return whl


def publish_more(repo_dir: Path, wheels: list[Path]) -> None:
    from udriver_repo import Repository
    repo = Repository.open(repo_dir)
    for whl in wheels:
        repo.publish([whl], "qemu")
    repo.stop_agent()
    repo.close()

