"""A man page (man(7) macros) written from an argparse parser, at build time.

setup.py writes `share/man/man1/udriver.1` into the wheel's data from `build_parser()`, so
pip users get `man udriver` (man-db finds `<prefix>/share/man` next to `<prefix>/bin` on
PATH, a venv included) and the page cannot drift from the CLI. The .deb's pages come from
argparse-manpage (debian/gen-cli-docs.py).

Each subcommand's section is its own `--help` text, verbatim in a no-fill block: what
the user sees with `udriver COMMAND --help` is what the page says.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

__all__ = ["render"]


def _escape(text: str) -> str:
    """Text for a no-fill block: backslashes doubled, a leading `.` or `'` guarded (groff(7))."""
    out = []
    for line in text.replace("\\", "\\e").splitlines():
        out.append("\\&" + line if line[:1] in (".", "'") else line)
    return "\n".join(out)


def _leaves(p: argparse.ArgumentParser, path: tuple[str, ...]
            ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, p
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*path, name))


def render(parser: argparse.ArgumentParser, prog: str, version: str, date: str) -> str:
    """The whole page for `prog` (section 1)."""
    summary = (parser.description or prog).rstrip(".")
    lines = [f'.TH {prog.upper()} 1 "{date}" "{prog} {version}" "User Commands"',
             ".SH NAME", f"{prog} \\- {_escape(summary)}",
             ".SH SYNOPSIS", ".nf", _escape(parser.format_usage().removeprefix("usage: ")), ".fi",
             ".SH DESCRIPTION", ".nf", _escape(parser.format_help()), ".fi",
             ".SH COMMANDS"]
    for path, sub in _leaves(parser, ()):
        lines += [f".SS {prog} {' '.join(path)}", ".nf", _escape(sub.format_help()), ".fi"]
    return "\n".join(lines) + "\n"
