"""udriver.client._client: resolve + download + check + install over a loopback repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import BDF, EDU, EDU_DEV, Published
from udriver.client import Client, DriverStore, annotate
from udriver.errors import ConfigError, InstallError, PackageError, RepositoryError
from udriver.modalias import parse_modalias
from udriver_vm.fakewheels import make_wheel

DEV = {BDF: parse_modalias(EDU_DEV)}
TWO = {BDF: parse_modalias(EDU_DEV), "0000:00:05.0": parse_modalias(EDU_DEV)}
NVME = parse_modalias("pci:v00008086d00000953sv00008086sd00003702bc01sc08i02")


def store_dir(env: Path) -> Path:
    return env / "var" / "drivers" / "edu"


def test_install_for_device(configured: Published, env: Path) -> None:
    [r] = Client().install_for_devices(DEV)
    assert r.to_dict() == {"driver": "edu", "version": "0.1.0", "previous": None, "repo": "main",
                           "devices": [BDF], "changed": True}
    assert os.readlink(store_dir(env) / "current") == "0.1.0"


def test_two_devices_install_once(configured: Published, env: Path) -> None:
    results = Client().install_for_devices(TWO)
    assert [(r.driver, r.devices) for r in results] == [("edu", [BDF, "0000:00:05.0"])]
    assert DriverStore().get("edu").versions == ["0.1.0"]  # type: ignore[union-attr]


def test_upgrade_then_already_installed(configured: Published, env: Path) -> None:
    Client().install_for_devices(DEV)
    configured.publish_edu("0.2.0")
    [r] = Client().install_for_devices(DEV)
    assert (r.version, r.previous, r.changed) == ("0.2.0", "0.1.0", True)
    [r] = Client().install_for_devices(DEV)
    assert (r.version, r.changed) == ("0.2.0", False)


def test_id_table_mismatch_refused_nothing_installed(configured: Published, env: Path) -> None:
    # The index claims the edu device, the wheel's embedded table is for another device.
    configured.publish_edu("0.2.0", mods=["pci:v00001234d00001111sv*sd*bc*sc*i*"],
                           index_mods=[EDU])
    with pytest.raises(PackageError) as ei:
        Client().install_for_devices(DEV)
    assert "refusing to install udriver-edu 0.2.0" in str(ei.value)
    assert f"does not match device {BDF}" in str(ei.value)
    assert not store_dir(env).exists() or DriverStore().get("edu") is None


def test_tampered_wheel_refused_old_version_kept(configured: Published, env: Path) -> None:
    Client().install_for_devices(DEV)
    w = configured.publish_edu("0.2.0")
    f = configured.repo.target_file(f"drivers/1234/{w.name}")
    f.write_bytes(b"PK" + f.read_bytes()[2:-4] + b"XXXX")
    with pytest.raises(RepositoryError, match="tampered or corrupt"):
        Client().install_for_devices(DEV)
    assert os.readlink(store_dir(env) / "current") == "0.1.0"


def test_expired_timestamp_refused_nothing_installed(configured: Published, env: Path) -> None:
    configured.repo.write_timestamp(-1)
    with pytest.raises(RepositoryError, match="expired timestamp metadata \\(expired 20"):
        Client().install_for_devices(DEV)
    assert DriverStore().installed() == []


def test_no_compatible_driver(configured: Published, env: Path) -> None:
    with pytest.raises(InstallError) as ei:
        Client().install_for_devices({"0000:00:06.0": NVME})
    assert str(ei.value) == ("no compatible driver in any repository for 0000:00:06.0 "
                             f"({NVME})")


def test_newer_abi_not_chosen(configured: Published, env: Path) -> None:
    configured.publish_edu("0.3.0", abi="1.99")
    [r] = Client().install_for_devices(DEV)
    assert r.version == "0.1.0"


def test_no_repos(env: Path) -> None:
    with pytest.raises(ConfigError, match="no repository is configured") as ei:
        Client().install_for_devices(DEV)
    assert "udriver repo add" in (ei.value.hint or "")


def test_class_wide_driver(configured: Published, env: Path) -> None:
    mods = ["pci:v*d*sv*sd*bc01sc08i02*"]
    w = make_wheel(configured.wheels / "nvme", package="udriver-nvme", driver="nvme",
                   modaliases=mods)
    configured.repo.add_target("generic", f"drivers/class/{w.name}", w.read_bytes())
    configured.repo.add_index("generic", "class", [{
        "package": "udriver-nvme", "driver": "nvme", "version": "0.1.0", "abi": "1.0",
        "modaliases": mods, "files": {"wheel": f"drivers/class/{w.name}"}}])
    configured.repo.publish()
    [r] = Client().install_for_devices({"0000:00:06.0": NVME})
    assert (r.driver, r.version) == ("nvme", "0.1.0")


def test_install_by_name_and_version(configured: Published, env: Path) -> None:
    configured.publish_edu("0.2.0")
    c = Client()
    assert c.install_entry(c.find("edu==0.1.0", DEV)).version == "0.1.0"
    assert c.install_entry(c.find("udriver-edu", DEV)).version == "0.2.0"
    with pytest.raises(InstallError,
                       match="cannot install 'edu==0.9': no published version matches '==0.9'"):
        c.find("edu==0.9", DEV)
    with pytest.raises(InstallError, match="cannot install 'nope': not found in the indexes"):
        c.find("nope", DEV)


def test_find_reports_abi_of_every_version(configured: Published, env: Path) -> None:
    c = Client(provided=(0, 9))
    with pytest.raises(InstallError) as ei:
        c.find("edu", DEV)
    assert str(ei.value) == ("cannot install 'edu': no version provides ABI compatible with "
                             "this runtime (0.1.0 needs 1.0)")


def test_update_and_rollback(configured: Published, env: Path) -> None:
    Client().install_for_devices(DEV)
    assert Client().update() == []
    configured.publish_edu("0.2.0")
    [r] = Client().update()
    assert (r.driver, r.previous, r.version) == ("edu", "0.1.0", "0.2.0")
    assert DriverStore().rollback("edu") == ("0.2.0", "0.1.0")


def test_install_auto_skips_claimed_and_unknown(configured: Published, env: Path) -> None:
    devs = {**DEV, "0000:00:06.0": NVME}
    [r] = Client().install_auto(devs)
    assert r.devices == [BDF]
    assert Client().install_auto(devs) == []


def test_search(configured: Published, env: Path) -> None:
    c = Client()
    assert [e.driver for e in c.search("1234:11e8")] == ["edu"]
    assert [e.driver for e in c.search("1234")] == ["edu"]
    assert [e.driver for e in c.search(EDU_DEV)] == ["edu"]
    assert c.search("1234:0001") == []
    assert [e.driver for e in c.search("ed", DEV)] == ["edu"]
    assert c.search("zzz", DEV) == []


def test_annotate(configured: Published, env: Path) -> None:
    devs = {BDF: EDU_DEV, "0000:00:06.0": str(NVME)}
    Client().entries({0x1234, None})  # fills the metadata and index cache (online)
    ann = annotate(devs)
    assert ann == {BDF: {"installed": None,
                         "available": {"driver": "edu", "version": "0.1.0", "repo": "main"}},
                   "0000:00:06.0": {"installed": None, "available": None}}
    Client().install_for_devices(DEV)
    assert annotate(devs)[BDF]["installed"] == {"driver": "edu", "version": "0.1.0"}


def test_annotate_tolerates_broken_repo(configured: Published, env: Path) -> None:
    # nothing cached, offline: annotate logs and shows nothing available
    assert annotate({BDF: EDU_DEV}) == {BDF: {"installed": None, "available": None}}


def test_local_wheel(configured: Published, env: Path, tmp_path: Path) -> None:
    w = make_wheel(tmp_path / "local", version="5.0")
    r = Client().install_local_wheel(w, DEV)
    assert (r.version, r.repo) == ("5.0", "")
    other = make_wheel(tmp_path / "other", version="6.0",
                       modaliases=["pci:v00001234d00001111sv*sd*bc*sc*i*"])
    with pytest.raises(PackageError, match="does not match device"):
        Client().install_local_wheel(other, DEV)
    assert DriverStore().get("edu").current == "5.0"  # type: ignore[union-attr]


_CHILD = """
import sys
from udriver.client import Client
from udriver.modalias import parse_modalias
[r] = Client().install_for_devices({sys.argv[1]: parse_modalias(sys.argv[2])})
print(r.driver, r.version)
"""


def test_two_processes_at_once_install_once(configured: Published, env: Path) -> None:
    """Two devices hot-plugged together: two concurrent installs, one package version."""
    import subprocess
    import sys
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, bdf, EDU_DEV],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for bdf in (BDF, "0000:00:05.0")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o for o, _ in outs] == ["edu 0.1.0\n", "edu 0.1.0\n"]
    d = store_dir(env)
    assert DriverStore().get("edu").versions == ["0.1.0"]  # type: ignore[union-attr]
    assert os.readlink(d / "current") == "0.1.0"
    assert sorted(p.name for p in d.iterdir()) == [".lock", "0.1.0", "current"]


_REFRESHER = """
import sys
from udriver.client import Client
for _ in range(int(sys.argv[1])):
    Client().entries({0x1234})  # a fresh Updater each time: loads root, refreshes
"""


def test_concurrent_refreshes_share_the_metadata_cache(configured: Published, env: Path) -> None:
    """python-tuf swaps root.json by remove-then-symlink; processes must not trip on it."""
    import subprocess
    import sys
    procs = [subprocess.Popen([sys.executable, "-c", _REFRESHER, "15"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [e[-2000:] for _, e in outs]
    meta = next(env.rglob("metadata/root.json"))
    assert meta.is_symlink() and meta.resolve().is_file()
