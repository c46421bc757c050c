"""The client checks name ownership (issue 9: acceptance 2 and case 5), against the
project's own repository on disk, served as its static tree on 127.0.0.1.

Forgeries are made the way a hostile vendor would: its delegated role is re-signed ON
DISK with its own real key (`REPO/keys/vendor-<x>.key`), listing a wheel and an index
entry named after another vendor's driver. Signatures, delegations and hashes are all
valid, so only the client's check against the signed `names` records can refuse it;
the tests show the refusal happens before anything is downloaded or installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

udriver_repo = pytest.importorskip("udriver_repo", reason="repo-server not installed")

from tuf.api.metadata import TargetFile
from udriver_repo._meta import Transaction

from conftest import BDF, EDU_DEV
from udriver.client import Client, DriverStore, add_repo
from udriver.errors import InstallError, RepositoryError
from udriver.modalias import parse_modalias
from udriver.repoformat import encode_index, entry_from_json
from udriver_vm.fakewheels import make_wheel
from udriver_vm.tufrepo import Server

ACME = "pci:v00001AF4d00001000sv*sd*bc*sc*i*"
ACME_DEV = "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"
ACME_BDF = "0000:00:05.0"
NVME = "pci:v*d*sv*sd*bc01sc08i02*"
NVME_DEV = "pci:v00008086d00000953sv00008086sd00003702bc01sc08i02"
EDU = {BDF: parse_modalias(EDU_DEV)}
ACME_ONLY = {ACME_BDF: parse_modalias(ACME_DEV)}


@dataclass
class Env:
    repo: object
    public: Path
    server: Server
    wheels: Path
    state: Path


@pytest.fixture
def core(env: Path) -> Iterator[Env]:
    repo = udriver_repo.Repository.init(env / "repo")
    repo.add_vendor("qemu", [0x1234])
    repo.add_vendor("acme", [0x1AF4])
    repo.add_vendor("classy", [0x1B36], class_grant=True)
    repo.publish([make_wheel(env / "w1", version="0.1.0")], vendor="qemu")
    server = Server(env / "repo" / "public")
    add_repo("main", server.url, env / "repo" / "public" / "keys" / "root.json")
    try:
        yield Env(repo, env / "repo" / "public", server, env, env / "var")
    finally:
        server.close()
        repo.stop_agent()


def _forge(core: Env, role: str, index: str, driver: str, package: str, version: str,
           mods: list[str], vendor_field: str | None = None) -> Path:
    """Sign, with `role`'s own key, a wheel target and an index `index` listing it."""
    repo = core.repo
    w = make_wheel(core.wheels / f"forged-{role}-{version}", package=package, driver=driver,
                   version=version, modaliases=mods)
    d = "class" if index == "class" else index.split("/")[0]
    target = f"drivers/{d}/{w.name}"
    entry: dict[str, object] = {"package": package, "driver": driver, "version": version,
                                "abi": "1.0", "modaliases": mods, "files": {"wheel": target}}
    if vendor_field is not None:
        entry["vendor"] = vendor_field
    data = encode_index(index, [entry_from_json(entry, 0, index)])
    txn = Transaction(repo.metadata_dir, repo.keys, repo.expiry)  # type: ignore[attr-defined]
    md = txn.load(role)
    for name, blob in ((target, w.read_bytes()), (f"index/{index}.json", data)):
        tf = TargetFile.from_data(name, blob, ["sha256"])
        md.signed.targets[name] = tf
        path = repo._target_path(name, tf)  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    txn.stage(role, md)
    txn.commit()  # `role` signed with its own key from REPO/keys (a real ed25519 key)
    return w


def _nothing_installed(core: Env, wheel: Path) -> None:
    assert DriverStore().installed() == []
    cached = core.state / "repos" / "main" / "targets"
    assert not [p for p in cached.rglob("*") if p.name == wheel.name]


def test_acceptance2_vendor_b_signed_claim_on_vendor_a_name_is_refused(core: Env) -> None:
    forged = _forge(core, "vendor-acme", "1af4/0", "edu", "udriver-edu", "9.0", [ACME])
    with pytest.raises(RepositoryError) as ei:
        Client().install_for_devices(ACME_ONLY)
    msg = str(ei.value)
    assert "index/1af4/0.json (signed by 'vendor-acme') lists edu 9.0" in msg
    assert "the name `edu` belongs to 'vendor-qemu', not to 'vendor-acme'" in msg
    assert ei.value.hint == "nothing was installed; report this to the repository's operator"
    _nothing_installed(core, forged)
    with pytest.raises(RepositoryError, match="belongs to 'vendor-qemu'"):
        Client().find("edu", ACME_ONLY)
    _nothing_installed(core, forged)


def test_vendor_b_claim_on_vendor_a_distribution_name_is_refused(core: Env) -> None:
    forged = _forge(core, "vendor-acme", "1af4/0", "acmedu", "udriver-edu", "1.0", [ACME])
    with pytest.raises(RepositoryError, match="the name `udriver-edu` belongs to "
                                              "'vendor-qemu', not to 'vendor-acme'"):
        Client().install_for_devices(ACME_ONLY)
    _nothing_installed(core, forged)


def test_name_without_owner_record_is_refused(core: Env) -> None:
    forged = _forge(core, "vendor-acme", "1af4/0", "ghost", "udriver-ghost", "1.0", [ACME])
    with pytest.raises(RepositoryError, match="the name `ghost` has no owner record"):
        Client().install_for_devices(ACME_ONLY)
    _nothing_installed(core, forged)


def test_owner_is_installed_and_recorded(core: Env) -> None:
    # The forged acme index is never read for the edu device: A's driver installs.
    _forge(core, "vendor-acme", "1af4/0", "edu", "udriver-edu", "9.0", [ACME])
    [r] = Client().install_for_devices(EDU)
    assert (r.driver, r.version) == ("edu", "0.1.0")
    assert DriverStore().origin("edu") == ("main", "vendor-qemu")


def test_case5_forged_class_wide_edu_99_is_not_picked(core: Env) -> None:
    # Signed with the repository's own `class` key, naming a third vendor as publisher.
    forged = _forge(core, "class", "class", "edu", "udriver-edu", "99.0", [NVME],
                    vendor_field="vendor-classy")
    # `udriver install edu` on a machine with only A's device: A's driver, which matches it.
    best = Client().find("edu", EDU)
    assert (best.version, best.publisher, best.signer) == ("0.1.0", "vendor-qemu", "vendor-qemu")
    # With an NVMe controller too, 99.0 matches a local device and is the highest: refused.
    both = {**EDU, "0000:00:06.0": parse_modalias(NVME_DEV)}
    with pytest.raises(RepositoryError, match="index/class.json \\(signed by 'class'\\) lists "
                                              "edu 99.0, but the name `edu` belongs to "
                                              "'vendor-qemu', not to 'vendor-classy'"):
        Client().find("edu", both)
    _nothing_installed(core, forged)


def test_legitimate_class_wide_driver_installs(core: Env) -> None:
    w = make_wheel(core.wheels / "nvme", package="udriver-anynvme", driver="anynvme",
                   version="1.0", modaliases=[NVME])
    core.repo.publish([w], vendor="classy")  # type: ignore[attr-defined]
    [r] = Client().install_for_devices({"0000:00:06.0": parse_modalias(NVME_DEV)})
    assert r.driver == "anynvme"
    assert DriverStore().origin("anynvme") == ("main", "vendor-classy")


def test_case5_installed_driver_of_another_owner_is_not_replaced_or_kept(core: Env) -> None:
    repo = core.repo
    # The operator once gave `edu` to acme, which published it for its own device...
    repo.assign_name("edu", "acme")  # type: ignore[attr-defined]
    repo.assign_name("udriver-edu", "acme")  # type: ignore[attr-defined]
    repo.publish([make_wheel(core.wheels / "b", version="1.0.0", modaliases=[ACME])],  # type: ignore[attr-defined]
                 vendor="acme")
    Client().install_for_devices(ACME_ONLY)
    assert DriverStore().origin("edu") == ("main", "vendor-acme")
    # ...then gave it back to qemu, which publishes the same version for A's device.
    repo.assign_name("edu", "qemu")  # type: ignore[attr-defined]
    repo.assign_name("udriver-edu", "qemu")  # type: ignore[attr-defined]
    repo.publish([make_wheel(core.wheels / "a", version="1.0.0")], vendor="qemu")  # type: ignore[attr-defined]
    with pytest.raises(InstallError) as ei:
        Client().install_for_devices(EDU)
    assert str(ei.value) == (
        "driver 'edu' is installed from 'vendor-acme' (repository 'main'), but repository "
        "'main' lists edu 1.0.0 from 'vendor-qemu': refusing to replace or keep another "
        "vendor's driver under this name")
    assert ei.value.hint == "if the owner really changed, `udriver remove edu` and install it again"
    # `udriver update` of the installed driver: its name changed owner, refused clearly.
    with pytest.raises(InstallError, match="driver 'edu' was installed from 'vendor-acme' "
                                           "\\(repository 'main'\\), but the name now belongs "
                                           "to 'vendor-qemu': refusing to update it"):
        Client().update()
    inst = DriverStore().get("edu")
    assert inst is not None and inst.current == "1.0.0"
    m = inst.manifest()
    assert m is not None and list(m.modaliases) == [ACME]  # still B's driver, untouched
    assert os.readlink(core.state / "drivers" / "edu" / "current") == "1.0.0"


def test_driver_installed_without_origin_of_another_table_is_not_kept(core: Env) -> None:
    # A local wheel (no recorded origin) of B's `edu` 0.1.0: A's `edu` 0.1.0 must not be
    # reported as "unchanged" while B's code stays installed.
    Client([]).install_local_wheel(make_wheel(core.wheels / "local", version="0.1.0",
                                              modaliases=[ACME]))
    with pytest.raises(InstallError, match="the installed edu 0.1.0 \\(udriver-edu\\) is not "
                                           "the driver repository 'main' lists"):
        Client().install_for_devices(EDU)


def test_install_by_name_prefers_the_version_matching_a_local_device(core: Env) -> None:
    # classy (1b36, class grant) owns `anyx`: 2.0 is class-wide (NVMe), 1.0 is for its
    # own device 1b36:0001. A machine with only that device gets 1.0.
    repo = core.repo
    for version, mods in (("1.0", ["pci:v00001B36d00000001sv*sd*bc*sc*i*"]), ("2.0", [NVME])):
        repo.publish([make_wheel(core.wheels / version, package="udriver-anyx",  # type: ignore[attr-defined]
                                 driver="anyx", version=version, modaliases=mods)],
                     vendor="classy")
    dev = {"0000:00:07.0": parse_modalias("pci:v00001B36d00000001sv00001AF4sd00001100bc00scFFi00")}
    best = Client().find("anyx", dev)
    assert (best.version, best.publisher) == ("1.0", "vendor-classy")
    nvme = {"0000:00:06.0": parse_modalias(NVME_DEV)}
    assert Client().find("anyx", nvme).version == "2.0"
