"""One rule for options, kept by walking every subcommand's parser (issue 13).

The rule (docs/cli.md): within one tool, an option name means one thing -- the same
destination and the same metavar wherever it appears (`--driver` is always a udriver
driver, a kernel driver is `--kernel-driver`; `-o` is only `--out-dir`) -- and every
environment variable a tool reads is named in its help.
"""

from __future__ import annotations

import argparse
import collections
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from udriver_repo.cli import build_parser as repo_parser

from udriver.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _walk(p: argparse.ArgumentParser, path: tuple[str, ...] = ()
          ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action]]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from _walk(sub, (*path, name))
        else:
            yield path, p, a


def _tools() -> dict[str, tuple[argparse.ArgumentParser, list[Path]]]:
    return {"udriver": (build_parser(None), [*ROOT.glob("toolkit/udriver/cli/*.py")]),
            "udriver-repo": (repo_parser(), [ROOT / "repo-server/udriver_repo/cli.py"])}


@pytest.mark.parametrize("tool", ["udriver", "udriver-repo"])
def test_an_option_name_means_one_thing(tool: str) -> None:
    parser, _ = _tools()[tool]
    seen: dict[str, set[tuple[str, object]]] = collections.defaultdict(set)
    where: dict[str, set[str]] = collections.defaultdict(set)
    for path, _, a in _walk(parser):
        for o in a.option_strings:
            seen[o].add((a.dest, a.metavar))
            where[o].add(" ".join(path) or "(top)")
    clashes = {o: (sorted(map(str, s)), sorted(where[o])) for o, s in seen.items() if len(s) > 1}
    assert clashes == {}


def test_the_names_that_used_to_clash() -> None:
    parser, _ = _tools()["udriver"]
    opts = {(" ".join(path), o): a for path, _, a in _walk(parser) for o in a.option_strings}
    assert ("bind", "--kernel-driver") in opts and ("bind", "--driver") not in opts
    assert {p for p, o in opts if o == "-o"} == {"build"}
    assert all(opts[(p, o)].metavar == "NAME" for p, o in opts if o == "--driver")
    assert all(opts[(p, o)].metavar == "BDF" for p, o in opts if o == "--device")


@pytest.mark.parametrize("tool", ["udriver", "udriver-repo"])
def test_every_environment_variable_is_in_the_help(tool: str) -> None:
    parser, sources = _tools()[tool]
    text = f"{parser.description}\n{parser.epilog}\n"
    for _, p, a in _walk(parser):
        text += f"{a.help}\n{p.description}\n{p.epilog}\n"
    read = set()
    for src in sources:
        read |= set(re.findall(r"\bUDRIVER_[A-Z_]+\b", src.read_text()))
    assert read, "no variables found: the scan is broken"
    assert sorted(v for v in read if v not in text) == []
