"""The import structure of toolkit/, repo-server/ and vm/ (issue 14, acceptance 1).

Reads every module's imports from its source (`ast`, nothing is imported or run) and
fails on:

1. an import cycle between modules (imports under `if TYPE_CHECKING:` are left out:
   they never run; an import of a package's own ancestor `__init__` is left out too:
   a package may re-export its children);
2. an import of a `_private` module from outside the package that holds it
   (`udriver.cli._x` may not import `udriver.supervise._run`; `udriver_repo.server._upload`
   may import `udriver_repo._errors`: both are inside `udriver_repo`);
3. a repository-server import of a udriver name that docs/ does not list: each
   `from udriver.M import N` in repo-server/ needs `udriver.M.N` written in a page of
   docs/ (docs/repoformat.md lists them), and M must be a public module;
4. a repository server that does not pin the udriver it is built with
   (repo-server/pyproject.toml: `udriver==<the toolkit's version>`);
5. a module of those three trees longer than 400 lines;
6. in tests/, examples/ and bench/ (which use the packages from outside): an import of a
   `_private` module of udriver_vm (the VM harness, issue 14 item 4: they import its public
   modules), or a `sys.path` edit in examples/ or bench/ (they import installed packages).

Known exceptions are listed by name below, each with the work that removes it; the test
also fails when a listed exception no longer occurs, so the list only shrinks.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = {
    "udriver": ROOT / "toolkit" / "udriver",
    "udriver_repo": ROOT / "repo-server" / "udriver_repo",
    "udriver_vm": ROOT / "vm" / "udriver_vm",
}
MAX_LINES = 400
"""Acceptance 1: no module outside tests/ is longer (STYLE.md: one concept per module)."""
USERS = ("tests", "examples", "bench")
"""Folders whose files import the packages above from outside (rule 5)."""

# Issue 14 items 2 and 4: the cycle between supervise/_autobind and _run is gone; cli/
# reaches client/, supervise/ and pci/ through their public names (the client commands'
# shared options live in cli/_clientopts); the runner is the public module
# `udriver.runtime.runner` (not exported by `udriver.runtime`, the drivers' API); the VM
# harness builds .debs with the public `udriver.toolchain.build_deb`, and the one forgery
# that needs the repository core's internals lives in tests/_forge.py. Both lists stay
# empty: a new entry needs a reason written here.
KNOWN_CYCLES: set[frozenset[str]] = set()
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for top, base in TREES.items():
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([top, *parts])] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def _imports(name: str) -> Iterator[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for each import in module `name`."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    skip = _type_checking_nodes(tree)
    package = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                yield (sub, "", node.lineno) if sub in MODULES else (mod, alias.name, node.lineno)


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for target, _, _ in _imports(m):
            if target in MODULES and target != m and not m.startswith(target + "."):
                graph[m].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = set()
            while True:
                w = stack.pop()
                on.discard(w)
                scc.add(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(frozenset(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _private_owner(module: str) -> str | None:
    """The package holding the first `_private` part of `module` (None: all public)."""
    parts = module.split(".")
    for i, p in enumerate(parts):
        if p.startswith("_") and not p.startswith("__"):
            return ".".join(parts[:i])
    return None


def _private_violations() -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for m in MODULES:
        for target, _, _ in _imports(m):
            owner = _private_owner(target)
            if owner is None or target.split(".")[0] not in TREES:
                continue
            if not (m == owner or m.startswith(owner + ".")):
                out.add((m, target))
    return out


def test_no_import_cycle() -> None:
    found = set(_cycles(_edges()))
    assert found - KNOWN_CYCLES == set(), "import cycles"
    assert KNOWN_CYCLES - found == set(), "fixed: remove these from KNOWN_CYCLES"


def test_no_private_module_imported_across_packages() -> None:
    found = _private_violations()
    assert found - KNOWN_PRIVATE_IMPORTS == set(), "private modules imported from outside"
    assert KNOWN_PRIVATE_IMPORTS - found == set(), "fixed: remove from KNOWN_PRIVATE_IMPORTS"


def test_repository_server_imports_only_documented_udriver_names() -> None:
    docs = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    listed = set(re.findall(r"udriver(?:\.[A-Za-z_][A-Za-z0-9_]*)+", docs))
    problems: list[str] = []
    for m in MODULES:
        if not m.startswith("udriver_repo"):
            continue
        for target, name, line in _imports(m):
            if target != "udriver" and not target.startswith("udriver."):
                continue
            full = f"{target}.{name}" if name else target
            where = f"{MODULES[m].relative_to(ROOT)}:{line}"
            if _private_owner(target) is not None:
                problems.append(f"{where}: {full} is in a private module")
            elif full not in listed:
                problems.append(f"{where}: {full} is not listed in docs/")
    assert problems == []


def test_repository_server_pins_this_udriver() -> None:
    import tomllib

    import udriver

    meta = tomllib.loads((ROOT / "repo-server" / "pyproject.toml").read_text())
    deps = [d for d in meta["project"]["dependencies"] if re.match(r"udriver\b(?!-)", d)]
    assert deps == [f"udriver=={udriver.__version__}"]


def test_the_walker_sees_what_it_checks() -> None:
    """The rules above would pass vacuously on a walker that found nothing."""
    graph = _edges()
    assert "udriver.repoformat._entry" in graph["udriver.repoformat"]
    assert "udriver_repo._plan" in graph["udriver_repo._repository"]
    assert _private_owner("udriver.supervise._run") == "udriver.supervise"
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [frozenset({"a", "b"})]
    assert any(t == "udriver.gate" and n == "admit"
               for t, n, _ in _imports("udriver_repo._validate"))
    assert "udriver_vm._qemu" in graph["udriver_vm.harness"]
    assert ("udriver_vm.harness", 1) in _imported_modules(ROOT / "tests/vm/_fixtures.py") or any(
        m == "udriver_vm.harness" for m, _ in _imported_modules(ROOT / "tests/vm/_fixtures.py"))


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _user_files() -> Iterator[Path]:
    for top in USERS:
        yield from sorted((ROOT / top).rglob("*.py"))


def _imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.module, node.lineno
            yield from ((f"{node.module}.{a.name}", node.lineno) for a in node.names)


def test_users_import_only_public_harness_modules() -> None:
    found = []
    for path in _user_files():
        for mod, line in _imported_modules(path):
            if mod.split(".")[0] == "udriver_vm" and _private_owner(mod) is not None:
                found.append(f"{path.relative_to(ROOT)}:{line}: {mod}")
    assert found == []


def test_examples_and_benchmarks_do_not_edit_sys_path() -> None:
    found = []
    for top in ("examples", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
