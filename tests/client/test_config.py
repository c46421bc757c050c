"""udriver.client._config: repos.d, trust anchors, and each rejection path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root

from udriver.client import add_repo, get_repo, list_repos, remove_repo
from udriver.errors import ConfigError
from udriver_vm.tufrepo import TufRepo


@pytest.fixture
def root(env: Path) -> Path:
    return TufRepo(env / "repo").path / "root.json"


def test_add_list_remove(env: Path, root: Path) -> None:
    cfg = add_repo("main", "https://example.org/udriver/", root, auto_install=True)
    assert cfg.url == "https://example.org/udriver"
    assert cfg.metadata_url == "https://example.org/udriver/metadata/"
    assert cfg.targets_url == "https://example.org/udriver/targets/"
    conf = json.loads((env / "etc" / "repos.d" / "main.json").read_text())
    assert conf == {"name": "main", "url": "https://example.org/udriver", "auto_install": True,
                    "ca_bundle": None}
    anchor = env / "var" / "repos" / "main" / "metadata" / "root.json"
    assert anchor.read_bytes() == root.read_bytes()
    add_repo("backup", "http://127.0.0.1:8080", root)
    assert [r.name for r in list_repos()] == ["backup", "main"]
    assert [r.name for r in list_repos(auto_install_only=True)] == ["main"]
    assert get_repo("main").auto_install is True
    remove_repo("main")
    assert [r.name for r in list_repos()] == ["backup"]
    assert not anchor.exists()


def test_empty_list(env: Path) -> None:
    assert list_repos() == []


@pytest.mark.parametrize("url,why", [
    ("ftp://example.org/", "scheme must be http or https"),
    ("example.org/repo", "scheme must be http or https"),
    ("http:///path", "no host"),
    ("http://example.org/?x=1", "no query or fragment"),
    ("http://example.org:99999/", "Invalid repository URL (Port out of range"),
])
def test_bad_url(env: Path, root: Path, url: str, why: str) -> None:
    with pytest.raises(ConfigError) as ei:
        add_repo("main", url, root)
    assert why in str(ei.value) and repr(url) in str(ei.value)
    assert list_repos() == []


@pytest.mark.parametrize("name", ["Main", "-x", "a/b", "", "x" * 65])
def test_bad_name(env: Path, root: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="Invalid repository name"):
        add_repo(name, "http://127.0.0.1:1", root)


def test_duplicate_name(env: Path, root: Path) -> None:
    add_repo("main", "http://127.0.0.1:1", root)
    with pytest.raises(ConfigError) as ei:
        add_repo("main", "http://127.0.0.1:2", root)
    assert str(ei.value) == "A repository named 'main' is already configured"
    assert ei.value.hint == "remove it first with `udriver repo remove main`"
    assert get_repo("main").url == "http://127.0.0.1:1"


def test_unreadable_root(env: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        add_repo("main", "http://127.0.0.1:1", env / "missing.json")
    assert str(ei.value) == f"Cannot read root metadata (No such file or directory): '{env}/missing.json'"


def test_invalid_root(env: Path) -> None:
    bad = env / "bad.json"
    bad.write_text('{"signed": {"_type": "root"}}')
    with pytest.raises(ConfigError, match=r"^Invalid TUF root metadata \("):
        add_repo("main", "http://127.0.0.1:1", bad)


def test_not_a_root(env: Path, root: Path) -> None:
    repo = TufRepo(env / "r2")
    repo.publish()
    ts = repo.public / "metadata" / "timestamp.json"
    with pytest.raises(ConfigError, match="Invalid TUF root metadata"):
        add_repo("main", "http://127.0.0.1:1", ts)


def test_root_not_self_signed(env: Path, root: Path) -> None:
    md = Metadata[Root].from_file(str(root))
    md.signatures.clear()
    md.sign(CryptoSigner.generate_ed25519())  # a key the root does not list
    bad = env / "unsigned.json"
    md.to_file(str(bad))
    with pytest.raises(ConfigError, match="not signed by its threshold of root keys"):
        add_repo("main", "http://127.0.0.1:1", bad)


def test_missing_ca_bundle(env: Path, root: Path) -> None:
    with pytest.raises(ConfigError, match="CA bundle not found: '/nonexistent.pem'"):
        add_repo("main", "https://example.org", root, ca_bundle="/nonexistent.pem")


def test_remove_unknown(env: Path) -> None:
    with pytest.raises(ConfigError, match="No repository named 'nope' is configured"):
        remove_repo("nope")


def test_corrupt_config_file(env: Path, root: Path) -> None:
    add_repo("main", "http://127.0.0.1:1", root)
    (env / "etc" / "repos.d" / "main.json").write_text("{")
    with pytest.raises(ConfigError, match="Invalid repository configuration"):
        list_repos()
