"""Attacks on the hotplug path are refused, and nothing is installed or bound (issue 5,
acceptance 3). One guest; four repositories built and signed on the host, each served by
its own `udriver-repo serve` on the guest's loopback:

- a driver file tampered with on the server (TUF spec 5.7.3: length and hashes);
- a rollback to older metadata (5.3.5 / 5.4.3: version numbers never go down);
- expired timestamp metadata (5.4.4: the freeze attack);
- a package whose embedded ID table does not match the device, listed by a lying but
  validly signed vendor index (the client's check after download).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from udriver_vm.harness import Guest
from udriver_vm.hotplug import (
    EDU_PATTERN,
    build_edu_wheel,
    copy_repo,
    driver_log,
    hotplug,
    make_repo,
    prepare_guest,
    publish_more,
    status,
    tamper_driver_file,
    unplug,
    wait_for,
)
from vm._fixtures import require_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow]

def mismatching_repo(path: Path, work: Path) -> Path:
    """A repository whose signed index says the package drives 1234:11e8 while the
    package's embedded ID table claims only 1234:11e9 (a lying vendor index, signed with
    the vendor's key: only the client's check after download can catch it)."""
    from udriver_repo import Repository

    from _forge import sign_vendor_index
    from udriver_vm.repofactory import make_manifest, make_wheel

    liar = make_manifest(version="0.9.0", modaliases=("pci:v00001234d000011E9sv*sd*bc*sc*i*",))
    make_repo(path, [make_wheel(work, liar)])
    repo = Repository.open(path)
    sign_vendor_index(repo, "qemu", "1234", [EDU_PATTERN])
    repo.stop_agent()
    repo.close()
    return path


PORTS = {"tampered": 8771, "new": 8772, "old": 8773, "expired": 8774, "mismatch": 8775}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Guest, dict[str, Path]]]:
    require_vm("6.1")
    tmp = tmp_path_factory.mktemp("attacks")
    wheel = build_edu_wheel(tmp / "dist")
    repos: dict[str, Path] = {}
    repos["tampered"] = make_repo(tmp / "tampered", [wheel])
    tamper_driver_file(repos["tampered"])
    old = make_repo(tmp / "new", [wheel])
    repos["old"] = copy_repo(old, tmp / "old")
    publish_more(old, [build_edu_wheel(tmp / "dist2", "1.0.1")])
    repos["new"] = old
    repos["expired"] = make_repo(tmp / "expired", [wheel],
                                 expiry={"timestamp": timedelta(seconds=1)})
    repos["mismatch"] = mismatching_repo(tmp / "mismatch", tmp / "liar")
    with Guest(kernel="6.1", devices=[], root_ports=1, udev=True, mem_mb=1536) as g:
        prepare_guest(g)
        shared: dict[str, Path] = {}
        script = []
        for name, src in repos.items():
            shared[name] = copy_repo(src, g.workdir / name)
            script.append(f"cp -a {shlex.quote(str(shared[name]))} /srv/{name} && "
                          f"udriver-repo serve --repo /srv/{name} --host 127.0.0.1 "
                          f"--port {PORTS[name]} > /tmp/serve-{name}.log 2>&1 &")
        g.run_bg("mkdir -p /srv; " + " ".join(script) + " wait")
        for name, port in PORTS.items():
            wait_for(lambda p=port: g.run(f"python3 -c 'import socket; socket.create_connection("
                                          f"(\"127.0.0.1\", {p}), 1)'", timeout=120).rc == 0,
                     400, f"udriver-repo serve {name}", step=3.0)
        yield g, {n: Path(f"/srv/{n}") for n in repos}


def configure(g: Guest, name: str, srv: Path, extra: str = "") -> None:
    g.run("set -e; rm -rf /var/lib/udriver /run/udriver /etc/udriver; "
          f"udriver repo add main http://127.0.0.1:{PORTS[name]} "
          f"--root {srv}/public/keys/root.json --auto-install; {extra}"
          "udriver autobind --update-rules", timeout=600, check=True)
    g.udev_reload()


def refused(g: Guest, dev_id: str) -> tuple[str, dict[str, Any]]:
    """Hotplug an edu; wait for autobind to give up; check nothing was installed or bound."""
    bdf = hotplug(g, dev_id, "rp1")
    rec = wait_for(lambda: (s := status(g, bdf)).get("state") == "failed" and s, 300,
                   f"autobind on {bdf} to refuse", step=2.0)
    r = g.run(f"ls -A /var/lib/udriver/drivers 2>/dev/null; "
              f"readlink /sys/bus/pci/devices/{bdf}/driver; "
              f"cat /sys/bus/pci/devices/{bdf}/driver_override", timeout=60)
    assert r.stdout.split() == ["(null)"], (r.stdout, driver_log(g, bdf))
    unplug(g, dev_id, bdf)
    wait_for(lambda: not status(g, bdf), 300, f"status of {bdf} to be cleared", step=2.0)
    return bdf, rec


def test_tampered_driver_file_is_refused(env) -> None:
    g, srv = env
    configure(g, "tampered", srv["tampered"])
    _bdf, rec = refused(g, "edu-tampered")
    assert "udriver_edu-1.0.0-py3-none-any.whl" in rec["reason"], rec
    assert "hash" in rec["reason"].lower() or "length" in rec["reason"].lower(), rec


def test_rollback_to_older_metadata_is_refused(env) -> None:
    g, srv = env
    # The client has seen the newer repository (1.0.1 published) ...
    configure(g, "new", srv["new"], extra="udriver search 1234:11e8 >/dev/null; ")
    # ... then the server (or a man in the middle) goes back to the older tree.
    g.run(f"sed -i 's/:{PORTS['new']}/:{PORTS['old']}/' /etc/udriver/repos.d/main.json",
          timeout=60, check=True)
    _bdf, rec = refused(g, "edu-rollback")
    assert "version" in rec["reason"].lower(), rec


def test_expired_timestamp_is_refused(env) -> None:
    g, srv = env
    configure(g, "expired", srv["expired"])
    _bdf, rec = refused(g, "edu-expired")
    assert "expired" in rec["reason"].lower() and "timestamp" in rec["reason"], rec


def test_package_id_table_not_matching_device_is_refused(env) -> None:
    g, srv = env
    configure(g, "mismatch", srv["mismatch"])
    _bdf, rec = refused(g, "edu-mismatch")
    assert "pci:v00001234d000011E9" in rec["reason"], rec
