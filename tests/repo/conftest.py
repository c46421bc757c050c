"""Fixtures for repository tests (also used by the server tests).

- `repo_template` (session): an initialised repository with three vendors --
  `qemu` (PCI 1234), `acme` (1af4, 8086) and `classy` (PCI 1b36, class grant) -- built
  once; `repo` gives each test its own copy (copying is ~50x faster than `init`).
- `repo_tokens`: vendor name -> upload token for the copy.
- `published_repo`: `repo` with the edu driver (wheel + deb) published by `qemu`.
- `built_edu` (session): examples/edu built with `udriver build` ([wheel, deb]).
- `dist`: a directory for factory-built artifacts (`_factory.make_driver`).
- `make_client`: a fresh plain `ngclient.Updater` against a loopback HTTP server.

Copies share the template's GnuPG home (one gpg-agent, stopped at session end).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from udriver_vm.repofactory import make_driver
from udriver_vm.treeserver import TreeServer

EDU = Path(__file__).resolve().parents[2] / "examples" / "edu"
VENDORS: dict[str, tuple[list[int], bool]] = {
    "qemu": ([0x1234], False),
    "acme": ([0x1AF4, 0x8086], False),
    "classy": ([0x1B36], True),
}


@dataclass
class RepoEnv:
    """A repository copy for one test."""

    path: Path
    """The repository directory."""
    tokens: dict[str, str]
    """vendor name -> upload token."""

    @property
    def repo(self):  # type: ignore[no-untyped-def]
        from udriver_repo import Repository
        return Repository.open(self.path)


@pytest.fixture(scope="session")
def repo_template() -> Iterator[RepoEnv]:
    from udriver_repo import Repository
    base = Path(tempfile.mkdtemp(prefix="udr-tpl-"))
    repo = Repository.init(base / "repo")
    tokens = {name: repo.add_vendor(name, ids, grant) for name, (ids, grant) in VENDORS.items()}
    yield RepoEnv(base / "repo", tokens)
    repo.stop_agent()
    shutil.rmtree(base, ignore_errors=True)


def _copy(template: RepoEnv, dest: Path) -> RepoEnv:
    """Copy the template; the copy shares the template's GnuPG home (and so its one
    gpg-agent) through a symlink, which saves starting an agent per test."""
    shutil.copytree(template.path, dest, symlinks=True,
                    ignore=shutil.ignore_patterns("gnupg", "*.lock", ".#*"))
    (dest / "gnupg").symlink_to(template.path / "gnupg")
    return RepoEnv(dest, dict(template.tokens))


@pytest.fixture
def repo_env(repo_template: RepoEnv) -> Iterator[RepoEnv]:
    # Short path: the GnuPG home must stay well below the 108-byte socket limit.
    base = Path(tempfile.mkdtemp(prefix="udr-"))
    env = _copy(repo_template, base / "repo")
    yield env
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def repo(repo_env: RepoEnv):  # type: ignore[no-untyped-def]
    return repo_env.repo


@pytest.fixture
def repo_tokens(repo_env: RepoEnv) -> dict[str, str]:
    return repo_env.tokens


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    d = tmp_path / "dist"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def edu_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The edu driver's wheel and deb (qemu's 1234:11e8), built once."""
    return make_driver(tmp_path_factory.mktemp("edu"))[1]


@pytest.fixture(scope="session")
def built_edu(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """examples/edu built by `udriver build` (wheel, deb); skipped if the example is absent."""
    if not (EDU / "pyproject.toml").is_file():
        pytest.skip("examples/edu is not in the tree")
    from udriver.toolchain import build_project
    env = {"DEBFULLNAME": "udriver developers", "DEBEMAIL": "udriver-devel@example.org",
           "SOURCE_DATE_EPOCH": "1700000000"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        res = build_project(EDU, out_dir=tmp_path_factory.mktemp("edu-build"))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert res.deb is not None
    return [res.wheel, res.deb]


@pytest.fixture
def published_repo(repo, edu_files):  # type: ignore[no-untyped-def]
    repo.publish(edu_files, vendor="qemu")
    return repo


@pytest.fixture
def tree_server(repo) -> Iterator[TreeServer]:  # type: ignore[no-untyped-def]
    with TreeServer(repo.public) as srv:
        yield srv


@pytest.fixture
def make_client(repo, tree_server: TreeServer, tmp_path: Path) -> Callable[..., object]:  # type: ignore[no-untyped-def]
    """Factory: a plain ngclient.Updater bootstrapped from the repo's 1.root.json.

    `make_client(name)` reuses the metadata directory `name` (an existing client);
    a new name is a fresh client.
    """
    from tuf.ngclient import Updater
    root = (repo.public / "metadata" / "1.root.json").read_bytes()

    def make(name: str = "fresh") -> Updater:
        d = tmp_path / f"client-{name}"
        (d / "metadata").mkdir(parents=True, exist_ok=True)
        (d / "targets").mkdir(exist_ok=True)
        existing = (d / "metadata" / "root.json").exists()
        return Updater(str(d / "metadata"), f"{tree_server.url}/metadata/",
                       str(d / "targets"), f"{tree_server.url}/targets/",
                       bootstrap=None if existing else root)
    return make
